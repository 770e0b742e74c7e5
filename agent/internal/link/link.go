// Package link holds the agent's one connection to the controller: it dials
// out over mutual TLS, says hello, keeps a yamux session, serves the
// controller's requests on it and reconnects forever with jittered
// exponential backoff.
package link

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/rsgo/rsgo/agent/internal/backoff"
	"github.com/rsgo/rsgo/agent/internal/state"
	"github.com/rsgo/rsgo/shared/protocol"
)

// ErrNotConnected is returned by Call while no session is up.
var ErrNotConnected = errors.New("not connected to the controller")

// Config configures a Link.
type Config struct {
	Identity state.Identity
	// Hello returns the hello to send; it is called on every connect so the
	// Docker version is fresh.
	Hello func(ctx context.Context) protocol.Hello
	// Handler answers the controller's requests.
	Handler protocol.Handler
	// OnConnect runs in its own goroutine after every successful connect,
	// with a context that ends with the session (e.g. to deliver results).
	OnConnect func(ctx context.Context)
	Log       *slog.Logger
	// Backoff bounds; defaults 1 s and 30 s.
	BackoffBase, BackoffMax time.Duration
	// HealthyAfter is how long a session must last to reset the backoff.
	// Default 10 s.
	HealthyAfter time.Duration
	// KeepAlive is the yamux ping interval; a ping unanswered for
	// KeepAliveTimeout ends the session. Defaults 10 s and 10 s.
	KeepAlive, KeepAliveTimeout time.Duration
	// DialTimeout bounds TCP connect, TLS handshake and hello. Default 10 s.
	DialTimeout time.Duration
}

// Link is the agent's connection manager.
type Link struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	session *yamux.Session
	// changed is closed and replaced whenever the session changes, so waiters can
	// watch for connect and disconnect.
	changed chan struct{}
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Link, error) {
	switch {
	case cfg.Identity.Controller == "":
		return nil, errors.New("link: no controller address")
	case len(cfg.Identity.Certificate.Certificate) == 0:
		return nil, errors.New("link: no agent certificate")
	case cfg.Identity.CAs == nil:
		return nil, errors.New("link: no pinned CA")
	case cfg.Hello == nil:
		return nil, errors.New("link: no hello function")
	case cfg.Handler == nil:
		return nil, errors.New("link: no handler")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.BackoffBase, time.Second)
	def(&cfg.BackoffMax, 30*time.Second)
	def(&cfg.HealthyAfter, 10*time.Second)
	def(&cfg.KeepAlive, 10*time.Second)
	def(&cfg.KeepAliveTimeout, 10*time.Second)
	def(&cfg.DialTimeout, 10*time.Second)
	return &Link{cfg: cfg, log: cfg.Log, changed: make(chan struct{})}, nil
}

// Run connects and reconnects until ctx is cancelled; then it closes the
// session, waits for request handlers and returns nil.
func (l *Link) Run(ctx context.Context) error {
	b := backoff.Backoff{Base: l.cfg.BackoffBase, Max: l.cfg.BackoffMax}
	for {
		start := time.Now()
		err := l.session1(ctx)
		if ctx.Err() != nil {
			return nil
		}
		lived := time.Since(start)
		if lived >= l.cfg.HealthyAfter {
			b.Reset()
		}
		delay := b.Next()
		l.log.Warn("controller link down; reconnecting", "err", err, "after", lived.Round(time.Millisecond), "retryIn", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session1 runs one connection from dial to teardown.
func (l *Link) session1(ctx context.Context) error {
	conn, ack, err := l.dial(ctx)
	if err != nil {
		return err
	}
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = l.cfg.KeepAlive
	cfg.ConnectionWriteTimeout = l.cfg.KeepAliveTimeout
	cfg.StreamCloseTimeout = time.Minute
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("yamux: %w", err)
	}
	l.setSession(mux)
	l.log.Info("connected to controller", "controller", l.cfg.Identity.Controller,
		"environment", ack.EnvironmentID, "protocol", ack.ProtocolVersion)

	stop := context.AfterFunc(ctx, func() { mux.Close() })
	defer stop()
	var hooks sync.WaitGroup
	if l.cfg.OnConnect != nil {
		sctx, cancel := context.WithCancel(ctx)
		hooks.Add(1)
		go func() {
			defer hooks.Done()
			l.cfg.OnConnect(sctx)
		}()
		defer func() { cancel(); hooks.Wait() }()
	}
	protocol.Serve(ctx, mux, l.cfg.Handler) // returns when the session ends
	mux.Close()
	l.setSession(nil)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("session closed")
}

// dial connects, completes TLS and the hello exchange.
func (l *Link) dial(ctx context.Context) (*tls.Conn, protocol.HelloAck, error) {
	id := l.cfg.Identity
	host, _, err := net.SplitHostPort(id.Controller)
	if err != nil {
		return nil, protocol.HelloAck{}, fmt.Errorf("controller address %q: %w", id.Controller, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
	defer cancel()
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: l.cfg.DialTimeout, KeepAlive: 15 * time.Second},
		Config: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			NextProtos:   []string{protocol.ALPNLink},
			Certificates: []tls.Certificate{id.Certificate},
			RootCAs:      id.CAs,
			ServerName:   host,
		},
	}
	c, err := d.DialContext(ctx, "tcp", id.Controller)
	if err != nil {
		return nil, protocol.HelloAck{}, fmt.Errorf("connect to %s: %w", id.Controller, err)
	}
	conn := c.(*tls.Conn)
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if err := protocol.WriteFrame(conn, l.cfg.Hello(ctx)); err != nil {
		conn.Close()
		return nil, protocol.HelloAck{}, fmt.Errorf("send hello: %w", err)
	}
	var ack protocol.HelloAck
	if err := protocol.ReadFrame(conn, &ack); err != nil {
		conn.Close()
		// In TLS 1.3 the controller checks our certificate after our side of
		// the handshake is done, so its refusal surfaces on the first read.
		return nil, protocol.HelloAck{}, fmt.Errorf("controller refused the connection (certificate revoked or environment deleted?): %w", err)
	}
	if ack.Error != nil {
		conn.Close()
		return nil, ack, fmt.Errorf("controller refused hello: %w", ack.Error)
	}
	conn.SetDeadline(time.Time{})
	return conn, ack, nil
}

func (l *Link) setSession(s *yamux.Session) {
	l.mu.Lock()
	l.session = s
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Connected reports whether a session is up, and a channel closed on the
// next change.
func (l *Link) Connected() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.session != nil, l.changed
}

// Call sends a request to the controller on a new stream.
func (l *Link) Call(ctx context.Context, typ string, body, out any) error {
	l.mu.Lock()
	s := l.session
	l.mu.Unlock()
	if s == nil {
		return ErrNotConnected
	}
	req := protocol.Request{Type: typ}
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s: %w", typ, err)
		}
		req.Body = raw
	}
	stream, err := s.OpenStream()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
	return protocol.Invoke(ctx, stream, req, out)
}
