package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"

	"github.com/rsgo/rsgo/agent/internal/state"
	"github.com/rsgo/rsgo/shared/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pki is a throwaway CA with a server and an agent certificate.
type pki struct {
	serverCert tls.Certificate
	agentCert  tls.Certificate
	pool       *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, tmpl *x509.Certificate) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	u, _ := url.Parse("rsgo://environment/env-test")
	p := pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.serverCert = issue(2, &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	p.agentCert = issue(3, &x509.Certificate{URIs: []*url.URL{u}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return p
}

// fakeController speaks the controller's side of the link: mutual TLS,
// hello, yamux server. It records hellos and can drop sessions.
type fakeController struct {
	t      *testing.T
	ln     net.Listener
	refuse *protocol.Error

	mu       sync.Mutex
	hellos   []protocol.Hello
	sessions []*yamux.Session
	newSess  chan *yamux.Session
	wg       sync.WaitGroup
}

func newFakeController(t *testing.T, p pki) *fakeController {
	t.Helper()
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.serverCert},
		ClientCAs:    p.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{protocol.ALPNLink},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{t: t, ln: ln, newSess: make(chan *yamux.Session, 16)}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeController) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(conn)
		}()
	}
}

func (f *fakeController) serve(conn net.Conn) {
	var hello protocol.Hello
	if err := protocol.ReadFrame(conn, &hello); err != nil {
		conn.Close()
		return
	}
	f.mu.Lock()
	f.hellos = append(f.hellos, hello)
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		protocol.WriteFrame(conn, protocol.HelloAck{ProtocolVersion: protocol.Version, Error: refuse})
		conn.Close()
		return
	}
	protocol.WriteFrame(conn, protocol.HelloAck{ProtocolVersion: protocol.Version, EnvironmentID: "env-test"})
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Server(conn, cfg)
	if err != nil {
		conn.Close()
		return
	}
	f.mu.Lock()
	f.sessions = append(f.sessions, sess)
	f.mu.Unlock()
	f.newSess <- sess
	protocol.Serve(context.Background(), sess, func(_ context.Context, req protocol.Request) (any, error) {
		return map[string]string{"got": req.Type}, nil
	})
}

func (f *fakeController) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, s := range f.sessions {
		s.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeController) nextSession(t *testing.T) *yamux.Session {
	t.Helper()
	select {
	case s := <-f.newSess:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not connect")
		return nil
	}
}

func (f *fakeController) helloCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.hellos)
}

func startLink(t *testing.T, p pki, addr string, handler protocol.Handler) (*Link, func()) {
	t.Helper()
	if handler == nil {
		handler = func(context.Context, protocol.Request) (any, error) {
			return protocol.PingResult{AgentTime: time.Now()}, nil
		}
	}
	l, err := New(Config{
		Identity: state.Identity{
			Config:      state.Config{Controller: addr, EnvironmentID: "env-test"},
			Certificate: p.agentCert,
			CAs:         p.pool,
		},
		Hello: func(context.Context) protocol.Hello {
			return protocol.Hello{ProtocolVersion: protocol.Version, MinVersion: protocol.MinVersion, Hostname: "h1", AgentVersion: "v-test", DockerVersion: "99.0"}
		},
		Handler:     handler,
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return l, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}
}

func TestConnectHelloAndServe(t *testing.T) {
	p := newPKI(t)
	fc := newFakeController(t, p)
	l, stop := startLink(t, p, fc.ln.Addr().String(), nil)
	defer stop()

	sess := fc.nextSession(t)
	fc.mu.Lock()
	hello := fc.hellos[0]
	fc.mu.Unlock()
	if hello.Hostname != "h1" || hello.AgentVersion != "v-test" || hello.DockerVersion != "99.0" || hello.ProtocolVersion != protocol.Version {
		t.Errorf("hello = %+v", hello)
	}

	// Controller → agent.
	stream, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var ping protocol.PingResult
	if err := protocol.Invoke(context.Background(), stream, protocol.Request{Type: protocol.TypePing}, &ping); err != nil {
		t.Fatal(err)
	}
	if ping.AgentTime.IsZero() {
		t.Error("no agent time in ping result")
	}

	// Agent → controller.
	waitConnected(t, l, true)
	var got map[string]string
	if err := l.Call(context.Background(), "event", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["got"] != "event" {
		t.Errorf("controller saw %v", got)
	}
}

func TestReconnectsAfterSessionDrops(t *testing.T) {
	p := newPKI(t)
	fc := newFakeController(t, p)
	l, stop := startLink(t, p, fc.ln.Addr().String(), nil)
	defer stop()
	for i := range 3 {
		sess := fc.nextSession(t)
		waitConnected(t, l, true)
		sess.Close()
		if i < 2 {
			waitConnected(t, l, false)
		}
	}
	if n := fc.helloCount(); n < 3 {
		t.Errorf("%d hellos, want at least 3", n)
	}
}

func TestKeepsRetryingWhenRefused(t *testing.T) {
	p := newPKI(t)
	fc := newFakeController(t, p)
	fc.refuse = &protocol.Error{Code: protocol.CodeUnsupportedVersion, Message: "too old"}
	l, stop := startLink(t, p, fc.ln.Addr().String(), nil)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for fc.helloCount() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts", fc.helloCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if up, _ := l.Connected(); up {
		t.Error("refused link reports connected")
	}
	fc.mu.Lock()
	fc.refuse = nil
	fc.mu.Unlock()
	fc.nextSession(t)
	waitConnected(t, l, true)
}

func TestRefusedCertificateIsExplained(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // controller trusts a CA that did not sign our cert
	fc := newFakeController(t, pki{serverCert: p.serverCert, pool: other.pool})
	var logs strings.Builder
	var mu sync.Mutex
	l, err := New(Config{
		Identity:    state.Identity{Config: state.Config{Controller: fc.ln.Addr().String()}, Certificate: p.agentCert, CAs: p.pool},
		Hello:       func(context.Context) protocol.Hello { return protocol.Hello{ProtocolVersion: protocol.Version} },
		Handler:     func(context.Context, protocol.Request) (any, error) { return nil, nil },
		Log:         slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)),
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	l.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "controller refused the connection") {
		t.Errorf("log does not explain the refusal:\n%s", logs.String())
	}
}

func TestCallWhileDisconnected(t *testing.T) {
	p := newPKI(t)
	l, err := New(Config{
		Identity: state.Identity{Config: state.Config{Controller: "127.0.0.1:1"}, Certificate: p.agentCert, CAs: p.pool},
		Hello:    func(context.Context) protocol.Hello { return protocol.Hello{} },
		Handler:  func(context.Context, protocol.Request) (any, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Call(context.Background(), "x", nil, nil); err != ErrNotConnected {
		t.Errorf("err = %v, want ErrNotConnected", err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("empty config accepted")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func waitConnected(t *testing.T, l *Link, want bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		up, changed := l.Connected()
		if up == want {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("link connected = %v, want %v", up, want)
		}
	}
}
