// Command rsgo-demo-images builds the images of the demo catalog from the
// demo app and loads them into the local Docker engine with `docker load`,
// so the demo deploys offline.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rsgo/rsgo/deploy/demo"
)

// images of the demo catalog (deploy/demo/catalog).
var images = []demo.Named{
	{Ref: "rsgo-demo/web:1.0.0", Variant: demo.Variant{Version: "1.0.0"}},
	{Ref: "rsgo-demo/api:1.0.0", Variant: demo.Variant{Version: "1.0.0"}},
	{Ref: "rsgo-demo/web:2.0.0", Variant: demo.Variant{Version: "2.0.0"}},
	{Ref: "rsgo-demo/api:2.0.0", Variant: demo.Variant{Version: "2.0.0"}},
	{Ref: "rsgo-demo/web:2.1.0", Variant: demo.Variant{Version: "2.1.0", Mode: demo.ModeCrash}},
}

func main() {
	docker := flag.String("docker", "docker", "docker CLI used for `docker load`")
	flag.Parse()
	dir, err := os.MkdirTemp("", "rsgo-demo-images-")
	if err == nil {
		err = demo.LoadIntoDocker(dir, *docker, images)
		os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-demo-images:", err)
		os.Exit(1)
	}
	for _, im := range images {
		fmt.Println("loaded", im.Ref)
	}
}
