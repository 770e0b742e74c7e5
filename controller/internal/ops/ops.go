// Package ops is the controller's state machine for deployments: it
// validates and records an operation before the agent hears of it, hands it
// to the agent, applies the agent's result exactly once, and corrects drift
// when an agent reconnects.
package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Deployment statuses (SPEC §4).
const (
	StatusPending     = "Pending"
	StatusDeploying   = "Deploying"
	StatusUpgrading   = "Upgrading"
	StatusRollingBack = "RollingBack"
	StatusStopping    = "Stopping"
	StatusStarting    = "Starting"
	StatusRemoving    = "Removing"
	StatusRunning     = "Running"
	StatusStopped     = "Stopped"
	StatusFailed      = "Failed"
)

// Errors the API maps onto statuses.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrOffline  = errors.New("Environment agent is offline")
)

// InvalidError is bad input: one message per offending field.
type InvalidError struct {
	Fields []catalog.FieldError
}

func (e *InvalidError) Error() string {
	if len(e.Fields) == 1 {
		return e.Fields[0].Error()
	}
	return (&catalog.ValidationError{Fields: e.Fields}).Error()
}

func invalid(field, format string, a ...any) *InvalidError {
	return &InvalidError{Fields: []catalog.FieldError{{Field: field, Message: fmt.Sprintf(format, a...)}}}
}

// Agent is what ops needs of the gateway.
type Agent interface {
	Call(ctx context.Context, environmentID, typ string, body, out any) error
	Session(environmentID string) *gateway.Session
}

// Events receives what ops has to tell subscribers.
type Events interface {
	// Final records the one completed or failed event of an operation.
	Final(ev protocol.Event)
	// Status announces a deployment's new status.
	Status(ev protocol.Event)
}

// Config configures a Service.
type Config struct {
	Store   *store.Store
	Catalog *catalog.Catalog
	Agent   Agent
	Events  Events
	Log     *slog.Logger
	// HealthTimeout is how long services may take to turn healthy.
	HealthTimeout time.Duration
}

// Service runs deployment operations.
type Service struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	waiters map[string][]chan struct{} // operation id → waiters
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Catalog == nil || cfg.Agent == nil {
		return nil, errors.New("ops: store, catalog and agent are required")
	}
	if cfg.Events == nil {
		cfg.Events = noEvents{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, log: cfg.Log, waiters: map[string][]chan struct{}{}, ctx: ctx, cancel: cancel}, nil
}

// Close stops background work (reconciles) and waits for it.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// NewID returns a random id with a prefix.
func NewID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// DeployRequest is the body of POST .../deployments.
type DeployRequest struct {
	Name      string            `json:"name"`
	StackID   string            `json:"stackId"`
	Variables map[string]string `json:"variables"`
	SessionID string            `json:"sessionId"`
}

// Accepted is what an operation request answers.
type Accepted struct {
	DeploymentID string `json:"deploymentId"`
	OperationID  string `json:"operationId"`
	SessionID    string `json:"sessionId"`
}

