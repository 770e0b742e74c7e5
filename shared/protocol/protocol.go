// Package protocol defines how the agent and the controller talk: the TLS
// application protocols, the frame format, the hello handshake and the
// request/response messages carried on yamux streams. PROTOCOL.md in the
// module root describes the same in prose.
package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the link protocol version. It only ever increases.
//
// History:
//
//	1: hello handshake, Ping and DockerInfo requests.
//	2: operations (op.start, op.result) and inventory.
//	3: upgrade and rollback operations, op.status.
//	4: progress events (op.events).
const Version = 4

// MinVersion is the oldest protocol version a peer of this build accepts.
const MinVersion = 4

// ALPN protocol names. The controller serves both on one TCP port and decides
// from the name whether the client must present a certificate.
const (
	// ALPNLink is the mutually authenticated agent link.
	ALPNLink = "rsgo-link/1"
	// ALPNEnroll is the one-shot enrollment exchange; no client certificate.
	ALPNEnroll = "rsgo-enroll/1"
)

// MaxFrameSize caps every frame either side reads. A larger length prefix is
// treated as a protocol violation and closes the stream.
const MaxFrameSize = 4 << 20

// ErrFrameTooLarge is returned when a frame's length prefix exceeds MaxFrameSize.
var ErrFrameTooLarge = errors.New("protocol: frame exceeds maximum size")

// WriteFrame writes v as one frame: a 4-byte big-endian length, then JSON.
func WriteFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("protocol: encode frame: %w", err)
	}
	if len(body) > MaxFrameSize {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("protocol: write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame written by WriteFrame into v.
func ReadFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("protocol: read frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("protocol: read frame body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("protocol: decode frame: %w", err)
	}
	return nil
}
