// Package store keeps the controller's state in an embedded Badger database.
// Every write is synced before it returns, so an acknowledged change survives
// a crash of the process or the machine.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a record cannot be written because of its
// current state (a name already taken, a token already used).
var ErrConflict = errors.New("conflict")

// Store is the controller's database.
type Store struct {
	db  *badger.DB
	log *slog.Logger
}

// Open opens (or creates) the database in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(badgerLogger{log.With("component", "badger")}).
		// The controller's data is small; keep the memory footprint modest.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(16 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Store{db: db, log: log}, nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func getJSON(txn *badger.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: get %s: %w", key, err)
	}
	return item.Value(func(val []byte) error {
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("store: decode %s: %w", key, err)
		}
		return nil
	})
}

func putJSON(txn *badger.Txn, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", key, err)
	}
	if err := txn.Set([]byte(key), raw); err != nil {
		return fmt.Errorf("store: set %s: %w", key, err)
	}
	return nil
}

func deleteKey(txn *badger.Txn, key string) error {
	if err := txn.Delete([]byte(key)); err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// eachJSON calls fn with the raw value of every key under prefix, in key order.
func eachJSON(txn *badger.Txn, prefix string, fn func(key string, val []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 100, Prefix: []byte(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		key := string(item.Key())
		if err := item.Value(func(val []byte) error { return fn(key, val) }); err != nil {
			return err
		}
	}
	return nil
}

// maxAttempts bounds how often a transaction that lost a race is re-run.
const maxAttempts = 20

// update runs fn in a read-write transaction. Badger's transactions are
// optimistic: one that read a key another committed meanwhile fails, and is
// then re-run from scratch, so fn re-reads and re-checks the current state.
// Only when that keeps failing does the caller get ErrConflict.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	for range maxAttempts {
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("store: %w: too many concurrent updates", ErrConflict)
}

type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error(trim(f, a)) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn(trim(f, a)) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug(trim(f, a)) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log.Debug(trim(f, a)) }

func trim(f string, a []any) string { return strings.TrimSpace(fmt.Sprintf(f, a...)) }