// Deploy validates the request, stores the deployment and hands the
// operation to the agent.
func (s *Service) Deploy(ctx context.Context, envID string, req DeployRequest) (Accepted, error) {
	if !store.IsValidName(req.Name) {
		return Accepted{}, invalid("name", "%q must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'", req.Name)
	}
	if req.StackID == "" {
		return Accepted{}, invalid("stackId", "is required")
	}
	version, err := s.cfg.Catalog.Lookup(req.StackID)
	if errors.Is(err, catalog.ErrNotFound) {
		return Accepted{}, invalid("stackId", "%v", err)
	}
	if err != nil {
		return Accepted{}, err
	}
	values, err := catalog.Resolve(version.Variables, req.Variables)
	var verr *catalog.ValidationError
	if errors.As(err, &verr) {
		return Accepted{}, &InvalidError{Fields: verr.Fields}
	}
	if err != nil {
		return Accepted{}, err
	}
	if _, err := s.cfg.Store.FindDeployment(envID, req.Name); err == nil {
		return Accepted{}, fmt.Errorf("%w: a deployment named %q already exists in this environment", ErrConflict, req.Name)
	}
	if s.cfg.Agent.Session(envID) == nil {
		return Accepted{}, ErrOffline
	}
	depID := NewID("dep-")
	spec, err := version.Spec(ctx, depID, req.Name, values)
	if err != nil {
		return Accepted{}, invalid("stackId", "%v", err)
	}
	var secrets []string
	for _, v := range version.Variables {
		if v.Secret() {
			secrets = append(secrets, v.Name)
		}
	}
	now := time.Now().UTC()
	op := newOperation(protocol.OpDeploy, req.SessionID, now)
	dep := store.Deployment{
		ID: depID, EnvironmentID: envID, Name: req.Name, StackID: version.StackID, Version: version.Version,
		Variables: values, Secrets: secrets, Spec: spec, Status: StatusDeploying, Operation: &op,
		CreatedAt: now, UpdatedAt: now,
	}
	if err := s.cfg.Store.CreateDeployment(dep); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Accepted{}, fmt.Errorf("%w: a deployment named %q already exists in this environment", ErrConflict, req.Name)
		}
		return Accepted{}, err
	}
	s.log.Info("deploy", "deployment", depID, "name", req.Name, "environment", envID, "stack", version.PinnedID(), "operation", op.ID)
	return s.dispatch(ctx, dep, op, protocol.Operation{ID: op.ID, Kind: protocol.OpDeploy, DeploymentID: depID, Spec: &spec, HealthTimeout: s.cfg.HealthTimeout})
}

func newOperation(kind, sessionID string, now time.Time) store.OperationRef {
	if sessionID == "" {
		sessionID = NewID("ses-")
	}
	return store.OperationRef{ID: NewID("op-"), Kind: kind, SessionID: sessionID, StartedAt: now}
}

// Lifecycle runs stop, start or remove on an existing deployment.
func (s *Service) Lifecycle(ctx context.Context, envID, depRef, kind, sessionID string, removeVolumes bool) (Accepted, error) {
	dep, err := s.cfg.Store.FindDeployment(envID, depRef)
	if errors.Is(err, store.ErrNotFound) {
		return Accepted{}, fmt.Errorf("%w: deployment %q", ErrNotFound, depRef)
	}
	if err != nil {
		return Accepted{}, err
	}
	if s.cfg.Agent.Session(envID) == nil {
		return Accepted{}, ErrOffline
	}
	status := map[string]string{protocol.OpStop: StatusStopping, protocol.OpStart: StatusStarting, protocol.OpRemove: StatusRemoving}[kind]
	allowed := map[string][]string{
		protocol.OpStop:   {StatusRunning, StatusFailed},
		protocol.OpStart:  {StatusStopped, StatusFailed},
		protocol.OpRemove: {StatusRunning, StatusStopped, StatusFailed, StatusPending},
	}[kind]
	op := newOperation(kind, sessionID, time.Now().UTC())
	dep, err = s.cfg.Store.UpdateDeployment(dep.ID, func(d *store.Deployment) error {
		if d.Operation != nil {
			return fmt.Errorf("%w: deployment %s is busy with %s (operation %s)", ErrConflict, d.Name, d.Operation.Kind, d.Operation.ID)
		}
		if !slices.Contains(allowed, d.Status) {
			return fmt.Errorf("%w: cannot %s a deployment that is %s", ErrConflict, kind, d.Status)
		}
		d.Status, d.Operation, d.UpdatedAt = status, &op, op.StartedAt
		return nil
	})
	if err != nil {
		return Accepted{}, err
	}
	s.log.Info(kind, "deployment", dep.ID, "name", dep.Name, "operation", op.ID)
	wire := protocol.Operation{ID: op.ID, Kind: kind, DeploymentID: dep.ID, RemoveVolumes: removeVolumes, HealthTimeout: s.cfg.HealthTimeout}
	if kind != protocol.OpRemove {
		spec := dep.Spec
		wire.Spec = &spec
	}
	return s.dispatch(ctx, dep, op, wire)
}

