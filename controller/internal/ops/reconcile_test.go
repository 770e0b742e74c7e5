package ops

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsgo/rsgo/controller/internal/catalog"
	"github.com/rsgo/rsgo/controller/internal/gateway"
	"github.com/rsgo/rsgo/controller/internal/store"
	"github.com/rsgo/rsgo/shared/protocol"
	"github.com/rsgo/rsgo/shared/stack"
)

// fakeAgent answers the two questions reconcile asks; everything else is
// covered by the end-to-end tests with the real agent.
type fakeAgent struct {
	known map[string]bool
	inv   protocol.Inventory
}

func (f *fakeAgent) Session(string) *gateway.Session { return &gateway.Session{} }

func (f *fakeAgent) Call(_ context.Context, _ string, typ string, body, out any) error {
	var raw []byte
	switch typ {
	case protocol.TypeOpStatus:
		q := body.(protocol.OpStatusRequest)
		raw, _ = json.Marshal(protocol.OpStatus{Known: f.known[q.OperationID]})
	case protocol.TypeInventory:
		raw, _ = json.Marshal(f.inv)
	default:
		return &protocol.Error{Code: protocol.CodeUnknownType, Message: typ}
	}
	return json.Unmarshal(raw, out)
}

// An upgrade the controller recorded but never sent (it stopped in
// between) is closed on the next connect: Running at the old version, no
// snapshot, nothing changed.
func TestUpgradeThatNeverReachedTheAgentIsClosed(t *testing.T) {
	t.Parallel()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cat, _ := catalog.New(nil, nil)
	spec := stack.Spec{DeploymentID: "dep-1", Name: "shop", Services: []stack.Service{{Name: "web"}}}
	running := []protocol.ServiceStatus{{Name: "web", State: "running"}}
	now := time.Now().UTC()
	op := store.OperationRef{ID: "op-lost", Kind: protocol.OpUpgrade, SessionID: "S", StartedAt: now, FromVersion: "1.0.0", ToVersion: "2.0.0"}
	dep := store.Deployment{ID: "dep-1", EnvironmentID: "env-1", Name: "shop", StackID: "s:p:main", Version: "1.0.0",
		Spec: spec, Status: StatusUpgrading, Services: running, Operation: &op,
		Snapshot: &store.Snapshot{Target: store.Target{Version: "1.0.0", Spec: spec}, Description: "Before upgrade to v2.0.0", OperationID: op.ID},
		Pending:  &store.Target{Version: "2.0.0", Spec: spec}, CreatedAt: now}
	if err := st.CreateDeployment(dep); err != nil {
		t.Fatal(err)
	}
	agent := &fakeAgent{known: map[string]bool{}, inv: protocol.Inventory{Deployments: map[string][]protocol.ServiceStatus{"dep-1": running}}}
	s, err := New(Config{Store: st, Catalog: cat, Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.reconcile(context.Background(), "env-1"); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Deployment("dep-1")
	if got.Status != StatusRunning || got.Version != "1.0.0" || got.Snapshot != nil || got.Pending != nil || got.Operation != nil {
		t.Fatalf("after reconcile: status %s version %s snapshot %v pending %v operation %v", got.Status, got.Version, got.Snapshot, got.Pending, got.Operation)
	}
	if len(got.History) != 1 || !strings.Contains(got.History[0].Error, "never reached the agent") {
		t.Errorf("history = %+v", got.History)
	}

	// An operation the agent knows is left to its result.
	op2 := store.OperationRef{ID: "op-known", Kind: protocol.OpUpgrade, SessionID: "S", StartedAt: now}
	st.UpdateDeployment("dep-1", func(d *store.Deployment) error { d.Operation, d.Status = &op2, StatusUpgrading; return nil })
	agent.known["op-known"] = true
	if err := s.reconcile(context.Background(), "env-1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Deployment("dep-1"); got.Status != StatusUpgrading || got.Operation == nil {
		t.Errorf("a known operation was closed: %s %v", got.Status, got.Operation)
	}
}
