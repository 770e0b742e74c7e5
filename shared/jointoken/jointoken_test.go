package jointoken

import (
	"errors"
	"strings"
	"testing"
)

func validToken() Token {
	return Token{
		ID:            "tok1",
		Secret:        strings.Repeat("s", 43),
		Addr:          "127.0.0.1:8443",
		CAFingerprint: Fingerprint([]byte("ca")),
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	want := validToken()
	got, err := Parse(want.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Parse(Encode()) = %+v, want %+v", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	short := validToken()
	short.Secret = "abc"
	noAddr := validToken()
	noAddr.Addr = ""
	badFP := validToken()
	badFP.CAFingerprint = "md5:00"
	tests := map[string]string{
		"empty":        "",
		"no prefix":    "abc",
		"not base64":   prefix + "!!!",
		"not json":     prefix + "bm90IGpzb24",
		"short secret": short.Encode(),
		"no address":   noAddr.Encode(),
		"bad fp":       badFP.Encode(),
		"truncated":    validToken().Encode()[:30],
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%q) err = %v, want ErrMalformed", s, err)
			}
		})
	}
}

func TestSecretMatches(t *testing.T) {
	t.Parallel()
	h := HashSecret("right")
	if !SecretMatches("right", h) {
		t.Error("right secret did not match")
	}
	if SecretMatches("wrong", h) {
		t.Error("wrong secret matched")
	}
}
