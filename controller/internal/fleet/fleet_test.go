package fleet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/jointoken"
	"github.com/rsgo/rsgo/shared/protocol"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFleet(t *testing.T) (*fleet.Service, *store.Store, *clock) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err := pki.LoadOrCreate(pki.Options{Dir: filepath.Join(dir, "pki"), Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)}
	f, err := fleet.New(fleet.Config{Store: st, Authority: ca, AdvertiseAddr: "127.0.0.1:8443", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f, st, clk
}

func csr(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func code(err error) string {
	var e *protocol.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestEnrollIssuesCertificateForTheTokensEnvironment(t *testing.T) {
	t.Parallel()
	f, st, _ := newFleet(t)
	env, issued, err := f.CreateEnvironment("alpha")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(issued.Command, issued.Token) {
		t.Errorf("join command %q lacks the token", issued.Command)
	}
	resp, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: issued.Token, CSR: csr(t)})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(resp.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.EnvironmentOf(cert)
	if err != nil || got != env.ID {
		t.Fatalf("certificate names %q (%v), want %q", got, err, env.ID)
	}
	if err := f.CheckAgent(env.ID, pki.SerialString(cert.SerialNumber)); err != nil {
		t.Errorf("fresh certificate refused: %v", err)
	}
	rec, _ := st.Environment(env.ID)
	if rec.EnrolledAt == nil {
		t.Error("enrollment time not recorded")
	}
}

func TestEnrollRefusals(t *testing.T) {
	t.Parallel()
	f, _, clk := newFleet(t)

	_, used, _ := f.CreateEnvironment("used")
	if _, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: used.Token, CSR: csr(t)}); err != nil {
		t.Fatal(err)
	}
	_, expiring, _ := f.CreateEnvironment("expiring")
	_, forgedBase, _ := f.CreateEnvironment("forged")
	forged, _ := jointoken.Parse(forgedBase.Token)
	forged.Secret = strings.Repeat("A", 43)
	foreign, _ := jointoken.Parse(forgedBase.Token)
	foreign.CAFingerprint = jointoken.Fingerprint([]byte("another CA"))
	unknown, _ := jointoken.Parse(forgedBase.Token)
	unknown.ID = "0000000000000000"
	deletedEnv, deletedTok, _ := f.CreateEnvironment("deleted")
	if err := f.DeleteEnvironment(deletedEnv.ID); err != nil {
		t.Fatal(err)
	}

	clk.Advance(fleet.DefaultTokenTTL + time.Second)
	_, fresh, _ := f.CreateEnvironment("fresh") // issued after the clock moved
	_, goodForBadCSR, _ := f.CreateEnvironment("badcsr")

	tests := []struct {
		name, token, csr, wantCode string
	}{
		{"reused", used.Token, csr(t), protocol.CodeTokenUsed},
		{"expired", expiring.Token, csr(t), protocol.CodeTokenExpired},
		{"forged secret", forged.Encode(), csr(t), protocol.CodeInvalidToken},
		{"other controller", foreign.Encode(), csr(t), protocol.CodeInvalidToken},
		{"unknown id", unknown.Encode(), csr(t), protocol.CodeInvalidToken},
		{"garbage", "rsgo1.garbage", csr(t), protocol.CodeInvalidToken},
		{"tampered text", fresh.Token[:len(fresh.Token)-3] + "xyz", csr(t), protocol.CodeInvalidToken},
		{"deleted environment", deletedTok.Token, csr(t), protocol.CodeInvalidToken},
		{"bad csr", goodForBadCSR.Token, "not a csr", protocol.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: tt.token, CSR: tt.csr})
			if got := code(err); got != tt.wantCode {
				t.Errorf("err = %v (code %q), want code %q", err, got, tt.wantCode)
			}
		})
	}
	if _, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: fresh.Token, CSR: csr(t)}); err != nil {
		t.Errorf("untouched fresh token refused: %v", err)
	}
}

func TestConcurrentRedeemOnlyOneWins(t *testing.T) {
	t.Parallel()
	f, _, _ := newFleet(t)
	_, issued, err := f.CreateEnvironment("race")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.Enroll(context.Background(), protocol.EnrollRequest{Token: issued.Token, CSR: csr(t)})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case code(err) != protocol.CodeTokenUsed:
			t.Errorf("loser got %v, want %s", err, protocol.CodeTokenUsed)
		}
	}
	if wins != 1 {
		t.Errorf("%d enrollments won, want exactly 1", wins)
	}
}

func TestReEnrollSupersedesOldCertificate(t *testing.T) {
	t.Parallel()
	f, st, _ := newFleet(t)
	env, first, _ := f.CreateEnvironment("host")
	if _, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: first.Token, CSR: csr(t)}); err != nil {
		t.Fatal(err)
	}
	oldSerial := mustEnv(t, st, env.ID).CertSerial
	again, err := f.NewJoinToken(env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Enroll(context.Background(), protocol.EnrollRequest{Token: again.Token, CSR: csr(t)}); err != nil {
		t.Fatal(err)
	}
	newSerial := mustEnv(t, st, env.ID).CertSerial
	if newSerial == oldSerial {
		t.Fatal("re-enrollment kept the serial")
	}
	if err := f.CheckAgent(env.ID, oldSerial); err == nil || !strings.Contains(err.Error(), "superseded") {
		t.Errorf("old certificate: err = %v, want superseded", err)
	}
	if err := f.CheckAgent(env.ID, newSerial); err != nil {
		t.Errorf("new certificate refused: %v", err)
	}
}

func TestCreateEnvironmentValidation(t *testing.T) {
	t.Parallel()
	f, _, _ := newFleet(t)
	if _, _, err := f.CreateEnvironment("prod-1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want error
	}{
		{"prod-1", fleet.ErrNameTaken},
		{"", fleet.ErrInvalidName},
		{"Prod", fleet.ErrInvalidName},
		{"-x", fleet.ErrInvalidName},
		{"a_b", fleet.ErrInvalidName},
		{strings.Repeat("a", 64), fleet.ErrInvalidName},
	}
	for _, tt := range tests {
		if _, _, err := f.CreateEnvironment(tt.name); !errors.Is(err, tt.want) {
			t.Errorf("CreateEnvironment(%q) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func mustEnv(t *testing.T, st *store.Store, id string) store.Environment {
	t.Helper()
	env, err := st.Environment(id)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
