package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/shared/protocol"
)

// newTLSConfig picks the client-certificate policy from the ALPN protocol
// the client asks for: the link requires a certificate from our CA, the
// enrollment exchange takes none. A client asking for neither is refused.
func (g *Gateway) newTLSConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{g.cfg.Certificate},
	}
	link := base.Clone()
	link.NextProtos = []string{protocol.ALPNLink}
	link.ClientAuth = tls.RequireAndVerifyClientCert
	link.ClientCAs = g.cfg.ClientCAs
	link.VerifyConnection = g.verifyAgent

	enroll := base.Clone()
	enroll.NextProtos = []string{protocol.ALPNEnroll}
	enroll.ClientAuth = tls.NoClientCert

	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			switch {
			case slices.Contains(hello.SupportedProtos, protocol.ALPNLink):
				return link, nil
			case slices.Contains(hello.SupportedProtos, protocol.ALPNEnroll):
				return enroll, nil
			}
			return nil, fmt.Errorf("client offered no rsgo protocol (ALPN %q)", hello.SupportedProtos)
		},
	}
}

// verifyAgent runs after the chain was verified against the CA: the
// certificate must name exactly one environment, and that environment must
// still accept this very certificate.
func (g *Gateway) verifyAgent(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	env, err := pki.EnvironmentOf(leaf)
	if err != nil {
		return err
	}
	return g.cfg.Verifier.CheckAgent(env, pki.SerialString(leaf.SerialNumber))
}

// refusalReason turns a handshake error into the sentence an operator reads
// in the log.
func refusalReason(err error) string {
	msg := err.Error()
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return "no client certificate"
	case errors.As(err, &unknown):
		return "client certificate is not from this controller's CA: " + msg
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "client certificate expired or not yet valid: " + msg
	}
	return msg
}
