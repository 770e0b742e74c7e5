package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rsgo/rsgo/deploy/demo"
)

// upgradeImages adds the variants the upgrade tests need to the shared
// registry (once).
var upgradeImages struct {
	once sync.Once
	bin  string
	err  error
}

func pushUpgradeImages(t *testing.T) string {
	t.Helper()
	reg := registryHost(t)
	upgradeImages.once.Do(func() {
		dir, err := os.MkdirTemp("", "rsgo-e2e-upgrade-")
		if err != nil {
			upgradeImages.err = err
			return
		}
		bin, err := demo.BuildApp(dir)
		if err != nil {
			upgradeImages.err = err
			return
		}
		upgradeImages.bin = bin
		for tag, v := range map[string]demo.Variant{
			"shop/web:2.0.0":     {Version: "2.0.0"},
			"shop/db:2.0.0":      {Version: "db-2.0.0"},
			"shop/web:unhealthy": {Version: "unhealthy", Mode: demo.ModeUnhealthy},
			"slow/web:2.0.0":     {Version: "2.0.0"},
		} {
			img, err := demo.Image(bin, v)
			if err == nil {
				_, _, err = testImages.registry.Push(img, tag)
			}
			if err != nil {
				upgradeImages.err = err
				return
			}
		}
		testImages.registry.SlowDown("slow/web", 4*time.Second)
	})
	if upgradeImages.err != nil {
		t.Fatal(upgradeImages.err)
	}
	return reg
}

// stackVersion renders one version of a two-service stack. Version 1
// declares OLD_VAR; later versions drop it and require NEW_VAR.
type stackVersion struct {
	product, version string
	web, db          string // repository:tag without host
	webHealth        string // healthcheck interval of web; "" for none
	dbHealth         string // healthcheck interval of db
	extraPort        bool   // v2 publishes EXTRA_PORT too
}

func (v stackVersion) render(reg string) string {
	vars := "    OLD_VAR:     { type: string, default: old-value }\n"
	if v.version != "1.0.0" {
		vars = "    NEW_VAR:     { type: string, required: true }\n"
		if v.extraPort {
			vars += "    EXTRA_PORT:  { type: port, required: true }\n"
		}
	}
	dbHealth := v.dbHealth
	if dbHealth == "" {
		dbHealth = "500ms"
	}
	web := fmt.Sprintf(`  web:
    image: %s/%s
    environment: { APP_TITLE: "upgrade e2e" }
    ports: ["127.0.0.1:${HTTP_PORT}:8080"%s]
    depends_on: { db: { condition: service_healthy } }
`, reg, v.web, map[bool]string{true: `, "127.0.0.1:${EXTRA_PORT}:8081"`}[v.extraPort])
	if v.webHealth != "" {
		web += fmt.Sprintf("    healthcheck: { test: [\"CMD\", \"/app\", \"-health\", \"http://127.0.0.1:8080/health\"], interval: %s, retries: 2 }\n", v.webHealth)
	}
	return fmt.Sprintf(`x-rsgo:
  product: %s
  version: %s
  variables:
    HTTP_PORT:   { type: port, required: true }
    DB_PASSWORD: { type: password, required: true }
%sservices:
  db:
    image: %s/%s
    environment: { PASSWORD: "${DB_PASSWORD}" }
    healthcheck: { test: ["CMD", "/app", "-health", "http://127.0.0.1:8080/health"], interval: %s, retries: 5 }
%s`, v.product, v.version, vars, reg, v.db, dbHealth, web)
}

