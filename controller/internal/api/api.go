// Package api is the operator-facing HTTP API under /api. It speaks JSON,
// answers every error in one shape, and never touches Docker: work for an
// agent goes through the gateway.
package api

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/hub"
	"github.com/rsgo/rsgo/controller/internal/ops"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/controller/internal/ui"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Config configures a Server.
type Config struct {
	Store      *store.Store
	Catalog    *catalog.Catalog
	Fleet      *fleet.Service
	Ops        *ops.Service
	Hub        *hub.Hub
	Gateway    *gateway.Gateway
	AdminToken string
	Version    string
	Log        *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg Config
	app *fiber.App
}

// New validates cfg and builds the routes.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil || cfg.Fleet == nil || cfg.Gateway == nil || cfg.Catalog == nil || cfg.Ops == nil || cfg.Hub == nil:
		return nil, errors.New("api: store, catalog, fleet, ops, hub and gateway are required")
	case len(cfg.AdminToken) < 16:
		return nil, errors.New("api: admin token must be at least 16 characters")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg}
	s.app = fiber.New(fiber.Config{
		AppName:               "rsgo-controller",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		BodyLimit:             1 << 20,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          2 * time.Minute,
		IdleTimeout:           2 * time.Minute,
	})
	s.routes()
	ui.Mount(s.app)
	return s, nil
}

// App exposes the fiber app, for tests (app.Test) and for mounting the UI.
func (s *Server) App() *fiber.App { return s.app }

// Serve serves HTTP on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.app.Listener(l) }

// Shutdown stops accepting and waits for in-flight requests, up to timeout.
func (s *Server) Shutdown(timeout time.Duration) error {
	return s.app.ShutdownWithTimeout(timeout)
}

func (s *Server) routes() {
	a := s.app.Group("/api")
	a.Get("/health", s.health)
	a.Use(s.requireToken)
	a.Get("/environments", s.listEnvironments)
	a.Post("/environments", s.createEnvironment)
	a.Get("/environments/:env", s.getEnvironment)
	a.Delete("/environments/:env", s.deleteEnvironment)
	a.Post("/environments/:env/join-token", s.newJoinToken)
	a.Post("/environments/:env/ping", s.pingEnvironment)
	a.Get("/environments/:env/docker", s.dockerInfo)
	a.Get("/environments/:env/deployments", s.listDeployments)
	a.Post("/environments/:env/deployments", s.createDeployment)
	a.Get("/environments/:env/deployments/:id", s.getDeployment)
	a.Post("/environments/:env/deployments/:id/stop", s.lifecycle(protocol.OpStop))
	a.Post("/environments/:env/deployments/:id/start", s.lifecycle(protocol.OpStart))
	a.Delete("/environments/:env/deployments/:id", s.lifecycle(protocol.OpRemove))
	a.Get("/environments/:env/deployments/:id/upgrade/check", s.checkUpgrade)
	a.Post("/environments/:env/deployments/:id/upgrade", s.upgrade)
	a.Get("/environments/:env/deployments/:id/rollback", s.checkRollback)
	a.Post("/environments/:env/deployments/:id/rollback", s.rollback)
	a.Get("/environments/:env/deployments/:id/events", s.deploymentEvents)
	a.Get("/ws", wsUpgrade, websocket.New(s.serveWS, websocket.Config{ReadBufferSize: 4096, WriteBufferSize: 4096}))
	a.Get("/stacks", s.listStacks)
	a.Get("/stacks/:stackId", s.getStack)
	a.Post("/catalog/sync", s.syncCatalog)
	a.Use(func(c *fiber.Ctx) error {
		return apiError(fiber.StatusNotFound, CodeNotFound, "no route %s %s", c.Method(), c.Path())
	})
}

func (s *Server) health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"success": true, "status": "ok", "version": s.cfg.Version})
}

// requireToken checks the bearer token on every route registered after it.
func (s *Server) requireToken(c *fiber.Ctx) error {
	token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if !ok {
		token = c.Query("access_token")
	}
	if token == "" {
		return apiError(fiber.StatusUnauthorized, CodeUnauthorized, "missing bearer token")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
		return apiError(fiber.StatusUnauthorized, CodeUnauthorized, "invalid bearer token")
	}
	return c.Next()
}
