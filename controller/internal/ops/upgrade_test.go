package ops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

func TestNewerVersionsFollowsTheChannel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0-rc.2", "2.0.0-beta.3", "2.0.0", "0.9.0"} {
		content := "x-rsgo: {product: p, version: " + v + "}\nservices: {a: {image: x}}\n"
		if err := os.WriteFile(filepath.Join(dir, v+".yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.New([]catalog.Source{{ID: "s", Dir: dir}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := cat.Sync(context.Background()); len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	st, _ := cat.Stack("s:p:main")
	tests := []struct{ current, want string }{
		{"1.0.0", "1.1.0 2.0.0"},
		{"2.0.0-rc.1", "2.0.0-rc.2 2.0.0"},
		{"2.0.0-beta.3", "2.0.0"},
		{"2.0.0", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range newerVersions(st, semver.MustParse(tt.current)) {
			got = append(got, v.Version)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("newer than %s = %v, want %s", tt.current, got, tt.want)
		}
	}
}

func TestPinSpec(t *testing.T) {
	t.Parallel()
	spec := stack.Spec{Services: []stack.Service{
		{Name: "pulled", Image: "reg/web:1", PullPolicy: stack.PullAlways},
		{Name: "loaded", Image: "local/web:1", PullPolicy: stack.PullMissing},
	}}
	running := []protocol.ServiceStatus{
		{Name: "pulled", Digest: "reg/web@sha256:aaa", ImageID: "sha256:111"},
		{Name: "loaded", ImageID: "sha256:222"},
	}
	got := pinSpec(spec, running)
	if s := got.Services[0]; s.Image != "reg/web@sha256:aaa" || s.PullPolicy != stack.PullMissing {
		t.Errorf("pulled service pinned to %s (%s), want its digest", s.Image, s.PullPolicy)
	}
	if s := got.Services[1]; s.Image != "sha256:222" || s.PullPolicy != stack.PullNever {
		t.Errorf("loaded service pinned to %s (%s), want its image id, never pulled", s.Image, s.PullPolicy)
	}
	if spec.Services[0].Image != "reg/web:1" {
		t.Error("pinSpec changed its input")
	}
}
