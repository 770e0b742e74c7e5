package fleet

import (
	"errors"
	"time"

	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/store"
)

// Environment statuses.
const (
	StatusPending = "pending"
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// AgentConnected implements gateway.Observer: it records the agent's
// hello and the session start.
func (s *Service) AgentConnected(sess *gateway.Session) {
	at := sess.ConnectedAt.UTC()
	_, err := s.cfg.Store.UpdateEnvironment(sess.EnvironmentID, func(env *store.Environment) error {
		env.Agent = store.AgentInfo{
			Hostname:        sess.Hello.Hostname,
			AgentVersion:    sess.Hello.AgentVersion,
			DockerVersion:   sess.Hello.DockerVersion,
			ProtocolVersion: sess.ProtocolVersion,
			OS:              sess.Hello.OS,
			Arch:            sess.Hello.Arch,
		}
		env.ConnectedAt = &at
		env.LastSeenAt = &at
		return nil
	})
	s.logStatusErr(sess, err)
}

// AgentDisconnected implements gateway.Observer: it records when the agent
// was last heard from.
func (s *Service) AgentDisconnected(sess *gateway.Session) {
	seen := sess.LastSeen().UTC()
	_, err := s.cfg.Store.UpdateEnvironment(sess.EnvironmentID, func(env *store.Environment) error {
		env.LastSeenAt = &seen
		return nil
	})
	s.logStatusErr(sess, err)
}

func (s *Service) logStatusErr(sess *gateway.Session, err error) {
	// A deleted environment has no record to update; that is expected.
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.cfg.Log.Error("record agent status", "environment", sess.EnvironmentID, "err", err)
	}
}

// Status derives an environment's status from its record and its live
// session (nil when none).
func Status(env store.Environment, live *gateway.Session) string {
	switch {
	case live != nil:
		return StatusOnline
	case env.ConnectedAt == nil:
		return StatusPending
	}
	return StatusOffline
}

// LastSeen is the freshest of the stored and the live value.
func LastSeen(env store.Environment, live *gateway.Session) *time.Time {
	if live != nil {
		t := live.LastSeen().UTC()
		return &t
	}
	return env.LastSeenAt
}
