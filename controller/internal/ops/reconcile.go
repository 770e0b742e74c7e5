package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

// reconcileDelay lets the agent deliver its pending results first, so the
// inventory is compared with up-to-date records.
const reconcileDelay = 500 * time.Millisecond

// Reconcile runs in the background after an agent (re)connects: it asks for
// the labelled containers and corrects deployments whose recorded status
// does not match what runs.
func (s *Service) Reconcile(envID string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(reconcileDelay):
		case <-s.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		if err := s.reconcile(ctx, envID); err != nil {
			s.log.Warn("reconcile failed", "environment", envID, "err", err)
		}
	}()
}

func (s *Service) reconcile(ctx context.Context, envID string) error {
	var inv protocol.Inventory
	if err := s.cfg.Agent.Call(ctx, envID, protocol.TypeInventory, nil, &inv); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	deps, err := s.cfg.Store.Deployments(envID)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if d.Operation != nil {
			s.checkOperation(ctx, d)
			continue // a running operation's result will tell
		}
		running := inv.Deployments[d.ID]
		changed := false
		updated, err := s.cfg.Store.UpdateDeployment(d.ID, func(cur *store.Deployment) error {
			if cur.Operation != nil {
				return errSkip
			}
			status, problem := observedStatus(cur, running)
			before := cur.Status
			cur.Services = mergeServices(cur, running)
			switch {
			case cur.Status == StatusRunning && problem != "":
				cur.Status, cur.Error = StatusFailed, problem
			case cur.Status == StatusStopped && status == StatusRunning:
				cur.Status, cur.Error = StatusRunning, ""
			case cur.Status == StatusFailed && status == StatusRunning && strings.HasPrefix(cur.Error, driftPrefix):
				cur.Status, cur.Error = StatusRunning, ""
			}
			changed = before != cur.Status
			if changed {
				s.log.Warn("deployment status corrected from what runs", "deployment", cur.ID, "name", cur.Name, "from", before, "to", cur.Status, "reason", cur.Error)
				cur.UpdatedAt = time.Now().UTC()
			}
			return nil
		})
		if err != nil && err != errSkip {
			return err
		}
		if err == nil && changed {
			s.cfg.Events.Status(statusEvent(updated))
		}
	}
	return nil
}

// driftPrefix marks errors that reconcile set, so it may clear them again.
const driftPrefix = "drift: "

// observedStatus derives a status from the containers that run.
func observedStatus(d *store.Deployment, running []protocol.ServiceStatus) (status, problem string) {
	byName := map[string]protocol.ServiceStatus{}
	for _, c := range running {
		byName[c.Name] = c
	}
	allRunning, anyRunning := true, false
	var problems []string
	for _, svc := range d.Spec.Services {
		c, ok := byName[svc.Name]
		switch {
		case !ok:
			allRunning = false
			problems = append(problems, fmt.Sprintf("service %s: container missing (removed outside rsgo?)", svc.Name))
		case c.State != "running":
			allRunning = false
			problems = append(problems, fmt.Sprintf("service %s: container %s (exit code %d)", svc.Name, c.State, c.ExitCode))
		case c.Health == "unhealthy":
			anyRunning = true
			allRunning = false
			problems = append(problems, fmt.Sprintf("service %s: unhealthy", svc.Name))
		default:
			anyRunning = true
		}
	}
	switch {
	case allRunning:
		return StatusRunning, ""
	case !anyRunning && d.Status == StatusStopped:
		return StatusStopped, ""
	}
	return StatusFailed, driftPrefix + strings.Join(problems, "; ")
}

// mergeServices keeps the recorded order and fills in what runs.
func mergeServices(d *store.Deployment, running []protocol.ServiceStatus) []protocol.ServiceStatus {
	byName := map[string]protocol.ServiceStatus{}
	for _, c := range running {
		byName[c.Name] = c
	}
	out := make([]protocol.ServiceStatus, 0, len(d.Spec.Services))
	for _, svc := range d.Spec.Services {
		c, ok := byName[svc.Name]
		if !ok {
			c = protocol.ServiceStatus{Name: svc.Name, Image: svc.Image, State: "missing"}
		}
		out = append(out, c)
	}
	return out
}

// checkOperation asks the agent about an operation the controller believes
// runs. One the agent never received (the controller stopped between
// recording and sending it) is closed: an upgrade that never started
// leaves the deployment Running at its version, with no snapshot.
func (s *Service) checkOperation(ctx context.Context, d store.Deployment) {
	op := d.Operation
	var st protocol.OpStatus
	if err := s.cfg.Agent.Call(ctx, d.EnvironmentID, protocol.TypeOpStatus, protocol.OpStatusRequest{OperationID: op.ID}, &st); err != nil {
		s.log.Warn("ask agent about operation", "deployment", d.ID, "operation", op.ID, "err", err)
		return
	}
	if st.Known {
		return
	}
	s.log.Warn("operation never reached the agent; closing it", "deployment", d.ID, "operation", op.ID, "kind", op.Kind)
	res := protocol.OpResult{OperationID: op.ID, DeploymentID: d.ID, Kind: op.Kind,
		Error: "the operation never reached the agent (the controller stopped before sending it); nothing was changed", FinishedAt: time.Now().UTC()}
	if op.Kind == protocol.OpUpgrade {
		s.abortUpgrade(d.ID, res)
		return
	}
	s.finish(d.ID, res, false)
}

// abortUpgrade closes an upgrade that changed nothing: back to Running at
// the old version, snapshot dropped.
func (s *Service) abortUpgrade(depID string, res protocol.OpResult) {
	var final protocol.Event
	dep, err := s.cfg.Store.UpdateDeployment(depID, func(d *store.Deployment) error {
		op := d.Operation
		if op == nil || op.ID != res.OperationID {
			return errSkip
		}
		canRollback := false
		final = protocol.Event{Type: protocol.EventFailed, SessionID: op.SessionID, EnvironmentID: d.EnvironmentID, DeploymentID: d.ID,
			OperationID: op.ID, Operation: op.Kind, Message: "upgrade not started", Error: res.Error, CanRollback: &canRollback}
		now := res.FinishedAt
		op.FinishedAt, op.Error = &now, res.Error
		d.Status, d.Snapshot, d.Pending, d.Last, d.Operation, d.UpdatedAt = StatusRunning, nil, nil, op, nil, now
		d.History = append(d.History, store.HistoryEntry{OperationID: op.ID, Kind: op.Kind, FromVersion: op.FromVersion,
			ToVersion: op.ToVersion, Error: res.Error, At: now})
		return nil
	})
	if err != nil && err != errSkip {
		s.log.Error("abort upgrade", "deployment", depID, "err", err)
	}
	if err == nil {
		s.cfg.Events.Final(final)
		s.cfg.Events.Status(statusEvent(dep))
	}
	s.wake(res.OperationID)
}
