package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// badgerLogStore is the Raft log and stable store metad used before the
// WAL (logstore.go): its own Badger database, opened with SyncWrites. It is
// kept to read a data directory written by those versions once, when
// OpenLogStore migrates it (logstore_migrate.go), and for the tests that
// write such a directory.
//
// Keys: 'l' + big-endian index → encoded raft.Log; 's' + key → stable value.
type badgerLogStore struct {
	db *badger.DB

	// mu guards first and last, cached so FirstIndex and LastIndex cost no
	// I/O; they change only in StoreLogs and DeleteRange, which Raft calls
	// from one goroutine at a time, but GetLog callers read concurrently.
	mu          sync.RWMutex
	first, last uint64
}

var (
	_ raft.LogStore    = (*badgerLogStore)(nil)
	_ raft.StableStore = (*badgerLogStore)(nil)
)

const (
	logKeyPrefix    = 'l'
	stableKeyPrefix = 's'
)

// openBadgerLogStore opens (creating if needed) a Badger Raft log in dir.
func openBadgerLogStore(dir string, logger *slog.Logger) (*badgerLogStore, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		// badgerLogger is state.go's Badger-to-slog adapter.
		WithLogger(badgerLogger{logger.With("component", "raftlog")}).
		WithNumVersionsToKeep(1).
		// One writer (Raft's main loop) and keys never written twice
		// concurrently: conflict detection is pure overhead.
		WithDetectConflicts(false).
		// The log is small and short-lived: it is truncated after every
		// snapshot, so the defaults' 64 MiB memtables, 256 MiB block cache
		// and 1 GiB value-log files are far more than it needs.
		WithMemTableSize(16 << 20).
		// Badger's default of five memtables (arenas plus mapped WAL
		// files) is memory the log never needs: one takes writes while
		// another is flushed, and a third rides out a slow flush without
		// stalling Raft's main loop.
		WithNumMemtables(3).
		WithBlockCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open raft log store in %s: %w", dir, err)
	}
	s := &badgerLogStore{db: db}
	if err := s.loadBounds(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open raft log store in %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the database.
func (s *badgerLogStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close raft log store: %w", err)
	}
	return nil
}

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = logKeyPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// loadBounds finds the first and last stored index with two key-only
// iterator seeks.
func (s *badgerLogStore) loadBounds() error {
	return s.db.View(func(txn *badger.Txn) error {
		first, last, err := scanBounds(txn)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.first, s.last = first, last
		s.mu.Unlock()
		return nil
	})
}

func scanBounds(txn *badger.Txn) (first, last uint64, err error) {
	prefix := []byte{logKeyPrefix}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	it.Seek(prefix)
	if it.ValidForPrefix(prefix) {
		first = binary.BigEndian.Uint64(it.Item().Key()[1:])
	}
	it.Close()
	if first == 0 {
		return 0, 0, nil
	}
	opts.Reverse = true
	it = txn.NewIterator(opts)
	defer it.Close()
	it.Seek(logKey(math.MaxUint64))
	if !it.ValidForPrefix(prefix) {
		return 0, 0, errors.New("log bounds: reverse seek found no entry after forward seek found one")
	}
	last = binary.BigEndian.Uint64(it.Item().Key()[1:])
	return first, last, nil
}

// FirstIndex implements raft.LogStore.
func (s *badgerLogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *badgerLogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// GetLog implements raft.LogStore. It returns raft.ErrLogNotFound for an
// index that is not stored.
func (s *badgerLogStore) GetLog(index uint64, out *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return fmt.Errorf("get raft log %d: %w", index, err)
		}
		return item.Value(func(v []byte) error {
			if err := decodeLog(v, out); err != nil {
				return fmt.Errorf("decode raft log %d: %w", index, err)
			}
			return nil
		})
	})
}

// StoreLog implements raft.LogStore.
func (s *badgerLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: the whole batch goes into one synced
// transaction, so one fsync covers every entry Raft batched together. A
// batch too big for one Badger transaction is split; a crash between the
// parts leaves a prefix of the batch, which Raft tolerates (the missing
// suffix was never acknowledged).
func (s *badgerLogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, l := range logs {
		e := badger.NewEntry(logKey(l.Index), encodeLog(l))
		err := txn.SetEntry(e)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("store raft logs: %w", err)
			}
			txn = s.db.NewTransaction(true)
			err = txn.SetEntry(e)
		}
		if err != nil {
			return fmt.Errorf("store raft log %d: %w", l.Index, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store raft logs %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	lo, hi := logs[0].Index, logs[0].Index
	for _, l := range logs[1:] {
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}
	s.mu.Lock()
	if s.first == 0 || lo < s.first {
		s.first = lo
	}
	s.last = max(s.last, hi)
	s.mu.Unlock()
	return nil
}

// DeleteRange implements raft.LogStore; the range is inclusive. Raft calls
// it to compact a prefix after a snapshot and to drop a conflicting suffix
// before storing the leader's entries; since Badger writes its log in
// order, the synced StoreLogs that follows a suffix delete also makes the
// delete durable.
func (s *badgerLogStore) DeleteRange(lo, hi uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Entries are contiguous between first and last, so the keys to delete
	// are exactly the indexes in the intersection; no scan is needed.
	from, to := max(lo, s.first), min(hi, s.last)
	if s.first == 0 || from > to {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := from; ; i++ {
		if err := wb.Delete(logKey(i)); err != nil {
			return fmt.Errorf("delete raft logs %d-%d: %w", from, to, err)
		}
		if i == to {
			break
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete raft logs %d-%d: %w", from, to, err)
	}
	switch {
	case from <= s.first && to >= s.last:
		s.first, s.last = 0, 0
	case from <= s.first:
		s.first = to + 1
	case to >= s.last:
		s.last = from - 1
	default:
		// A hole in the middle: Raft never asks for one, but keep the
		// bounds honest if someone does.
		return s.db.View(func(txn *badger.Txn) error {
			var err error
			s.first, s.last, err = scanBounds(txn)
			return err
		})
	}
	return nil
}

func stableKey(key []byte) []byte {
	return append([]byte{stableKeyPrefix}, key...)
}

// Set implements raft.StableStore.
func (s *badgerLogStore) Set(key, val []byte) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(stableKey(key), append([]byte(nil), val...))
	})
	if err != nil {
		return fmt.Errorf("set raft stable key %q: %w", key, err)
	}
	return nil
}

// Get implements raft.StableStore: a missing key is an empty value.
func (s *badgerLogStore) Get(key []byte) ([]byte, error) {
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stableKey(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get raft stable key %q: %w", key, err)
	}
	return val, nil
}

// SetUint64 implements raft.StableStore.
func (s *badgerLogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore: a missing key is 0.
func (s *badgerLogStore) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) == 0 {
		return 0, nil
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raft stable key %q: %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}
