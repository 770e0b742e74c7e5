// Package outbox holds the agent's progress events until the controller has
// them. Events are appended to a file in the state dir as they happen, so a
// link that is down, or an agent restart, loses none of them; the queue is
// bounded and drops the oldest events when it overflows.
package outbox

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/rsgo/rsgo/shared/atomicfile"
	"github.com/rsgo/rsgo/shared/protocol"
)

// DefaultLimit bounds the queue.
const DefaultLimit = 20000

// Outbox is a bounded, file-backed queue of events.
type Outbox struct {
	path, ackPath string
	limit         int
	log           *slog.Logger

	mu      sync.Mutex
	queue   []protocol.Event
	seq     map[string]int64 // operation → last OpSeq given out
	acked   map[string]int64 // operation → highest OpSeq the controller holds
	file    *os.File
	dropped int
	notify  chan struct{}
}

// Open loads the queue from dir, dropping what the controller already has.
func Open(dir string, limit int, log *slog.Logger) (*Outbox, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &Outbox{path: filepath.Join(dir, "events.jsonl"), ackPath: filepath.Join(dir, "acked.json"), limit: limit, log: log,
		seq: map[string]int64{}, acked: map[string]int64{}, notify: make(chan struct{}, 1)}
	if raw, err := os.ReadFile(o.ackPath); err == nil {
		json.Unmarshal(raw, &o.acked)
	}
	if f, err := os.Open(o.path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), protocol.MaxFrameSize)
		for sc.Scan() {
			var ev protocol.Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue // a torn last line after a crash
			}
			o.seq[ev.OperationID] = max(o.seq[ev.OperationID], ev.OpSeq)
			if ev.OpSeq > o.acked[ev.OperationID] {
				o.queue = append(o.queue, ev)
			}
		}
		f.Close()
	}
	if err := o.rewrite(); err != nil {
		return nil, err
	}
	return o, nil
}

// Close closes the backing file.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.file.Close()
}

// Add numbers an event within its operation and queues it.
func (o *Outbox) Add(ev protocol.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq[ev.OperationID]++
	ev.OpSeq = o.seq[ev.OperationID]
	if len(o.queue) >= o.limit {
		o.queue = o.queue[1:]
		o.dropped++
		if o.dropped%1000 == 1 {
			o.log.Warn("event queue full; dropping the oldest events", "dropped", o.dropped)
		}
	}
	o.queue = append(o.queue, ev)
	if raw, err := json.Marshal(ev); err == nil {
		o.file.Write(append(raw, '\n'))
	}
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Notify signals that events were added.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Pending returns up to n queued events, oldest first.
func (o *Outbox) Pending(n int) []protocol.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	n = min(n, len(o.queue))
	return append([]protocol.Event(nil), o.queue[:n]...)
}

// Len is the number of queued events.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// Ack drops every queued event the controller holds. When the queue runs
// empty the file is truncated.
func (o *Outbox) Ack(acked map[string]int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for op, seq := range acked {
		o.acked[op] = max(o.acked[op], seq)
	}
	kept := o.queue[:0]
	for _, ev := range o.queue {
		if ev.OpSeq > o.acked[ev.OperationID] {
			kept = append(kept, ev)
		}
	}
	o.queue = kept
	if len(o.queue) == 0 {
		// Operations are done with; keep only the numbering of those that
		// may still emit.
		o.acked = map[string]int64{}
		for op, seq := range o.seq {
			o.acked[op] = seq
		}
		return o.rewrite()
	}
	raw, _ := json.Marshal(o.acked)
	return atomicfile.Write(o.ackPath, raw, 0o600)
}

// rewrite replaces the file with the current queue.
func (o *Outbox) rewrite() error {
	if o.file != nil {
		o.file.Close()
	}
	var buf []byte
	for _, ev := range o.queue {
		raw, _ := json.Marshal(ev)
		buf = append(append(buf, raw...), '\n')
	}
	if err := atomicfile.Write(o.path, buf, 0o600); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	raw, _ := json.Marshal(o.acked)
	if err := atomicfile.Write(o.ackPath, raw, 0o600); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	o.file = f
	return nil
}
