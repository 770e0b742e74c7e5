package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsgo/rsgo/deploy/demo"
)

// testImages is built once per run: the demo app in several variants, in an
// in-process registry so the agent's pulls are real.
var testImages struct {
	once     sync.Once
	err      error
	registry *demo.Registry
}

func registryHost(t *testing.T) string {
	t.Helper()
	testImages.once.Do(func() {
		dir, err := os.MkdirTemp("", "rsgo-e2e-images-")
		if err != nil {
			testImages.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin, err := demo.BuildApp(dir)
		if err != nil {
			testImages.err = err
			return
		}
		testImages.registry = demo.StartRegistry()
		for tag, v := range map[string]demo.Variant{
			"shop/web:1.0.0": {Version: "1.0.0"},
			"shop/db:1.0.0":  {Version: "db-1.0.0"},
			"shop/web:crash": {Version: "crash", Mode: demo.ModeCrash},
		} {
			img, err := demo.Image(bin, v)
			if err == nil {
				_, _, err = testImages.registry.Push(img, tag)
			}
			if err != nil {
				testImages.err = err
				return
			}
		}
	})
	if testImages.err != nil {
		t.Fatal(testImages.err)
	}
	return testImages.registry.Host
}

// shopManifest is a two-service stack; web waits for db to be healthy.
func shopManifest(reg, version, webTag string) string {
	return fmt.Sprintf(`
x-rsgo:
  product: e2e.shop
  version: %s
  variables:
    TITLE:       { type: string, default: "E2E Shop" }
    HTTP_PORT:   { type: port, required: true }
    DB_PASSWORD: { type: password, required: true }
    WORKERS:     { type: number, min: 1, max: 4, default: 2 }
services:
  db:
    image: %s/shop/db:1.0.0
    environment: { PASSWORD: "${DB_PASSWORD}" }
    healthcheck: { test: ["CMD", "/app", "-health", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 5 }
    volumes: ["data:/data"]
  web:
    image: %s/shop/web:%s
    environment: { APP_TITLE: "${TITLE}", APP_UPSTREAM: "http://db:8080" }
    ports: ["127.0.0.1:${HTTP_PORT}:8080"]
    depends_on: { db: { condition: service_healthy } }
volumes:
  data: {}
`, version, reg, reg, webTag)
}

// deployEnv is a controller with a catalog, one online agent with Docker.
type deployEnv struct {
	c     *controller
	env   string
	agent *proc
	state string
}

func newDeployEnv(t *testing.T, files map[string]string) *deployEnv {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := newController(t, "--catalog", "e2e="+dir)
	id, token := c.createEnvironment("docker")
	state := filepath.Join(t.TempDir(), "agent")
	agent := runAgent(t, state, token)
	c.waitStatus(id, "online", 20*time.Second)
	requireDocker(t, c, id)
	return &deployEnv{c: c, env: id, agent: agent, state: state}
}

// cleanup removes the deployment's containers even if the test failed.
func (d *deployEnv) cleanup(t *testing.T, depID string) {
	t.Cleanup(func() {
		for _, kind := range []string{"container", "network", "volume"} {
			ids := labelled(t, kind, depID)
			if len(ids) == 0 {
				continue
			}
			args := map[string][]string{"container": {"rm", "-f"}, "network": {"network", "rm"}, "volume": {"volume", "rm", "-f"}}[kind]
			exec.Command("docker", append(args, ids...)...).Run()
		}
	})
}

// labelled lists the engine objects of a deployment, via the docker CLI, so
// the test checks the engine itself and not what rsgo reports.
func labelled(t *testing.T, kind, depID string) []string {
	t.Helper()
	var args []string
	switch kind {
	case "container":
		args = []string{"ps", "-aq", "--filter", "label=io.rsgo.deployment=" + depID}
	case "network":
		args = []string{"network", "ls", "-q", "--filter", "label=io.rsgo.deployment=" + depID}
	default:
		args = []string{"volume", "ls", "-q", "--filter", "label=io.rsgo.deployment=" + depID}
	}
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func (d *deployEnv) deploy(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	status, resp := d.c.api("POST", "/api/environments/"+d.env+"/deployments?wait=true", body)
	if id, ok := resp["deploymentId"].(string); ok {
		d.cleanup(t, id)
	}
	return status, resp
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestDeployStopStartRemove(t *testing.T) {
	t.Parallel()
	reg := registryHost(t)
	d := newDeployEnv(t, map[string]string{"shop-1.0.0.yaml": shopManifest(reg, "1.0.0", "1.0.0")})
	port := freePort(t)

	// Bad variables: one message per variable, nothing stored or created.
	status, resp := d.c.api("POST", "/api/environments/"+d.env+"/deployments",
		`{"name":"shop","stackId":"e2e:e2e.shop:main","variables":{"HTTP_PORT":"0","WORKERS":"9"}}`)
	fields, _ := resp["error"].(map[string]any)["fields"].([]any)
	if status != 400 || len(fields) != 3 {
		t.Fatalf("bad variables: %d %v, want 400 naming DB_PASSWORD, HTTP_PORT, WORKERS", status, resp)
	}
	if _, list := d.c.api("GET", "/api/environments/"+d.env+"/deployments", ""); len(list["deployments"].([]any)) != 0 {
		t.Fatalf("a rejected deploy left a record: %v", list)
	}

	status, resp = d.deploy(t, fmt.Sprintf(`{"name":"shop","stackId":"e2e:e2e.shop:main@1.0.0","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"hunter2"}}`, port))
	if status != 200 || resp["success"] != true {
		t.Fatalf("deploy: %d %v", status, resp)
	}
	dep := resp["deployment"].(map[string]any)
	depID := dep["id"].(string)
	if dep["status"] != "Running" || dep["version"] != "1.0.0" {
		t.Fatalf("deployment = %v", dep)
	}
	if v := dep["variables"].(map[string]any); v["DB_PASSWORD"] != "********" || v["WORKERS"] != "2" {
		t.Errorf("variables = %v, want the password masked and defaults applied", v)
	}
	for _, s := range dep["services"].([]any) {
		svc := s.(map[string]any)
		if svc["state"] != "running" || !strings.Contains(fmt.Sprint(svc["digest"]), "@sha256:") {
			t.Errorf("service %v: want running with its registry digest", svc)
		}
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "E2E Shop") || !strings.Contains(body, "version=1.0.0") {
		t.Errorf("web answered %q", body)
	}
	if strings.Contains(d.c.p.out.String(), "hunter2") || strings.Contains(d.agent.out.String(), "hunter2") {
		t.Error("a password value appeared in a log")
	}

	// Name taken.
	if status, _ := d.c.api("POST", "/api/environments/"+d.env+"/deployments",
		fmt.Sprintf(`{"name":"shop","stackId":"e2e:e2e.shop:main","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"x"}}`, freePort(t))); status != 409 {
		t.Errorf("duplicate name: %d, want 409", status)
	}

	base := "/api/environments/" + d.env + "/deployments/" + depID
	if status, resp := d.c.api("POST", base+"/stop?wait=true", ""); status != 200 || resp["deployment"].(map[string]any)["status"] != "Stopped" {
		t.Fatalf("stop: %d %v", status, resp)
	}
	if status, resp := d.c.api("POST", base+"/start?wait=true", ""); status != 200 || resp["deployment"].(map[string]any)["status"] != "Running" {
		t.Fatalf("start: %d %v", status, resp)
	}
	if status, resp := d.c.api("DELETE", base+"?wait=true", ""); status != 200 || resp["removed"] != true {
		t.Fatalf("remove: %d %v", status, resp)
	}
	if n := len(labelled(t, "container", depID)) + len(labelled(t, "network", depID)); n != 0 {
		t.Errorf("%d labelled containers/networks left after remove", n)
	}
	if n := len(labelled(t, "volume", depID)); n != 1 {
		t.Errorf("%d volumes after remove without ?volumes=true, want the data volume kept", n)
	}
	if status, _ := d.c.api("GET", base, ""); status != 404 {
		t.Errorf("removed deployment answers %d", status)
	}
}

func TestDeployFailures(t *testing.T) {
	t.Parallel()
	reg := registryHost(t)
	d := newDeployEnv(t, map[string]string{
		"missing.yaml": strings.Replace(shopManifest(reg, "1.0.0", "9.9.9"), "e2e.shop", "e2e.missing", 1),
		"crash.yaml":   strings.Replace(shopManifest(reg, "1.0.0", "crash"), "e2e.shop", "e2e.crash", 1),
		"ok.yaml":      shopManifest(reg, "1.0.0", "1.0.0"),
	})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name, stack string
		port        int
		want        []string
		noContainer bool
	}{
		{"missing tag", "e2e:e2e.missing:main", freePort(t), []string{"service web", "shop/web:9.9.9"}, true},
		{"exits at once", "e2e:e2e.crash:main", freePort(t), []string{"service web", "exited with code 3"}, false},
		{"port taken", "e2e:e2e.shop:main", takenPort, []string{"service web", fmt.Sprint(takenPort)}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := d.deploy(t, fmt.Sprintf(`{"name":"fail-%d","stackId":%q,"variables":{"HTTP_PORT":"%d","DB_PASSWORD":"x"}}`, i, tt.stack, tt.port))
			if status != 200 || resp["success"] != false {
				t.Fatalf("deploy: %d %v, want a failed operation", status, resp)
			}
			dep := resp["deployment"].(map[string]any)
			msg := fmt.Sprint(dep["error"])
			if dep["status"] != "Failed" {
				t.Errorf("status %v, want Failed", dep["status"])
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.noContainer {
				if ids := labelled(t, "container", dep["id"].(string)); len(ids) != 0 {
					t.Errorf("%d containers left behind after a failed pull", len(ids))
				}
			}
		})
	}
}

func TestAgentOfflineAndDrift(t *testing.T) {
	t.Parallel()
	reg := registryHost(t)
	d := newDeployEnv(t, map[string]string{"ok.yaml": shopManifest(reg, "1.0.0", "1.0.0")})
	status, resp := d.deploy(t, fmt.Sprintf(`{"name":"drift","stackId":"e2e:e2e.shop:main","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"x"}}`, freePort(t)))
	if status != 200 || resp["success"] != true {
		t.Fatalf("deploy: %d %v", status, resp)
	}
	depID := resp["deploymentId"].(string)

	d.agent.stop()
	d.c.waitStatus(d.env, "offline", 20*time.Second)
	status, resp = d.c.api("POST", "/api/environments/"+d.env+"/deployments/"+depID+"/stop", "")
	if msg, _ := resp["error"].(map[string]any)["message"].(string); status != 503 || msg != "Environment agent is offline" {
		t.Errorf("stop while offline: %d %v", status, resp)
	}

	// Remove a container by hand while the agent is away; on reconnect the
	// controller must notice.
	ids := labelled(t, "container", depID)
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=io.rsgo.deployment="+depID, "--filter", "label=io.rsgo.service=web").Output()
	if err != nil || len(strings.Fields(string(out))) != 1 || len(ids) != 2 {
		t.Fatalf("find web container: %v %q (all: %v)", err, out, ids)
	}
	if err := exec.Command("docker", "rm", "-f", strings.TrimSpace(string(out))).Run(); err != nil {
		t.Fatal(err)
	}
	d.agent = runAgent(t, d.state, "")
	d.c.waitStatus(d.env, "online", 20*time.Second)
	waitFor(t, "drift detected", 20*time.Second, func() bool {
		_, r := d.c.api("GET", "/api/environments/"+d.env+"/deployments/"+depID, "")
		dep := r["deployment"].(map[string]any)
		return dep["status"] == "Failed" && strings.Contains(fmt.Sprint(dep["error"]), "service web: container missing")
	})
}

func TestResultDeliveredAfterControllerRestart(t *testing.T) {
	t.Parallel()
	// The web image's registry answers after 4 s, so the controller is gone
	// while the agent still pulls.
	u := newUpgradeEnv(t, stackVersion{product: "e2e.inflight", version: "1.0.0", web: "slow/web:2.0.0", db: "shop/db:1.0.0"})
	d := u.deployEnv
	status, resp := d.c.api("POST", "/api/environments/"+d.env+"/deployments",
		fmt.Sprintf(`{"name":"inflight","stackId":"e2e:e2e.inflight:main","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"x"}}`, freePort(t)))
	if status != 202 {
		t.Fatalf("deploy: %d %v", status, resp)
	}
	depID := resp["deploymentId"].(string)
	d.cleanup(t, depID)
	d.c.p.stop()
	waitFor(t, "agent finished the operation offline", 60*time.Second, func() bool {
		return strings.Contains(d.agent.out.String(), "operation finished")
	})
	d.c.start()
	waitFor(t, "result delivered after reconnect", 45*time.Second, func() bool {
		_, r := d.c.api("GET", "/api/environments/"+d.env+"/deployments/"+depID, "")
		dep, _ := r["deployment"].(map[string]any)
		return dep != nil && dep["status"] == "Running"
	})
	if !strings.Contains(d.agent.out.String(), "not delivered yet") {
		t.Error("the agent never had to keep the result: the test did not cut the link in time")
	}
}
