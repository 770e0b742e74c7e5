package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

type options struct {
	controllerBin, agentBin string
	sizes                   []int
	pingSessions, pings     int
	concurrency             int
	settle                  time.Duration
}

const adminToken = "bench-admin-token-0123456789"

func run(o options) error {
	fmt.Printf("rsgo-bench link  %s  GOMAXPROCS=%d cpus\n\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	largest := slices.Max(o.sizes)
	for _, n := range o.sizes {
		if err := runSize(o, n, n == largest); err != nil {
			return fmt.Errorf("%d agents: %w", n, err)
		}
	}
	if o.agentBin != "" {
		return agentIdleRSS(o)
	}
	return nil
}

func runSize(o options, n int, storm bool) error {
	dir, err := os.MkdirTemp("", "rsgo-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("== %d agents\n", n)
	t0 := time.Now()
	certs, caPool, err := prepare(dir, n)
	if err != nil {
		return err
	}
	fmt.Printf("prepared %d environments and certificates in %v\n", n, time.Since(t0).Round(time.Millisecond))

	ctl := &controllerProc{bin: o.controllerBin, dataDir: dir, httpAddr: freeAddr(), agentAddr: freeAddr()}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.kill()
	base := ctl.rssKiB()

	fleet := newSimFleet(ctl.agentAddr, certs, caPool)
	defer fleet.stop()
	t1 := time.Now()
	fleet.connectAll(o.concurrency)
	if err := fleet.waitConnected(n, o.settle); err != nil {
		return err
	}
	connectTime := time.Since(t1)
	time.Sleep(2 * time.Second) // let the controller's per-session state settle
	after := ctl.rssKiB()
	fmt.Printf("connect:   %d agents in %v = %.0f connections/s (%d failed attempts)\n",
		n, connectTime.Round(time.Millisecond), float64(n)/connectTime.Seconds(), fleet.failures.Load())
	fmt.Printf("memory:    controller RSS %.1f MiB idle -> %.1f MiB with %d agents = %.1f KiB per agent\n",
		float64(base)/1024, float64(after)/1024, n, float64(after-base)/float64(n))
	if online, err := ctl.countOnline(); err == nil {
		fmt.Printf("api:       controller reports %d of %d environments online\n", online, n)
	}

	if err := measurePings(ctl, min(o.pingSessions, n), o.pings); err != nil {
		return err
	}
	if !storm {
		fmt.Println()
		return nil
	}

	// Reconnect storm: restart the controller under the connected fleet.
	fmt.Printf("storm:     restarting the controller under %d connected agents\n", n)
	ctl.stop()
	restart := time.Now()
	if err := ctl.start(); err != nil {
		return err
	}
	fleet.failures.Store(0)
	if err := fleet.waitConnected(n, o.settle); err != nil {
		return err
	}
	settled := time.Since(restart)
	fmt.Printf("storm:     all %d agents back %v after the restart = %.0f connections/s (%d refused or failed attempts), controller alive: %v, RSS %.1f MiB\n",
		n, settled.Round(time.Millisecond), float64(n)/settled.Seconds(), fleet.failures.Load(), ctl.alive(), float64(ctl.rssKiB())/1024)
	fmt.Println()
	return nil
}

// prepare writes the CA and n enrolled environments into a data dir and
// returns one client certificate per environment. All share one key: the
// certificates are what the controller checks, and signing n keys would only
// slow the setup.
func prepare(dir string, n int) ([]tls.Certificate, *x509.CertPool, error) {
	ca, err := pki.LoadOrCreate(pki.Options{Dir: filepath.Join(dir, "pki"), Hosts: []string{"127.0.0.1"}})
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(filepath.Join(dir, "db"), nil)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	certs := make([]tls.Certificate, n)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				id := fmt.Sprintf("env-bench-%05d", i)
				certPEM, serial, err := ca.SignAgent(csrPEM, id)
				if err == nil {
					now := time.Now().UTC()
					err = st.CreateEnvironment(
						store.Environment{ID: id, Name: fmt.Sprintf("bench-%05d", i), CreatedAt: now, CertSerial: serial, EnrolledAt: &now},
						store.JoinToken{ID: "unused-" + id, EnvironmentID: id, CreatedAt: now, ExpiresAt: now})
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				block, _ := pem.Decode(certPEM)
				leaf, _ := x509.ParseCertificate(block.Bytes)
				certs[i] = tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key, Leaf: leaf}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return certs, ca.Pool(), firstErr
}

// simFleet is n simulated agents. Each reconnects on its own with jittered
// exponential backoff (1 s to 30 s, like rsgo-agent).
type simFleet struct {
	addr      string
	certs     []tls.Certificate
	pool      *x509.CertPool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	connected atomic.Int64
	failures  atomic.Int64
	gate      chan struct{}
	// onConnect, when set, gets every new session (the progress benchmark
	// sends events on it).
	onConnect func(*simSession)
}

// simSession is one simulated agent's live session.
type simSession struct {
	mux   *yamux.Session
	opSeq int64
}

func newSimFleet(addr string, certs []tls.Certificate, pool *x509.CertPool) *simFleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &simFleet{addr: addr, certs: certs, pool: pool, ctx: ctx, cancel: cancel}
}

func (f *simFleet) connectAll(concurrency int) {
	f.gate = make(chan struct{}, concurrency)
	for i := range f.certs {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.agent(i)
		}()
	}
}

