package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsgo/rsgo/shared/stack"
)

const goodV1 = `
x-rsgo:
  product: acme.shop
  name: Acme Shop
  version: 1.0.0
  stack: web
  description: Shop frontend
  variables:
    SHOP_TITLE:  { type: string, default: "Shop", label: Title, pattern: "[A-Za-z ]+" }
    DB_PASSWORD: { type: password, required: true }
    HTTP_PORT:   { type: port, default: 8081 }
    LOG_LEVEL:   { type: select, options: [debug, info, warn], default: info }
    WORKERS:     { type: number, min: 1, max: 8, default: 2 }
    OLD_VAR:     { type: string, default: old }
services:
  web:
    image: 127.0.0.1:5000/acme/web:1.0.0
    command: ["/web", "-listen", ":8080"]
    environment: { TITLE: "${SHOP_TITLE}", LOG_LEVEL: "${LOG_LEVEL}", WORKERS: "${WORKERS}", LITERAL: "$$HOME" }
    ports: ["${HTTP_PORT}:8080"]
    depends_on:
      db: { condition: service_healthy }
    healthcheck: { test: ["CMD", "/web", "-health"], interval: 2s, retries: 3 }
    labels: { team: shop }
    restart: unless-stopped
    networks: [front, default]
  db:
    image: 127.0.0.1:5000/acme/db:1.0.0
    environment: { PASSWORD: "${DB_PASSWORD}" }
    volumes: ["data:/var/lib/db", "/srv/backup:/backup:ro"]
    pull_policy: missing
    healthcheck: { test: ["CMD", "/db", "-health"], interval: 1s, retries: 5 }
networks:
  front: { internal: false }
volumes:
  data: {}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func syncDir(t *testing.T, files map[string]string) (*Catalog, SyncResult) {
	t.Helper()
	c, err := New([]Source{{ID: "local", Dir: writeFiles(t, files)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, c.Sync(context.Background())
}

func TestGoodFilesAndSemverOrder(t *testing.T) {
	t.Parallel()
	v := func(ver string) string { return strings.Replace(goodV1, "version: 1.0.0", "version: "+ver, 1) }
	c, res := syncDir(t, map[string]string{
		"shop-1.0.0.yaml":     goodV1,
		"shop-1.10.0.yaml":    v("1.10.0"),
		"shop-1.2.0.yml":      v("1.2.0"),
		"shop-2.0.0-rc.1.yml": v("2.0.0-rc.1"),
		"sub/notes.yaml":      "just: a yaml file without x-rsgo\n",
		"readme.txt":          "ignored",
	})
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if res.Stacks != 1 || res.Versions != 4 {
		t.Fatalf("sync = %+v, want 1 stack with 4 versions", res)
	}
	st, err := c.Stack("local:acme.shop:web")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range st.Versions {
		got = append(got, v.Version)
	}
	if want := "1.0.0 1.2.0 1.10.0 2.0.0-rc.1"; strings.Join(got, " ") != want {
		t.Errorf("versions = %v, want %s", got, want)
	}
	if latest, _ := c.Lookup("local:acme.shop:web"); latest.Version != "1.10.0" {
		t.Errorf("unpinned lookup = %s, want the newest stable 1.10.0", latest.Version)
	}
	if pinned, err := c.Lookup("local:acme.shop:web@2.0.0-rc.1"); err != nil || pinned.Version != "2.0.0-rc.1" {
		t.Errorf("pinned lookup = %v, %v", pinned, err)
	}
	for _, ref := range []string{"local:acme.shop:web@9.9.9", "local:nope:web", "local:acme.shop:web@x"} {
		if _, err := c.Lookup(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q) err = %v, want ErrNotFound", ref, err)
		}
	}
	v1, _ := c.Lookup("local:acme.shop:web@1.0.0")
	if v1.ProductName != "Acme Shop" || len(v1.Variables) != 6 || v1.Variables[0].Name != "SHOP_TITLE" {
		t.Errorf("metadata = %+v", v1)
	}
	if d := v1.Variables[2].Default; d == nil || *d != "8081" {
		t.Errorf("numeric YAML default not kept as text: %v", d)
	}
}

func TestSpecResolution(t *testing.T) {
	c, res := syncDir(t, map[string]string{"v1.yaml": goodV1})
	if len(res.Errors) != 0 {
		t.Fatal(res.Errors)
	}
	v, _ := c.Lookup("local:acme.shop:web@1.0.0")
	t.Setenv("SHOP_TITLE", "from the controller's environment") // must never leak in
	values, err := Resolve(v.Variables, map[string]string{"DB_PASSWORD": "s3cret", "HTTP_PORT": "18081"})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := v.Spec(context.Background(), "dep-1", "shop", values)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Services[0].Name != "db" || spec.Services[1].Name != "web" {
		t.Fatalf("order = %s, %s; want db before web", spec.Services[0].Name, spec.Services[1].Name)
	}
	db, web := spec.Services[0], spec.Services[1]
	if web.Env["TITLE"] != "Shop" || web.Env["LOG_LEVEL"] != "info" || web.Env["LITERAL"] != "$HOME" || web.Env["WORKERS"] != "2" {
		t.Errorf("web env = %v", web.Env)
	}
	if db.Env["PASSWORD"] != "s3cret" {
		t.Errorf("db env = %v", db.Env)
	}
	if len(web.Ports) != 1 || web.Ports[0] != (stack.Port{HostPort: 18081, ContainerPort: 8080, Protocol: "tcp"}) {
		t.Errorf("ports = %+v", web.Ports)
	}
	if web.PullPolicy != stack.PullAlways || db.PullPolicy != stack.PullMissing {
		t.Errorf("pull policies = %s, %s", web.PullPolicy, db.PullPolicy)
	}
	if len(web.DependsOn) != 1 || web.DependsOn[0] != (stack.Dependency{Service: "db", Condition: stack.ConditionHealthy}) {
		t.Errorf("depends_on = %+v", web.DependsOn)
	}
	if web.Healthcheck == nil || web.Healthcheck.Retries != 3 || web.Healthcheck.Interval.Seconds() != 2 {
		t.Errorf("healthcheck = %+v", web.Healthcheck)
	}
	if len(db.Mounts) != 2 || db.Mounts[0].Type != "volume" || db.Mounts[0].Source != "data" || db.Mounts[1].Type != "bind" || !db.Mounts[1].ReadOnly {
		t.Errorf("mounts = %+v", db.Mounts)
	}
	if len(web.Networks) != 2 || len(spec.Networks) != 2 || spec.Networks[0].Key != "default" {
		t.Errorf("networks = %+v / %+v", web.Networks, spec.Networks)
	}
	if web.Restart != "unless-stopped" || web.Labels["team"] != "shop" {
		t.Errorf("restart/labels = %q %v", web.Restart, web.Labels)
	}
}

func TestBrokenFilesAreReportedAndDoNotHideGoodOnes(t *testing.T) {
	t.Parallel()
	broken := map[string]struct {
		content string
		want    []string // substrings of one error
	}{
		"bad-yaml.yaml":      {"x-rsgo:\n  product: [unclosed\n", []string{"not valid YAML"}},
		"no-version.yaml":    {strings.Replace(goodV1, "  version: 1.0.0\n", "", 1), []string{"x-rsgo.version", "required"}},
		"bad-semver.yaml":    {strings.Replace(goodV1, "version: 1.0.0", "version: one", 1), []string{"not a semantic version"}},
		"short-semver.yaml":  {strings.Replace(goodV1, "version: 1.0.0", "version: \"1.0\"", 1), []string{"not a semantic version"}},
		"zz-dup.yaml":        {goodV1, []string{"duplicate version 1.0.0"}},
		"bad-type.yaml":      {strings.Replace(goodV1, "type: password", "type: secret", 1), []string{"DB_PASSWORD", "unknown type"}},
		"env-file.yaml":      {strings.Replace(goodV1, "    pull_policy: missing\n", "    env_file: .env\n", 1), []string{`service "db"`, `"env_file"`, "x-rsgo variables"}},
		"unsupported.yaml":   {strings.Replace(goodV1, "    pull_policy: missing\n", "    privileged: true\n", 1), []string{`service "db"`, `"privileged"`, "not supported"}},
		"build.yaml":         {strings.Replace(goodV1, "    pull_policy: missing\n", "    build: .\n", 1), []string{`"build"`}},
		"hc-key.yaml":        {strings.Replace(goodV1, "interval: 1s, retries: 5", "interval: 1s, retries: 5, start_interval: 1s", 1), []string{"healthcheck.start_interval"}},
		"undeclared.yaml":    {strings.Replace(goodV1, "${LOG_LEVEL}", "${NOT_DECLARED}", 1), []string{"${NOT_DECLARED}"}},
		"bad-default.yaml":   {strings.Replace(goodV1, "default: 8081", "default: 70000", 1), []string{"HTTP_PORT", "default"}},
		"relative-bind.yaml": {strings.Replace(goodV1, "/srv/backup:/backup:ro", "./backup:/backup:ro", 1), []string{"absolute path"}},
		"no-image.yaml":      {strings.Replace(goodV1, "    image: 127.0.0.1:5000/acme/db:1.0.0\n", "", 1), []string{`service "db"`, "image is required"}},
		"unknown-dep.yaml":   {strings.Replace(goodV1, "db: { condition: service_healthy }", "cache: { condition: service_healthy }", 1), []string{"cache"}},
		"bad-restart.yaml":   {strings.Replace(goodV1, "restart: unless-stopped", "restart: sometimes", 1), []string{"restart"}},
		"ext-network.yaml":   {strings.Replace(goodV1, "front: { internal: false }", "front: { external: true }", 1), []string{"networks.front.external"}},
		"secrets.yaml":       {goodV1 + "secrets:\n  s: { file: ./s }\n", []string{`"secrets"`, "top-level"}},
	}
	files := map[string]string{"good.yaml": goodV1}
	for name, b := range broken {
		// Each broken file is a different product so its errors cannot be
		// confused with the duplicate check, except zz-dup.yaml, sorted after good.yaml.
		content := b.content
		if name != "zz-dup.yaml" {
			content = strings.Replace(content, "product: acme.shop", "product: broken."+strings.TrimSuffix(name, ".yaml"), 1)
		}
		files[name] = content
	}
	c, res := syncDir(t, files)
	if res.Versions != 1 {
		t.Errorf("%d good versions, want 1 (good.yaml)", res.Versions)
	}
	if _, err := c.Lookup("local:acme.shop:web@1.0.0"); err != nil {
		t.Errorf("good file hidden: %v", err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			for _, e := range res.Errors {
				if filepath.Base(e.File) != name {
					continue
				}
				msg := e.Error()
				ok := true
				for _, w := range b.want {
					ok = ok && strings.Contains(msg, w)
				}
				if ok {
					return
				}
			}
			t.Errorf("no error for %s containing %q; errors: %v", name, b.want, res.Errors)
		})
	}
}

func TestResolveVariables(t *testing.T) {
	t.Parallel()
	_, res := syncDir(t, map[string]string{"v1.yaml": goodV1})
	if len(res.Errors) != 0 {
		t.Fatal(res.Errors)
	}
	c, _ := syncDir(t, map[string]string{"v1.yaml": goodV1})
	v, _ := c.Lookup("local:acme.shop:web")
	_, err := Resolve(v.Variables, map[string]string{
		"HTTP_PORT": "0", "LOG_LEVEL": "loud", "WORKERS": "9", "SHOP_TITLE": "Shop 42", "NOPE": "x",
	})
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want ValidationError", err)
	}
	got := map[string]string{}
	for _, f := range verr.Fields {
		got[f.Field] = f.Message
	}
	for field, want := range map[string]string{
		"DB_PASSWORD": "required", "HTTP_PORT": "1 to 65535", "LOG_LEVEL": "one of", "WORKERS": "at most 8",
		"SHOP_TITLE": "pattern", "NOPE": "not a variable",
	} {
		if !strings.Contains(got[field], want) {
			t.Errorf("%s: message %q, want it to contain %q", field, got[field], want)
		}
	}
	if len(verr.Fields) != 6 {
		t.Errorf("%d field errors, want one per bad variable (6): %v", len(verr.Fields), verr.Fields)
	}
}

func TestVariableTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    Variable
		good []string
		bad  []string
	}{
		{Variable{Type: TypeBoolean}, []string{"true", "false"}, []string{"yes", "1"}},
		{Variable{Type: TypeURL}, []string{"https://example.com/x"}, []string{"example.com", "/path"}},
		{Variable{Type: TypeEmail}, []string{"ops@example.com"}, []string{"ops", "Ops <ops@example.com>"}},
		{Variable{Type: TypePort}, []string{"1", "65535"}, []string{"0", "65536", "http"}},
		{Variable{Type: TypeNumber}, []string{"1.5", "-2"}, []string{"two"}},
	}
	for _, tt := range tests {
		for _, s := range tt.good {
			if msg := tt.v.checkValue(s); msg != "" {
				t.Errorf("%s %q rejected: %s", tt.v.Type, s, msg)
			}
		}
		for _, s := range tt.bad {
			if msg := tt.v.checkValue(s); msg == "" {
				t.Errorf("%s %q accepted", tt.v.Type, s)
			}
		}
	}
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	s, err := ParseSource("demo=/srv/catalog")
	if err != nil || s.ID != "demo" || s.Dir != "/srv/catalog" {
		t.Errorf("ParseSource = %+v, %v", s, err)
	}
	s, err = ParseSource("/srv/local")
	if err != nil || s.ID != "local" {
		t.Errorf("ParseSource = %+v, %v", s, err)
	}
	if _, err := ParseSource("Bad Id=/x"); err == nil {
		t.Error("bad id accepted")
	}
	if _, err := New([]Source{{ID: "a", Dir: "/x"}, {ID: "a", Dir: "/y"}}, nil); err == nil {
		t.Error("duplicate source ids accepted")
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(goodV1))
	f.Add([]byte("x-rsgo: {product: a, version: 1.0.0}\nservices: {a: {image: x}}\n"))
	f.Add([]byte("x-rsgo: [1, 2]\n"))
	f.Add([]byte("services:\n  a:\n    image: ${X:-y}\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		p, ok, errs := parseManifest("fuzz.yaml", content)
		if !ok && len(errs) > 0 {
			t.Fatalf("not a manifest, yet errors: %v", errs)
		}
		if ok && len(errs) == 0 && (p.version == nil || len(p.services) == 0) {
			t.Fatalf("accepted without version or services: %+v", p)
		}
	})
}
