// Command rsgo-demo-images builds the images of the demo catalog from the
// demo app and loads them into the local Docker engine with `docker load`,
// so the demo deploys offline.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rsgo/rsgo/deploy/demo"
)

// images of the demo catalog (deploy/demo/catalog).
var images = []struct {
	ref     string
	variant demo.Variant
}{
	{"rsgo-demo/web:1.0.0", demo.Variant{Version: "1.0.0"}},
	{"rsgo-demo/api:1.0.0", demo.Variant{Version: "1.0.0"}},
	{"rsgo-demo/web:2.0.0", demo.Variant{Version: "2.0.0"}},
	{"rsgo-demo/api:2.0.0", demo.Variant{Version: "2.0.0"}},
	{"rsgo-demo/web:2.1.0", demo.Variant{Version: "2.1.0", Mode: demo.ModeCrash}},
}

func main() {
	docker := flag.String("docker", "docker", "docker CLI used for `docker load`")
	flag.Parse()
	if err := run(*docker); err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-demo-images:", err)
		os.Exit(1)
	}
}

func run(docker string) error {
	dir, err := os.MkdirTemp("", "rsgo-demo-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := demo.BuildApp(dir)
	if err != nil {
		return err
	}
	for _, im := range images {
		img, err := demo.Image(bin, im.variant)
		if err != nil {
			return fmt.Errorf("%s: %w", im.ref, err)
		}
		tar := filepath.Join(dir, "image.tar")
		if err := demo.WriteTarball(img, im.ref, tar); err != nil {
			return fmt.Errorf("%s: %w", im.ref, err)
		}
		out, err := exec.Command(docker, "load", "-i", tar).CombinedOutput()
		if err != nil {
			return fmt.Errorf("docker load %s: %v\n%s", im.ref, err, out)
		}
		fmt.Printf("loaded %s\n", im.ref)
	}
	return nil
}