func (f *simFleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func (f *simFleet) waitConnected(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for f.connected.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents connected after %v (%d failed attempts)", f.connected.Load(), n, timeout, f.failures.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (f *simFleet) agent(i int) {
	// Spread source addresses over 127.0.0.2-9 so ten thousand connections
	// and their TIME_WAIT leftovers do not exhaust one address's ports.
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{protocol.ALPNLink},
		Certificates: []tls.Certificate{f.certs[i]},
		RootCAs:      f.pool,
		ServerName:   "127.0.0.1",
	}
	delay := time.Second
	first := true
	for f.ctx.Err() == nil {
		if first {
			f.gate <- struct{}{} // bound the initial thundering herd only
		}
		sess, err := f.connect(local, conf)
		if first {
			<-f.gate
			first = false
		}
		if err != nil {
			f.failures.Add(1)
			d := delay/2 + time.Duration(mrand.Float64()*float64(delay/2))
			delay = min(2*delay, 30*time.Second)
			select {
			case <-time.After(d):
			case <-f.ctx.Done():
			}
			continue
		}
		delay = time.Second
		f.connected.Add(1)
		if f.onConnect != nil {
			f.onConnect(&simSession{mux: sess})
		}
		stop := context.AfterFunc(f.ctx, func() { sess.Close() })
		protocol.Serve(f.ctx, sess, func(context.Context, protocol.Request) (any, error) {
			return protocol.PingResult{AgentTime: time.Now()}, nil
		})
		stop()
		f.connected.Add(-1)
		// The controller went away: back off before the first retry, as
		// the real agent does.
		d := delay/2 + time.Duration(mrand.Float64()*float64(delay/2))
		select {
		case <-time.After(d):
		case <-f.ctx.Done():
		}
	}
}

