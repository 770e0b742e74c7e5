package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout.
const (
	envPrefix     = "env/"     // env/<id> → Environment
	envNamePrefix = "envname/" // envname/<name> → id
	tokenPrefix   = "token/"   // token/<id> → JoinToken
	deletedPrefix = "deleted/" // deleted/<id> → DeletedEnvironment
)

// Environment is one Docker host served by one agent.
type Environment struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// CertSerial is the serial of the one agent certificate accepted for this
	// environment. Enrolling again replaces it, which revokes the old one.
	CertSerial string     `json:"certSerial,omitempty"`
	EnrolledAt *time.Time `json:"enrolledAt,omitempty"`
	Agent      AgentInfo  `json:"agent"`
	// ConnectedAt is when the current or last session started.
	ConnectedAt *time.Time `json:"connectedAt,omitempty"`
	// LastSeenAt is when the agent last answered, as of the last write.
	LastSeenAt *time.Time `json:"lastSeenAt,omitempty"`
}

// AgentInfo is what the agent said about itself in its last hello.
type AgentInfo struct {
	Hostname        string `json:"hostname,omitempty"`
	AgentVersion    string `json:"agentVersion,omitempty"`
	DockerVersion   string `json:"dockerVersion,omitempty"`
	ProtocolVersion int    `json:"protocolVersion,omitempty"`
	OS              string `json:"os,omitempty"`
	Arch            string `json:"arch,omitempty"`
}

// JoinToken is the stored half of a join token: the secret is kept only as
// a hash.
type JoinToken struct {
	ID            string     `json:"id"`
	EnvironmentID string     `json:"environmentId"`
	SecretHash    string     `json:"secretHash"`
	CreatedAt     time.Time  `json:"createdAt"`
	ExpiresAt     time.Time  `json:"expiresAt"`
	UsedAt        *time.Time `json:"usedAt,omitempty"`
}

// DeletedEnvironment is the tombstone of a deleted environment, kept so that
// a refused certificate can be explained.
type DeletedEnvironment struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	DeletedAt time.Time `json:"deletedAt"`
}

