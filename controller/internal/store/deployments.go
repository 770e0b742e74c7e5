package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// Key layout of deployments.
const (
	depPrefix     = "dep/"     // dep/<id> → Deployment
	depNamePrefix = "depname/" // depname/<env>/<name> → id
)

// Deployment is one stack version deployed under a name in one environment.
type Deployment struct {
	ID            string `json:"id"`
	EnvironmentID string `json:"environmentId"`
	Name          string `json:"name"`
	// StackID is source:product:stack; Version the deployed version.
	StackID string `json:"stackId"`
	Version string `json:"version"`
	// Variables are the resolved values; Secrets names those never shown.
	Variables map[string]string        `json:"variables"`
	Secrets   []string                 `json:"secrets,omitempty"`
	Spec      stack.Spec               `json:"spec"`
	Status    string                   `json:"status"`
	Error     string                   `json:"error,omitempty"`
	Services  []protocol.ServiceStatus `json:"services,omitempty"`
	Operation *OperationRef            `json:"operation,omitempty"`
	Last      *OperationRef            `json:"lastOperation,omitempty"`
	History   []HistoryEntry           `json:"history,omitempty"`
	// Snapshot is what ran before an upgrade; it exists from before the
	// upgrade touches anything until its point of no return or a
	// successful rollback.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// Pending is the target of a running upgrade, applied at its point of
	// no return.
	Pending   *Target   `json:"pending,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// OperationRef is an operation on a deployment.
type OperationRef struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	SessionID  string     `json:"sessionId"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Success    bool       `json:"success"`
	Error      string     `json:"error,omitempty"`
	Phase      string     `json:"phase,omitempty"`
	// FromVersion and ToVersion are set on upgrades and rollbacks.
	FromVersion  string `json:"fromVersion,omitempty"`
	ToVersion    string `json:"toVersion,omitempty"`
	AutoRollback bool   `json:"autoRollback,omitempty"`
	// Unconfirmed: the agent did not confirm the operation; its outcome
	// may still arrive and is then applied.
	Unconfirmed bool `json:"unconfirmed,omitempty"`
}

// Target is a stack version with its resolved variables and spec.
type Target struct {
	StackID   string            `json:"stackId"`
	Version   string            `json:"version"`
	Variables map[string]string `json:"variables"`
	Secrets   []string          `json:"secrets,omitempty"`
	Spec      stack.Spec        `json:"spec"`
}

// Snapshot is the state a rollback restores: the version, every variable
// value and every service's spec with its image pinned to what ran.
type Snapshot struct {
	Target
	Services    []protocol.ServiceStatus `json:"services"`
	Description string                   `json:"description"`
	CreatedAt   time.Time                `json:"createdAt"`
	// OperationID is the upgrade that took it.
	OperationID string `json:"operationId"`
}

// HistoryEntry is one finished operation, for the deployment's history.
type HistoryEntry struct {
	OperationID string    `json:"operationId"`
	Kind        string    `json:"kind"`
	FromVersion string    `json:"fromVersion,omitempty"`
	ToVersion   string    `json:"toVersion,omitempty"`
	Success     bool      `json:"success"`
	Error       string    `json:"error,omitempty"`
	At          time.Time `json:"at"`
}

// MaxHistory bounds a deployment's history.
const MaxHistory = 20

// CreateDeployment stores a new deployment; a name taken in the same
// environment is ErrConflict.
func (s *Store) CreateDeployment(d Deployment) error {
	nameKey := depNamePrefix + d.EnvironmentID + "/" + d.Name
	return s.update(func(txn *badger.Txn) error {
		var existing string
		switch err := getJSON(txn, nameKey, &existing); {
		case err == nil:
			return fmt.Errorf("deployment name %q: %w", d.Name, ErrConflict)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if err := putJSON(txn, depPrefix+d.ID, d); err != nil {
			return err
		}
		return putJSON(txn, nameKey, d.ID)
	})
}

// Deployment returns a deployment by id.
func (s *Store) Deployment(id string) (Deployment, error) {
	var d Deployment
	err := s.db.View(func(txn *badger.Txn) error { return getJSON(txn, depPrefix+id, &d) })
	return d, err
}

// FindDeployment looks a deployment of an environment up by id or name.
func (s *Store) FindDeployment(envID, idOrName string) (Deployment, error) {
	var d Deployment
	err := s.db.View(func(txn *badger.Txn) error {
		if err := getJSON(txn, depPrefix+idOrName, &d); err == nil && d.EnvironmentID == envID {
			return nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		var id string
		if err := getJSON(txn, depNamePrefix+envID+"/"+idOrName, &id); err != nil {
			return err
		}
		return getJSON(txn, depPrefix+id, &d)
	})
	return d, err
}

// Deployments lists the deployments of one environment ("" for all),
// ordered by name.
func (s *Store) Deployments(envID string) ([]Deployment, error) {
	out := []Deployment{}
	err := s.db.View(func(txn *badger.Txn) error {
		return eachJSON(txn, depPrefix, func(_ string, val []byte) error {
			var d Deployment
			if err := json.Unmarshal(val, &d); err != nil {
				return err
			}
			if envID == "" || d.EnvironmentID == envID {
				out = append(out, d)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// UpdateDeployment applies fn to the stored deployment and writes it back.
// fn may return ErrConflict (or any error) to leave it unchanged.
func (s *Store) UpdateDeployment(id string, fn func(*Deployment) error) (Deployment, error) {
	var d Deployment
	err := s.update(func(txn *badger.Txn) error {
		if err := getJSON(txn, depPrefix+id, &d); err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
		return putJSON(txn, depPrefix+id, d)
	})
	return d, err
}

// DeleteDeployment removes a deployment and frees its name.
func (s *Store) DeleteDeployment(id string) error {
	return s.update(func(txn *badger.Txn) error {
		var d Deployment
		if err := getJSON(txn, depPrefix+id, &d); err != nil {
			return err
		}
		if err := deleteKey(txn, depPrefix+id); err != nil {
			return err
		}
		return deleteKey(txn, depNamePrefix+d.EnvironmentID+"/"+d.Name)
	})
}