// dispatch hands a recorded operation to the agent. If the agent does not
// confirm it, the deployment is marked Failed; a result that still arrives
// later is applied as usual.
func (s *Service) dispatch(ctx context.Context, dep store.Deployment, op store.OperationRef, wire protocol.Operation) (Accepted, error) {
	acc := Accepted{DeploymentID: dep.ID, OperationID: op.ID, SessionID: op.SessionID}
	wire.SessionID = op.SessionID
	s.cfg.Events.Status(statusEvent(dep))
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var reply protocol.OpAccepted
	err := s.cfg.Agent.Call(cctx, dep.EnvironmentID, protocol.TypeOpStart, wire, &reply)
	if err == nil {
		return acc, nil
	}
	s.log.Warn("agent did not accept the operation", "deployment", dep.ID, "operation", op.ID, "err", err)
	s.finish(dep.ID, protocol.OpResult{OperationID: op.ID, DeploymentID: dep.ID, Kind: wire.Kind,
		Error: "the agent did not accept the operation: " + err.Error(), FinishedAt: time.Now().UTC()}, true)
	if errors.Is(err, gateway.ErrAgentOffline) {
		return acc, ErrOffline
	}
	return acc, fmt.Errorf("agent: %w", err)
}

// ApplyResult records an operation's outcome. It is idempotent: a result
// for an operation that is not the deployment's running one is ignored.
func (s *Service) ApplyResult(envID string, res protocol.OpResult) error {
	dep, err := s.cfg.Store.Deployment(res.DeploymentID)
	if errors.Is(err, store.ErrNotFound) {
		s.log.Info("result for an unknown deployment ignored", "deployment", res.DeploymentID, "operation", res.OperationID)
		return nil
	}
	if err != nil {
		return err
	}
	if dep.EnvironmentID != envID {
		return fmt.Errorf("deployment %s does not belong to environment %s", res.DeploymentID, envID)
	}
	s.finish(dep.ID, res, false)
	return nil
}

// finish applies a result to the deployment if it is for its running
// operation (or for one the agent did not confirm), and wakes waiters.
func (s *Service) finish(depID string, res protocol.OpResult, local bool) {
	removed, autoRollback := false, false
	var sessionID, envID string
	var final protocol.Event
	var pruned []string
	dep, err := s.cfg.Store.UpdateDeployment(depID, func(d *store.Deployment) error {
		op := d.Operation
		late := op == nil && d.Last != nil && d.Last.ID == res.OperationID && d.Last.Unconfirmed && !local
		if late {
			// The agent did run an operation the controller had given up on:
			// its outcome says what runs now.
			op = d.Last
		} else if op == nil || op.ID != res.OperationID {
			return errSkip
		}
		now := res.FinishedAt
		if now.IsZero() {
			now = time.Now().UTC()
		}
		op.FinishedAt, op.Success, op.Error, op.Phase, op.Unconfirmed = &now, res.Success, res.Error, res.Phase, local
		final = protocol.Event{Type: protocol.EventCompleted, SessionID: op.SessionID, EnvironmentID: d.EnvironmentID,
			DeploymentID: d.ID, OperationID: op.ID, Operation: op.Kind, Message: op.Kind + " completed", Time: now}
		if !res.Success {
			canRollback := d.Snapshot != nil
			final.Type, final.Phase, final.Error, final.CanRollback = protocol.EventFailed, res.Phase, res.Error, &canRollback
			final.Message = op.Kind + " failed"
		}
		if res.Success && res.Kind == protocol.OpRemove {
			removed = true
			return errSkip
		}
		complete(d, res)
		d.Last, d.Operation, d.UpdatedAt = op, nil, now
		if !late {
			d.History = append(d.History, store.HistoryEntry{OperationID: op.ID, Kind: op.Kind, FromVersion: op.FromVersion,
				ToVersion: orDefault(op.ToVersion, d.Version), Success: res.Success, Error: res.Error, At: now})
			if len(d.History) > store.MaxHistory {
				for _, h := range d.History[:len(d.History)-store.MaxHistory] {
					pruned = append(pruned, h.OperationID)
				}
				d.History = d.History[len(d.History)-store.MaxHistory:]
			}
		}
		if final.CanRollback != nil {
			canRollback := d.Snapshot != nil && d.Status == StatusFailed
			final.CanRollback = &canRollback
		}
		autoRollback = op.Kind == protocol.OpUpgrade && !res.Success && op.AutoRollback && d.Snapshot != nil
		sessionID, envID = op.SessionID, d.EnvironmentID
		return nil
	})
	switch {
	case removed:
		if err := s.cfg.Store.DeleteDeployment(depID); err != nil {
			s.log.Error("delete removed deployment", "deployment", depID, "err", err)
		}
		s.log.Info("deployment removed", "deployment", depID, "operation", res.OperationID)
		s.cfg.Events.Status(protocol.Event{Type: protocol.EventDeployment, EnvironmentID: final.EnvironmentID, DeploymentID: depID, Status: "Removed", Time: time.Now().UTC()})
	case errors.Is(err, errSkip):
	case err != nil:
		s.log.Error("apply result", "deployment", depID, "operation", res.OperationID, "err", err)
	default:
		s.log.Info("operation finished", "deployment", depID, "operation", res.OperationID, "kind", res.Kind, "success", res.Success, "phase", res.Phase, "error", res.Error)
		s.cfg.Events.Status(statusEvent(dep))
	}
	if final.Type != "" && (err == nil || removed) {
		s.cfg.Events.Final(final)
	}
	for _, id := range pruned {
		if err := s.cfg.Store.DeleteOperationEvents(id); err != nil {
			s.log.Warn("prune events", "operation", id, "err", err)
		}
	}
	s.wake(res.OperationID)
	if autoRollback {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.log.Info("upgrade failed; rolling back by itself", "deployment", depID)
			if _, err := s.Rollback(s.ctx, envID, depID, sessionID); err != nil {
				s.log.Error("automatic rollback", "deployment", depID, "err", err)
			}
		}()
	}
}

