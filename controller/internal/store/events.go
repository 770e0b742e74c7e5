package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/rsgo/rsgo/shared/protocol"
)

// Key layout of events.
const (
	sessionSeqPrefix = "sseq/" // sseq/<session> → last seq
	sessionEvPrefix  = "sev/"  // sev/<session>/<seq> → Event
	opEvPrefix       = "oev/"  // oev/<operation>/<opSeq> → eventRef
	envSeqPrefix     = "eseq/" // eseq/<env> → last envSeq
	envEvPrefix      = "eev/"  // eev/<env>/<envSeq> → Event
)

// EnvStreamLength bounds how many events an environment's stream keeps for
// resuming subscribers.
const EnvStreamLength = 10000

// FinalOpSeq numbers the controller's final event of an operation, after
// any the agent can send.
const FinalOpSeq = 1 << 40

// MaxEventsPerOperation bounds what one operation may store; later progress
// events are dropped (the final one never is).
const MaxEventsPerOperation = 5000

type eventRef struct {
	Session string `json:"s"`
	Seq     int64  `json:"q"`
}

func seqKey(n int64) string { return fmt.Sprintf("%016d", n) }

// AppendEvents stores events that are new, giving each the next sequence
// number of its session, and returns them; an (operation, opSeq) pair seen
// before is skipped. acked maps every operation in evs to its highest
// stored opSeq.
func (s *Store) AppendEvents(evs []protocol.Event) (stored []protocol.Event, acked map[string]int64, err error) {
	err = s.update(func(txn *badger.Txn) (err error) {
		stored, acked = nil, map[string]int64{}
		next := map[string]int64{}
		for _, ev := range evs {
			if ev.OperationID == "" || ev.SessionID == "" || ev.OpSeq <= 0 {
				continue
			}
			acked[ev.OperationID] = max(acked[ev.OperationID], ev.OpSeq)
			if ev.OpSeq > MaxEventsPerOperation && ev.OpSeq != FinalOpSeq {
				continue
			}
			key := opEvPrefix + ev.OperationID + "/" + seqKey(ev.OpSeq)
			if _, err := txn.Get([]byte(key)); err == nil {
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			seq, ok := next[ev.SessionID]
			if !ok {
				if err := getJSON(txn, sessionSeqPrefix+ev.SessionID, &seq); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
			seq++
			next[ev.SessionID] = seq
			ev.Seq = seq
			if ev.EnvironmentID != "" {
				if ev.EnvSeq, err = appendEnv(txn, ev); err != nil {
					return err
				}
			}
			if err := putJSON(txn, sessionEvPrefix+ev.SessionID+"/"+seqKey(seq), ev); err != nil {
				return err
			}
			if err := putJSON(txn, key, eventRef{Session: ev.SessionID, Seq: seq}); err != nil {
				return err
			}
			stored = append(stored, ev)
		}
		for session, seq := range next {
			if err := putJSON(txn, sessionSeqPrefix+session, seq); err != nil {
				return err
			}
		}
		return nil
	})
	return stored, acked, err
}

// appendEnv adds an event to its environment's stream and returns its
// envSeq; the stream keeps the last EnvStreamLength events.
func appendEnv(txn *badger.Txn, ev protocol.Event) (int64, error) {
	var seq int64
	if err := getJSON(txn, envSeqPrefix+ev.EnvironmentID, &seq); err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	seq++
	ev.EnvSeq = seq
	if err := putJSON(txn, envSeqPrefix+ev.EnvironmentID, seq); err != nil {
		return 0, err
	}
	if err := putJSON(txn, envEvPrefix+ev.EnvironmentID+"/"+seqKey(seq), ev); err != nil {
		return 0, err
	}
	if old := seq - EnvStreamLength; old > 0 {
		if err := deleteKey(txn, envEvPrefix+ev.EnvironmentID+"/"+seqKey(old)); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// AppendEnvironmentEvent stores a status event in its environment's stream
// only, and returns it with its envSeq.
func (s *Store) AppendEnvironmentEvent(ev protocol.Event) (protocol.Event, error) {
	err := s.update(func(txn *badger.Txn) error {
		seq, err := appendEnv(txn, ev)
		ev.EnvSeq = seq
		return err
	})
	return ev, err
}

// EnvironmentEvents returns an environment's stream with envSeq > since.
func (s *Store) EnvironmentEvents(envID string, since int64) ([]protocol.Event, error) {
	out := []protocol.Event{}
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := envEvPrefix + envID + "/"
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 200, Prefix: []byte(prefix)})
		defer it.Close()
		for it.Seek([]byte(prefix + seqKey(since+1))); it.Valid(); it.Next() {
			var ev protocol.Event
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ev) }); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// SessionEvents returns a session's events with seq > since, in order. A
// non-empty operationID keeps only that operation's.
func (s *Store) SessionEvents(sessionID, operationID string, since int64) ([]protocol.Event, error) {
	out := []protocol.Event{}
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := sessionEvPrefix + sessionID + "/"
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 200, Prefix: []byte(prefix)})
		defer it.Close()
		for it.Seek([]byte(prefix + seqKey(since+1))); it.Valid(); it.Next() {
			var ev protocol.Event
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &ev) }); err != nil {
				return err
			}
			if operationID == "" || ev.OperationID == operationID {
				out = append(out, ev)
			}
		}
		return nil
	})
	return out, err
}

// DeleteOperationEvents removes every stored event of an operation.
func (s *Store) DeleteOperationEvents(operationID string) error {
	return s.update(func(txn *badger.Txn) error {
		var keys []string
		if err := eachJSON(txn, opEvPrefix+operationID+"/", func(key string, val []byte) error {
			var ref eventRef
			if err := json.Unmarshal(val, &ref); err != nil {
				return err
			}
			keys = append(keys, key, sessionEvPrefix+ref.Session+"/"+seqKey(ref.Seq))
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := deleteKey(txn, k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ParseSeq reads a sequence number from an API parameter.
func ParseSeq(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("since must be a non-negative integer, not %q", s)
	}
	return n, nil
}