func writeCatalog(t *testing.T, dir string, versions ...stackVersion) {
	t.Helper()
	reg := pushUpgradeImages(t)
	for _, v := range versions {
		name := fmt.Sprintf("%s-%s.yaml", v.product, v.version)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v.render(reg)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// upgradeEnv is a controller with a writable catalog and one online agent.
type upgradeEnv struct {
	*deployEnv
	catalog string
}

func newUpgradeEnv(t *testing.T, versions ...stackVersion) *upgradeEnv {
	t.Helper()
	dir := t.TempDir()
	writeCatalog(t, dir, versions...)
	c := newController(t, "--catalog", "e2e="+dir, "--health-timeout", "6s")
	id, token := c.createEnvironment("docker")
	state := filepath.Join(t.TempDir(), "agent")
	agent := runAgent(t, state, token)
	c.waitStatus(id, "online", 20*time.Second)
	requireDocker(t, c, id)
	return &upgradeEnv{deployEnv: &deployEnv{c: c, env: id, agent: agent, state: state}, catalog: dir}
}

func (u *upgradeEnv) path(dep string) string {
	return "/api/environments/" + u.env + "/deployments/" + dep
}

func (u *upgradeEnv) get(t *testing.T, dep string) map[string]any {
	t.Helper()
	status, r := u.c.api("GET", u.path(dep), "")
	if status != 200 {
		t.Fatalf("get %s: %d %v", dep, status, r)
	}
	return r["deployment"].(map[string]any)
}

// deployV1 deploys product@1.0.0 on a fresh port and returns the
// deployment id and the port.
func (u *upgradeEnv) deployV1(t *testing.T, name, product string) (string, int) {
	t.Helper()
	port := freePort(t)
	status, resp := u.deploy(t, fmt.Sprintf(`{"name":%q,"stackId":"e2e:%s:main@1.0.0","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"pw-%s"}}`, name, product, port, name))
	if status != 200 || resp["success"] != true {
		t.Fatalf("deploy v1: %d %v", status, resp)
	}
	return resp["deploymentId"].(string), port
}

// fingerprint is what must be identical before an upgrade and after its
// rollback: version, variables and every service's digest.
func fingerprint(d map[string]any) string {
	var parts []string
	parts = append(parts, "version="+fmt.Sprint(d["version"]))
	vars := d["variables"].(map[string]any)
	var keys []string
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+fmt.Sprint(vars[k]))
	}
	for _, s := range d["services"].([]any) {
		svc := s.(map[string]any)
		parts = append(parts, fmt.Sprintf("%s@%s", svc["name"], svc["digest"]))
	}
	return strings.Join(parts, " ")
}

func (u *upgradeEnv) rollbackAndCheck(t *testing.T, depID string, port int, want string) {
	t.Helper()
	_, check := u.c.api("GET", u.path(depID)+"/rollback", "")
	if check["canRollback"] != true || check["rollbackTargetVersion"] != "1.0.0" || check["snapshotDescription"] != "Before upgrade to v2.0.0" {
		t.Fatalf("rollback check = %v", check)
	}
	status, resp := u.c.api("POST", u.path(depID)+"/rollback?wait=true", "")
	if status != 200 || resp["success"] != true || resp["targetVersion"] != "1.0.0" {
		t.Fatalf("rollback: %d %v", status, resp)
	}
	d := resp["deployment"].(map[string]any)
	if d["status"] != "Running" || d["snapshot"] != nil {
		t.Errorf("after rollback: status %v snapshot %v", d["status"], d["snapshot"])
	}
	if got := fingerprint(d); got != want {
		t.Errorf("after rollback:\n got %s\nwant %s", got, want)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "version=1.0.0\n") {
		t.Errorf("v1 web answers %q after rollback", body)
	}
	_, check = u.c.api("GET", u.path(depID)+"/rollback", "")
	if check["canRollback"] != false || check["reason"] == nil {
		t.Errorf("rollback still offered after it ran: %v", check)
	}
}

