package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// Reasons an upgrade is not possible (SPEC §6, exact strings).
const (
	ReasonNotRunning = "Deployment must be running"
	ReasonNoNewer    = "No newer version available"
	ReasonNoProduct  = "Product not found in catalog"
	ReasonOffline    = "Environment agent is offline"
)

// UpgradeCheck is the answer of GET .../upgrade/check.
type UpgradeCheck struct {
	UpgradeAvailable    bool     `json:"upgradeAvailable"`
	CurrentVersion      string   `json:"currentVersion"`
	LatestVersion       *string  `json:"latestVersion"`
	LatestStackID       *string  `json:"latestStackId"`
	AvailableVersions   []string `json:"availableVersions"`
	NewVariables        []string `json:"newVariables"`
	RemovedVariables    []string `json:"removedVariables"`
	CanUpgrade          bool     `json:"canUpgrade"`
	CannotUpgradeReason *string  `json:"cannotUpgradeReason"`
}

// newerVersions lists the versions a deployment at current may upgrade to,
// ascending. A pre-release is offered only to a deployment on the same
// pre-release channel (2.0.0-rc.1 → 2.0.0-rc.2, never stable → rc).
func newerVersions(st *catalog.Stack, current *semver.Version) []*catalog.Version {
	var out []*catalog.Version
	for _, v := range st.Versions {
		sv := v.Semver()
		if !sv.GreaterThan(current) {
			continue
		}
		if sv.Prerelease() != "" && (current.Prerelease() == "" || channel(sv) != channel(current)) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// channel is the pre-release's first identifier: "rc" of "rc.2".
func channel(v *semver.Version) string {
	c, _, _ := strings.Cut(v.Prerelease(), ".")
	return c
}

// CheckUpgrade tells whether a deployment can be upgraded and to what.
func (s *Service) CheckUpgrade(envID, depRef string) (UpgradeCheck, error) {
	d, err := s.find(envID, depRef)
	if err != nil {
		return UpgradeCheck{}, err
	}
	out := UpgradeCheck{CurrentVersion: d.Version, AvailableVersions: []string{}, NewVariables: []string{}, RemovedVariables: []string{}}
	reason := func(r string) (UpgradeCheck, error) {
		out.CannotUpgradeReason = &r
		return out, nil
	}
	st, err := s.cfg.Catalog.Stack(d.StackID)
	if err != nil {
		return reason(ReasonNoProduct)
	}
	current, err := semver.StrictNewVersion(d.Version)
	if err != nil {
		return UpgradeCheck{}, fmt.Errorf("deployment version %q: %w", d.Version, err)
	}
	newer := newerVersions(st, current)
	for _, v := range newer {
		out.AvailableVersions = append(out.AvailableVersions, v.Version)
	}
	if len(newer) > 0 {
		latest := newer[len(newer)-1]
		out.UpgradeAvailable = true
		out.LatestVersion, out.LatestStackID = &latest.Version, ptr(latest.PinnedID())
		out.NewVariables, out.RemovedVariables = variableDiff(d.Variables, latest.Variables)
	}
	switch {
	case d.Status != StatusRunning:
		return reason(ReasonNotRunning)
	case len(newer) == 0:
		return reason(ReasonNoNewer)
	case s.cfg.Agent.Session(envID) == nil:
		return reason(ReasonOffline)
	}
	out.CanUpgrade = true
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// variableDiff names variables the target adds and those it drops.
func variableDiff(current map[string]string, target []catalog.Variable) (added, removed []string) {
	added, removed = []string{}, []string{}
	declared := map[string]bool{}
	for _, v := range target {
		declared[v.Name] = true
		if _, ok := current[v.Name]; !ok {
			added = append(added, v.Name)
		}
	}
	for name := range current {
		if !declared[name] {
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	return added, removed
}

// UpgradeRequest is the body of POST .../upgrade.
type UpgradeRequest struct {
	StackID      string            `json:"stackId"`
	Variables    map[string]string `json:"variables"`
	SessionID    string            `json:"sessionId"`
	AutoRollback bool              `json:"autoRollback"`
}

// UpgradeAccepted answers an upgrade request.
type UpgradeAccepted struct {
	Accepted
	PreviousVersion string `json:"previousVersion"`
	TargetVersion   string `json:"targetVersion"`
}

// Upgrade validates the target and the merged variables, writes the
// snapshot together with the Upgrading status (one synced write, before
// anything else happens), then hands the operation to the agent.
func (s *Service) Upgrade(ctx context.Context, envID, depRef string, req UpgradeRequest) (UpgradeAccepted, error) {
	d, err := s.find(envID, depRef)
	if err != nil {
		return UpgradeAccepted{}, err
	}
	if d.Status != StatusRunning {
		return UpgradeAccepted{}, fmt.Errorf("%w: %s (it is %s)", ErrConflict, ReasonNotRunning, d.Status)
	}
	ref := req.StackID
	if ref == "" {
		ref = d.StackID
	}
	target, err := s.cfg.Catalog.Lookup(ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return UpgradeAccepted{}, invalid("stackId", "%v", err)
	}
	if err != nil {
		return UpgradeAccepted{}, err
	}
	if target.StackID != d.StackID {
		return UpgradeAccepted{}, invalid("stackId", "%s is another stack; this deployment runs %s", target.StackID, d.StackID)
	}
	current, _ := semver.StrictNewVersion(d.Version)
	if current != nil && !target.Semver().GreaterThan(current) {
		return UpgradeAccepted{}, invalid("stackId", "version %s is not newer than the deployed %s; to go back to what ran before a failed upgrade use rollback", target.Version, d.Version)
	}
	// Kept values of variables the target still declares, then the
	// target's defaults (inside Resolve), then the request.
	values := map[string]string{}
	for _, v := range target.Variables {
		if old, ok := d.Variables[v.Name]; ok {
			values[v.Name] = old
		}
	}
	for k, v := range req.Variables {
		values[k] = v
	}
	resolved, err := catalog.Resolve(target.Variables, values)
	var verr *catalog.ValidationError
	if errors.As(err, &verr) {
		return UpgradeAccepted{}, &InvalidError{Fields: verr.Fields}
	}
	if err != nil {
		return UpgradeAccepted{}, err
	}
	if s.cfg.Agent.Session(envID) == nil {
		return UpgradeAccepted{}, ErrOffline
	}
	spec, err := target.Spec(ctx, d.ID, d.Name, resolved)
	if err != nil {
		return UpgradeAccepted{}, invalid("stackId", "%v", err)
	}
	now := time.Now().UTC()
	op := newOperation(protocol.OpUpgrade, req.SessionID, now)
	op.FromVersion, op.ToVersion, op.AutoRollback = d.Version, target.Version, req.AutoRollback
	var secrets []string
	for _, v := range target.Variables {
		if v.Secret() {
			secrets = append(secrets, v.Name)
		}
	}
	d, err = s.cfg.Store.UpdateDeployment(d.ID, func(cur *store.Deployment) error {
		if cur.Operation != nil {
			return fmt.Errorf("%w: deployment %s is busy with %s (operation %s)", ErrConflict, cur.Name, cur.Operation.Kind, cur.Operation.ID)
		}
		if cur.Status != StatusRunning || cur.Version != d.Version {
			return fmt.Errorf("%w: %s (it is %s)", ErrConflict, ReasonNotRunning, cur.Status)
		}
		cur.Snapshot = &store.Snapshot{
			Target: store.Target{StackID: cur.StackID, Version: cur.Version, Variables: cur.Variables, Secrets: cur.Secrets,
				Spec: pinSpec(cur.Spec, cur.Services)},
			Services:    cur.Services,
			Description: "Before upgrade to v" + target.Version,
			CreatedAt:   now,
			OperationID: op.ID,
		}
		cur.Pending = &store.Target{StackID: target.StackID, Version: target.Version, Variables: resolved, Secrets: secrets, Spec: spec}
		cur.Status, cur.Operation, cur.Error, cur.UpdatedAt = StatusUpgrading, &op, "", now
		return nil
	})
	if err != nil {
		return UpgradeAccepted{}, err
	}
	s.log.Info("upgrade", "deployment", d.ID, "name", d.Name, "from", op.FromVersion, "to", op.ToVersion, "operation", op.ID, "autoRollback", req.AutoRollback)
	acc, err := s.dispatch(ctx, d, op, protocol.Operation{ID: op.ID, Kind: protocol.OpUpgrade, DeploymentID: d.ID, Spec: &spec, HealthTimeout: s.cfg.HealthTimeout})
	return UpgradeAccepted{Accepted: acc, PreviousVersion: op.FromVersion, TargetVersion: op.ToVersion}, err
}

// pinSpec replaces every service's image by what ran: the registry digest
// when there is one, else the local image id (which must not be pulled).
func pinSpec(spec stack.Spec, running []protocol.ServiceStatus) stack.Spec {
	out := spec
	out.Services = slices.Clone(spec.Services)
	for i, svc := range out.Services {
		for _, st := range running {
			if st.Name != svc.Name {
				continue
			}
			switch {
			case st.Digest != "":
				out.Services[i].Image, out.Services[i].PullPolicy = st.Digest, stack.PullMissing
			case st.ImageID != "":
				out.Services[i].Image, out.Services[i].PullPolicy = st.ImageID, stack.PullNever
			}
		}
	}
	return out
}

// RollbackCheck is the answer of GET .../rollback.
type RollbackCheck struct {
	CanRollback           bool       `json:"canRollback"`
	RollbackTargetVersion *string    `json:"rollbackTargetVersion"`
	SnapshotDescription   *string    `json:"snapshotDescription"`
	SnapshotCreatedAt     *time.Time `json:"snapshotCreatedAt"`
	Reason                *string    `json:"reason"`
}

// CheckRollback tells whether a rollback is available.
func (s *Service) CheckRollback(envID, depRef string) (RollbackCheck, error) {
	d, err := s.find(envID, depRef)
	if err != nil {
		return RollbackCheck{}, err
	}
	var out RollbackCheck
	if snap := d.Snapshot; snap != nil {
		out.RollbackTargetVersion, out.SnapshotDescription, out.SnapshotCreatedAt = &snap.Version, &snap.Description, &snap.CreatedAt
	}
	if r := rollbackBlocker(d); r != "" {
		out.Reason = &r
		return out, nil
	}
	if s.cfg.Agent.Session(envID) == nil {
		r := ReasonOffline
		out.Reason = &r
		return out, nil
	}
	out.CanRollback = true
	return out, nil
}

func rollbackBlocker(d store.Deployment) string {
	switch {
	case d.Snapshot == nil:
		return "No snapshot: rollback is available only after a failed upgrade"
	case d.Operation != nil:
		return "An operation is running: " + d.Operation.Kind
	case d.Status != StatusFailed:
		return "Deployment must be Failed to roll back (it is " + d.Status + ")"
	}
	return ""
}

// RollbackAccepted answers a rollback request.
type RollbackAccepted struct {
	Accepted
	TargetVersion string `json:"targetVersion"`
}

// Rollback re-creates what the snapshot recorded.
func (s *Service) Rollback(ctx context.Context, envID, depRef, sessionID string) (RollbackAccepted, error) {
	d, err := s.find(envID, depRef)
	if err != nil {
		return RollbackAccepted{}, err
	}
	if r := rollbackBlocker(d); r != "" {
		return RollbackAccepted{}, fmt.Errorf("%w: %s", ErrConflict, r)
	}
	if s.cfg.Agent.Session(envID) == nil {
		return RollbackAccepted{}, ErrOffline
	}
	now := time.Now().UTC()
	op := newOperation(protocol.OpRollback, sessionID, now)
	d, err = s.cfg.Store.UpdateDeployment(d.ID, func(cur *store.Deployment) error {
		if r := rollbackBlocker(*cur); r != "" {
			return fmt.Errorf("%w: %s", ErrConflict, r)
		}
		op.FromVersion, op.ToVersion = cur.Version, cur.Snapshot.Version
		if cur.Last != nil && cur.Last.Kind == protocol.OpUpgrade {
			op.FromVersion = cur.Last.ToVersion
		}
		cur.Status, cur.Operation, cur.UpdatedAt = StatusRollingBack, &op, now
		return nil
	})
	if err != nil {
		return RollbackAccepted{}, err
	}
	spec := d.Snapshot.Spec
	s.log.Info("rollback", "deployment", d.ID, "name", d.Name, "to", op.ToVersion, "operation", op.ID)
	acc, err := s.dispatch(ctx, d, op, protocol.Operation{ID: op.ID, Kind: protocol.OpRollback, DeploymentID: d.ID, Spec: &spec, HealthTimeout: s.cfg.HealthTimeout})
	return RollbackAccepted{Accepted: acc, TargetVersion: op.ToVersion}, err
}

func (s *Service) find(envID, depRef string) (store.Deployment, error) {
	d, err := s.cfg.Store.FindDeployment(envID, depRef)
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("%w: deployment %q", ErrNotFound, depRef)
	}
	return d, err
}
