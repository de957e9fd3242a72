package metadata

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// migrateBadgerLog turns a Raft log directory written by a metad from
// before the WAL (a Badger database, logstore_badger.go) into a WAL
// directory holding the same entries and stable keys. It does nothing to a
// WAL directory or a missing one.
//
// The WAL is built and synced beside dir, then swapped in with two
// renames; a crash at any point leaves either the Badger directory (and the
// migration starts over) or the complete WAL:
//
//	dir (Badger) + dir.wal-migrating (being built)
//	→ dir.badger-migrated + dir.wal-migrating    (first rename)
//	→ dir.badger-migrated + dir (WAL)            (second rename)
//	→ dir (WAL)                                  (old store removed)
//
// There is no way back: a metad from before the WAL refuses the migrated
// directory (see walGuardName).
func migrateBadgerLog(dir string, logger *slog.Logger) error {
	tmp, old := dir+".wal-migrating", dir+".badger-migrated"
	parent := filepath.Dir(dir)
	if !exists(dir) && exists(tmp) && exists(old) {
		// Crashed between the renames: the WAL was complete.
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("finish raft log migration: %w", err)
		}
		if err := syncDir(parent); err != nil {
			return fmt.Errorf("finish raft log migration: %w", err)
		}
	}
	if isWALDir(dir) {
		if exists(old) {
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("remove migrated badger raft log: %w", err)
			}
		}
		return nil
	}
	if exists(tmp) {
		// An unfinished copy: the Badger store is still the log.
		if err := os.RemoveAll(tmp); err != nil {
			return fmt.Errorf("remove unfinished raft log migration: %w", err)
		}
	}
	if !isBadgerDir(dir) {
		return nil
	}
	start := time.Now()
	first, last, err := copyBadgerLog(dir, tmp, logger)
	if err != nil {
		return fmt.Errorf("migrate raft log in %s from badger: %w", dir, err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("migrate raft log: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("remove migrated badger raft log: %w", err)
	}
	logger.Info("migrated raft log from badger to the WAL", "dir", dir, "first_index", first, "last_index", last, "took", time.Since(start))
	return nil
}

// copyBadgerLog writes every entry and stable key of the Badger log in src
// into a new, synced WAL in dst.
func copyBadgerLog(src, dst string, logger *slog.Logger) (first, last uint64, err error) {
	b, err := openBadgerLogStore(src, logger)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	w, err := openWAL(dst, logger)
	if err != nil {
		return 0, 0, fmt.Errorf("create WAL: %w", err)
	}
	defer func() {
		if cerr := w.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	stable, err := b.stableEntries()
	if err != nil {
		return 0, 0, err
	}
	for k, v := range stable {
		if err := w.Set([]byte(k), v); err != nil {
			return 0, 0, err
		}
	}
	first, _ = b.FirstIndex()
	last, _ = b.LastIndex()
	if first == 0 {
		return 0, 0, nil
	}
	var batch []*raft.Log
	size := 0
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := b.GetLog(i, l); err != nil {
			return 0, 0, fmt.Errorf("read entry %d of %d-%d: %w", i, first, last, err)
		}
		batch = append(batch, l)
		size += len(l.Data) + len(l.Extensions)
		if size >= 4<<20 || i == last {
			if err := w.StoreLogs(batch); err != nil {
				return 0, 0, err
			}
			batch, size = batch[:0], 0
		}
	}
	if f, _ := w.FirstIndex(); f != first {
		return 0, 0, fmt.Errorf("WAL starts at %d after copying %d-%d", f, first, last)
	}
	if l, _ := w.LastIndex(); l != last {
		return 0, 0, fmt.Errorf("WAL ends at %d after copying %d-%d", l, first, last)
	}
	return first, last, nil
}

// stableEntries returns every stable key and value.
func (s *badgerLogStore) stableEntries() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{stableKeyPrefix}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().Key()[1:])] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read raft stable keys: %w", err)
	}
	return out, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// isWALDir: dir holds the WAL's guard in place of a Badger manifest.
func isWALDir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, walGuardName))
	return err == nil && string(b) == walGuardText
}

// isBadgerDir: dir holds a Badger manifest.
func isBadgerDir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, walGuardName))
	return err == nil && string(b) != walGuardText && !errors.Is(err, os.ErrNotExist)
}
