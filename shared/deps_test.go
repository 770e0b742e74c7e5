package shared_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The wire contract must stay free of the heavy dependencies of either binary.
func TestNoForbiddenDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/docker/", "github.com/moby/", "github.com/gofiber/", "github.com/dgraph-io/badger"}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 3 {
		t.Fatalf("go list returned too few packages: %q", out)
	}
	for _, pkg := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("shared depends on %s", pkg)
			}
		}
	}
}
