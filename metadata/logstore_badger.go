package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// badgerLogStore is the Raft log and stable store metad used before the
// WAL (logstore.go): its own Badger database, opened with SyncWrites. What
// is left of it reads a data directory written by those versions once,
// when OpenLogStore migrates it (logstore_migrate.go).
//
// Keys: 'l' + big-endian index → encoded raft.Log; 's' + key → stable value.
type badgerLogStore struct {
	db *badger.DB

	// first and last are the stored bounds, read once at open.
	first, last uint64
}

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
		s.first, s.last = first, last
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

// FirstIndex is the first stored index (0 if none).
func (s *badgerLogStore) FirstIndex() (uint64, error) { return s.first, nil }

// LastIndex is the last stored index.
func (s *badgerLogStore) LastIndex() (uint64, error) { return s.last, nil }

// GetLog reads the entry at index. It returns raft.ErrLogNotFound for an
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
