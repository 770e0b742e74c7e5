package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rsgo/rsgo/controller/internal/cli"
)

// rsgoctl runs the CLI binary and returns its output and exit code.
func rsgoctl(t *testing.T, c *controller, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rsgoctl"), args...)
	cmd.Env = append(cmd.Environ(), "RSGO_URL=http://"+c.httpAddr, "RSGO_ADMIN_TOKEN="+c.token)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("run rsgoctl: %v", err)
	return "", -1
}

func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	u := newUpgradeEnv(t,
		stackVersion{product: "e2e.cli", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"},
		stackVersion{product: "e2e.cli", version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:2.0.0"},
		stackVersion{product: "e2e.cli", version: "3.0.0", web: "shop/web:crash", db: "shop/db:2.0.0"})
	out, code := rsgoctl(t, u.c, "deploy", "--env", u.env, "--name", "clidep", "--stack", "e2e:e2e.cli:main@1.0.0",
		"--var", "HTTP_PORT="+itoa(freePort(t)), "--var", "DB_PASSWORD=pw")
	if code != cli.ExitOK || !strings.Contains(out, "deploy completed") || !strings.Contains(out, "100%") {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	_, dep := u.c.api("GET", "/api/environments/"+u.env+"/deployments/clidep", "")
	u.cleanup(t, dep["deployment"].(map[string]any)["id"].(string))

	out, code = rsgoctl(t, u.c, "upgrade", "--env", u.env, "--deployment", "clidep", "--stack", "e2e:e2e.cli:main@2.0.0", "--var", "NEW_VAR=x")
	if code != cli.ExitOK || !strings.Contains(out, "upgrade completed") || !strings.Contains(out, "PullingImages") {
		t.Fatalf("upgrade: exit %d\n%s", code, out)
	}
	out, code = rsgoctl(t, u.c, "upgrade", "--env", u.env, "--deployment", "clidep", "--stack", "e2e:e2e.cli:main@3.0.0")
	if code != cli.ExitFailed || !strings.Contains(out, "upgrade failed in Verifying") || !strings.Contains(out, "rollback available") {
		t.Fatalf("failing upgrade: exit %d, want %d\n%s", code, cli.ExitFailed, out)
	}
	out, code = rsgoctl(t, u.c, "rollback", "--env", u.env, "--deployment", "clidep")
	if code != cli.ExitOK || !strings.Contains(out, "rollback completed") {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	out, code = rsgoctl(t, u.c, "watch", "--env", u.env, "--deployment", "clidep")
	if code != cli.ExitOK || !strings.Contains(out, "rollback completed") {
		t.Errorf("watch of a finished rollback: exit %d\n%s", code, out)
	}
	if out, code = rsgoctl(t, u.c, "upgrade", "--env", u.env); code != cli.ExitUsage || !strings.Contains(out, "--deployment") {
		t.Errorf("missing flag: exit %d\n%s", code, out)
	}
	if out, code = rsgoctl(t, u.c, "upgrade", "--env", u.env, "--deployment", "clidep", "--stack", "e2e:e2e.cli:main@1.0.0"); code != cli.ExitUsage || !strings.Contains(out, "use rollback") {
		t.Errorf("refused upgrade: exit %d\n%s", code, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
