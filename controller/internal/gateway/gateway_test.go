package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/goleak"

	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a gateway with the real store, PKI and fleet behind it,
// listening on loopback.
type harness struct {
	t     *testing.T
	dir   string
	addr  string
	store *store.Store
	ca    *pki.Authority
	fleet *fleet.Service
	gw    *gateway.Gateway
	logs  *syncBuffer
}

func newHarness(t *testing.T, tune func(*gateway.Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(h.logs, testWriter{t}), nil))
	var err error
	h.store, err = store.Open(filepath.Join(h.dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.ca, err = pki.LoadOrCreate(pki.Options{Dir: filepath.Join(h.dir, "pki"), Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.fleet, err = fleet.New(fleet.Config{Store: h.store, Authority: h.ca, AdvertiseAddr: h.addr, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		Certificate: h.ca.ServerCertificate(),
		ClientCAs:   h.ca.Pool(),
		Verifier:    h.fleet,
		Observer:    h.fleet,
		Log:         log,
		Handler: func(_ context.Context, s *gateway.Session, req protocol.Request) (any, error) {
			return map[string]string{"echo": req.Type, "env": s.EnvironmentID}, nil
		},
	}
	if tune != nil {
		tune(&cfg)
	}
	h.gw, err = gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.gw.Serve(ln) }()
	t.Cleanup(func() {
		h.gw.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.store.Close()
	})
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// enroll creates an environment and redeems its token for a certificate,
// the way an agent does, but in process.
func (h *harness) enroll(name string) (store.Environment, tls.Certificate) {
	h.t.Helper()
	env, issued, err := h.fleet.CreateEnvironment(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return env, h.redeem(issued.Token)
}

func (h *harness) redeem(token string) tls.Certificate {
	h.t.Helper()
	key, csr := newCSR(h.t)
	resp, err := h.fleet.Enroll(context.Background(), protocol.EnrollRequest{Token: token, CSR: csr})
	if err != nil {
		h.t.Fatal(err)
	}
	return keyPair(h.t, key, []byte(resp.Certificate))
}

func newCSR(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func keyPair(t *testing.T, key *ecdsa.PrivateKey, certPEM []byte) tls.Certificate {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// agentConn is the agent end of a link, reduced to what the tests need.
type agentConn struct {
	conn *tls.Conn
	mux  *yamux.Session
	ack  protocol.HelloAck
	done chan struct{}
}

func (a *agentConn) Close() {
	a.mux.Close()
	<-a.done
}

// dial connects like an agent does: TLS with the link protocol, hello, then
// a yamux client that answers ping requests.
func (h *harness) dial(cert *tls.Certificate, hello protocol.Hello) (*agentConn, error) {
	h.t.Helper()
	conf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPNLink},
		RootCAs:    h.ca.Pool(),
		ServerName: "127.0.0.1",
	}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	conn, err := tls.Dial("tcp", h.addr, conf)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if hello.ProtocolVersion == 0 {
		hello = protocol.Hello{ProtocolVersion: protocol.Version, MinVersion: protocol.MinVersion, Hostname: "test-host", AgentVersion: "test"}
	}
	if err := protocol.WriteFrame(conn, hello); err != nil {
		conn.Close()
		return nil, err
	}
	var ack protocol.HelloAck
	if err := protocol.ReadFrame(conn, &ack); err != nil {
		conn.Close()
		return nil, err
	}
	if ack.Error != nil {
		conn.Close()
		return nil, ack.Error
	}
	conn.SetDeadline(time.Time{})
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	a := &agentConn{conn: conn, mux: mux, ack: ack, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		protocol.Serve(context.Background(), mux, func(_ context.Context, req protocol.Request) (any, error) {
			if req.Type == protocol.TypePing {
				return protocol.PingResult{AgentTime: time.Now()}, nil
			}
			return nil, &protocol.Error{Code: protocol.CodeUnknownType, Message: req.Type}
		})
	}()
	return a, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLinkRequestsBothWays(t *testing.T) {
	h := newHarness(t, nil)
	env, cert := h.enroll("alpha")
	a, err := h.dial(&cert, protocol.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.ack.EnvironmentID != env.ID || a.ack.ProtocolVersion != protocol.Version {
		t.Errorf("ack = %+v, want environment %s, protocol %d", a.ack, env.ID, protocol.Version)
	}
	waitFor(t, "session registered", 5*time.Second, func() bool { return h.gw.Session(env.ID) != nil })

	// Controller → agent.
	var ping protocol.PingResult
	if err := h.gw.Call(context.Background(), env.ID, protocol.TypePing, nil, &ping); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if ping.AgentTime.IsZero() {
		t.Error("ping result carries no agent time")
	}
	err = h.gw.Call(context.Background(), env.ID, "nonsense", nil, nil)
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeUnknownType}) {
		t.Errorf("unknown request: err = %v, want %s", err, protocol.CodeUnknownType)
	}

	// Agent → controller.
	stream, err := a.mux.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var echo map[string]string
	if err := protocol.Invoke(context.Background(), stream, protocol.Request{Type: "event"}, &echo); err != nil {
		t.Fatal(err)
	}
	if echo["echo"] != "event" || echo["env"] != env.ID {
		t.Errorf("echo = %v, want type event and environment from the certificate", echo)
	}

	// The environment record learns the hello.
	waitFor(t, "hello recorded", 5*time.Second, func() bool {
		e, err := h.store.Environment(env.ID)
		return err == nil && e.Agent.Hostname == "test-host" && e.ConnectedAt != nil
	})
}

func TestCallOfflineEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	env, _ := h.enroll("offline")
	err := h.gw.Call(context.Background(), env.ID, protocol.TypePing, nil, nil)
	if !errors.Is(err, gateway.ErrAgentOffline) {
		t.Fatalf("err = %v, want ErrAgentOffline", err)
	}
}

func TestSecondConnectionReplacesFirst(t *testing.T) {
	h := newHarness(t, nil)
	env, cert := h.enroll("dup")
	first, err := h.dial(&cert, protocol.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, "first session", 5*time.Second, func() bool { return h.gw.Session(env.ID) != nil })
	firstSession := h.gw.Session(env.ID)

	second, err := h.dial(&cert, protocol.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	select {
	case <-first.mux.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatal("first session still open after the second connected")
	}
	waitFor(t, "second session registered", 5*time.Second, func() bool {
		s := h.gw.Session(env.ID)
		return s != nil && s != firstSession
	})
	if err := h.gw.Call(context.Background(), env.ID, protocol.TypePing, nil, nil); err != nil {
		t.Fatalf("ping over the second session: %v", err)
	}
	if n := len(h.gw.Sessions()); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

func TestDeleteCutsLiveSessionAndRefusesReconnect(t *testing.T) {
	h := newHarness(t, nil)
	env, cert := h.enroll("doomed")
	a, err := h.dial(&cert, protocol.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitFor(t, "session", 5*time.Second, func() bool { return h.gw.Session(env.ID) != nil })

	if err := h.fleet.DeleteEnvironment(env.ID); err != nil {
		t.Fatal(err)
	}
	if !h.gw.Disconnect(env.ID) {
		t.Fatal("Disconnect found no session")
	}
	select {
	case <-a.mux.CloseChan():
	case <-time.After(time.Second):
		t.Fatal("agent session not cut within 1 s of the delete")
	}
	if _, err := h.dial(&cert, protocol.Hello{}); err == nil {
		t.Fatal("deleted environment's certificate was accepted")
	}
	waitFor(t, "refusal logged", 5*time.Second, func() bool {
		return strings.Contains(h.logs.String(), "was deleted") && strings.Contains(h.logs.String(), "certificate revoked")
	})
}

func TestRefusals(t *testing.T) {
	h := newHarness(t, nil)
	_, good := h.enroll("good")

	// A certificate for a real environment, signed by a different CA.
	otherCA, err := pki.LoadOrCreate(pki.Options{Dir: filepath.Join(t.TempDir(), "pki")})
	if err != nil {
		t.Fatal(err)
	}
	env2, _, err := h.fleet.CreateEnvironment("victim")
	if err != nil {
		t.Fatal(err)
	}
	key, csr := newCSR(t)
	foreignPEM, _, err := otherCA.SignAgent([]byte(csr), env2.ID)
	if err != nil {
		t.Fatal(err)
	}
	foreign := keyPair(t, key, foreignPEM)

	// An expired certificate from our own CA for an enrolled environment.
	expiredEnv, expiredCert := h.enroll("expired")
	expired := h.signWith(expiredEnv.ID, &expiredCert, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))

	// A certificate superseded by enrolling the same environment again.
	oldEnv, oldCert := h.enroll("reenrolled")
	issued, err := h.fleet.NewJoinToken(oldEnv.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.redeem(issued.Token)

	tests := []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no client certificate", nil, "no client certificate"},
		{"other CA", &foreign, "not from this controller's CA"},
		{"expired", &expired, "expired"},
		{"superseded", &oldCert, "superseded by a later enrollment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.dial(tt.cert, protocol.Hello{}); err == nil {
				t.Fatal("connection accepted")
			}
			waitFor(t, "refusal reason in the log: "+tt.reason, 5*time.Second, func() bool {
				return strings.Contains(h.logs.String(), tt.reason)
			})
		})
	}
	// The good certificate still works after all that.
	a, err := h.dial(&good, protocol.Hello{})
	if err != nil {
		t.Fatalf("good certificate refused: %v", err)
	}
	a.Close()
}

func TestRefusesClientWithoutRSGOProtocol(t *testing.T) {
	h := newHarness(t, nil)
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: h.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
	if err == nil {
		conn.Close()
		t.Fatal("handshake without an rsgo protocol succeeded")
	}
	waitFor(t, "refusal logged", 5*time.Second, func() bool { return strings.Contains(h.logs.String(), "offered no rsgo protocol") })
}

func TestUnsupportedProtocolVersion(t *testing.T) {
	h := newHarness(t, nil)
	env, cert := h.enroll("future")
	_, err := h.dial(&cert, protocol.Hello{ProtocolVersion: protocol.Version + 10, MinVersion: protocol.Version + 5})
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeUnsupportedVersion}) {
		t.Fatalf("err = %v, want %s", err, protocol.CodeUnsupportedVersion)
	}
	if h.gw.Session(env.ID) != nil {
		t.Error("a refused hello registered a session")
	}
}

func TestUnansweredPingsCutSession(t *testing.T) {
	h := newHarness(t, func(c *gateway.Config) {
		c.PingInterval = 50 * time.Millisecond
		c.PingTimeout = 200 * time.Millisecond
	})
	env, cert := h.enroll("silent")
	// Complete TLS and the hello, then go silent: no yamux, no reads.
	conn, err := tls.Dial("tcp", h.addr, &tls.Config{
		MinVersion: tls.VersionTLS13, NextProtos: []string{protocol.ALPNLink},
		RootCAs: h.ca.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := protocol.WriteFrame(conn, protocol.Hello{ProtocolVersion: protocol.Version, MinVersion: protocol.MinVersion}); err != nil {
		t.Fatal(err)
	}
	var ack protocol.HelloAck
	if err := protocol.ReadFrame(conn, &ack); err != nil || ack.Error != nil {
		t.Fatalf("hello: %v %v", err, ack.Error)
	}
	waitFor(t, "session registered", 5*time.Second, func() bool { return h.gw.Session(env.ID) != nil })
	waitFor(t, "silent session cut", 10*time.Second, func() bool { return h.gw.Session(env.ID) == nil })
	if !strings.Contains(h.logs.String(), "did not answer ping") {
		t.Error("no log line says why the session was cut")
	}
}

// signWith issues a certificate for env with our CA but chosen validity.
func (h *harness) signWith(envID string, like *tls.Certificate, notBefore, notAfter time.Time) tls.Certificate {
	h.t.Helper()
	caPair, err := tls.LoadX509KeyPair(filepath.Join(h.dir, "pki", pki.CACertFile), filepath.Join(h.dir, "pki", pki.CAKeyFile))
	if err != nil {
		h.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(like.Certificate[0])
	if err != nil {
		h.t.Fatal(err)
	}
	u, _ := url.Parse("rsgo://environment/" + envID)
	tmpl := &x509.Certificate{
		SerialNumber: leaf.SerialNumber, // the serial the environment accepts
		Subject:      pkix.Name{CommonName: "expired"},
		URIs:         []*url.URL{u},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caPair.Leaf, leaf.PublicKey, caPair.PrivateKey)
	if err != nil {
		h.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: like.PrivateKey}
}
