package journal

import (
	"errors"
	"testing"
	"time"

	"github.com/rsgo/rsgo/shared/protocol"
)

func TestSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"op-1", "op-2", "op-3"} {
		if err := j.Begin(protocol.Operation{ID: id, Kind: protocol.OpDeploy, DeploymentID: "d"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct begin times keep the order
	}
	if err := j.Begin(protocol.Operation{ID: "op-1"}); !errors.Is(err, ErrKnown) {
		t.Errorf("second Begin of op-1: err = %v, want ErrKnown", err)
	}
	j.Finish(protocol.OpResult{OperationID: "op-1", Success: true})
	j.Finish(protocol.OpResult{OperationID: "op-2", Error: "boom"})
	j.Ack("op-1")

	// A crash here: reopen from disk.
	j, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Unfinished(); len(got) != 1 || got[0].ID != "op-3" {
		t.Errorf("unfinished = %+v, want op-3", got)
	}
	if got := j.Unacked(); len(got) != 1 || got[0].OperationID != "op-2" || got[0].Error != "boom" {
		t.Errorf("unacked = %+v, want op-2's failure", got)
	}
	if err := j.Begin(protocol.Operation{ID: "op-1"}); !errors.Is(err, ErrKnown) {
		t.Errorf("acknowledged op-1 not remembered after reopen: %v", err)
	}
	if _, ok := j.Result("op-1"); !ok {
		t.Error("result of op-1 lost")
	}
}
