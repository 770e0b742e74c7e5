// Package jointoken encodes the one-time token an operator hands to a new
// agent. The token carries everything the agent needs for its very first
// connection: where the controller listens and the fingerprint of the CA it
// must trust, so enrollment never relies on trust-on-first-use.
//
// The token is not self-verifying: the controller keeps only a hash of its
// secret and decides whether it is valid, unused and unexpired.
package jointoken

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// prefix marks the token format; a new format gets a new prefix.
const prefix = "rsgo1."

// ErrMalformed is returned for anything that is not a well-formed token.
var ErrMalformed = errors.New("join token is malformed")

// Token is the decoded content of a join token.
type Token struct {
	// ID names the token in the controller's store.
	ID string `json:"i"`
	// Secret is the random part; the controller stores only its hash.
	Secret string `json:"s"`
	// Addr is the controller's agent address, HOST:PORT.
	Addr string `json:"a"`
	// CAFingerprint is Fingerprint of the controller's CA certificate.
	CAFingerprint string `json:"f"`
}

// Encode renders the token as one copy-pasteable string.
func (t Token) Encode() string {
	raw, _ := json.Marshal(t) // a struct of strings always marshals
	return prefix + base64.RawURLEncoding.EncodeToString(raw)
}

// Parse decodes and checks the shape of a token string.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return Token{}, fmt.Errorf("%w: missing %q prefix", ErrMalformed, prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var t Token
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case t.ID == "":
		return Token{}, fmt.Errorf("%w: no token id", ErrMalformed)
	case len(t.Secret) < 32:
		return Token{}, fmt.Errorf("%w: secret too short", ErrMalformed)
	case t.Addr == "":
		return Token{}, fmt.Errorf("%w: no controller address", ErrMalformed)
	case !strings.HasPrefix(t.CAFingerprint, "sha256:") || len(t.CAFingerprint) != len("sha256:")+64:
		return Token{}, fmt.Errorf("%w: bad CA fingerprint", ErrMalformed)
	}
	return t, nil
}

// HashSecret is what the controller stores instead of the secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with a stored hash in constant time.
func SecretMatches(secret, storedHash string) bool {
	got := HashSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}

// Fingerprint is the pinned identity of a certificate: "sha256:" and the hex
// SHA-256 of its DER bytes.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}
