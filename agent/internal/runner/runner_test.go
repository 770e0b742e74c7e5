package runner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rsgo/rsgo/agent/internal/engine"
	"github.com/rsgo/rsgo/agent/internal/journal"
	"github.com/rsgo/rsgo/agent/internal/outbox"
	"github.com/rsgo/rsgo/shared/protocol"
)

// recorder stands in for the link: it records what the runner sends.
type recorder struct {
	mu      sync.Mutex
	results []protocol.OpResult
	events  []protocol.Event
}

func (r *recorder) call(_ context.Context, typ string, body, out any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch typ {
	case protocol.TypeOpResult:
		r.results = append(r.results, body.(protocol.OpResult))
	case protocol.TypeOpEvents:
		evs := body.(protocol.OpEvents).Events
		r.events = append(r.events, evs...)
		ack := out.(*protocol.OpEventsAck)
		ack.Acked = map[string]int64{}
		for _, e := range evs {
			ack.Acked[e.OperationID] = max(ack.Acked[e.OperationID], e.OpSeq)
		}
	}
	return nil
}

func TestRepeatedOperationRunsOnce(t *testing.T) {
	eng, err := engine.New()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = eng.Version(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("RSGO_REQUIRE_DOCKER") == "1" {
			t.Fatal(err)
		}
		t.Skip("no Docker engine: ", err)
	}
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := outbox.Open(filepath.Join(dir, "outbox"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	rec := &recorder{}
	r := New(eng, j, out, rec.call, nil)
	defer r.Close()

	// Removing a deployment that has nothing on this engine is quick and
	// touches nothing.
	op := protocol.Operation{ID: "op-once", Kind: protocol.OpRemove, DeploymentID: "dep-nothing-here", SessionID: "S"}
	if acc, err := r.Start(op); err != nil || acc.Duplicate {
		t.Fatalf("first start: %+v %v", acc, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.results)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no result delivered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if acc, err := r.Start(op); err != nil || !acc.Duplicate {
		t.Fatalf("replayed start: %+v %v, want a duplicate", acc, err)
	}
	time.Sleep(200 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !rec.results[0].Success {
		t.Errorf("result = %+v", rec.results[0])
	}
	finished := 0
	for _, res := range rec.results {
		if res.OperationID == op.ID {
			finished++
		}
	}
	if finished != 1 {
		t.Errorf("result delivered %d times, want once (acknowledged results are not re-sent)", finished)
	}
	if len(rec.events) == 0 || rec.events[0].Phase != PhaseRemoving || rec.events[0].SessionID != "S" {
		t.Errorf("events = %+v", rec.events)
	}
	if known, done := j.Known(op.ID); !known || !done {
		t.Errorf("journal: known %v finished %v", known, done)
	}
}