func TestUpgradeHappyPathAndRefusals(t *testing.T) {
	t.Parallel()
	v1 := stackVersion{product: "e2e.up", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"}
	v2 := stackVersion{product: "e2e.up", version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:2.0.0"}
	u := newUpgradeEnv(t, v1, v2)
	depID, port := u.deployV1(t, "happy", "e2e.up")
	before := u.get(t, depID)

	_, check := u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["upgradeAvailable"] != true || check["canUpgrade"] != true || check["latestVersion"] != "2.0.0" ||
		check["latestStackId"] != "e2e:e2e.up:main@2.0.0" || fmt.Sprint(check["newVariables"]) != "[NEW_VAR]" ||
		fmt.Sprint(check["removedVariables"]) != "[OLD_VAR]" || fmt.Sprint(check["availableVersions"]) != "[2.0.0]" {
		t.Fatalf("upgrade check = %v", check)
	}
	status, resp := u.c.api("POST", u.path(depID)+"/upgrade", `{"stackId":"e2e:e2e.up:main@2.0.0"}`)
	if status != 400 || !strings.Contains(fmt.Sprint(resp["error"]), "NEW_VAR") {
		t.Errorf("upgrade without the new required variable: %d %v", status, resp)
	}
	status, resp = u.c.api("POST", u.path(depID)+"/upgrade", `{"stackId":"e2e:e2e.up:main@1.0.0"}`)
	if status != 400 || !strings.Contains(fmt.Sprint(resp["error"]), "use rollback") {
		t.Errorf("downgrade: %d %v", status, resp)
	}

	status, resp = u.c.api("POST", u.path(depID)+"/upgrade?wait=true", `{"stackId":"e2e:e2e.up:main@2.0.0","variables":{"NEW_VAR":"fresh"}}`)
	if status != 200 || resp["success"] != true || resp["previousVersion"] != "1.0.0" || resp["targetVersion"] != "2.0.0" {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	after := resp["deployment"].(map[string]any)
	vars := after["variables"].(map[string]any)
	if after["status"] != "Running" || after["version"] != "2.0.0" || after["snapshot"] != nil || vars["NEW_VAR"] != "fresh" ||
		vars["DB_PASSWORD"] != "********" || vars["OLD_VAR"] != nil {
		t.Errorf("after upgrade: %v", after)
	}
	for i, s := range after["services"].([]any) {
		svc, old := s.(map[string]any), before["services"].([]any)[i].(map[string]any)
		if !strings.Contains(fmt.Sprint(svc["digest"]), "@sha256:") || svc["digest"] == old["digest"] {
			t.Errorf("service %v: digest %v not recorded or unchanged from %v", svc["name"], svc["digest"], old["digest"])
		}
	}
	hist := after["history"].([]any)
	if last := hist[len(hist)-1].(map[string]any); last["fromVersion"] != "1.0.0" || last["toVersion"] != "2.0.0" || last["success"] != true {
		t.Errorf("history = %v", hist)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "version=2.0.0") {
		t.Errorf("web after upgrade: %q", body)
	}

	_, check = u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["canUpgrade"] != false || check["cannotUpgradeReason"] != "No newer version available" {
		t.Errorf("check at the newest version = %v", check)
	}
	if status, _ := u.c.api("POST", u.path(depID)+"/rollback", ""); status != 409 {
		t.Errorf("rollback without a snapshot: %d, want 409", status)
	}
	// Agent offline.
	u.agent.stop()
	u.c.waitStatus(u.env, "offline", 20*time.Second)
	_, check = u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["cannotUpgradeReason"] != "No newer version available" {
		t.Errorf("check while offline = %v", check)
	}
	u.agent = runAgent(t, u.state, "")
	u.c.waitStatus(u.env, "online", 20*time.Second)

	// Not running.
	if status, resp := u.c.api("POST", u.path(depID)+"/stop?wait=true", ""); status != 200 || resp["success"] != true {
		t.Fatalf("stop: %d %v", status, resp)
	}
	_, check = u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["cannotUpgradeReason"] != "Deployment must be running" {
		t.Errorf("check while stopped = %v", check)
	}
	if status, _ := u.c.api("POST", u.path(depID)+"/upgrade", `{"variables":{"NEW_VAR":"x"}}`); status != 409 {
		t.Errorf("upgrade while stopped: %d, want 409", status)
	}
	// Product gone from the catalog.
	os.Remove(filepath.Join(u.catalog, "e2e.up-1.0.0.yaml"))
	os.Remove(filepath.Join(u.catalog, "e2e.up-2.0.0.yaml"))
	u.c.api("POST", "/api/catalog/sync", "")
	_, check = u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["cannotUpgradeReason"] != "Product not found in catalog" {
		t.Errorf("check with the product gone = %v", check)
	}
}

func TestUpgradeCheckOfflineReason(t *testing.T) {
	t.Parallel()
	v1 := stackVersion{product: "e2e.off", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"}
	v2 := stackVersion{product: "e2e.off", version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:2.0.0"}
	u := newUpgradeEnv(t, v1, v2)
	depID, _ := u.deployV1(t, "offline", "e2e.off")
	u.agent.stop()
	u.c.waitStatus(u.env, "offline", 20*time.Second)
	_, check := u.c.api("GET", u.path(depID)+"/upgrade/check", "")
	if check["upgradeAvailable"] != true || check["canUpgrade"] != false || check["cannotUpgradeReason"] != "Environment agent is offline" {
		t.Errorf("check = %v", check)
	}
	status, resp := u.c.api("POST", u.path(depID)+"/upgrade", `{"variables":{"NEW_VAR":"x"}}`)
	if status != 503 {
		t.Errorf("upgrade while offline: %d %v", status, resp)
	}
	if d := u.get(t, depID); d["status"] != "Running" || d["snapshot"] != nil {
		t.Errorf("a refused upgrade changed the deployment: %v", d)
	}
}

func TestFailedUpgradesRollBackExactly(t *testing.T) {
	t.Parallel()
	base := func(p string) stackVersion {
		return stackVersion{product: p, version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"}
	}
	next := func(p, web string) stackVersion {
		return stackVersion{product: p, version: "2.0.0", web: web, db: "shop/db:2.0.0"}
	}
	unhealthy := next("e2e.f-unhealthy", "shop/web:unhealthy")
	unhealthy.webHealth = "500ms"
	port := next("e2e.f-port", "shop/web:2.0.0")
	port.extraPort = true
	u := newUpgradeEnv(t,
		base("e2e.f-pull"), next("e2e.f-pull", "shop/web:9.9.9"),
		base("e2e.f-crash"), next("e2e.f-crash", "shop/web:crash"),
		base("e2e.f-unhealthy"), unhealthy,
		base("e2e.f-port"), port,
	)
	taken, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name, product, extra, phase, cause string
	}{
		{"pull", "e2e.f-pull", "", "PullingImages", "shop/web:9.9.9"},
		{"exits at once", "e2e.f-crash", "", "Verifying", "exited with code 3"},
		{"healthcheck never passes", "e2e.f-unhealthy", "", "Verifying", "unhealthy"},
		{"port conflict", "e2e.f-port", fmt.Sprintf(`,"EXTRA_PORT":"%d"`, takenPort), "StartingServices", fmt.Sprint(takenPort)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			depID, port := u.deployV1(t, fmt.Sprintf("fail%d", i), tt.product)
			want := fingerprint(u.get(t, depID))
			status, resp := u.c.api("POST", u.path(depID)+"/upgrade?wait=true", fmt.Sprintf(`{"variables":{"NEW_VAR":"n"%s}}`, tt.extra))
			if status != 200 || resp["success"] != false {
				t.Fatalf("upgrade: %d %v, want a failed operation", status, resp)
			}
			d := resp["deployment"].(map[string]any)
			errMsg := fmt.Sprint(d["error"])
			if d["status"] != "Failed" || !strings.HasPrefix(errMsg, tt.phase+": service web") || !strings.Contains(errMsg, tt.cause) {
				t.Errorf("failed upgrade: status %v error %q, want %s: service web ... %s", d["status"], errMsg, tt.phase, tt.cause)
			}
			if snap, _ := d["snapshot"].(map[string]any); snap == nil || snap["version"] != "1.0.0" {
				t.Errorf("snapshot after the failure = %v", d["snapshot"])
			}
			u.rollbackAndCheck(t, depID, port, want)
		})
	}
}

func TestAutoRollback(t *testing.T) {
	t.Parallel()
	u := newUpgradeEnv(t,
		stackVersion{product: "e2e.auto", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"},
		stackVersion{product: "e2e.auto", version: "2.0.0", web: "shop/web:crash", db: "shop/db:2.0.0"})
	depID, port := u.deployV1(t, "auto", "e2e.auto")
	want := fingerprint(u.get(t, depID))
	status, resp := u.c.api("POST", u.path(depID)+"/upgrade", `{"variables":{"NEW_VAR":"n"},"autoRollback":true}`)
	if status != 202 {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	waitFor(t, "automatic rollback finished", 60*time.Second, func() bool {
		d := u.get(t, depID)
		hist := d["history"].([]any)
		last := hist[len(hist)-1].(map[string]any)
		return d["status"] == "Running" && last["kind"] == "rollback"
	})
	d := u.get(t, depID)
	if got := fingerprint(d); got != want {
		t.Errorf("after auto rollback:\n got %s\nwant %s", got, want)
	}
	hist := d["history"].([]any)
	if up := hist[len(hist)-2].(map[string]any); up["kind"] != "upgrade" || up["success"] != false {
		t.Errorf("history = %v", hist)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "version=1.0.0\n") {
		t.Errorf("web after auto rollback: %q", body)
	}
}

func TestRollbackWithoutCatalogVersionAndAfterRetag(t *testing.T) {
	t.Parallel()
	pushUpgradeImages(t)
	// A repository of its own: this test moves its tag.
	img, err := demo.Image(upgradeImages.bin, demo.Variant{Version: "1.0.0", Marker: "retag"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := testImages.registry.Push(img, "retag/web:1.0.0"); err != nil {
		t.Fatal(err)
	}
	v1 := stackVersion{product: "e2e.retag", version: "1.0.0", web: "retag/web:1.0.0", db: "shop/db:1.0.0"}
	u := newUpgradeEnv(t, v1, stackVersion{product: "e2e.retag", version: "2.0.0", web: "shop/web:crash", db: "shop/db:2.0.0"})
	depID, port := u.deployV1(t, "retag", "e2e.retag")
	want := fingerprint(u.get(t, depID))

	// The old version leaves the catalog and its tag now names another image.
	os.Remove(filepath.Join(u.catalog, "e2e.retag-1.0.0.yaml"))
	u.c.api("POST", "/api/catalog/sync", "")
	evil, err := demo.Image(upgradeImages.bin, demo.Variant{Version: "1.0.0-retagged", Marker: "evil"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := testImages.registry.Push(evil, "retag/web:1.0.0"); err != nil {
		t.Fatal(err)
	}
	// Nor is the old image left on the host: the rollback must pull it by digest.
	d := u.get(t, depID)
	status, resp := u.c.api("POST", u.path(depID)+"/upgrade?wait=true", `{"variables":{"NEW_VAR":"n"}}`)
	if status != 200 || resp["success"] != false {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	for _, s := range d["services"].([]any) {
		if svc := s.(map[string]any); svc["name"] == "web" {
			exec.Command("docker", "rmi", "-f", fmt.Sprint(svc["imageId"])).Run()
		}
	}
	u.rollbackAndCheck(t, depID, port, want)
}

// TestCrashDuringUpgrade kills the controller or the agent (SIGKILL) in each
// phase of an upgrade. After a restart the deployment must be Running at
// the version that runs, or Failed with its snapshot and rollback available
// — never stuck in Upgrading.
func TestCrashDuringUpgrade(t *testing.T) {
	t.Parallel()
	phases := []struct {
		name string
		v2   stackVersion
		// reached reports, from the engine's state, that the upgrade is in
		// this phase.
		reached func(t *testing.T, depID string) bool
	}{
		{"PullingImages", stackVersion{version: "2.0.0", web: "slow/web:2.0.0", db: "shop/db:1.0.0"},
			func(t *testing.T, depID string) bool { return true }},
		{"StartingServices", stackVersion{version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:2.0.0", dbHealth: "3s"},
			func(t *testing.T, depID string) bool { return len(containersAt(t, depID, "db", "2.0.0")) == 1 }},
		{"Verifying", stackVersion{version: "2.0.0", web: "shop/web:2.0.0", db: "shop/db:1.0.0", webHealth: "3s"},
			func(t *testing.T, depID string) bool { return len(containersAt(t, depID, "web", "2.0.0")) == 1 }},
	}
	for _, who := range []string{"controller", "agent"} {
		for i, ph := range phases {
			t.Run(who+"/"+ph.name, func(t *testing.T) {
				t.Parallel()
				product := "e2e.kill-" + strings.ToLower(who+"-"+ph.name)
				v2 := ph.v2
				v2.product = product
				u := newUpgradeEnv(t, stackVersion{product: product, version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"}, v2)
				// Deployment names must differ: every subtest shares the engine.
				depID, _ := u.deployV1(t, fmt.Sprintf("kill-%s-%d", who, i), product)
				want := fingerprint(u.get(t, depID))
				if status, resp := u.c.api("POST", u.path(depID)+"/upgrade", `{"variables":{"NEW_VAR":"n"}}`); status != 202 {
					t.Fatalf("upgrade: %d %v", status, resp)
				}
				waitFor(t, "phase "+ph.name, 30*time.Second, func() bool { return ph.reached(t, depID) })
				if who == "controller" {
					u.c.p.cmd.Process.Signal(syscall.SIGKILL)
					<-u.c.p.done
					u.c.start()
				} else {
					u.agent.cmd.Process.Signal(syscall.SIGKILL)
					<-u.agent.done
					u.agent = runAgent(t, u.state, "")
				}
				var final map[string]any
				waitFor(t, "the upgrade to settle", 60*time.Second, func() bool {
					final = u.get(t, depID)
					return final["status"] != "Upgrading"
				})
				switch final["status"] {
				case "Running":
					if final["version"] != "2.0.0" || final["snapshot"] != nil {
						t.Errorf("Running but version %v snapshot %v", final["version"], final["snapshot"])
					}
					if n := len(containersAt(t, depID, "web", "2.0.0")); n != 1 {
						t.Errorf("Running at 2.0.0 but %d web 2.0.0 containers", n)
					}
					t.Logf("%s killed in %s: Running at 2.0.0", who, ph.name)
				case "Failed":
					if final["snapshot"] == nil {
						t.Fatalf("Failed without a snapshot: %v", final)
					}
					t.Logf("%s killed in %s: Failed (%v), rolling back", who, ph.name, final["error"])
					status, resp := u.c.api("POST", u.path(depID)+"/rollback?wait=true", "")
					if status != 200 || resp["success"] != true {
						t.Fatalf("rollback: %d %v", status, resp)
					}
					if got := fingerprint(resp["deployment"].(map[string]any)); got != want {
						t.Errorf("after rollback:\n got %s\nwant %s", got, want)
					}
				default:
					t.Errorf("status %v after the crash", final["status"])
				}
			})
		}
	}
}

// containersAt lists a deployment's containers of one service and version.
func containersAt(t *testing.T, depID, service, version string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=io.rsgo.deployment="+depID,
		"--filter", "label=io.rsgo.service="+service, "--filter", "label=io.rsgo.version="+version).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}
