// Package hub relays operation progress to subscribers: it stores each
// event once with its per-session sequence number, publishes it to the
// clients subscribed to its session or environment, and replays stored
// events to late or reconnecting subscribers. A client that cannot keep up
// is cut from the fast path and told to resync; it never slows the others.
package hub

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Hub is the fan-out point.
type Hub struct {
	store *store.Store
	log   *slog.Logger

	mu       sync.RWMutex
	sessions map[string]map[*Client]struct{}
	envs     map[string]map[*Client]struct{}
}

// New returns a hub that stores events in st.
func New(st *store.Store, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{store: st, log: log, sessions: map[string]map[*Client]struct{}{}, envs: map[string]map[*Client]struct{}{}}
}

// Ingest stores the events an agent sent (the environment comes from the
// agent's certificate, not from the events) and publishes the new ones.
func (h *Hub) Ingest(envID string, evs []protocol.Event) (protocol.OpEventsAck, error) {
	for i := range evs {
		evs[i].EnvironmentID = envID
		evs[i].Type = protocol.EventProgress
		if evs[i].Percent >= 100 {
			evs[i].Percent = 99
		}
	}
	stored, acked, err := h.store.AppendEvents(evs)
	if err != nil {
		return protocol.OpEventsAck{}, err
	}
	h.publish(stored)
	return protocol.OpEventsAck{Acked: acked}, nil
}

// Final stores and publishes the one completed or failed event of an
// operation; a second call for the same operation changes nothing.
func (h *Hub) Final(ev protocol.Event) {
	ev.OpSeq = store.FinalOpSeq
	ev.Percent = 100
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	stored, _, err := h.store.AppendEvents([]protocol.Event{ev})
	if err != nil {
		h.log.Error("store final event", "operation", ev.OperationID, "err", err)
		return
	}
	for _, e := range stored {
		h.Publish(e)
	}
}

// Status publishes a status change (environment online/offline, deployment
// status) to the environment's subscribers. It is kept in the
// environment's stream only, for subscribers that resume with since.
func (h *Hub) Status(ev protocol.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	stored, err := h.store.AppendEnvironmentEvent(ev)
	if err != nil {
		h.log.Error("store status event", "environment", ev.EnvironmentID, "err", err)
		stored = ev
	}
	h.Publish(stored)
}

// Publish delivers an event to every client subscribed to its session or
// its environment, once per client, without waiting for any of them.
func (h *Hub) Publish(ev protocol.Event) { h.publish([]protocol.Event{ev}) }

// publish delivers events in order; each client gets what is for it as one
// queued message, so a burst costs one wake-up per client, not one per event.
func (h *Hub) publish(evs []protocol.Event) {
	if len(evs) == 0 {
		return
	}
	raws := make([][]byte, len(evs))
	for i, ev := range evs {
		raw, err := json.Marshal(ev)
		if err != nil {
			return
		}
		raws[i] = raw
	}
	h.mu.RLock()
	targets := map[*Client]struct{}{}
	for _, ev := range evs {
		for c := range h.sessions[ev.SessionID] {
			targets[c] = struct{}{}
		}
		for c := range h.envs[ev.EnvironmentID] {
			targets[c] = struct{}{}
		}
	}
	h.mu.RUnlock()
	for c := range targets {
		if !c.deliver(evs, raws) {
			h.lag(c)
		}
	}
}

// SessionEvents returns stored events of a session (of one operation when
// operationID is set) with seq > since.
func (h *Hub) SessionEvents(sessionID, operationID string, since int64) ([]protocol.Event, error) {
	return h.store.SessionEvents(sessionID, operationID, since)
}

// lag cuts a client that cannot keep up from every subscription and tells
// it to resync.
func (h *Hub) lag(c *Client) {
	h.detach(c)
	c.markLagged()
}

func (h *Hub) detach(c *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range c.sessionSubs() {
		delete(h.sessions[s], c)
		if len(h.sessions[s]) == 0 {
			delete(h.sessions, s)
		}
	}
	for e := range c.envSubs() {
		delete(h.envs[e], c)
		if len(h.envs[e]) == 0 {
			delete(h.envs, e)
		}
	}
	c.clearSubs()
}

// Remove forgets a client that disconnected.
func (h *Hub) Remove(c *Client) { h.detach(c) }

// SubscribeSession subscribes c to a session and replays what it missed:
// every stored event with seq > since, then live ones, in order and once.
func (h *Hub) SubscribeSession(c *Client, sessionID string, since int64) error {
	c.beginReplay(sessionID, since)
	h.mu.Lock()
	if h.sessions[sessionID] == nil {
		h.sessions[sessionID] = map[*Client]struct{}{}
	}
	h.sessions[sessionID][c] = struct{}{}
	h.mu.Unlock()
	evs, err := h.store.SessionEvents(sessionID, "", since)
	if err != nil {
		return err
	}
	if !c.endReplay(sessionID, evs) {
		h.lag(c)
	}
	return nil
}

// SubscribeEnvironment subscribes c to every event of an environment;
// with since > 0 it first replays the stream's events with envSeq > since.
func (h *Hub) SubscribeEnvironment(c *Client, envID string, since int64) error {
	c.beginEnvReplay(envID, since)
	h.mu.Lock()
	if h.envs[envID] == nil {
		h.envs[envID] = map[*Client]struct{}{}
	}
	h.envs[envID][c] = struct{}{}
	h.mu.Unlock()
	var evs []protocol.Event
	if since > 0 {
		var err error
		if evs, err = h.store.EnvironmentEvents(envID, since); err != nil {
			return err
		}
	}
	if !c.endEnvReplay(envID, evs) {
		h.lag(c)
	}
	return nil
}

// Unsubscribe ends one subscription.
func (h *Hub) Unsubscribe(c *Client, sessionID, envID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sessionID != "" {
		delete(h.sessions[sessionID], c)
		c.removeSession(sessionID)
	}
	if envID != "" {
		delete(h.envs[envID], c)
		c.removeEnv(envID)
	}
}

// Subscribers counts clients, for tests and metrics.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[*Client]struct{}{}
	for _, m := range h.sessions {
		for c := range m {
			seen[c] = struct{}{}
		}
	}
	for _, m := range h.envs {
		for c := range m {
			seen[c] = struct{}{}
		}
	}
	return len(seen)
}
