package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Error codes of the API's error shape.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeAgentOffline = "agent_offline"
	CodeAgentError   = "agent_error"
	CodeInternal     = "internal"
)

// Error is an error with an HTTP status and an API code.
type Error struct {
	Status  int
	Code    string
	Message string
	// Fields names each offending input, for forms.
	Fields any
}

func (e *Error) Error() string { return e.Message }

func apiError(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// handleError renders every error in the SPEC shape. Errors that are not
// *Error are logged and answered as 500 without their text.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var ae *Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &Error{Status: fe.Code, Code: codeForStatus(fe.Code), Message: fe.Message}
	default:
		s.cfg.Log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
		ae = &Error{Status: fiber.StatusInternalServerError, Code: CodeInternal, Message: "internal error; see the controller log"}
	}
	body := fiber.Map{"code": ae.Code, "message": ae.Message}
	if ae.Fields != nil {
		body["fields"] = ae.Fields
	}
	return c.Status(ae.Status).JSON(fiber.Map{"success": false, "error": body})
}

func codeForStatus(status int) string {
	switch status {
	case fiber.StatusBadRequest, fiber.StatusRequestEntityTooLarge, fiber.StatusUnprocessableEntity:
		return CodeBadRequest
	case fiber.StatusUnauthorized:
		return CodeUnauthorized
	case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
		return CodeNotFound
	case fiber.StatusConflict:
		return CodeConflict
	case fiber.StatusServiceUnavailable:
		return CodeAgentOffline
	}
	return CodeInternal
}

// decodeBody decodes a JSON object strictly: unknown fields and trailing
// data are 400s that name the problem.
func decodeBody(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return apiError(fiber.StatusBadRequest, CodeBadRequest, "field %q: must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return apiError(fiber.StatusBadRequest, CodeBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "request body has data after the JSON object")
	}
	return nil
}

// structToMap turns a JSON-tagged struct into a map by a JSON round trip.
func structToMap(v any) map[string]any {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}
