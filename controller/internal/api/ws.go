package api

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/rsgo/rsgo/controller/internal/hub"
	"github.com/rsgo/rsgo/controller/internal/store"
)

// WebSocket limits.
const (
	wsQueue          = 512              // messages a client may lag behind
	wsMaxMessage     = 4096             // bytes of one client message; larger ones get an error frame
	wsReadLimit      = 64 << 10         // beyond this the connection closes at once
	wsHeartbeat      = 10 * time.Second // at least every 15 s per SPEC
	wsWriteTimeout   = 10 * time.Second
	wsMaxBadMessages = 5
	wsBatchBytes     = 32 << 10 // most a frame carries when events queue up
)

// wsRequest is what a client sends.
type wsRequest struct {
	Type          string `json:"type"`
	SessionID     string `json:"sessionId"`
	EnvironmentID string `json:"environmentId"`
	Since         int64  `json:"since"`
}

// wsUpgrade refuses anything that is not a WebSocket handshake; the token
// was checked before (401 before the upgrade).
func wsUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return apiError(fiber.StatusUpgradeRequired, CodeBadRequest, "GET /api/ws needs a WebSocket upgrade")
	}
	return c.Next()
}

func (s *Server) serveWS(conn *websocket.Conn) {
	client := hub.NewClient(wsQueue)
	defer s.cfg.Hub.Remove(client)
	conn.SetReadLimit(wsReadLimit)

	done := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.wsWriter(conn, client, done)
	}()
	defer func() {
		close(done)
		<-writerDone
	}()

	bad := 0
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return // closed, or larger than the read limit
		}
		var req wsRequest
		problem := ""
		switch {
		case len(msg) > wsMaxMessage:
			problem = "message too large (the limit is 4096 bytes)"
		case json.Unmarshal(msg, &req) != nil:
			problem = "message is not valid JSON"
		default:
			problem = s.wsHandle(client, req)
		}
		if problem == "" {
			continue
		}
		bad++
		client.Send(fiber.Map{"type": "error", "message": problem})
		if bad >= wsMaxBadMessages {
			client.Send(fiber.Map{"type": "error", "message": "too many bad messages; closing"})
			time.Sleep(50 * time.Millisecond) // let the writer send it
			return
		}
	}
}

// wsHandle applies one request; it returns a problem for the client or "".
func (s *Server) wsHandle(c *hub.Client, req wsRequest) string {
	switch req.Type {
	case "subscribe":
		switch {
		case req.SessionID != "" && req.EnvironmentID != "":
			return "subscribe to a sessionId or an environmentId, not both"
		case req.SessionID != "":
			if req.Since < 0 {
				return "since must not be negative"
			}
			// The acknowledgement goes out before the replayed events.
			c.Send(fiber.Map{"type": "subscribed", "sessionId": req.SessionID, "since": req.Since})
			if err := s.cfg.Hub.SubscribeSession(c, req.SessionID, req.Since); err != nil {
				s.cfg.Log.Error("replay session", "session", req.SessionID, "err", err)
				return "could not replay the session's events"
			}
		case req.EnvironmentID != "":
			env, err := s.cfg.Store.FindEnvironment(req.EnvironmentID)
			if err != nil {
				return "unknown environment " + req.EnvironmentID
			}
			if req.Since < 0 {
				return "since must not be negative"
			}
			c.Send(fiber.Map{"type": "subscribed", "environmentId": env.ID, "since": req.Since})
			if err := s.cfg.Hub.SubscribeEnvironment(c, env.ID, req.Since); err != nil {
				s.cfg.Log.Error("replay environment", "environment", env.ID, "err", err)
				return "could not replay the environment's events"
			}
		default:
			return "subscribe needs a sessionId or an environmentId"
		}
	case "unsubscribe":
		if req.SessionID == "" && req.EnvironmentID == "" {
			return "unsubscribe needs a sessionId or an environmentId"
		}
		envID := req.EnvironmentID
		if envID != "" {
			if env, err := s.cfg.Store.FindEnvironment(envID); err == nil {
				envID = env.ID
			}
		}
		s.cfg.Hub.Unsubscribe(c, req.SessionID, envID)
		c.Send(fiber.Map{"type": "unsubscribed", "sessionId": req.SessionID, "environmentId": req.EnvironmentID})
	case "ping":
		c.Send(fiber.Map{"type": "pong", "time": time.Now().UTC()})
	default:
		return "unknown message type " + req.Type + " (want subscribe, unsubscribe or ping)"
	}
	return ""
}

// wsWriter is the connection's only writer: queued messages, heartbeats,
// and the resync notice for a client that fell behind.
func (s *Server) wsWriter(conn *websocket.Conn, c *hub.Client, done <-chan struct{}) {
	tick := time.NewTicker(wsHeartbeat)
	defer tick.Stop()
	var deadline time.Time
	write := func(raw []byte) bool {
		// Moving the deadline on every write costs a timer update per
		// message; moving it once a second still cuts a stuck peer within
		// wsWriteTimeout.
		if now := time.Now(); deadline.Sub(now) < wsWriteTimeout-time.Second {
			deadline = now.Add(wsWriteTimeout)
			conn.SetWriteDeadline(deadline)
		}
		if err := conn.WriteMessage(websocket.TextMessage, raw); err != nil {
			conn.Close()
			return false
		}
		return true
	}
	for {
		select {
		case <-done:
			return
		case raw := <-c.Out():
			// Under load, send what has queued up in one frame, one JSON
			// object per line; an idle stream sends one object per frame.
			batch := raw
		drain:
			for len(batch) < wsBatchBytes {
				select {
				case more := <-c.Out():
					batch = append(append(batch[:len(batch):len(batch)], '\n'), more...)
				default:
					break drain
				}
			}
			if !write(batch) {
				return
			}
		case <-c.Lagged():
			msg, _ := json.Marshal(fiber.Map{"type": "resync", "message": "you fell behind and were unsubscribed; subscribe again with since set to the last seq you have"})
			if !write(msg) {
				return
			}
		case now := <-tick.C:
			msg, _ := json.Marshal(fiber.Map{"type": "heartbeat", "time": now.UTC()})
			if !write(msg) {
				return
			}
		}
	}
}

func (s *Server) deploymentEvents(c *fiber.Ctx) error {
	env, err := s.lookup(c)
	if err != nil {
		return err
	}
	since, err := store.ParseSeq(c.Query("since"))
	if err != nil {
		return apiError(fiber.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	d, err := s.cfg.Store.FindDeployment(env.ID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return apiError(fiber.StatusNotFound, CodeNotFound, "deployment %q not found in environment %s", c.Params("id"), env.Name)
	}
	if err != nil {
		return err
	}
	op := d.Operation
	if op == nil {
		op = d.Last
	}
	if op == nil {
		return c.JSON(fiber.Map{"success": true, "events": []any{}})
	}
	evs, err := s.cfg.Hub.SessionEvents(op.SessionID, op.ID, since)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"success": true, "operationId": op.ID, "sessionId": op.SessionID, "events": evs})
}
