// Package pki owns the controller's certificate authority: it creates or
// loads the CA and the gateway's server certificate, signs agent CSRs with
// exactly one environment in them, and reads that environment back from a
// presented certificate.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rsgo/rsgo/shared/atomicfile"
	"github.com/rsgo/rsgo/shared/jointoken"
)

// File names inside the PKI directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Validity periods of what the controller issues.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	// AgentValidity is how long an agent certificate is valid.
	AgentValidity = 365 * 24 * time.Hour
	// renewBefore: a generated server certificate closer than this to its
	// end is replaced on start.
	renewBefore = 30 * 24 * time.Hour
)

// environmentURIScheme prefixes the URI SAN that names an agent's environment.
const environmentURIPrefix = "rsgo://environment/"

// ErrNoEnvironment is returned when a certificate names no environment.
var ErrNoEnvironment = errors.New("certificate names no rsgo environment")

// Authority is a loaded CA plus the gateway's server certificate.
type Authority struct {
	caCert      *x509.Certificate
	caKey       crypto.Signer
	caPEM       []byte
	pool        *x509.CertPool
	server      tls.Certificate
	fingerprint string
}

// Options configures LoadOrCreate.
type Options struct {
	// Dir holds the PKI files; created with mode 0700 if missing.
	Dir string
	// Hosts are the DNS names and IPs the server certificate must cover.
	Hosts []string
	Log   *slog.Logger
}

// LoadOrCreate loads the CA from Dir or creates one on first start, then
// loads or (re)issues the server certificate. A CA certificate without its
// key is an error: the controller must sign agent certificates.
func LoadOrCreate(o Options) (*Authority, error) {
	if o.Dir == "" {
		return nil, errors.New("pki: no directory")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", o.Dir, err)
	}
	caCert, caKey, err := loadPair(filepath.Join(o.Dir, CACertFile), filepath.Join(o.Dir, CAKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, statErr := os.Stat(filepath.Join(o.Dir, CACertFile)); statErr == nil {
			return nil, fmt.Errorf("pki: %s exists but %s is missing: the controller needs the CA key to sign agent certificates", CACertFile, CAKeyFile)
		}
		caCert, caKey, err = createCA(o.Dir)
		if err != nil {
			return nil, err
		}
		o.Log.Info("created certificate authority", "dir", o.Dir, "fingerprint", jointoken.Fingerprint(caCert.Raw))
	case err != nil:
		return nil, err
	}
	if !caCert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", CACertFile)
	}
	a := &Authority{
		caCert:      caCert,
		caKey:       caKey,
		caPEM:       pemCert(caCert.Raw),
		pool:        x509.NewCertPool(),
		fingerprint: jointoken.Fingerprint(caCert.Raw),
	}
	a.pool.AddCert(caCert)
	if err := a.loadOrIssueServer(o); err != nil {
		return nil, err
	}
	return a, nil
}

// Fingerprint identifies the CA; join tokens carry it.
func (a *Authority) Fingerprint() string { return a.fingerprint }

// CAPEM is the CA certificate in PEM form.
func (a *Authority) CAPEM() []byte { return a.caPEM }

// Pool holds only the CA: the roots agent certificates must chain to.
func (a *Authority) Pool() *x509.CertPool { return a.pool }

// ServerCertificate is the gateway's certificate with the CA appended, so an
// agent can check the CA against its pinned fingerprint during enrollment.
func (a *Authority) ServerCertificate() tls.Certificate { return a.server }

// SignAgent issues a client certificate for the key in csrPEM that names
// exactly one environment. It returns the PEM certificate and its serial.
func (a *Authority) SignAgent(csrPEM []byte, environmentID string) ([]byte, string, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, "", errors.New("csr is not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("parse csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", fmt.Errorf("csr signature: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, "", errors.New("csr key must be ECDSA P-256")
	}
	uri, err := url.Parse(environmentURIPrefix + url.PathEscape(environmentID))
	if err != nil {
		return nil, "", fmt.Errorf("environment uri: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rsgo-agent " + environmentID},
		URIs:         []*url.URL{uri},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(AgentValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, pub, a.caKey)
	if err != nil {
		return nil, "", fmt.Errorf("sign agent certificate: %w", err)
	}
	return pemCert(der), SerialString(serial), nil
}

// EnvironmentOf returns the environment an agent certificate names.
func EnvironmentOf(cert *x509.Certificate) (string, error) {
	var found []string
	for _, u := range cert.URIs {
		if s := u.String(); strings.HasPrefix(s, environmentURIPrefix) {
			id, err := url.PathUnescape(strings.TrimPrefix(s, environmentURIPrefix))
			if err != nil {
				return "", fmt.Errorf("%w: %v", ErrNoEnvironment, err)
			}
			found = append(found, id)
		}
	}
	if len(found) != 1 || found[0] == "" {
		return "", ErrNoEnvironment
	}
	return found[0], nil
}

// SerialString renders a serial number the way the store keeps it.
func SerialString(n *big.Int) string { return n.Text(16) }

func (a *Authority) loadOrIssueServer(o Options) error {
	certPath, keyPath := filepath.Join(o.Dir, ServerCertFile), filepath.Join(o.Dir, ServerKeyFile)
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil {
		reason := a.serverCertProblem(cert, o.Hosts)
		if reason == "" {
			a.server = tls.Certificate{Certificate: [][]byte{cert.Raw, a.caCert.Raw}, PrivateKey: key, Leaf: cert}
			return nil
		}
		o.Log.Info("issuing a new server certificate", "reason", reason)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rsgo-controller"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, newKey.Public(), a.caKey)
	if err != nil {
		return fmt.Errorf("pki: sign server certificate: %w", err)
	}
	if err := writeKey(keyPath, newKey); err != nil {
		return err
	}
	if err := atomicfile.Write(certPath, pemCert(der), 0o644); err != nil {
		return err
	}
	leaf, _ := x509.ParseCertificate(der)
	a.server = tls.Certificate{Certificate: [][]byte{der, a.caCert.Raw}, PrivateKey: newKey, Leaf: leaf}
	return nil
}

// serverCertProblem says why cert cannot serve, or "" when it can.
func (a *Authority) serverCertProblem(cert *x509.Certificate, hosts []string) string {
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return "does not verify against the CA: " + err.Error()
	}
	if time.Until(cert.NotAfter) < renewBefore {
		return "expires soon"
	}
	for _, h := range hosts {
		if h != "" && cert.VerifyHostname(h) != nil {
			return "does not cover " + h
		}
	}
	return ""
}

func createCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: ca key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "rsgo CA", Organization: []string{"rsgo"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: self-sign ca: %w", err)
	}
	// Key first: a crash between the two writes leaves no certificate
	// without its key.
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CACertFile), pemCert(der), 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: load %s: %w", certPath, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("pki: %s is not a signing key", keyPath)
	}
	return pair.Leaf, signer, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: marshal key: %w", err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return n, nil
}