// CreateEnvironment stores a new environment together with its first join
// token. A taken name is ErrConflict.
func (s *Store) CreateEnvironment(env Environment, tok JoinToken) error {
	return s.update(func(txn *badger.Txn) error {
		var existing string
		switch err := getJSON(txn, envNamePrefix+env.Name, &existing); {
		case err == nil:
			return fmt.Errorf("environment name %q: %w", env.Name, ErrConflict)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := putJSON(txn, envPrefix+env.ID, env); err != nil {
			return err
		}
		if err := putJSON(txn, envNamePrefix+env.Name, env.ID); err != nil {
			return err
		}
		return putJSON(txn, tokenPrefix+tok.ID, tok)
	})
}

// Environment returns the environment with this id.
func (s *Store) Environment(id string) (Environment, error) {
	var env Environment
	err := s.db.View(func(txn *badger.Txn) error { return getJSON(txn, envPrefix+id, &env) })
	return env, err
}

// FindEnvironment looks an environment up by id, then by name.
func (s *Store) FindEnvironment(idOrName string) (Environment, error) {
	var env Environment
	err := s.db.View(func(txn *badger.Txn) error {
		err := getJSON(txn, envPrefix+idOrName, &env)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		var id string
		if err := getJSON(txn, envNamePrefix+idOrName, &id); err != nil {
			return err
		}
		return getJSON(txn, envPrefix+id, &env)
	})
	return env, err
}

// Environments lists every environment ordered by name.
func (s *Store) Environments() ([]Environment, error) {
	var ids []string
	out := []Environment{}
	err := s.db.View(func(txn *badger.Txn) error {
		if err := eachJSON(txn, envNamePrefix, func(_ string, val []byte) error {
			var id string
			if err := json.Unmarshal(val, &id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			var env Environment
			if err := getJSON(txn, envPrefix+id, &env); err != nil {
				return err
			}
			out = append(out, env)
		}
		return nil
	})
	return out, err
}

// UpdateEnvironment applies fn to the stored environment and writes it back.
func (s *Store) UpdateEnvironment(id string, fn func(*Environment) error) (Environment, error) {
	var env Environment
	err := s.update(func(txn *badger.Txn) error {
		if err := getJSON(txn, envPrefix+id, &env); err != nil {
			return err
		}
		if err := fn(&env); err != nil {
			return err
		}
		return putJSON(txn, envPrefix+id, env)
	})
	return env, err
}

// DeleteEnvironment removes the environment and its join tokens and leaves a
// tombstone.
func (s *Store) DeleteEnvironment(id string, now time.Time) error {
	return s.update(func(txn *badger.Txn) error {
		var env Environment
		if err := getJSON(txn, envPrefix+id, &env); err != nil {
			return err
		}
		var tokens []string
		if err := eachJSON(txn, tokenPrefix, func(key string, val []byte) error {
			var tok JoinToken
			if err := json.Unmarshal(val, &tok); err != nil {
				return err
			}
			if tok.EnvironmentID == id {
				tokens = append(tokens, key)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, key := range append(tokens, envPrefix+id, envNamePrefix+env.Name) {
			if err := deleteKey(txn, key); err != nil {
				return err
			}
		}
		return putJSON(txn, deletedPrefix+id, DeletedEnvironment{ID: id, Name: env.Name, DeletedAt: now})
	})
}

// Deleted returns the tombstone of a deleted environment.
func (s *Store) Deleted(id string) (DeletedEnvironment, error) {
	var d DeletedEnvironment
	err := s.db.View(func(txn *badger.Txn) error { return getJSON(txn, deletedPrefix+id, &d) })
	return d, err
}

// PutJoinToken stores a join token for an existing environment.
func (s *Store) PutJoinToken(tok JoinToken) error {
	return s.update(func(txn *badger.Txn) error {
		var env Environment
		if err := getJSON(txn, envPrefix+tok.EnvironmentID, &env); err != nil {
			return err
		}
		return putJSON(txn, tokenPrefix+tok.ID, tok)
	})
}

// RedeemJoinToken loads a token and its environment in one transaction and
// lets fn check and change both; both are written back only when fn
// succeeds. Two agents racing for one token cannot both win: the loser's
// transaction is re-run and fn sees the token as used.
func (s *Store) RedeemJoinToken(tokenID string, fn func(*JoinToken, *Environment) error) (Environment, error) {
	var env Environment
	err := s.update(func(txn *badger.Txn) error {
		var tok JoinToken
		if err := getJSON(txn, tokenPrefix+tokenID, &tok); err != nil {
			return fmt.Errorf("join token: %w", err)
		}
		if err := getJSON(txn, envPrefix+tok.EnvironmentID, &env); err != nil {
			return fmt.Errorf("environment of join token: %w", err)
		}
		if err := fn(&tok, &env); err != nil {
			return err
		}
		if err := putJSON(txn, tokenPrefix+tok.ID, tok); err != nil {
			return err
		}
		return putJSON(txn, envPrefix+env.ID, env)
	})
	return env, err
}

// PruneJoinTokens deletes tokens that expired before cutoff; it returns how
// many it removed.
func (s *Store) PruneJoinTokens(cutoff time.Time) (int, error) {
	var n int
	err := s.update(func(txn *badger.Txn) error {
		var stale []string
		if err := eachJSON(txn, tokenPrefix, func(key string, val []byte) error {
			var tok JoinToken
			if err := json.Unmarshal(val, &tok); err != nil {
				return err
			}
			if tok.ExpiresAt.Before(cutoff) {
				stale = append(stale, key)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, key := range stale {
			if err := deleteKey(txn, key); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	return n, err
}

// IsValidName reports whether name is a DNS-label style environment name.
func IsValidName(name string) bool {
	if len(name) == 0 || len(name) > 63 || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}
