package outbox

import (
	"testing"

	"github.com/rsgo/rsgo/shared/protocol"
)

func TestEventsSurviveRestartUntilAcked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o, err := Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		o.Add(protocol.Event{OperationID: "op-a", Type: protocol.EventProgress})
	}
	o.Add(protocol.Event{OperationID: "op-b", Type: protocol.EventProgress})
	if err := o.Ack(map[string]int64{"op-a": 2}); err != nil {
		t.Fatal(err)
	}
	o.Close()

	o, err = Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := o.Pending(10)
	if len(got) != 2 || got[0].OperationID != "op-a" || got[0].OpSeq != 3 || got[1].OperationID != "op-b" || got[1].OpSeq != 1 {
		t.Fatalf("pending after restart = %+v, want op-a#3 and op-b#1", got)
	}
	// Numbering continues after the restart.
	o.Add(protocol.Event{OperationID: "op-a"})
	if last := o.Pending(10)[2]; last.OpSeq != 4 {
		t.Errorf("next op-a event numbered %d, want 4", last.OpSeq)
	}
	o.Ack(map[string]int64{"op-a": 4, "op-b": 1})
	if o.Len() != 0 {
		t.Errorf("%d events left after acking all", o.Len())
	}
	o.Close()
}

func TestBounded(t *testing.T) {
	t.Parallel()
	o, err := Open(t.TempDir(), 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for range 8 {
		o.Add(protocol.Event{OperationID: "op"})
	}
	got := o.Pending(100)
	if len(got) != 5 || got[0].OpSeq != 4 {
		t.Errorf("queue = %d events from #%d, want the newest 5 from #4", len(got), got[0].OpSeq)
	}
}