var errSkip = errors.New("skip")

// statusEvent announces a deployment's status to environment subscribers.
func statusEvent(d store.Deployment) protocol.Event {
	ev := protocol.Event{Type: protocol.EventDeployment, EnvironmentID: d.EnvironmentID, DeploymentID: d.ID,
		Status: d.Status, Version: d.Version, Error: d.Error, Time: time.Now().UTC()}
	if d.Operation != nil {
		ev.OperationID, ev.Operation = d.Operation.ID, d.Operation.Kind
	}
	return ev
}

type noEvents struct{}

func (noEvents) Final(protocol.Event)  {}
func (noEvents) Status(protocol.Event) {}

// complete moves the deployment to the state the result describes. For an
// upgrade, success is the point of no return: the target becomes the
// deployment and the snapshot goes; failure keeps the snapshot.
func complete(d *store.Deployment, res protocol.OpResult) {
	if res.Services != nil {
		d.Services = res.Services
	}
	if !res.Success {
		d.Status, d.Error = StatusFailed, failure(res)
		d.Pending = nil
		return
	}
	d.Error = ""
	switch res.Kind {
	case protocol.OpStop:
		d.Status = StatusStopped
	case protocol.OpUpgrade:
		if t := d.Pending; t != nil {
			d.StackID, d.Version, d.Variables, d.Secrets, d.Spec = t.StackID, t.Version, t.Variables, t.Secrets, t.Spec
		}
		d.Pending, d.Snapshot, d.Status = nil, nil, StatusRunning
	case protocol.OpRollback:
		if snap := d.Snapshot; snap != nil {
			d.StackID, d.Version, d.Variables, d.Secrets, d.Spec = snap.StackID, snap.Version, snap.Variables, snap.Secrets, snap.Spec
		}
		d.Pending, d.Snapshot, d.Status = nil, nil, StatusRunning
	default:
		d.Status = StatusRunning
	}
}

// failure is the deployment error for a failed result: phase and cause.
func failure(res protocol.OpResult) string {
	if res.Phase == "" {
		return res.Error
	}
	return res.Phase + ": " + res.Error
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Wait blocks until the operation is no longer running, or ctx ends.
func (s *Service) Wait(ctx context.Context, depID, opID string) error {
	ch := make(chan struct{})
	s.mu.Lock()
	s.waiters[opID] = append(s.waiters[opID], ch)
	s.mu.Unlock()
	defer s.unwait(opID, ch)
	// The result may have come in before we registered.
	if d, err := s.cfg.Store.Deployment(depID); err != nil || d.Operation == nil || d.Operation.ID != opID {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) unwait(opID string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.waiters[opID]
	for i, c := range list {
		if c == ch {
			s.waiters[opID] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(s.waiters[opID]) == 0 {
		delete(s.waiters, opID)
	}
}

func (s *Service) wake(opID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.waiters[opID] {
		close(ch)
	}
	delete(s.waiters, opID)
}
