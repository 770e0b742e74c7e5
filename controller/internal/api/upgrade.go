package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/ops"
)

func (s *Server) checkUpgrade(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	check, err := s.cfg.Ops.CheckUpgrade(env.ID, c.Params("id"))
	if err != nil {
		return opsError(err)
	}
	return c.JSON(withSuccess(check))
}

func (s *Server) upgrade(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	var req ops.UpgradeRequest
	if len(c.Body()) > 0 {
		if err := decodeBody(c, &req); err != nil {
			return err
		}
	}
	acc, err := s.cfg.Ops.Upgrade(c.UserContext(), env.ID, c.Params("id"), req)
	if err != nil {
		return opsError(err)
	}
	return s.accepted(c, acc.Accepted, fiber.Map{"previousVersion": acc.PreviousVersion, "targetVersion": acc.TargetVersion})
}

func (s *Server) checkRollback(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	check, err := s.cfg.Ops.CheckRollback(env.ID, c.Params("id"))
	if err != nil {
		return opsError(err)
	}
	return c.JSON(withSuccess(check))
}

func (s *Server) rollback(c *fiber.Ctx) error {
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
	acc, err := s.cfg.Ops.Rollback(c.UserContext(), env.ID, c.Params("id"), body.SessionID)
	if err != nil {
		return opsError(err)
	}
	return s.accepted(c, acc.Accepted, fiber.Map{"targetVersion": acc.TargetVersion})
}

// withSuccess flattens v into an answer with "success": true, as the SPEC's
// check answers are shaped.
func withSuccess(v any) fiber.Map {
	out := fiber.Map{"success": true}
	for k, val := range structToMap(v) {
		out[k] = val
	}
	return out
}
