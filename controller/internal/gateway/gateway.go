// Package gateway is the controller's end of the agent link. It serves one
// TLS port with two application protocols: enrollment (no client
// certificate, a join token instead) and the link itself (mutual TLS, then a
// hello, then one yamux session per agent). It keeps the registry of live
// sessions and lets the rest of the controller send requests to agents.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rsgo/rsgo/shared/protocol"
)

// ErrAgentOffline is returned when a request targets an environment whose
// agent holds no session.
var ErrAgentOffline = errors.New("environment agent is offline")

// Verifier decides which agents may connect and enroll. The controller's
// enroll service implements it.
type Verifier interface {
	// CheckAgent is called during the TLS handshake with the environment and
	// serial of a certificate that already chains to the CA. A non-nil error
	// refuses the connection and is logged as the reason.
	CheckAgent(environmentID, serial string) error
	// Enroll redeems a join token for a signed certificate.
	Enroll(ctx context.Context, req protocol.EnrollRequest) (protocol.EnrollResponse, error)
}

// Observer hears about sessions coming and going. A session replaced by a
// newer one of the same environment produces no AgentDisconnected.
type Observer interface {
	AgentConnected(s *Session)
	AgentDisconnected(s *Session)
}

// Config configures a Gateway.
type Config struct {
	// Certificate is the server certificate chain (leaf and CA).
	Certificate tls.Certificate
	// ClientCAs are the roots agent certificates must chain to.
	ClientCAs *x509.CertPool
	Verifier  Verifier
	Observer  Observer
	// Handler answers requests the agents send; nil answers unknown_type.
	Handler func(ctx context.Context, s *Session, req protocol.Request) (any, error)
	Log     *slog.Logger
	// HandshakeTimeout bounds the TLS handshake plus the hello. Default 10 s.
	HandshakeTimeout time.Duration
	// PingInterval is how often the controller pings each agent. A peer that
	// does not answer within PingTimeout is cut. Defaults 10 s and 10 s, so a
	// dead agent is noticed within 20 s.
	PingInterval time.Duration
	PingTimeout  time.Duration
}

// Gateway serves agents.
type Gateway struct {
	cfg       Config
	tlsConfig *tls.Config
	log       *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session
	conns    map[net.Conn]struct{}
	closed   bool

	// ctx is cancelled on Close; it ends every handler of agent requests.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates cfg, fills its defaults and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	switch {
	case len(cfg.Certificate.Certificate) == 0:
		return nil, errors.New("gateway: no server certificate")
	case cfg.ClientCAs == nil:
		return nil, errors.New("gateway: no client CA pool")
	case cfg.Verifier == nil:
		return nil, errors.New("gateway: no verifier")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:      cfg,
		log:      cfg.Log,
		sessions: map[string]*Session{},
		conns:    map[net.Conn]struct{}{},
		ctx:      ctx,
		cancel:   cancel,
	}
	g.tlsConfig = g.newTLSConfig()
	return g, nil
}

// Serve accepts agent connections on l until l is closed or Close is called.
// It returns nil after Close.
func (g *Gateway) Serve(l net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		l.Close()
		return nil
	}
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	stop := context.AfterFunc(g.ctx, func() { l.Close() })
	defer stop()

	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if g.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors or similar: back off briefly
				// instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				g.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("gateway: accept: %w", err)
		}
		delay = 0
		if !g.track(conn) {
			conn.Close()
			return nil
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.untrack(conn)
			g.serveConn(conn)
		}()
	}
}

// Close stops accepting, cuts every session and waits until every
// connection goroutine has returned.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	conns := make([]net.Conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	g.cancel()
	for _, c := range conns {
		c.Close()
	}
	g.wg.Wait()
	return nil
}

func (g *Gateway) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *Gateway) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *Gateway) serveConn(raw net.Conn) {
	conn := tls.Server(raw, g.tlsConfig)
	remote := raw.RemoteAddr().String()
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.HandshakeTimeout)
	err := conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if !errors.Is(err, io.EOF) || g.ctx.Err() == nil {
			g.log.Warn("agent connection refused", "remote", remote, "reason", refusalReason(err))
		}
		return
	}
	switch conn.ConnectionState().NegotiatedProtocol {
	case protocol.ALPNEnroll:
		g.serveEnroll(conn, remote)
	case protocol.ALPNLink:
		g.serveLink(conn, remote)
	}
}

func (g *Gateway) serveEnroll(conn *tls.Conn, remote string) {
	conn.SetDeadline(time.Now().Add(g.cfg.HandshakeTimeout))
	var req protocol.EnrollRequest
	if err := protocol.ReadFrame(conn, &req); err != nil {
		g.log.Warn("enrollment refused", "remote", remote, "reason", err)
		return
	}
	resp, err := g.cfg.Verifier.Enroll(g.ctx, req)
	if err != nil {
		g.log.Warn("enrollment refused", "remote", remote, "hostname", req.Hostname, "reason", err)
		resp = protocol.EnrollResponse{Error: protocol.AsError(err)}
	} else {
		g.log.Info("agent enrolled", "remote", remote, "environment", resp.EnvironmentID, "hostname", req.Hostname)
	}
	if err := protocol.WriteFrame(conn, resp); err != nil {
		g.log.Warn("enrollment reply failed", "remote", remote, "err", err)
	}
}

// Sessions returns the live sessions, for status pages and tests.
func (g *Gateway) Sessions() []*Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Session, 0, len(g.sessions))
	for _, s := range g.sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int { return strings.Compare(a.EnvironmentID, b.EnvironmentID) })
	return out
}

// Session returns the live session of an environment, or nil.
func (g *Gateway) Session(environmentID string) *Session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[environmentID]
}

// Disconnect cuts the session of an environment, if any, and reports whether
// there was one. Used when an environment is deleted.
func (g *Gateway) Disconnect(environmentID string) bool {
	g.mu.Lock()
	s := g.sessions[environmentID]
	g.mu.Unlock()
	if s == nil {
		return false
	}
	s.close()
	return true
}

// Call sends a request to the agent of an environment and decodes the answer
// into out. ErrAgentOffline when the agent holds no session.
func (g *Gateway) Call(ctx context.Context, environmentID, typ string, body, out any) error {
	s := g.Session(environmentID)
	if s == nil {
		return ErrAgentOffline
	}
	return s.Call(ctx, typ, body, out)
}

// DisconnectStale cuts the session of an environment when it runs on a
// certificate other than serial, the one enrollment just issued.
func (g *Gateway) DisconnectStale(environmentID, serial string) {
	g.mu.Lock()
	s := g.sessions[environmentID]
	g.mu.Unlock()
	if s != nil && s.CertSerial != serial {
		g.log.Info("cutting session of a superseded certificate", "environment", environmentID)
		s.close()
	}
}
