// Package e2e runs rsgo-controller and rsgo-agent as real subprocesses on
// loopback: real mutual TLS, real Badger on disk, the real Docker engine.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binDir string

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "rsgo-e2e-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binDir = dir
	root, err := filepath.Abs("../../..")
	if err != nil {
		return 0, err
	}
	for _, b := range []struct{ module, pkg, out string }{
		{"controller", "./cmd/rsgo-controller", "rsgo-controller"},
		{"agent", "./cmd/rsgo-agent", "rsgo-agent"},
		{"controller", "./cmd/rsgoctl", "rsgoctl"},
	} {
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = filepath.Join(root, b.module)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("build %s: %v\n%s", b.out, err, out)
		}
	}
	return m.Run(), nil
}

// logBuffer collects a process's output for assertions and echoes it to
// the test log on failure.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: filepath.Base(name), out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(20 * time.Second):
		p.t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
		p.kill()
	}
}

func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// controller is a controller subprocess with fixed ports, so it can be
// restarted on the same addresses.
type controller struct {
	t         *testing.T
	dataDir   string
	httpAddr  string
	agentAddr string
	token     string
	extra     []string
	p         *proc
}

const adminToken = "e2e-admin-token-0123456789"

func newController(t *testing.T, extra ...string) *controller {
	t.Helper()
	c := &controller{t: t, dataDir: t.TempDir(), httpAddr: freeAddr(t), agentAddr: freeAddr(t), token: adminToken, extra: extra}
	c.start()
	return c
}

func (c *controller) start() {
	c.t.Helper()
	args := append([]string{"--data-dir", c.dataDir, "--http-addr", c.httpAddr, "--agent-addr", c.agentAddr,
		"--admin-token", c.token, "--log-level", "debug"}, c.extra...)
	c.p = start(c.t, "rsgo-controller", args...)
	waitFor(c.t, "controller health", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + c.httpAddr + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// api calls the controller and decodes the JSON answer.
func (c *controller) api(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, "http://"+c.httpAddr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.t.Fatalf("%s %s: %q is not JSON", method, path, raw)
	}
	return resp.StatusCode, m
}

func (c *controller) createEnvironment(name string) (id, token string) {
	c.t.Helper()
	status, body := c.api("POST", "/api/environments", fmt.Sprintf(`{"name":%q}`, name))
	if status != 201 {
		c.t.Fatalf("create environment: %d %v", status, body)
	}
	return body["environment"].(map[string]any)["id"].(string), body["joinToken"].(string)
}

func (c *controller) environment(ref string) map[string]any {
	c.t.Helper()
	status, body := c.api("GET", "/api/environments/"+ref, "")
	if status != 200 {
		c.t.Fatalf("get environment %s: %d %v", ref, status, body)
	}
	return body["environment"].(map[string]any)
}

func (c *controller) waitStatus(ref, want string, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	waitFor(c.t, fmt.Sprintf("environment %s %s", ref, want), within, func() bool {
		return c.environment(ref)["status"] == want
	})
	return time.Since(start)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// runAgent starts `rsgo-agent run` with a fresh state dir.
func runAgent(t *testing.T, stateDir, token string) *proc {
	t.Helper()
	args := []string{"run", "--state-dir", stateDir, "--log-level", "debug"}
	if token != "" {
		args = append(args, "--token", token)
	}
	return start(t, "rsgo-agent", args...)
}

// join runs `rsgo-agent join` to completion and returns its output.
func join(t *testing.T, stateDir, token string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rsgo-agent"), "join", "--state-dir", stateDir, "--token", token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// requireDocker skips (or fails, under RSGO_REQUIRE_DOCKER=1) when the
// agent reports no reachable engine.
func requireDocker(t *testing.T, c *controller, env string) map[string]any {
	t.Helper()
	status, body := c.api("GET", "/api/environments/"+env+"/docker", "")
	if status == 200 {
		return body["docker"].(map[string]any)
	}
	msg := fmt.Sprintf("docker engine not reachable by the agent: %d %v", status, body)
	if os.Getenv("RSGO_REQUIRE_DOCKER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}
