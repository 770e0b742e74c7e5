package hub

import (
	"encoding/json"
	"sync"

	"github.com/rsgo/rsgo/shared/protocol"
)

// Client is one subscriber connection. The hub puts messages on Out without
// blocking; the connection's single writer takes them off.
type Client struct {
	out    chan []byte
	lagged chan struct{}

	mu       sync.Mutex
	sessions map[string]*sessionState // by session, ordered by seq
	envs     map[string]*sessionState // by environment, ordered by envSeq
}

// sessionState orders one session's events for this client: while stored
// events are replayed, live ones are held back, and nothing at or below
// the last sent seq goes out again.
type sessionState struct {
	replaying bool
	held      []heldEvent
	last      int64
}

type heldEvent struct {
	ev  protocol.Event
	raw []byte
}

// NewClient returns a client whose queue holds up to queue messages.
func NewClient(queue int) *Client {
	return &Client{out: make(chan []byte, queue), lagged: make(chan struct{}, 1),
		sessions: map[string]*sessionState{}, envs: map[string]*sessionState{}}
}

// Out is the queue the writer drains.
func (c *Client) Out() <-chan []byte { return c.out }

// Lagged is signalled when the client fell behind and was unsubscribed.
func (c *Client) Lagged() <-chan struct{} { return c.lagged }

// Send queues a message of the connection itself (errors, acks); false when
// the queue is full.
func (c *Client) Send(v any) bool {
	raw, err := json.Marshal(v)
	if err != nil {
		return false
	}
	return c.enqueue(raw)
}

func (c *Client) enqueue(raw []byte) bool {
	select {
	case c.out <- raw:
		return true
	default:
		return false
	}
}

// deliver queues the events meant for this client as one message (one
// JSON object per line), keeping session order; false when the queue is
// full.
func (c *Client) deliver(evs []protocol.Event, raws [][]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var msg []byte
	taken := 0
	for i, ev := range evs {
		take := false
		if st := c.sessions[ev.SessionID]; st != nil {
			take = st.admit(ev, ev.Seq, raws[i])
		} else if st := c.envs[ev.EnvironmentID]; st != nil {
			take = st.admit(ev, ev.EnvSeq, raws[i])
		}
		if !take {
			continue
		}
		taken++
		if taken == 1 {
			// The common case, one event: share the encoded bytes, no copy.
			msg = raws[i]
			continue
		}
		if taken == 2 {
			msg = append(append([]byte(nil), msg...), '\n')
		} else {
			msg = append(msg, '\n')
		}
		msg = append(msg, raws[i]...)
	}
	return taken == 0 || c.enqueue(msg)
}

// admit decides whether an event goes out now: held while replaying,
// dropped when already sent (seq at or below the last one), else taken.
func (st *sessionState) admit(ev protocol.Event, seq int64, raw []byte) bool {
	switch {
	case st.replaying:
		st.held = append(st.held, heldEvent{ev, raw})
		return false
	case seq == 0 || seq > st.last:
		st.last = max(st.last, seq)
		return true
	}
	return false
}

func (c *Client) beginEnvReplay(env string, since int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.envs[env] = &sessionState{replaying: true, last: since}
}

// endEnvReplay is endReplay for an environment stream.
func (c *Client) endEnvReplay(env string, stored []protocol.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushReplay(c.envs[env], stored, func(ev protocol.Event) int64 { return ev.EnvSeq })
}

func (c *Client) beginReplay(session string, since int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[session] = &sessionState{replaying: true, last: since}
}

// endReplay sends the stored events, then what arrived live meanwhile.
func (c *Client) endReplay(session string, stored []protocol.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushReplay(c.sessions[session], stored, func(ev protocol.Event) int64 { return ev.Seq })
}

// flushReplay sends stored events, then the live ones held meanwhile, each
// once and in order of seqOf. Called with c.mu held.
func (c *Client) flushReplay(st *sessionState, stored []protocol.Event, seqOf func(protocol.Event) int64) bool {
	if st == nil {
		return true
	}
	st.replaying = false
	for _, ev := range stored {
		if seqOf(ev) <= st.last {
			continue
		}
		raw, err := json.Marshal(ev)
		if err != nil || !c.enqueue(raw) {
			return false
		}
		st.last = seqOf(ev)
	}
	for _, h := range st.held {
		if s := seqOf(h.ev); s != 0 && s <= st.last {
			continue
		}
		if !c.enqueue(h.raw) {
			return false
		}
		st.last = max(st.last, seqOf(h.ev))
	}
	st.held = nil
	return true
}

func (c *Client) removeSession(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, s)
}

func (c *Client) removeEnv(e string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.envs, e)
}

func (c *Client) sessionSubs() map[string]struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]struct{}{}
	for s := range c.sessions {
		out[s] = struct{}{}
	}
	return out
}

func (c *Client) envSubs() map[string]struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]struct{}{}
	for e := range c.envs {
		out[e] = struct{}{}
	}
	return out
}

func (c *Client) clearSubs() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions = map[string]*sessionState{}
	c.envs = map[string]*sessionState{}
}

func (c *Client) markLagged() {
	select {
	case c.lagged <- struct{}{}:
	default:
	}
}
