package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	want := Hello{ProtocolVersion: Version, MinVersion: MinVersion, AgentVersion: "1.2.3", Hostname: "h"}
	if err := WriteFrame(&buf, want); err != nil {
		t.Fatal(err)
	}
	var got Hello
	if err := ReadFrame(&buf, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReadFrameRejectsOversize(t *testing.T) {
	t.Parallel()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrameSize+1)
	var v Hello
	err := ReadFrame(bytes.NewReader(hdr[:]), &v)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		hello   Hello
		want    int
		wantErr bool
	}{
		{"same", Hello{ProtocolVersion: Version, MinVersion: MinVersion}, Version, false},
		{"newer agent", Hello{ProtocolVersion: Version + 5, MinVersion: MinVersion}, Version, false},
		{"agent requires newer", Hello{ProtocolVersion: Version + 5, MinVersion: Version + 1}, 0, true},
		{"agent too old", Hello{ProtocolVersion: MinVersion - 1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Negotiate(tt.hello)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("version = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCallReply(t *testing.T) {
	t.Parallel()
	// The canned error response is read back by Call, and the request it
	// wrote is checked on the other buffer.
	var errResp bytes.Buffer
	if err := Reply(&errResp, nil, &Error{Code: CodeUnknownType, Message: "nope"}); err != nil {
		t.Fatal(err)
	}
	var req bytes.Buffer
	err := Call(readWriter{&errResp, &req}, Request{Type: "x"}, nil)
	if !errors.Is(err, &Error{Code: CodeUnknownType}) {
		t.Fatalf("Call err = %v, want code %s", err, CodeUnknownType)
	}
	var sent Request
	if err := ReadFrame(&req, &sent); err != nil || sent.Type != "x" {
		t.Fatalf("sent request = %+v, %v", sent, err)
	}
}

type readWriter struct {
	r *bytes.Buffer
	w *bytes.Buffer
}

func (rw readWriter) Read(p []byte) (int, error)  { return rw.r.Read(p) }
func (rw readWriter) Write(p []byte) (int, error) { return rw.w.Write(p) }
