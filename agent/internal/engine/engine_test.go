package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rsgo/rsgo/deploy/demo"
	"github.com/rsgo/rsgo/shared/stack"
)

// Shared by the tests: the engine, and images in an in-process registry.
var (
	eng      *Engine
	images   = map[string]string{} // variant → reference
	registry *demo.Registry
	skipWhy  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	eng, err = New()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = eng.Version(ctx)
		cancel()
	}
	if err != nil {
		skipWhy = "no Docker engine reachable: " + err.Error()
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "rsgo-engine-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := demo.BuildApp(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	registry = demo.StartRegistry()
	defer registry.Close()
	for name, v := range map[string]demo.Variant{
		"web:1.0.0":       {Version: "1.0.0"},
		"web:2.0.0":       {Version: "2.0.0"},
		"db:1.0.0":        {Version: "db-1.0.0"},
		"web:crash":       {Version: "crash", Mode: demo.ModeCrash},
		"web:unhealthy":   {Version: "unhealthy", Mode: demo.ModeUnhealthy},
		"helper:complete": {Version: "helper", Mode: demo.ModeCrash},
	} {
		img, err := demo.Image(bin, v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ref, _, err := registry.Push(img, "rsgotest/"+name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		images[name] = ref
	}
	return m.Run()
}

func requireDocker(t *testing.T) {
	t.Helper()
	if skipWhy == "" {
		return
	}
	if os.Getenv("RSGO_REQUIRE_DOCKER") == "1" {
		t.Fatal(skipWhy)
	}
	t.Skip(skipWhy)
}

// newSpec returns a spec with a unique deployment whose objects are removed
// when the test ends, whatever happened.
func newSpec(t *testing.T, services ...stack.Service) stack.Spec {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := "dep-" + hex.EncodeToString(b)
	spec := stack.Spec{DeploymentID: id, Name: "rsgotest-" + hex.EncodeToString(b), StackID: "test:app:main", Version: "1.0.0",
		Services: services, Networks: []stack.Network{{Key: "default"}}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := eng.Remove(ctx, id, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return spec
}

func appService(name, image string) stack.Service {
	return stack.Service{Name: name, Image: image, PullPolicy: stack.PullAlways}
}

func withHealth(s stack.Service) stack.Service {
	s.Healthcheck = &stack.Healthcheck{Test: []string{"CMD", "/app", "-health", "http://127.0.0.1:8080/health"},
		Interval: 300 * time.Millisecond, Timeout: 2 * time.Second, Retries: 3}
	return s
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func deploy(ctx context.Context, e *Engine, spec stack.Spec) error {
	if err := e.PullAll(ctx, spec, PullHooks{}); err != nil {
		return err
	}
	if err := e.Up(ctx, spec, "op-test", Hooks{}); err != nil {
		return err
	}
	return e.Verify(ctx, spec, Hooks{})
}

func get(t *testing.T, port uint16) string {
	t.Helper()
	var last error
	for range 50 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("service on port %d never answered: %v", port, last)
	return ""
}

func TestDeployWithHealthyDependency(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	ctx := context.Background()
	port := freePort(t)
	web := appService("web", images["web:1.0.0"])
	web.Env = map[string]string{"APP_TITLE": "Acme", "APP_UPSTREAM": "http://db:8080"}
	web.Ports = []stack.Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 8080, Protocol: "tcp"}}
	web.DependsOn = []stack.Dependency{{Service: "db", Condition: stack.ConditionHealthy}}
	web.Mounts = []stack.Mount{{Type: "volume", Source: "data", Target: "/data"}}
	db := withHealth(appService("db", images["db:1.0.0"]))
	spec := newSpec(t, db, web)
	spec.Volumes = []stack.Volume{{Key: "data"}}

	var order []string
	if err := eng.PullAll(ctx, spec, PullHooks{}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Up(ctx, spec, "op-1", Hooks{Started: func(s string, _, _ int) { order = append(order, s) }}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Verify(ctx, spec, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "db,web" {
		t.Errorf("start order %v, want db before web", order)
	}
	body := get(t, port)
	if !strings.Contains(body, "version=1.0.0") || !strings.Contains(body, "Acme") || !strings.Contains(body, "APP_UPSTREAM=http://db:8080") {
		t.Errorf("web answered %q", body)
	}
	svcs, err := eng.Services(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.State != "running" || !strings.Contains(s.Digest, "@sha256:") || s.ContainerID == "" {
			t.Errorf("service %+v: want running with a registry digest", s)
		}
	}
	if svcs[0].Health != "healthy" {
		t.Errorf("db health = %q, want healthy", svcs[0].Health)
	}
	// Every object carries the deployment label.
	for _, kind := range []string{"container", "network", "volume"} {
		if n := countLabelled(t, kind, spec.DeploymentID); n == 0 {
			t.Errorf("no labelled %s", kind)
		}
	}
}

func countLabelled(t *testing.T, kind, deploymentID string) int {
	t.Helper()
	ctx := context.Background()
	f := deploymentFilter(deploymentID)
	switch kind {
	case "container":
		r, err := eng.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Items)
	case "network":
		r, err := eng.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Items)
	default:
		r, err := eng.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Items)
	}
}

func TestMissingTagFailsBeforeAnythingIsCreated(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	missing := registry.Host + "/rsgotest/web:9.9.9"
	spec := newSpec(t, appService("db", images["db:1.0.0"]), appService("web", missing))
	err := eng.PullAll(context.Background(), spec, PullHooks{})
	var se *ServiceError
	if !errors.As(err, &se) || se.Service != "web" || !strings.Contains(err.Error(), "rsgotest/web:9.9.9") {
		t.Fatalf("err = %v, want a pull error naming service web and the tag", err)
	}
	if n := countLabelled(t, "container", spec.DeploymentID); n != 0 {
		t.Errorf("%d containers left behind", n)
	}
}

func TestContainerThatExitsAtOnce(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	spec := newSpec(t, appService("web", images["web:crash"]))
	err := deploy(context.Background(), eng, spec)
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), "exited with code 3") {
		t.Fatalf("err = %v, want service web exited with code 3", err)
	}
	if !strings.Contains(err.Error(), "built to fail") {
		t.Errorf("error lacks the container's last output: %v", err)
	}
}

func TestUnhealthyServiceTimesOut(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	spec := newSpec(t, withHealth(appService("web", images["web:unhealthy"])))
	err := deploy(context.Background(), eng.WithHealthTimeout(5*time.Second), spec)
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), "unhealthy") {
		t.Fatalf("err = %v, want service web unhealthy", err)
	}
}

