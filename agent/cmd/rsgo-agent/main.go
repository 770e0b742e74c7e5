// Command rsgo-agent runs on a Docker host, dials out to the rsgo
// controller and carries out its work on the local Docker engine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/rsgo/rsgo/agent/internal/dispatch"
	"github.com/rsgo/rsgo/agent/internal/engine"
	"github.com/rsgo/rsgo/agent/internal/enroll"
	"github.com/rsgo/rsgo/agent/internal/journal"
	"github.com/rsgo/rsgo/agent/internal/link"
	"github.com/rsgo/rsgo/agent/internal/outbox"
	"github.com/rsgo/rsgo/agent/internal/runner"
	"github.com/rsgo/rsgo/agent/internal/state"
	"github.com/rsgo/rsgo/shared/envflag"
	"github.com/rsgo/rsgo/shared/logging"
	"github.com/rsgo/rsgo/shared/protocol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Usage:
  rsgo-agent run  --state-dir DIR [--token JOIN_TOKEN] [--controller HOST:PORT]
  rsgo-agent join --state-dir DIR --token JOIN_TOKEN [--controller HOST:PORT]
  rsgo-agent version

run enrolls first when DIR holds no certificate yet, then connects and stays
connected. join enrolls (again) and exits. Every flag can also be set as an
environment variable, e.g. --token as RSGO_TOKEN.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-agent:", err)
		os.Exit(1)
	}
}

type options struct {
	stateDir   string
	token      string
	controller string
	logLevel   string
	logFormat  string
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd := args[0]
	switch cmd {
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	case "run", "join":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("rsgo-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/rsgo-agent", "directory for the agent's key, certificate and state")
	fs.StringVar(&o.token, "token", "", "one-time join token from the controller")
	fs.StringVar(&o.controller, "controller", "", "controller agent address HOST:PORT (default: the one in the token)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	if err := fs.Parse(args[1:]); err != nil {
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
	log, err := logging.New(stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir := state.Dir(o.stateDir)

	if cmd == "join" {
		if o.token == "" {
			return errors.New("--token is required")
		}
		cfg, err := join(ctx, dir, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled in environment %s (%s); start the agent with: rsgo-agent run --state-dir %s\n",
			cfg.EnvironmentName, cfg.EnvironmentID, o.stateDir)
		return nil
	}

	id, err := dir.Load()
	if errors.Is(err, state.ErrNotEnrolled) {
		if o.token == "" {
			return fmt.Errorf("%s holds no certificate yet: pass --token from POST /api/environments", o.stateDir)
		}
		cfg, jerr := join(ctx, dir, o)
		if jerr != nil {
			return jerr
		}
		log.Info("enrolled", "environment", cfg.EnvironmentID, "name", cfg.EnvironmentName)
		id, err = dir.Load()
	}
	if err != nil {
		return err
	}
	if o.controller != "" {
		id.Controller = o.controller
	}
	return runAgent(ctx, o.stateDir, id, log)
}

func join(ctx context.Context, dir state.Dir, o options) (state.Config, error) {
	host, _ := os.Hostname()
	return enroll.Enroll(ctx, enroll.Options{Token: o.token, Hostname: host, Controller: o.controller, Dir: dir})
}

func runAgent(ctx context.Context, stateDir string, id state.Identity, log *slog.Logger) error {
	eng, err := engine.New()
	if err != nil {
		return err
	}
	defer eng.Close()
	host, _ := os.Hostname()
	j, err := journal.Open(filepath.Join(stateDir, "journal"))
	if err != nil {
		return err
	}
	out, err := outbox.Open(filepath.Join(stateDir, "outbox"), outbox.DefaultLimit, log.With("component", "outbox"))
	if err != nil {
		return err
	}
	defer out.Close()
	var l *link.Link
	run := runner.New(eng, j, out, func(ctx context.Context, typ string, body, resp any) error {
		return l.Call(ctx, typ, body, resp)
	}, log.With("component", "runner"))
	defer run.Close()
	d := &dispatch.Dispatcher{Engine: eng, Runner: run}
	l, err = link.New(link.Config{
		Identity:  id,
		Handler:   d.Handle,
		OnConnect: run.Stream,
		Log:       log.With("component", "link"),
		Hello: func(ctx context.Context) protocol.Hello {
			h := protocol.Hello{
				ProtocolVersion: protocol.Version,
				MinVersion:      protocol.MinVersion,
				AgentVersion:    version,
				Hostname:        host,
				OS:              runtime.GOOS,
				Arch:            runtime.GOARCH,
			}
			vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if v, err := eng.Version(vctx); err != nil {
				h.DockerError = err.Error()
				log.Warn("docker engine not reachable", "err", err)
			} else {
				h.DockerVersion = v
			}
			return h
		},
	})
	if err != nil {
		return err
	}
	log.Info("agent starting", "version", version, "environment", id.EnvironmentID, "controller", id.Controller)
	err = l.Run(ctx)
	log.Info("agent stopped")
	return err
}
