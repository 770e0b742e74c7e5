package api

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/ops"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// waitLimit bounds ?wait=true.
const waitLimit = 15 * time.Minute

// masked replaces secret values in every answer.
const masked = "********"

type deploymentView struct {
	ID            string                   `json:"id"`
	EnvironmentID string                   `json:"environmentId"`
	Name          string                   `json:"name"`
	StackID       string                   `json:"stackId"`
	Version       string                   `json:"version"`
	Status        string                   `json:"status"`
	Error         string                   `json:"error,omitempty"`
	Variables     map[string]string        `json:"variables"`
	Services      []protocol.ServiceStatus `json:"services"`
	Operation     *store.OperationRef      `json:"operation"`
	LastOperation *store.OperationRef      `json:"lastOperation,omitempty"`
	History       []store.HistoryEntry     `json:"history"`
	Snapshot      *snapshotView            `json:"snapshot"`
	CreatedAt     time.Time                `json:"createdAt"`
	UpdatedAt     time.Time                `json:"updatedAt"`
}

// snapshotView shows a snapshot without its variable values.
type snapshotView struct {
	Version     string    `json:"version"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdAt"`
}

func viewDeployment(d store.Deployment) deploymentView {
	vars := map[string]string{}
	for k, v := range d.Variables {
		if slices.Contains(d.Secrets, k) {
			v = masked
		}
		vars[k] = v
	}
	v := deploymentView{ID: d.ID, EnvironmentID: d.EnvironmentID, Name: d.Name, StackID: d.StackID + "@" + d.Version,
		Version: d.Version, Status: d.Status, Error: d.Error, Variables: vars, Services: d.Services,
		Operation: d.Operation, LastOperation: d.Last, History: d.History, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Snapshot != nil {
		v.Snapshot = &snapshotView{Version: d.Snapshot.Version, Description: d.Snapshot.Description, CreatedAt: d.Snapshot.CreatedAt}
	}
	if v.Services == nil {
		v.Services = []protocol.ServiceStatus{}
	}
	if v.History == nil {
		v.History = []store.HistoryEntry{}
	}
	return v
}

func (s *Server) listDeployments(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	deps, err := s.cfg.Store.Deployments(env.ID)
	if err != nil {
		return err
	}
	out := make([]deploymentView, 0, len(deps))
	for _, d := range deps {
		out = append(out, viewDeployment(d))
	}
	return c.JSON(fiber.Map{"success": true, "deployments": out})
}

func (s *Server) getDeployment(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	d, err := s.cfg.Store.FindDeployment(env.ID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return apiError(fiber.StatusNotFound, CodeNotFound, "deployment %q not found in environment %s", c.Params("id"), env.Name)
	}
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"success": true, "deployment": viewDeployment(d)})
}

func (s *Server) createDeployment(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	var req ops.DeployRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	acc, err := s.cfg.Ops.Deploy(c.UserContext(), env.ID, req)
	if err != nil {
		return opsError(err)
	}
	return s.accepted(c, acc, nil)
}

func (s *Server) lifecycle(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		env, err := s.lookup(c)
		if err != nil {
			return err
		}
		var body struct {
			SessionID string `json:"sessionId"`
		}
		if len(c.Body()) > 0 {
			if err := decodeBody(c, &body); err != nil {
				return err
			}
		}
		acc, err := s.cfg.Ops.Lifecycle(c.UserContext(), env.ID, c.Params("id"), kind, body.SessionID, c.QueryBool("volumes"))
		if err != nil {
			return opsError(err)
		}
		return s.accepted(c, acc, nil)
	}
}

// accepted answers 202, or with ?wait=true the final state once the
// operation has ended.
func (s *Server) accepted(c *fiber.Ctx, acc ops.Accepted, extra fiber.Map) error {
	if !c.QueryBool("wait") {
		out := fiber.Map{"success": true, "deploymentId": acc.DeploymentID, "operationId": acc.OperationID, "sessionId": acc.SessionID}
		for k, v := range extra {
			out[k] = v
		}
		return c.Status(fiber.StatusAccepted).JSON(out)
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), waitLimit)
	defer cancel()
	if err := s.cfg.Ops.Wait(ctx, acc.DeploymentID, acc.OperationID); err != nil {
		return apiError(fiber.StatusGatewayTimeout, CodeInternal, "operation %s still running after %v", acc.OperationID, waitLimit)
	}
	out := fiber.Map{"success": true, "deploymentId": acc.DeploymentID, "operationId": acc.OperationID, "sessionId": acc.SessionID}
	for k, v := range extra {
		out[k] = v
	}
	d, err := s.cfg.Store.Deployment(acc.DeploymentID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		out["removed"] = true
		return c.JSON(out)
	case err != nil:
		return err
	}
	out["deployment"] = viewDeployment(d)
	if d.Last != nil && d.Last.ID == acc.OperationID && !d.Last.Success {
		out["success"] = false
		out["error"] = fiber.Map{"code": "operation_failed", "message": d.Last.Error, "phase": d.Last.Phase}
	}
	return c.JSON(out)
}

// opsError maps ops errors onto the API's error shape.
func opsError(err error) error {
	var inv *ops.InvalidError
	switch {
	case errors.As(err, &inv):
		return &Error{Status: fiber.StatusBadRequest, Code: CodeBadRequest, Message: inv.Error(), Fields: inv.Fields}
	case errors.Is(err, ops.ErrOffline):
		return apiError(fiber.StatusServiceUnavailable, CodeAgentOffline, "Environment agent is offline")
	case errors.Is(err, ops.ErrConflict):
		return apiError(fiber.StatusConflict, CodeConflict, "%v", err)
	case errors.Is(err, ops.ErrNotFound):
		return apiError(fiber.StatusNotFound, CodeNotFound, "%v", err)
	}
	return err
}
