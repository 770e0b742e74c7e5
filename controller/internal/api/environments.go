package api

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/fleet"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// agentCallTimeout bounds a request the API relays to an agent.
const agentCallTimeout = 15 * time.Second

// environmentView is an environment as the API shows it.
type environmentView struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	CreatedAt       time.Time  `json:"createdAt"`
	EnrolledAt      *time.Time `json:"enrolledAt"`
	Hostname        string     `json:"hostname"`
	AgentVersion    string     `json:"agentVersion"`
	DockerVersion   string     `json:"dockerVersion"`
	ProtocolVersion int        `json:"protocolVersion,omitempty"`
	OS              string     `json:"os,omitempty"`
	Arch            string     `json:"arch,omitempty"`
	ConnectedAt     *time.Time `json:"connectedAt"`
	LastSeenAt      *time.Time `json:"lastSeenAt"`
	RemoteAddr      string     `json:"remoteAddr,omitempty"`
}

func (s *Server) view(env store.Environment) environmentView {
	live := s.cfg.Gateway.Session(env.ID)
	v := environmentView{
		ID:              env.ID,
		Name:            env.Name,
		Status:          fleet.Status(env, live),
		CreatedAt:       env.CreatedAt,
		EnrolledAt:      env.EnrolledAt,
		Hostname:        env.Agent.Hostname,
		AgentVersion:    env.Agent.AgentVersion,
		DockerVersion:   env.Agent.DockerVersion,
		ProtocolVersion: env.Agent.ProtocolVersion,
		OS:              env.Agent.OS,
		Arch:            env.Agent.Arch,
		ConnectedAt:     env.ConnectedAt,
		LastSeenAt:      fleet.LastSeen(env, live),
	}
	if live != nil {
		// The live hello is fresher than the record, which is written
		// asynchronously to the session.
		at := live.ConnectedAt.UTC()
		v.ConnectedAt = &at
		v.Hostname = live.Hello.Hostname
		v.AgentVersion = live.Hello.AgentVersion
		v.DockerVersion = live.Hello.DockerVersion
		v.ProtocolVersion = live.ProtocolVersion
		v.OS, v.Arch = live.Hello.OS, live.Hello.Arch
		v.RemoteAddr = live.RemoteAddr
	}
	return v
}

func (s *Server) listEnvironments(c *fiber.Ctx) error {
	envs, err := s.cfg.Store.Environments()
	if err != nil {
		return err
	}
	out := make([]environmentView, 0, len(envs))
	for _, env := range envs {
		out = append(out, s.view(env))
	}
	return c.JSON(fiber.Map{"success": true, "environments": out})
}

func (s *Server) createEnvironment(c *fiber.Ctx) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	env, issued, err := s.cfg.Fleet.CreateEnvironment(req.Name)
	switch {
	case errors.Is(err, fleet.ErrInvalidName):
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "field \"name\": %v", err)
	case errors.Is(err, fleet.ErrNameTaken):
		return apiError(fiber.StatusConflict, CodeConflict, "%v", err)
	case err != nil:
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{
		"success":     true,
		"environment": s.view(env),
		"joinToken":   issued.Token,
		"joinCommand": issued.Command,
		"expiresAt":   issued.ExpiresAt,
	})
}

// lookup resolves the :env parameter, an id or a name.
func (s *Server) lookup(c *fiber.Ctx) (store.Environment, error) {
	ref := c.Params("env")
	env, err := s.cfg.Store.FindEnvironment(ref)
	if errors.Is(err, store.ErrNotFound) {
		return env, apiError(fiber.StatusNotFound, CodeNotFound, "environment %q not found", ref)
	}
	return env, err
}

func (s *Server) getEnvironment(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"success": true, "environment": s.view(env)})
}

func (s *Server) deleteEnvironment(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Fleet.DeleteEnvironment(env.ID); err != nil {
		return err
	}
	disconnected := s.cfg.Gateway.Disconnect(env.ID)
	return c.JSON(fiber.Map{"success": true, "deleted": env.ID, "disconnected": disconnected})
}

func (s *Server) newJoinToken(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	issued, err := s.cfg.Fleet.NewJoinToken(env.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{
		"success":     true,
		"joinToken":   issued.Token,
		"joinCommand": issued.Command,
		"expiresAt":   issued.ExpiresAt,
	})
}

func (s *Server) pingEnvironment(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	var res protocol.PingResult
	start := time.Now()
	if err := s.callAgent(c, env.ID, protocol.TypePing, &res); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"success": true, "agentTime": res.AgentTime, "roundTripMs": float64(time.Since(start).Microseconds()) / 1000})
}

func (s *Server) dockerInfo(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	var info protocol.DockerInfo
	if err := s.callAgent(c, env.ID, protocol.TypeDockerInfo, &info); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"success": true, "docker": info})
}

// callAgent relays one request and maps link failures onto API errors.
func (s *Server) callAgent(c *fiber.Ctx, envID, typ string, out any) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), agentCallTimeout)
	defer cancel()
	err := s.cfg.Gateway.Call(ctx, envID, typ, nil, out)
	var wire *protocol.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gateway.ErrAgentOffline):
		return apiError(fiber.StatusServiceUnavailable, CodeAgentOffline, "Environment agent is offline")
	case errors.As(err, &wire):
		return apiError(fiber.StatusBadGateway, CodeAgentError, "agent: %s", wire.Message)
	}
	return apiError(fiber.StatusServiceUnavailable, CodeAgentOffline, "agent did not answer: %v", err)
}
