package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Session is one agent's live link.
type Session struct {
	EnvironmentID   string
	CertSerial      string
	Hello           protocol.Hello
	ProtocolVersion int
	RemoteAddr      string
	ConnectedAt     time.Time

	mux      *yamux.Session
	lastSeen atomic.Int64 // unix nanoseconds
	closeMu  sync.Once
}

// LastSeen is when the agent last answered a ping or a request.
func (s *Session) LastSeen() time.Time { return time.Unix(0, s.lastSeen.Load()) }

func (s *Session) seen() { s.lastSeen.Store(time.Now().UnixNano()) }

func (s *Session) close() { s.closeMu.Do(func() { s.mux.Close() }) }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.mux.CloseChan() }

// Ping measures one round trip over the link at the yamux level.
func (s *Session) Ping() (time.Duration, error) {
	rtt, err := s.mux.Ping()
	if err == nil {
		s.seen()
	}
	return rtt, err
}

// Call sends one request on a new stream and decodes the answer into out.
func (s *Session) Call(ctx context.Context, typ string, body, out any) error {
	req := protocol.Request{Type: typ}
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", typ, err)
		}
		req.Body = raw
	}
	stream, err := s.mux.OpenStream()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAgentOffline, err)
	}
	if err := protocol.Invoke(ctx, stream, req, out); err != nil {
		return err
	}
	s.seen()
	return nil
}

func (g *Gateway) serveLink(conn *tls.Conn, remote string) {
	leaf := conn.ConnectionState().PeerCertificates[0]
	envID, _ := pki.EnvironmentOf(leaf) // checked in verifyAgent
	log := g.log.With("environment", envID, "remote", remote)

	conn.SetDeadline(time.Now().Add(g.cfg.HandshakeTimeout))
	var hello protocol.Hello
	if err := protocol.ReadFrame(conn, &hello); err != nil {
		log.Warn("agent hello failed", "err", err)
		return
	}
	version, err := protocol.Negotiate(hello)
	if err != nil {
		log.Warn("agent refused", "reason", err)
		protocol.WriteFrame(conn, protocol.HelloAck{ProtocolVersion: protocol.Version, Error: protocol.AsError(err)})
		return
	}
	if err := protocol.WriteFrame(conn, protocol.HelloAck{ProtocolVersion: version, EnvironmentID: envID}); err != nil {
		log.Warn("agent hello reply failed", "err", err)
		return
	}
	conn.SetDeadline(time.Time{})

	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false // the monitor below pings and records lastSeen
	cfg.ConnectionWriteTimeout = g.cfg.PingTimeout
	cfg.AcceptBacklog = 64
	cfg.StreamCloseTimeout = time.Minute
	cfg.LogOutput = io.Discard
	mux, err := yamux.Server(conn, cfg)
	if err != nil {
		log.Error("yamux session", "err", err)
		return
	}
	s := &Session{
		EnvironmentID:   envID,
		CertSerial:      pki.SerialString(leaf.SerialNumber),
		Hello:           hello,
		ProtocolVersion: version,
		RemoteAddr:      remote,
		ConnectedAt:     time.Now(),
		mux:             mux,
	}
	s.seen()
	g.register(s, log)
	defer g.unregister(s, log)

	served := make(chan struct{})
	go func() {
		defer close(served)
		protocol.Serve(g.ctx, mux, func(ctx context.Context, req protocol.Request) (any, error) {
			s.seen()
			if g.cfg.Handler == nil {
				return nil, &protocol.Error{Code: protocol.CodeUnknownType, Message: "no handler for " + req.Type}
			}
			return g.cfg.Handler(ctx, s, req)
		})
	}()
	g.monitor(s, log)
	<-served
}

// monitor pings the agent until the session ends or the gateway closes, and
// cuts the session when a ping goes unanswered. It runs on the connection's
// own goroutine: one goroutine fewer per agent matters at ten thousand.
func (g *Gateway) monitor(s *Session, log *slog.Logger) {
	t := time.NewTicker(g.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.Done():
			return
		case <-g.ctx.Done():
			s.close()
			return
		case <-t.C:
			if _, err := s.Ping(); err != nil {
				log.Info("agent did not answer ping; closing session", "err", err)
				s.close()
				return
			}
		}
	}
}

// register makes s the environment's session, replacing an older one.
func (g *Gateway) register(s *Session, log *slog.Logger) {
	g.mu.Lock()
	old := g.sessions[s.EnvironmentID]
	g.sessions[s.EnvironmentID] = s
	g.mu.Unlock()
	if old != nil {
		log.Info("new session replaces the previous one", "previous", old.RemoteAddr)
		old.close()
	}
	log.Info("agent connected", "hostname", s.Hello.Hostname, "agentVersion", s.Hello.AgentVersion,
		"dockerVersion", s.Hello.DockerVersion, "protocol", s.ProtocolVersion)
	if g.cfg.Observer != nil {
		g.cfg.Observer.AgentConnected(s)
	}
}

func (g *Gateway) unregister(s *Session, log *slog.Logger) {
	s.close()
	g.mu.Lock()
	current := g.sessions[s.EnvironmentID] == s
	if current {
		delete(g.sessions, s.EnvironmentID)
	}
	g.mu.Unlock()
	if !current {
		return // replaced: the environment is still online
	}
	log.Info("agent disconnected")
	if g.cfg.Observer != nil {
		g.cfg.Observer.AgentDisconnected(s)
	}
}
