package hub

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
)

func newHub(t *testing.T) *Hub {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, nil)
}

func progress(op string, opSeq int64) protocol.Event {
	return protocol.Event{Type: protocol.EventProgress, SessionID: "S", OperationID: op, OpSeq: opSeq, Percent: int(opSeq)}
}

// drain reads what is queued for c right now.
func drain(c *Client) []protocol.Event {
	var out []protocol.Event
	for {
		select {
		case raw := <-c.Out():
			for _, line := range bytes.Split(raw, []byte{'\n'}) {
				var ev protocol.Event
				json.Unmarshal(line, &ev)
				out = append(out, ev)
			}
		default:
			return out
		}
	}
}

func seqs(evs []protocol.Event) []int64 {
	var out []int64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestIngestDeduplicatesAndNumbersPerSession(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	ack, err := h.Ingest("E", []protocol.Event{progress("op1", 1), progress("op1", 2)})
	if err != nil || ack.Acked["op1"] != 2 {
		t.Fatalf("ack = %v, %v", ack, err)
	}
	// A replay after a lost ack, plus one new event.
	if _, err := h.Ingest("E", []protocol.Event{progress("op1", 2), progress("op1", 3)}); err != nil {
		t.Fatal(err)
	}
	h.Final(protocol.Event{Type: protocol.EventCompleted, SessionID: "S", EnvironmentID: "E", OperationID: "op1"})
	h.Final(protocol.Event{Type: protocol.EventCompleted, SessionID: "S", EnvironmentID: "E", OperationID: "op1"})
	evs, err := h.SessionEvents("S", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(evs); len(got) != 4 || got[0] != 1 || got[3] != 4 {
		t.Fatalf("stored seqs = %v, want 1..4 (no duplicates)", got)
	}
	if last := evs[3]; last.Type != protocol.EventCompleted || last.Percent != 100 || last.EnvironmentID != "E" {
		t.Errorf("final event = %+v", last)
	}
}

func TestLateSubscriberGetsHistoryThenLive(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	h.Ingest("E", []protocol.Event{progress("op1", 1), progress("op1", 2), progress("op1", 3)})
	c := NewClient(100)
	if err := h.SubscribeSession(c, "S", 1); err != nil {
		t.Fatal(err)
	}
	h.Ingest("E", []protocol.Event{progress("op1", 4)})
	if got := seqs(drain(c)); len(got) != 3 || got[0] != 2 || got[2] != 4 {
		t.Errorf("since=1 subscriber got %v, want 2 3 4", got)
	}
}

func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	slow, fast := NewClient(4), NewClient(1000)
	h.SubscribeSession(slow, "S", 0)
	h.SubscribeEnvironment(fast, "E", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); i <= 200; i++ {
			h.Ingest("E", []protocol.Event{progress("op1", i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publishing blocked on a client that does not read")
	}
	if got := len(drain(fast)); got != 200 {
		t.Errorf("fast client got %d of 200 events", got)
	}
	select {
	case <-slow.Lagged():
	default:
		t.Error("slow client was not told to resync")
	}
	if n := h.Subscribers(); n != 1 {
		t.Errorf("%d subscribers, want only the fast one left", n)
	}
}

func TestEnvironmentSubscriberResumesWithSince(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	h.Ingest("E", []protocol.Event{progress("op1", 1), progress("op1", 2)})
	h.Status(protocol.Event{Type: protocol.EventDeployment, EnvironmentID: "E", DeploymentID: "D", Status: "Running"})
	h.Ingest("other", []protocol.Event{{Type: protocol.EventProgress, SessionID: "S2", OperationID: "op2", OpSeq: 1}})

	c := NewClient(100)
	if err := h.SubscribeEnvironment(c, "E", 1); err != nil {
		t.Fatal(err)
	}
	h.Ingest("E", []protocol.Event{progress("op1", 3)})
	got := drain(c)
	var envSeqs []int64
	for _, e := range got {
		envSeqs = append(envSeqs, e.EnvSeq)
	}
	if len(got) != 3 || envSeqs[0] != 2 || got[1].Type != protocol.EventDeployment || envSeqs[2] != 4 {
		t.Fatalf("since=1 environment subscriber got envSeqs %v (%d events), want 2, 3 (status), 4", envSeqs, len(got))
	}
}
