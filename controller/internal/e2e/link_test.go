package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rsgo/rsgo/shared/jointoken"
)

func TestEnrollConnectAndAskDocker(t *testing.T) {
	t.Parallel()
	c := newController(t)
	id, token := c.createEnvironment("e2e-main")
	if got := c.environment(id)["status"]; got != "pending" {
		t.Errorf("status before the agent = %v, want pending", got)
	}
	stateDir := filepath.Join(t.TempDir(), "agent")
	agent := runAgent(t, stateDir, token)
	c.waitStatus(id, "online", 20*time.Second)

	env := c.environment(id)
	host, _ := os.Hostname()
	if env["hostname"] != host || env["agentVersion"] == "" || env["connectedAt"] == nil || env["lastSeenAt"] == nil {
		t.Errorf("online environment lacks agent facts: %v", env)
	}
	st, err := os.Stat(filepath.Join(stateDir, "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("agent.key mode %o, want 600", st.Mode().Perm())
	}

	if status, body := c.api("POST", "/api/environments/"+id+"/ping", ""); status != 200 || body["agentTime"] == nil {
		t.Errorf("ping = %d %v", status, body)
	}
	docker := requireDocker(t, c, id)
	if docker["serverVersion"] == "" || docker["apiVersion"] == "" {
		t.Errorf("docker info = %v", docker)
	}
	if env["dockerVersion"] != docker["serverVersion"] {
		t.Errorf("hello docker version %v != engine %v", env["dockerVersion"], docker["serverVersion"])
	}

	// The token did its job once; a second host cannot use it.
	out, err := join(t, filepath.Join(t.TempDir(), "second"), token)
	if err == nil || !strings.Contains(out, "already used") {
		t.Errorf("reused token: err=%v output=%q, want a refusal saying it was already used", err, out)
	}
	agent.stop()
	c.waitStatus(id, "offline", 20*time.Second)
}

func TestJoinTokenRefusals(t *testing.T) {
	t.Parallel()
	c := newController(t, "--join-token-ttl", "2s")
	_, expired := c.createEnvironment("e2e-expired")
	_, forgedBase := c.createEnvironment("e2e-forged")
	time.Sleep(2100 * time.Millisecond)
	// A fresh token still works after its neighbours expired (used at once,
	// well within its 2 s).
	_, fresh := c.createEnvironment("e2e-fresh")
	if out, err := join(t, filepath.Join(t.TempDir(), "ok"), fresh); err != nil {
		t.Fatalf("fresh token refused: %v %s", err, out)
	}

	forged, err := jointoken.Parse(forgedBase)
	if err != nil {
		t.Fatal(err)
	}
	forged.Secret = strings.Repeat("x", 43)
	wrongCA, _ := jointoken.Parse(fresh)
	wrongCA.CAFingerprint = jointoken.Fingerprint([]byte("someone else's CA"))

	tests := []struct {
		name, token, want string
	}{
		{"expired", expired, "expired"},
		{"forged secret", forged.Encode(), "not valid"},
		{"pinned CA mismatch", wrongCA.Encode(), "does not match the fingerprint"},
		{"garbage", "rsgo1.AAAA", "malformed"},
		{"reused", fresh, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "agent")
			out, err := join(t, dir, tt.token)
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("err=%v output=%q, want a refusal containing %q", err, out, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "agent.crt")); err == nil {
				t.Error("a refused enrollment left a certificate behind")
			}
		})
	}
}

func TestControllerRestartAgentReconnects(t *testing.T) {
	t.Parallel()
	c := newController(t)
	id, token := c.createEnvironment("e2e-restart")
	agent := runAgent(t, filepath.Join(t.TempDir(), "agent"), token)
	c.waitStatus(id, "online", 20*time.Second)
	firstConnected := c.environment(id)["connectedAt"].(string)

	c.p.stop() // SIGTERM: graceful
	if !strings.Contains(c.p.out.String(), "agent disconnected") || !strings.Contains(c.p.out.String(), "controller stopped") {
		t.Errorf("controller log lacks the orderly shutdown:\n%s", c.p.out.String())
	}
	waitFor(t, "agent notices the controller is gone", 20*time.Second, func() bool {
		return strings.Contains(agent.out.String(), "controller link down")
	})
	c.start()
	c.waitStatus(id, "online", 45*time.Second)
	env := c.environment(id)
	if env["name"] != "e2e-restart" {
		t.Errorf("environment lost across restart: %v", env)
	}
	if env["connectedAt"].(string) == firstConnected {
		t.Error("connectedAt did not move: no new session after the restart")
	}
	if !agent.running() {
		t.Fatal("agent exited while the controller was down")
	}
}

func TestKilledAgentGoesOffline(t *testing.T) {
	t.Parallel()
	c := newController(t)
	id, token := c.createEnvironment("e2e-kill")
	agent := runAgent(t, filepath.Join(t.TempDir(), "agent"), token)
	c.waitStatus(id, "online", 20*time.Second)

	agent.cmd.Process.Signal(syscall.SIGKILL)
	<-agent.done
	took := c.waitStatus(id, "offline", 30*time.Second)
	t.Logf("offline %v after SIGKILL", took.Round(time.Millisecond))
	if last := c.environment(id)["lastSeenAt"]; last == nil {
		t.Error("offline environment has no lastSeenAt")
	}
}

func TestDeletedEnvironmentIsCutAndRefused(t *testing.T) {
	t.Parallel()
	c := newController(t)
	id, token := c.createEnvironment("e2e-delete")
	agent := runAgent(t, filepath.Join(t.TempDir(), "agent"), token)
	c.waitStatus(id, "online", 20*time.Second)

	deleted := time.Now()
	if status, body := c.api("DELETE", "/api/environments/"+id, ""); status != 200 || body["disconnected"] != true {
		t.Fatalf("delete = %d %v", status, body)
	}
	waitFor(t, "agent session cut", 5*time.Second, func() bool {
		return strings.Contains(agent.out.String(), "controller link down")
	})
	t.Logf("agent saw the cut %v after DELETE", time.Since(deleted).Round(time.Millisecond))
	waitFor(t, "reconnect refused and logged", 20*time.Second, func() bool {
		return strings.Contains(c.p.out.String(), "certificate revoked") &&
			strings.Contains(agent.out.String(), "controller refused the connection")
	})
	if !agent.running() {
		t.Error("agent gave up; it should keep retrying")
	}
}

// A frozen agent keeps its socket open, so only the keepalive can tell it
// is gone: the controller must notice within 30 s with default settings.
func TestFrozenAgentDetectedByKeepalive(t *testing.T) {
	t.Parallel()
	c := newController(t)
	id, token := c.createEnvironment("e2e-frozen")
	agent := runAgent(t, filepath.Join(t.TempDir(), "agent"), token)
	c.waitStatus(id, "online", 20*time.Second)

	agent.cmd.Process.Signal(syscall.SIGSTOP)
	took := c.waitStatus(id, "offline", 30*time.Second)
	t.Logf("frozen agent offline after %v", took.Round(time.Millisecond))
	if !strings.Contains(c.p.out.String(), "did not answer ping") {
		t.Error("controller log does not say the agent stopped answering pings")
	}
	agent.cmd.Process.Signal(syscall.SIGCONT)
	c.waitStatus(id, "online", 45*time.Second)
}