func (f *simFleet) connect(local *net.TCPAddr, conf *tls.Config) (*yamux.Session, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
	raw, err := d.DialContext(f.ctx, "tcp", f.addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, conf)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := protocol.WriteFrame(conn, protocol.Hello{ProtocolVersion: protocol.Version, MinVersion: protocol.MinVersion, Hostname: "sim", AgentVersion: "bench"}); err != nil {
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
	cfg.KeepAliveInterval = 10 * time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.LogOutput = io.Discard
	return yamux.Client(conn, cfg)
}

// measurePings times the controller's Ping to many agents through the API:
// roundTripMs is measured inside the controller around the link request,
// the HTTP figure adds the API call on loopback.
func measurePings(ctl *controllerProc, sessions, pings int) error {
	const workers = 4
	var mu sync.Mutex
	var link, httpRTT []float64
	var failed atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= pings {
					return
				}
				env := fmt.Sprintf("env-bench-%05d", i%sessions)
				start := time.Now()
				var body struct {
					Success     bool    `json:"success"`
					RoundTripMs float64 `json:"roundTripMs"`
				}
				err := ctl.post(client, "/api/environments/"+env+"/ping", &body)
				elapsed := float64(time.Since(start).Microseconds()) / 1000
				if err != nil || !body.Success {
					failed.Add(1)
					continue
				}
				mu.Lock()
				link = append(link, body.RoundTripMs)
				httpRTT = append(httpRTT, elapsed)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(link) == 0 {
		return errors.New("no ping succeeded")
	}
	fmt.Printf("ping:      %d pings over %d sessions (%d failed): link p50 %.3f ms  p99 %.3f ms  max %.3f ms | via HTTP API p50 %.3f ms  p99 %.3f ms\n",
		len(link), sessions, failed.Load(), pct(link, 50), pct(link, 99), slices.Max(link), pct(httpRTT, 50), pct(httpRTT, 99))
	return nil
}

func pct(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	idx := int(float64(len(s)-1) * p / 100)
	return s[idx]
}

// controllerProc is the rsgo-controller subprocess.
type controllerProc struct {
	bin, dataDir, httpAddr, agentAddr string
	extra                             []string
	cmd                               *exec.Cmd
	done                              chan struct{}
}

func (c *controllerProc) start() error {
	args := append([]string{"--data-dir", c.dataDir, "--http-addr", c.httpAddr, "--agent-addr", c.agentAddr,
		"--advertise-addr", c.agentAddr, "--admin-token", adminToken, "--log-level", "error"}, c.extra...)
	c.cmd = exec.Command(c.bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start controller: %w", err)
	}
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.httpAddr + "/api/health")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || !c.alive() {
			return fmt.Errorf("controller did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *controllerProc) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *controllerProc) stop() {
	if c.alive() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.kill()
		}
	}
}

func (c *controllerProc) kill() {
	if c.cmd != nil && c.alive() {
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *controllerProc) rssKiB() int64 { return rssKiB(c.cmd.Process.Pid) }

func (c *controllerProc) post(client *http.Client, path string, out any) error {
	req, _ := http.NewRequest("POST", "http://"+c.httpAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *controllerProc) countOnline() (int, error) {
	req, _ := http.NewRequest("GET", "http://"+c.httpAddr+"/api/environments", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Environments []struct {
			Status string `json:"status"`
		} `json:"environments"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range body.Environments {
		if e.Status == "online" {
			n++
		}
	}
	return n, nil
}

// agentIdleRSS enrolls and runs one real rsgo-agent and reads its memory
// after it has been connected and idle for a while.
func agentIdleRSS(o options) error {
	dir, err := os.MkdirTemp("", "rsgo-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctl := &controllerProc{bin: o.controllerBin, dataDir: filepath.Join(dir, "controller"), httpAddr: freeAddr(), agentAddr: freeAddr()}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.kill()
	agent, err := startRealAgent(ctl, o.agentBin, filepath.Join(dir, "agent"))
	if err != nil {
		return err
	}
	defer stopProcess(agent)
	time.Sleep(5 * time.Second)
	fmt.Printf("== real agent\nagent:     rsgo-agent idle RSS %.1f MiB (connected, 5 s idle)\n", float64(rssKiB(agent.Process.Pid))/1024)
	return nil
}

// startRealAgent creates environment "bench", enrolls a real agent into it
// and waits until it is online.
func startRealAgent(ctl *controllerProc, bin, stateDir string) (*exec.Cmd, error) {
	var created struct {
		JoinToken string `json:"joinToken"`
	}
	req, _ := http.NewRequest("POST", "http://"+ctl.httpAddr+"/api/environments", strings.NewReader(`{"name":"bench"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	level := os.Getenv("RSGO_BENCH_AGENT_LOG") // e.g. debug, to see phase timings
	if level == "" {
		level = "warn"
	}
	agent := exec.Command(bin, "run", "--state-dir", stateDir, "--token", created.JoinToken, "--log-level", level)
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, _ := ctl.countOnline(); n == 1 {
			return agent, nil
		}
		if time.Now().After(deadline) {
			stopProcess(agent)
			return nil, errors.New("real agent did not come online")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stopProcess(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

func rssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