func TestPortAlreadyTaken(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	web := appService("web", images["web:1.0.0"])
	web.Ports = []stack.Port{{HostPort: port, ContainerPort: 8080, Protocol: "tcp"}}
	spec := newSpec(t, web)
	err = deploy(context.Background(), eng, spec)
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("err = %v, want service web failing on port %d", err, port)
	}
}

func TestStopStartRemoveByLabelOnly(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	ctx := context.Background()
	web := appService("web", images["web:1.0.0"])
	web.Mounts = []stack.Mount{{Type: "volume", Source: "data", Target: "/data"}}
	spec := newSpec(t, web)
	spec.Volumes = []stack.Volume{{Key: "data"}}
	if err := deploy(ctx, eng, spec); err != nil {
		t.Fatal(err)
	}
	// An unlabelled network that merely looks like ours must survive.
	foreign := spec.Name + "_foreign"
	if _, err := eng.cli.NetworkCreate(ctx, foreign, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	defer eng.cli.NetworkRemove(ctx, foreign, client.NetworkRemoveOptions{})

	if err := eng.Stop(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if s := state(t, spec); s != "exited" {
		t.Errorf("after stop: %s", s)
	}
	if err := eng.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := eng.Verify(ctx, spec, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if s := state(t, spec); s != "running" {
		t.Errorf("after start: %s", s)
	}
	if err := eng.Remove(ctx, spec.DeploymentID, false); err != nil {
		t.Fatal(err)
	}
	if n := countLabelled(t, "container", spec.DeploymentID) + countLabelled(t, "network", spec.DeploymentID); n != 0 {
		t.Errorf("%d labelled containers/networks left after remove", n)
	}
	if n := countLabelled(t, "volume", spec.DeploymentID); n != 1 {
		t.Errorf("%d volumes after remove without volumes, want 1 kept", n)
	}
	if err := eng.Remove(ctx, spec.DeploymentID, true); err != nil {
		t.Fatal(err)
	}
	if n := countLabelled(t, "volume", spec.DeploymentID); n != 0 {
		t.Errorf("%d volumes after remove with volumes", n)
	}
	if _, err := eng.cli.NetworkInspect(ctx, foreign, client.NetworkInspectOptions{}); err != nil {
		t.Errorf("unlabelled network was touched: %v", err)
	}
}

func state(t *testing.T, spec stack.Spec) string {
	t.Helper()
	svcs, err := eng.Services(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return svcs[0].State
}

func TestInventoryAndContainerRemovedByHand(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	ctx := context.Background()
	spec := newSpec(t, appService("web", images["web:1.0.0"]))
	if err := deploy(ctx, eng, spec); err != nil {
		t.Fatal(err)
	}
	inv, err := eng.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := inv.Deployments[spec.DeploymentID]
	if len(got) != 1 || got[0].Name != "web" || got[0].State != "running" || got[0].Version != "1.0.0" {
		t.Fatalf("inventory = %+v", got)
	}
	if _, err := eng.cli.ContainerRemove(ctx, got[0].ContainerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if s := state(t, spec); s != "missing" {
		t.Errorf("container removed by hand reports %q, want missing", s)
	}
}

func TestNameTakenByForeignContainer(t *testing.T) {
	requireDocker(t)
	t.Parallel()
	ctx := context.Background()
	spec := newSpec(t, appService("web", images["web:1.0.0"]))
	if err := eng.PullAll(ctx, spec, PullHooks{}); err != nil {
		t.Fatal(err)
	}
	name := spec.ContainerName("web")
	created, err := eng.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Image: images["web:1.0.0"]})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true})
	err = eng.Up(ctx, spec, "op", Hooks{})
	if err == nil || !strings.Contains(err.Error(), "not managed by this deployment") {
		t.Fatalf("err = %v, want a refusal to touch the foreign container", err)
	}
	if _, err := eng.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("foreign container was removed: %v", err)
	}
}
