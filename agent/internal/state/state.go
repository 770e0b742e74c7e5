// Package state owns the agent's state directory: its private key, its
// certificate, the pinned CA and where the controller is. Files are written
// atomically; the key is readable by the agent's user only.
package state

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rsgo/rsgo/shared/atomicfile"
)

// File names inside the state directory.
const (
	KeyFile    = "agent.key"
	CertFile   = "agent.crt"
	CAFile     = "ca.crt"
	ConfigFile = "agent.json"
)

// ErrNotEnrolled is returned by Load when the directory holds no identity.
var ErrNotEnrolled = errors.New("agent is not enrolled")

// Config is what the agent remembers besides its key material.
type Config struct {
	Controller      string    `json:"controller"`
	EnvironmentID   string    `json:"environmentId"`
	EnvironmentName string    `json:"environmentName"`
	EnrolledAt      time.Time `json:"enrolledAt"`
}

// Identity is everything the agent needs to connect.
type Identity struct {
	Config
	Certificate tls.Certificate
	CAs         *x509.CertPool
}

// Dir is an agent state directory.
type Dir string

// Path returns the path of a file in the directory.
func (d Dir) Path(name string) string { return filepath.Join(string(d), name) }

// Save writes a new identity. The key goes first and the config last, so a
// crash in between leaves a directory that Load reports as broken or not
// enrolled, never one that pairs a new certificate with an old config.
func (d Dir) Save(cfg Config, keyPEM, certPEM, caPEM []byte) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := os.Remove(d.Path(ConfigFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reset state: %w", err)
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, keyPEM, 0o600},
		{CertFile, certPEM, 0o644},
		{CAFile, caPEM, 0o644},
		{ConfigFile, append(raw, '\n'), 0o644},
	} {
		if err := atomicfile.Write(d.Path(f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// Load reads the identity. ErrNotEnrolled when there is none yet.
func (d Dir) Load() (Identity, error) {
	raw, err := os.ReadFile(d.Path(ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Identity{}, ErrNotEnrolled
	}
	if err != nil {
		return Identity{}, fmt.Errorf("read %s: %w", d.Path(ConfigFile), err)
	}
	var id Identity
	if err := json.Unmarshal(raw, &id.Config); err != nil {
		return Identity{}, fmt.Errorf("parse %s: %w", d.Path(ConfigFile), err)
	}
	if id.Controller == "" || id.EnvironmentID == "" {
		return Identity{}, fmt.Errorf("%s lacks the controller address or environment", d.Path(ConfigFile))
	}
	if st, err := os.Stat(d.Path(KeyFile)); err == nil && st.Mode().Perm()&0o077 != 0 {
		return Identity{}, fmt.Errorf("%s is readable by others (mode %o); run chmod 600", d.Path(KeyFile), st.Mode().Perm())
	}
	id.Certificate, err = tls.LoadX509KeyPair(d.Path(CertFile), d.Path(KeyFile))
	if err != nil {
		return Identity{}, fmt.Errorf("load agent certificate: %w (enroll again with rsgo-agent join)", err)
	}
	caPEM, err := os.ReadFile(d.Path(CAFile))
	if err != nil {
		return Identity{}, fmt.Errorf("read pinned CA: %w", err)
	}
	id.CAs = x509.NewCertPool()
	if !id.CAs.AppendCertsFromPEM(caPEM) {
		return Identity{}, fmt.Errorf("%s holds no certificate", d.Path(CAFile))
	}
	return id, nil
}
