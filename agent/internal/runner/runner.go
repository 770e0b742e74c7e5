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
	"github.com/rsgo/rsgo/agent/internal/outbox"
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

// Caller sends a request to the controller (the link's Call).
type Caller func(ctx context.Context, typ string, body, out any) error

// Runner runs operations.
type Runner struct {
	eng     *engine.Engine
	journal *journal.Journal
	outbox  *outbox.Outbox
	call    Caller
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
func New(eng *engine.Engine, j *journal.Journal, out *outbox.Outbox, call Caller, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{eng: eng, journal: j, outbox: out, call: call, log: log, ctx: ctx, cancel: cancel, busy: map[string]string{}}
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

// Stream delivers events and results for as long as ctx lives (one
// session): at once, then whenever events are added.
func (r *Runner) Stream(ctx context.Context) {
	for {
		r.Deliver(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.outbox.Notify():
			// Let a burst gather into one request.
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		case <-time.After(5 * time.Second):
		}
	}
}

// eventBatch bounds one op.events request.
const eventBatch = 500

// Deliver sends every queued event, then every unacknowledged result,
// oldest first, and stops at the first failure; the next connect calls it
// again. Events go first so a result always follows its progress.
func (r *Runner) Deliver(ctx context.Context) {
	r.deliverMu.Lock()
	defer r.deliverMu.Unlock()
	for r.outbox.Len() > 0 {
		batch := r.outbox.Pending(eventBatch)
		var ack protocol.OpEventsAck
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.call(cctx, protocol.TypeOpEvents, protocol.OpEvents{Events: batch}, &ack)
		cancel()
		if err != nil {
			r.log.Debug("events not delivered yet; kept for the next connection", "count", len(batch), "err", err)
			return
		}
		if err := r.outbox.Ack(ack.Acked); err != nil {
			r.log.Error("outbox ack", "err", err)
		}
		if len(ack.Acked) == 0 {
			return // the controller took nothing; do not spin
		}
	}
	for _, res := range r.journal.Unacked() {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.call(cctx, protocol.TypeOpResult, res, nil)
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
	em := &emitter{out: r.outbox, op: op}
	res := protocol.OpResult{OperationID: op.ID, DeploymentID: op.DeploymentID, Kind: op.Kind}
	phase, err := "", error(nil)
	total := 0
	if op.Spec != nil {
		total = len(op.Spec.Services)
	}
	switch op.Kind {
	case protocol.OpDeploy, protocol.OpUpgrade:
		phase, err = r.deploy(ctx, eng, op, em, deployScale)
	case protocol.OpRollback:
		phase = PhaseRemoving
		em.emit(phase, "Removing the failed version's containers", 0, "", total, 0, nil)
		err = eng.RemoveContainers(ctx, op.DeploymentID, nil)
		if err == nil {
			phase, err = r.deploy(ctx, eng, op, em, rollbackScale)
		}
	case protocol.OpStop:
		phase = PhaseStopping
		em.emit(phase, "Stopping containers", 10, "", total, 0, nil)
		err = eng.Stop(ctx, *op.Spec)
	case protocol.OpStart:
		phase = PhaseStarting
		em.emit(phase, "Starting containers", 10, "", total, 0, nil)
		err = eng.Start(ctx, *op.Spec)
		if err == nil {
			phase = PhaseVerify
			em.emit(phase, "Verifying services", 60, "", total, 0, nil)
			err = eng.Verify(ctx, *op.Spec, engine.Hooks{})
		}
	case protocol.OpRemove:
		phase = PhaseRemoving
		em.emit(phase, "Removing containers and networks", 10, "", total, 0, nil)
		err = eng.Remove(ctx, op.DeploymentID, op.RemoveVolumes)
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

// scale maps a phase's own progress (0..1) onto the operation's percent.
type scale struct{ pull, start, verify [2]int }

var (
	deployScale   = scale{pull: [2]int{0, 40}, start: [2]int{40, 80}, verify: [2]int{80, 99}}
	rollbackScale = scale{pull: [2]int{15, 40}, start: [2]int{40, 80}, verify: [2]int{80, 99}}
)

func at(r [2]int, done, total int) int {
	if total == 0 {
		return r[0]
	}
	return r[0] + (r[1]-r[0])*done/total
}

func (r *Runner) deploy(ctx context.Context, eng *engine.Engine, op protocol.Operation, em *emitter, sc scale) (string, error) {
	spec := *op.Spec
	total := len(spec.Services)
	t0 := time.Now()
	em.emit(PhasePulling, "Pulling images", at(sc.pull, 0, 1), "", total, 0, nil)
	err := eng.PullAll(ctx, spec, engine.PullHooks{
		ImageDone: func(svc string, done, n int) {
			em.emit(PhasePulling, fmt.Sprintf("Pulled %s (%d of %d)", svc, done, n), at(sc.pull, done, n), svc, total, 0, nil)
		},
		Progress: func(p protocol.PullProgress) {
			pct := 0
			if p.BytesTotal > 0 {
				pct = int(p.BytesCurrent * 100 / p.BytesTotal)
			}
			em.emit(PhasePulling, fmt.Sprintf("Pulling %s: %d/%d layers, %d%%", p.Image, p.LayersDone, p.LayersTotal, pct), at(sc.pull, 0, 1), "", total, 0, &p)
		},
	})
	if err != nil {
		return PhasePulling, err
	}
	t1 := time.Now()
	em.emit(PhaseStarting, "Starting services", at(sc.start, 0, total), "", total, 0, nil)
	if err := eng.Up(ctx, spec, op.ID, engine.Hooks{Started: func(svc string, done, n int) {
		em.emit(PhaseStarting, fmt.Sprintf("Started %s (%d of %d)", svc, done, n), at(sc.start, done, n), svc, total, done, nil)
	}}); err != nil {
		return PhaseStarting, err
	}
	t2 := time.Now()
	em.emit(PhaseVerify, "Verifying services", at(sc.verify, 0, total), "", total, 0, nil)
	if err := eng.Verify(ctx, spec, engine.Hooks{Verified: func(svc string, done, n int) {
		em.emit(PhaseVerify, fmt.Sprintf("%s is up (%d of %d)", svc, done, n), at(sc.verify, done, n), svc, total, done, nil)
	}}); err != nil {
		return PhaseVerify, err
	}
	if err := eng.RemoveOrphans(ctx, spec); err != nil {
		return PhaseVerify, err
	}
	r.log.Debug("deploy phases", "operation", op.ID, "pull", t1.Sub(t0), "start", t2.Sub(t1), "verify", time.Since(t2))
	return "", nil
}

// pullEventInterval throttles pull-stream events to 10 per second.
const pullEventInterval = 100 * time.Millisecond

// emitter turns an operation's steps into progress events with a percent
// that never goes down.
type emitter struct {
	out      *outbox.Outbox
	op       protocol.Operation
	mu       sync.Mutex
	percent  int
	lastPull time.Time
}

func (e *emitter) emit(phase, msg string, percent int, svc string, total, done int, pull *protocol.PullProgress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if pull != nil {
		if now.Sub(e.lastPull) < pullEventInterval {
			return
		}
		e.lastPull = now
	}
	e.percent = min(max(e.percent, percent), 99) // 100 belongs to the final event
	e.out.Add(protocol.Event{
		Type: protocol.EventProgress, SessionID: e.op.SessionID, DeploymentID: e.op.DeploymentID,
		OperationID: e.op.ID, Operation: e.op.Kind, Phase: phase, Message: msg, Percent: e.percent,
		CurrentService: svc, TotalServices: total, CompletedServices: done, Pull: pull, Time: now.UTC(),
	})
}
