package metadata

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// A state store written by an older metad has Snappy tables; the default
// sizing writes uncompressed ones. Badger records each table's compression
// in its manifest, so the old tables must still read back after the switch,
// both before and after a compaction rewrites them.
func TestStateReadsSnappyTablesAfterSwitch(t *testing.T) {
	dir := t.TempDir()
	value := func(i int) []byte {
		// Compressible, so Snappy really changes the blocks on disk.
		return bytes.Repeat([]byte(fmt.Sprintf("object %06d ", i)), 300)
	}
	const n = 6000
	old, err := openState(dir, nil, func(o *badger.Options) {
		smSmallBadger(o) // several L0 tables
		o.Compression = options.Snappy
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 100 {
		err := old.db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+100; j++ {
				if err := txn.Set(fmt.Appendf(nil, "t/%06d", j), value(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := openState(dir, nil, DefaultStoreConfig().apply)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, all := compressedTables(s.db); c == 0 {
		t.Fatalf("none of the old store's %d tables is compressed: the test checks nothing", all)
	}
	check := func(when string) {
		t.Helper()
		err := s.db.View(func(txn *badger.Txn) error {
			for i := range n {
				item, err := txn.Get(fmt.Appendf(nil, "t/%06d", i))
				if err != nil {
					return fmt.Errorf("key %d: %w", i, err)
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					return fmt.Errorf("key %d: %w", i, err)
				}
				if !bytes.Equal(v, value(i)) {
					return fmt.Errorf("key %d: value differs", i)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	check("after reopening")
	if err := s.db.Flatten(1); err != nil {
		t.Fatalf("compact: %v", err)
	}
	check("after compaction")
	c, all := compressedTables(s.db)
	t.Logf("after compaction: %d of %d tables compressed", c, all)
	if c == all {
		t.Errorf("compaction rewrote no table uncompressed (%d tables)", all)
	}
}

// compressedTables counts the tables of db that take less than half
// their uncompressed size on disk: Snappy's, for these values.
func compressedTables(db *badger.DB) (compressed, all int) {
	for _, ti := range db.Tables() {
		all++
		if uint64(ti.OnDiskSize) < uint64(ti.UncompressedSize)/2 {
			compressed++
		}
	}
	return compressed, all
}
