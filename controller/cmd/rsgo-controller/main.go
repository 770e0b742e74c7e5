// Command rsgo-controller runs the rsgo controller: the operator API, the
// agent gateway and the store. See the repository README for operation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rsgo/rsgo/controller/internal/daemon"
	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/shared/envflag"
	"github.com/rsgo/rsgo/shared/logging"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-controller:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "certs":
			return runCerts(args[1:], stdout, stderr)
		case "version", "--version":
			fmt.Fprintln(stdout, version)
			return nil
		}
	}
	return serve(args, stdout, stderr)
}

// listFlag is a repeatable flag; from the environment it takes a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rsgo-controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg daemon.Config
	var catalogs listFlag
	var logLevel, logFormat string
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/rsgo-controller", "directory for the store, the CA and the admin token")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the HTTP API and web UI")
	fs.StringVar(&cfg.AgentAddr, "agent-addr", "0.0.0.0:8443", "address agents connect to (mutual TLS)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "HOST:PORT agents dial, written into join tokens (default: this host's name and the agent port)")
	fs.Var(&catalogs, "catalog", "catalog source directory, `[id=]DIR`; repeatable")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "operator bearer token (default: generated on first start and stored in the data dir)")
	fs.DurationVar(&cfg.TokenTTL, "join-token-ttl", fleet.DefaultTokenTTL, "how long a join token stays valid")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may take on shutdown")
	fs.DurationVar(&cfg.HealthTimeout, "health-timeout", 60*time.Second, "how long services may take to run and turn healthy before an operation fails")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rsgo-controller [flags]\n       rsgo-controller certs init|fingerprint [flags]\n\nEvery flag can also be set as an environment variable, e.g. --data-dir as %s.\n\n", envflag.Name("data-dir"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := envflag.Apply(fs, os.LookupEnv); err != nil {
		return err
	}
	log, err := logging.New(stderr, logLevel, logFormat)
	if err != nil {
		return err
	}
	cfg.Catalogs = catalogs
	cfg.Version = version
	cfg.Log = log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := daemon.Start(cfg)
	if err != nil {
		return err
	}
	if c.TokenCreated {
		// Shown once on stdout, never logged: the file in the data dir is
		// the only other copy.
		fmt.Fprintf(stdout, "Admin token (stored in %s/admin-token, shown only now): %s\n", cfg.DataDir, c.AdminToken)
	}
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "signal", "received")
	case serveErr = <-c.Failed():
		log.Error("server failed; shutting down", "err", serveErr)
	}
	return errors.Join(serveErr, c.Shutdown())
}
