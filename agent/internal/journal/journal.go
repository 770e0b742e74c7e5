// Package journal keeps the agent's operations on disk: an operation is
// written before any of its work starts and its result before it is sent,
// and the result stays until the controller has acknowledged it. A crash or
// a lost link therefore loses no outcome, and a repeated operation id is
// recognised.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rsgo/rsgo/shared/atomicfile"
	"github.com/rsgo/rsgo/shared/protocol"
)

// keepAcked is how many acknowledged entries are kept to recognise a
// replayed operation id.
const keepAcked = 500

// Entry is one operation's record.
type Entry struct {
	Operation protocol.Operation `json:"operation"`
	BeganAt   time.Time          `json:"beganAt"`
	Result    *protocol.OpResult `json:"result,omitempty"`
	Acked     bool               `json:"acked,omitempty"`
}

// Journal is a directory of entries, one file each.
type Journal struct {
	dir string
	mu  sync.Mutex
	// entries mirrors the directory; it is small.
	entries map[string]*Entry
}

// Open reads the journal in dir, creating it if needed.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, entries: map[string]*Entry{}}
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("journal: %s: %w", f.Name(), err)
		}
		j.entries[e.Operation.ID] = &e
	}
	return j, nil
}

// ErrKnown is returned by Begin for an operation id the journal has seen.
var ErrKnown = errors.New("operation already known")

// Begin records an operation before its work starts.
func (j *Journal) Begin(op protocol.Operation) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.entries[op.ID]; ok {
		return ErrKnown
	}
	e := &Entry{Operation: op, BeganAt: time.Now().UTC()}
	if err := j.write(e); err != nil {
		return err
	}
	j.entries[op.ID] = e
	return nil
}

// Finish records an operation's result.
func (j *Journal) Finish(res protocol.OpResult) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[res.OperationID]
	if !ok {
		return fmt.Errorf("journal: finish unknown operation %s", res.OperationID)
	}
	e.Result = &res
	return j.write(e)
}

// Ack marks a result as received by the controller and prunes old entries.
func (j *Journal) Ack(operationID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[operationID]
	if !ok || e.Acked {
		return nil
	}
	e.Acked = true
	if err := j.write(e); err != nil {
		return err
	}
	j.prune()
	return nil
}

// Unfinished lists operations that began and have no result: work that a
// crash interrupted.
func (j *Journal) Unfinished() []protocol.Operation {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []protocol.Operation
	for _, e := range j.sorted() {
		if e.Result == nil {
			out = append(out, e.Operation)
		}
	}
	return out
}

// Unacked lists results the controller has not acknowledged, oldest first.
func (j *Journal) Unacked() []protocol.OpResult {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []protocol.OpResult
	for _, e := range j.sorted() {
		if e.Result != nil && !e.Acked {
			out = append(out, *e.Result)
		}
	}
	return out
}

// Known reports whether the operation was begun here and whether it ended.
func (j *Journal) Known(operationID string) (known, finished bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[operationID]
	return ok, ok && e.Result != nil
}

// Result returns the recorded result of an operation, if it has one.
func (j *Journal) Result(operationID string) (protocol.OpResult, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.entries[operationID]
	if !ok || e.Result == nil {
		return protocol.OpResult{}, false
	}
	return *e.Result, true
}

func (j *Journal) sorted() []*Entry {
	out := make([]*Entry, 0, len(j.entries))
	for _, e := range j.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].BeganAt.Before(out[b].BeganAt) })
	return out
}

// prune drops the oldest acknowledged entries beyond keepAcked.
func (j *Journal) prune() {
	var acked []*Entry
	for _, e := range j.sorted() {
		if e.Acked {
			acked = append(acked, e)
		}
	}
	for len(acked) > keepAcked {
		e := acked[0]
		acked = acked[1:]
		os.Remove(j.path(e.Operation.ID))
		delete(j.entries, e.Operation.ID)
	}
}

func (j *Journal) path(id string) string {
	return filepath.Join(j.dir, strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == '.' {
			return '_'
		}
		return r
	}, id)+".json")
}

func (j *Journal) write(e *Entry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: encode: %w", err)
	}
	if err := atomicfile.Write(j.path(e.Operation.ID), raw, 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}
