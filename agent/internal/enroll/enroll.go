// Package enroll trades a join token for an agent certificate. The agent
// makes its key here and sends only a CSR; the controller is verified
// against the CA fingerprint the token carries before anything is sent.
package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rsgo/rsgo/agent/internal/state"
	"github.com/rsgo/rsgo/shared/jointoken"
	"github.com/rsgo/rsgo/shared/protocol"
)

// ErrFingerprintMismatch means the controller presented a CA other than the
// one the join token names.
var ErrFingerprintMismatch = errors.New("controller CA does not match the fingerprint in the join token")

// Options configures Enroll.
type Options struct {
	Token    string
	Hostname string
	// Controller overrides the address in the token (e.g. behind NAT).
	Controller string
	Dir        state.Dir
	Timeout    time.Duration
}

// Enroll runs the enrollment exchange and saves the new identity.
func Enroll(ctx context.Context, o Options) (state.Config, error) {
	tok, err := jointoken.Parse(o.Token)
	if err != nil {
		return state.Config{}, err
	}
	addr := tok.Addr
	if o.Controller != "" {
		addr = o.Controller
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return state.Config{}, fmt.Errorf("generate key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "rsgo-agent " + o.Hostname},
	}, key)
	if err != nil {
		return state.Config{}, fmt.Errorf("create csr: %w", err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return state.Config{}, fmt.Errorf("controller address %q: %w", addr, err)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPNEnroll},
		// The chain is checked in VerifyConnection against the pinned CA,
		// not against the system roots.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, host, tok.CAFingerprint)
		},
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: conf}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return state.Config{}, fmt.Errorf("connect to controller %s: %w", addr, err)
	}
	conn := c.(*tls.Conn)
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := protocol.EnrollRequest{
		Token:    o.Token,
		CSR:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		Hostname: o.Hostname,
	}
	if err := protocol.WriteFrame(conn, req); err != nil {
		return state.Config{}, fmt.Errorf("send enrollment: %w", err)
	}
	var resp protocol.EnrollResponse
	if err := protocol.ReadFrame(conn, &resp); err != nil {
		return state.Config{}, fmt.Errorf("read enrollment answer: %w", err)
	}
	if resp.Error != nil {
		return state.Config{}, fmt.Errorf("controller refused enrollment: %w", resp.Error)
	}
	if err := checkIssued(resp, key, tok.CAFingerprint); err != nil {
		return state.Config{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return state.Config{}, err
	}
	cfg := state.Config{
		Controller:      addr,
		EnvironmentID:   resp.EnvironmentID,
		EnvironmentName: resp.EnvironmentName,
		EnrolledAt:      time.Now().UTC(),
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := o.Dir.Save(cfg, keyPEM, []byte(resp.Certificate), []byte(resp.CA)); err != nil {
		return state.Config{}, err
	}
	return cfg, nil
}

// verifyPinned finds the CA with the pinned fingerprint in the presented
// chain and verifies the server certificate against it alone.
func verifyPinned(cs tls.ConnectionState, host, fingerprint string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("controller sent no certificate")
	}
	pool := x509.NewCertPool()
	found := false
	for _, c := range cs.PeerCertificates[1:] {
		if jointoken.Fingerprint(c.Raw) == fingerprint {
			pool.AddCert(c)
			found = true
		}
	}
	if !found {
		return ErrFingerprintMismatch
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:     pool,
		DNSName:   host,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("controller certificate: %w", err)
	}
	return nil
}

// checkIssued makes sure the controller signed our key with the pinned CA.
func checkIssued(resp protocol.EnrollResponse, key *ecdsa.PrivateKey, fingerprint string) error {
	caBlock, _ := pem.Decode([]byte(resp.CA))
	certBlock, _ := pem.Decode([]byte(resp.Certificate))
	if caBlock == nil || certBlock == nil {
		return errors.New("enrollment answer lacks the certificate or the CA")
	}
	if jointoken.Fingerprint(caBlock.Bytes) != fingerprint {
		return ErrFingerprintMismatch
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return fmt.Errorf("parse CA: %w", err)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("certificate not signed by the pinned CA: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return errors.New("certificate is not for this agent's key")
	}
	return nil
}
