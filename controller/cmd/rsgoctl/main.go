// Command rsgoctl drives rsgo from a terminal or a CI pipeline: deploy,
// upgrade, roll back and watch with live progress. Run it without arguments
// for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rsgo/rsgo/controller/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
