// Package daemon wires the controller together: store, PKI, fleet, agent
// gateway and HTTP API, with an orderly start and shutdown. main only parses
// flags and signals; tests start whole controllers through this package.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rsgo/rsgo/controller/internal/api"
	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/hub"
	"github.com/rsgo/rsgo/controller/internal/ops"
	"github.com/rsgo/rsgo/controller/internal/pki"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Config is the controller's configuration, as given by flags.
type Config struct {
	DataDir   string
	HTTPAddr  string
	AgentAddr string
	// AdvertiseAddr is the HOST:PORT agents dial; default derived from
	// AgentAddr.
	AdvertiseAddr   string
	Catalogs        []string
	AdminToken      string
	TokenTTL        time.Duration
	ShutdownTimeout time.Duration
	// HealthTimeout bounds how long services may take to turn healthy.
	HealthTimeout time.Duration
	Version       string
	Log           *slog.Logger
	// PingInterval and PingTimeout tune dead-agent detection (tests shorten them).
	PingInterval time.Duration
	PingTimeout  time.Duration
}

// Controller is a running controller.
type Controller struct {
	cfg        Config
	log        *slog.Logger
	HTTPAddr   net.Addr
	AgentAddr  net.Addr
	AdminToken string
	// TokenCreated is true when AdminToken was generated on this start.
	TokenCreated bool
	Store        *store.Store
	Gateway      *gateway.Gateway
	Fleet        *fleet.Service
	Authority    *pki.Authority
	Catalog      *catalog.Catalog
	Ops          *ops.Service
	Hub          *hub.Hub

	api      *api.Server
	stop     context.CancelFunc
	wg       sync.WaitGroup
	errOnce  sync.Once
	serveErr chan error
	stopOnce sync.Once
}

