// Package demo builds the images of the rsgo demo catalog and of the tests:
// the demo app compiled as a static binary in a FROM-scratch image, served
// from an in-process registry on loopback or written as a tarball for
// `docker load`. Nothing is fetched from outside this machine.
package demo

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// AppPackage is the import path of the demo app.
const AppPackage = "github.com/rsgo/rsgo/deploy/demo/app"

// Modes of the demo app, baked into an image.
const (
	ModeOK        = ""          // serves and reports healthy
	ModeCrash     = "crash"     // exits 3 at once
	ModeUnhealthy = "unhealthy" // serves, health endpoint answers 503
)

// BuildApp compiles the demo app into dir as a static linux binary and
// returns its path. It runs in the caller's module, which must require this
// one.
func BuildApp(dir string) (string, error) {
	out := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, AppPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build demo app: %v\n%s", err, b)
	}
	return out, nil
}

// Variant is one image of the demo app.
type Variant struct {
	Version string
	Mode    string
	// Marker makes otherwise equal variants differ in digest (a re-pushed tag).
	Marker string
}

// Image wraps the app binary in a single-layer image whose entrypoint is
// /app and whose environment fixes its version and mode.
func Image(binary string, v Variant) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/app"}
	cfg.Config.Env = []string{"APP_VERSION=" + v.Version, "APP_MODE=" + v.Mode}
	if v.Marker != "" {
		cfg.Config.Env = append(cfg.Config.Env, "APP_MARKER="+v.Marker)
	}
	cfg.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	cfg.Config.Labels = map[string]string{"org.opencontainers.image.version": v.Version}
	return mutate.ConfigFile(img, cfg)
}

// Registry is an in-process registry on a loopback port. The Docker engine
// treats 127.0.0.0/8 registries as insecure by default, so it pulls from it
// over plain HTTP.
type Registry struct {
	// Host is HOST:PORT, the prefix of image references.
	Host string
	srv  *httptest.Server

	mu   sync.Mutex
	slow map[string]time.Duration // repository → delay per manifest request
}

// StartRegistry starts an empty registry.
func StartRegistry() *Registry {
	r := &Registry{slow: map[string]time.Duration{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			if d := r.delay(req.URL.Path); d > 0 {
				time.Sleep(d)
			}
		}
		inner.ServeHTTP(w, req)
	}))
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// SlowDown delays every manifest read of repo (without host) by d, so a
// test can act while a pull is in progress.
func (r *Registry) SlowDown(repo string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slow[repo] = d
}

func (r *Registry) delay(path string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for repo, d := range r.slow {
		if strings.HasPrefix(path, "/v2/"+repo+"/manifests/") {
			return d
		}
	}
	return 0
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Push stores img under repo:tag (repo without host) and returns the full
// reference and the manifest digest.
func (r *Registry) Push(img v1.Image, repoTag string) (ref string, digest string, err error) {
	ref = r.Host + "/" + repoTag
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", "", err
	}
	if err := remote.Write(parsed, img); err != nil {
		return "", "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	return ref, d.String(), nil
}

// WriteTarball writes img tagged as ref in the format `docker load` reads.
func WriteTarball(img v1.Image, ref, path string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// Named is a variant and the reference it is loaded as.
type Named struct {
	Ref     string
	Variant Variant
}

// LoadIntoDocker builds the demo app in dir and loads every image into the
// local engine with the docker CLI's `docker load`, so nothing is pulled.
func LoadIntoDocker(dir, docker string, images []Named) error {
	bin, err := BuildApp(dir)
	if err != nil {
		return err
	}
	tar := filepath.Join(dir, "image.tar")
	for _, im := range images {
		img, err := Image(bin, im.Variant)
		if err != nil {
			return fmt.Errorf("%s: %w", im.Ref, err)
		}
		if err := WriteTarball(img, im.Ref, tar); err != nil {
			return fmt.Errorf("%s: %w", im.Ref, err)
		}
		if out, err := exec.Command(docker, "load", "-i", tar).CombinedOutput(); err != nil {
			return fmt.Errorf("docker load %s: %v\n%s", im.Ref, err, out)
		}
	}
	return nil
}
