// Package runner carries out the controller's operations on this host: it
// journals each one before touching the engine, runs it in the background,
// journals the result and delivers it to the controller until acknowledged.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rsgo/rsgo/agent/internal/engine"
	"github.com/rsgo/rsgo/agent/internal/journal"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Phases reported in results.
const (
	PhasePulling  = "PullingImages"
	PhaseStarting = "StartingServices"
	PhaseVerify   = "Verifying"
	PhaseStopping = "Stopping"
	PhaseRemoving = "RemovingContainers"
)

// Sender delivers a result to the controller.
type Sender func(ctx context.Context, res protocol.OpResult) error

// Runner runs operations.
type Runner struct {
	eng     *engine.Engine
	journal *journal.Journal
	send    Sender
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// deliverMu serializes deliveries so results go out in order, once.
	deliverMu sync.Mutex
	// busy holds deployments with an operation running here.
	mu   sync.Mutex
	busy map[string]string
}

// New returns a runner. Interrupted operations found in the journal get a
// failed result at once: the agent cannot know how far they got, and the
// controller's reconcile reads what really runs.
func New(eng *engine.Engine, j *journal.Journal, send Sender, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{eng: eng, journal: j, send: send, log: log, ctx: ctx, cancel: cancel, busy: map[string]string{}}
	for _, op := range j.Unfinished() {
		log.Warn("operation interrupted by an agent restart", "operation", op.ID, "kind", op.Kind, "deployment", op.DeploymentID)
		res := protocol.OpResult{OperationID: op.ID, DeploymentID: op.DeploymentID, Kind: op.Kind,
			Error: "the agent restarted while the operation ran", FinishedAt: time.Now().UTC()}
		if op.Spec != nil {
			res.Services, _ = eng.Services(ctx, *op.Spec)
		}
		if err := j.Finish(res); err != nil {
			log.Error("journal", "err", err)
		}
	}
	return r
}

// Close cancels running operations and waits for them; their results stay
// in the journal for the next start.
func (r *Runner) Close() {
	r.cancel()
	r.wg.Wait()
}

// Start accepts an operation. A known operation id is acknowledged as a
// duplicate and not run again; a second operation on a busy deployment is
// refused.
func (r *Runner) Start(op protocol.Operation) (protocol.OpAccepted, error) {
	if op.ID == "" || op.DeploymentID == "" {
		return protocol.OpAccepted{}, &protocol.Error{Code: protocol.CodeBadRequest, Message: "operation needs an id and a deployment id"}
	}
	if op.Kind != protocol.OpRemove && op.Spec == nil {
		return protocol.OpAccepted{}, &protocol.Error{Code: protocol.CodeBadRequest, Message: op.Kind + " needs a spec"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if running, ok := r.busy[op.DeploymentID]; ok && running != op.ID {
		return protocol.OpAccepted{}, &protocol.Error{Code: protocol.CodeBadRequest, Message: fmt.Sprintf("deployment %s is busy with operation %s", op.DeploymentID, running)}
	}
	if err := r.journal.Begin(op); errors.Is(err, journal.ErrKnown) {
		// Deliver again in case the first result was lost on the way.
		r.goDeliver()
		return protocol.OpAccepted{Duplicate: true}, nil
	} else if err != nil {
		return protocol.OpAccepted{}, err
	}
	r.busy[op.DeploymentID] = op.ID
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		res := r.run(op)
		if r.ctx.Err() != nil && !res.Success {
			return // shutting down: New reports it as interrupted next time
		}
		if err := r.journal.Finish(res); err != nil {
			r.log.Error("journal result", "operation", op.ID, "err", err)
		}
		r.mu.Lock()
		delete(r.busy, op.DeploymentID)
		r.mu.Unlock()
		r.log.Info("operation finished", "operation", op.ID, "kind", op.Kind, "deployment", op.DeploymentID, "success", res.Success, "error", res.Error)
		r.Deliver(r.ctx)
	}()
	return protocol.OpAccepted{}, nil
}

// Status tells whether the journal knows an operation and whether it ended.
func (r *Runner) Status(operationID string) protocol.OpStatus {
	known, finished := r.journal.Known(operationID)
	return protocol.OpStatus{Known: known, Finished: finished}
}

func (r *Runner) goDeliver() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.Deliver(r.ctx)
	}()
}

// Deliver sends every unacknowledged result, oldest first, and stops at the
// first failure; the next connect calls it again.
func (r *Runner) Deliver(ctx context.Context) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	for _, res := range r.journal.Unacked() {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.send(cctx, res)
		cancel()
		if err != nil {
			r.log.Info("result not delivered yet; kept for the next connection", "operation", res.OperationID, "err", err)
			return
		}
		if err := r.journal.Ack(res.OperationID); err != nil {
			r.log.Error("journal ack", "operation", res.OperationID, "err", err)
		}
	}
}

func (r *Runner) run(op protocol.Operation) protocol.OpResult {
	ctx := r.ctx
	eng := r.eng.WithHealthTimeout(op.HealthTimeout)
	res := protocol.OpResult{OperationID: op.ID, DeploymentID: op.DeploymentID, Kind: op.Kind}
	phase, err := "", error(nil)
	switch op.Kind {
	case protocol.OpDeploy, protocol.OpUpgrade:
		phase, err = r.deploy(ctx, eng, op)
	case protocol.OpRollback:
		phase, err = PhaseRemoving, eng.RemoveContainers(ctx, op.DeploymentID, nil)
		if err == nil {
			phase, err = r.deploy(ctx, eng, op)
		}
	case protocol.OpStop:
		phase, err = PhaseStopping, eng.Stop(ctx, *op.Spec)
	case protocol.OpStart:
		phase, err = PhaseStarting, eng.Start(ctx, *op.Spec)
		if err == nil {
			phase, err = PhaseVerify, eng.Verify(ctx, *op.Spec)
		}
	case protocol.OpRemove:
		phase, err = PhaseRemoving, eng.Remove(ctx, op.DeploymentID, op.RemoveVolumes)
	default:
		err = fmt.Errorf("unknown operation kind %q", op.Kind)
	}
	res.Success = err == nil
	if err != nil {
		res.Error, res.Phase = err.Error(), phase
	}
	if op.Spec != nil && op.Kind != protocol.OpRemove {
		svcs, serr := eng.Services(context.WithoutCancel(ctx), *op.Spec)
		if serr != nil {
			r.log.Warn("read service status", "deployment", op.DeploymentID, "err", serr)
		}
		res.Services = svcs
	}
	res.FinishedAt = time.Now().UTC()
	return res
}

func (r *Runner) deploy(ctx context.Context, eng *engine.Engine, op protocol.Operation) (string, error) {
	spec := *op.Spec
	t0 := time.Now()
	if err := eng.PullAll(ctx, spec, nil); err != nil {
		return PhasePulling, err
	}
	t1 := time.Now()
	if err := eng.Up(ctx, spec, op.ID, engine.Hooks{}); err != nil {
		return PhaseStarting, err
	}
	t2 := time.Now()
	if err := eng.Verify(ctx, spec); err != nil {
		return PhaseVerify, err
	}
	if err := eng.RemoveOrphans(ctx, spec); err != nil {
		return PhaseVerify, err
	}
	r.log.Debug("deploy phases", "operation", op.ID, "pull", t1.Sub(t0), "start", t2.Sub(t1), "verify", time.Since(t2))
	return "", nil
}