// Start opens the store, loads the PKI, binds both listeners and starts
// serving. On error everything opened so far is closed again.
func Start(cfg Config) (_ *Controller, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	c := &Controller{cfg: cfg, log: cfg.Log, serveErr: make(chan error, 1)}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	c.AdminToken, c.TokenCreated, err = api.LoadOrCreateAdminToken(cfg.DataDir, cfg.AdminToken)
	if err != nil {
		return nil, err
	}
	agentLn, err := net.Listen("tcp", cfg.AgentAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --agent-addr %s: %w", cfg.AgentAddr, err)
	}
	closers = append(closers, func() { agentLn.Close() })
	c.AgentAddr = agentLn.Addr()
	advertise, err := advertiseAddr(cfg.AdvertiseAddr, c.AgentAddr)
	if err != nil {
		return nil, err
	}

	c.Store, err = store.Open(filepath.Join(cfg.DataDir, "db"), cfg.Log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { c.Store.Close() })

	c.Authority, err = pki.LoadOrCreate(pki.Options{
		Dir:   filepath.Join(cfg.DataDir, "pki"),
		Hosts: certHosts(advertise),
		Log:   cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	var gw *gateway.Gateway
	c.Fleet, err = fleet.New(fleet.Config{
		Store:         c.Store,
		Authority:     c.Authority,
		AdvertiseAddr: advertise,
		TokenTTL:      cfg.TokenTTL,
		OnEnrolled:    func(env, serial string) { gw.DisconnectStale(env, serial) },
		Log:           cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	var sources []catalog.Source
	for _, flag := range cfg.Catalogs {
		src, err := catalog.ParseSource(flag)
		if err != nil {
			return nil, fmt.Errorf("--catalog: %w", err)
		}
		sources = append(sources, src)
	}
	c.Catalog, err = catalog.New(sources, cfg.Log.With("component", "catalog"))
	if err != nil {
		return nil, err
	}
	c.Catalog.Sync(context.Background())
	var opsSvc *ops.Service
	c.Hub = hub.New(c.Store, cfg.Log.With("component", "hub"))
	gw, err = gateway.New(gateway.Config{
		Certificate: c.Authority.ServerCertificate(),
		ClientCAs:   c.Authority.Pool(),
		Verifier:    c.Fleet,
		Observer:    observers{c.Fleet, envEvents{c.Hub}, reconciler{&opsSvc}},
		Handler: func(ctx context.Context, s *gateway.Session, req protocol.Request) (any, error) {
			return handleAgent(opsSvc, c.Hub, s, req)
		},
		Log:          cfg.Log.With("component", "gateway"),
		PingInterval: cfg.PingInterval,
		PingTimeout:  cfg.PingTimeout,
	})
	if err != nil {
		return nil, err
	}
	c.Gateway = gw
	closers = append(closers, func() { gw.Close() })
	opsSvc, err = ops.New(ops.Config{Store: c.Store, Catalog: c.Catalog, Agent: gw, Events: c.Hub,
		HealthTimeout: cfg.HealthTimeout, Log: cfg.Log.With("component", "ops")})
	if err != nil {
		return nil, err
	}
	c.Ops = opsSvc
	c.api, err = api.New(api.Config{
		Ops:        opsSvc,
		Hub:        c.Hub,
		Store:      c.Store,
		Catalog:    c.Catalog,
		Fleet:      c.Fleet,
		Gateway:    gw,
		AdminToken: c.AdminToken,
		Version:    cfg.Version,
		Log:        cfg.Log.With("component", "api"),
	})
	if err != nil {
		return nil, err
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --http-addr %s: %w", cfg.HTTPAddr, err)
	}
	c.HTTPAddr = httpLn.Addr()

	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.pruneTokens(ctx)
	}()
	c.goServe("gateway", func() error { return gw.Serve(agentLn) })
	c.goServe("http", func() error { return c.api.Serve(httpLn) })
	c.log.Info("controller started", "http", c.HTTPAddr.String(), "agents", c.AgentAddr.String(),
		"advertise", advertise, "caFingerprint", c.Authority.Fingerprint(), "catalogs", len(cfg.Catalogs))
	return c, nil
}

func (c *Controller) goServe(name string, serve func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := serve(); err != nil {
			c.errOnce.Do(func() { c.serveErr <- fmt.Errorf("%s: %w", name, err) })
		}
	}()
}

// Failed delivers the first error of a listener that stopped by itself.
func (c *Controller) Failed() <-chan error { return c.serveErr }

// Shutdown stops the HTTP server (in-flight requests finish), cuts every
// agent session and closes the store. It is safe to call more than once.
func (c *Controller) Shutdown() error {
	var errs []error
	c.stopOnce.Do(func() {
		if err := c.api.Shutdown(c.cfg.ShutdownTimeout); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		c.Gateway.Close()
		c.Ops.Close()
		c.stop()
		c.wg.Wait()
		if err := c.Store.Close(); err != nil {
			errs = append(errs, err)
		}
		c.log.Info("controller stopped")
	})
	return errors.Join(errs...)
}

// tokenRetention keeps expired join tokens for a while, so an agent that
// presents one is told it expired rather than that it is unknown.
const tokenRetention = 24 * time.Hour

// pruneTokens deletes long-expired join tokens at start and then hourly.
func (c *Controller) pruneTokens(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := c.Store.PruneJoinTokens(time.Now().Add(-tokenRetention))
		if err != nil {
			c.log.Error("prune join tokens", "err", err)
		} else if n > 0 {
			c.log.Info("pruned expired join tokens", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// advertiseAddr is what join tokens tell agents to dial.
func advertiseAddr(flag string, bound net.Addr) (string, error) {
	if flag != "" {
		if _, _, err := net.SplitHostPort(flag); err != nil {
			return "", fmt.Errorf("--advertise-addr %q: %w", flag, err)
		}
		return flag, nil
	}
	host, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		name, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("no --advertise-addr and no hostname: %w", err)
		}
		host = name
	}
	return net.JoinHostPort(host, port), nil
}

// certHosts are the names the server certificate covers.
func certHosts(advertise string) []string {
	host, _, _ := net.SplitHostPort(advertise)
	hosts := []string{host, "localhost", "127.0.0.1", "::1"}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	return hosts
}
