package blob

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// checkFunc is a ChunkChecker.
type checkFunc func(ctx context.Context, ids []chunk.ID) ([]bool, error)

func (f checkFunc) CheckChunks(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	return f(ctx, ids)
}

// storeAged stores a valid chunk and backdates it by age.
func storeAged(t testing.TB, st *Store, age time.Duration) chunk.ID {
	t.Helper()
	id := randomID(t, 2)
	c := makeChunk(t, id, 3000)
	if _, err := st.Put(context.Background(), id, bytes.NewReader(c), int64(len(c))); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	if err := os.Chtimes(chunkFile(st.Dir(), id), when, when); err != nil {
		t.Fatal(err)
	}
	return id
}

func has(t testing.TB, st *Store, id chunk.ID) bool {
	t.Helper()
	_, err := st.Stat(context.Background(), id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// Only unreferenced chunks older than the grace period are deleted;
// referenced and young ones stay, and young ones are not even asked about.
func TestReconcileDeletesOnlyOldOrphans(t *testing.T) {
	st := openStore(t)
	oldRef := storeAged(t, st, 2*time.Hour)
	oldOrphan := storeAged(t, st, 2*time.Hour)
	young := storeAged(t, st, time.Minute)
	youngRef := storeAged(t, st, 0)
	meta := newFakeMeta()
	meta.referenced[oldRef] = true
	meta.referenced[youngRef] = true
	reg := prometheus.NewRegistry()
	r := NewReconciler(st, ReconcileConfig{Checker: meta, Grace: time.Hour, Registry: reg, Logger: testLogger(t)})
	stats, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Checked != 2 || stats.Deleted != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if has(t, st, oldOrphan) || !has(t, st, oldRef) || !has(t, st, young) || !has(t, st, youngRef) {
		t.Fatalf("after the pass: old orphan %v, old referenced %v, young %v, young referenced %v (want only the old orphan gone)",
			has(t, st, oldOrphan), has(t, st, oldRef), has(t, st, young), has(t, st, youngRef))
	}
	for _, batch := range meta.checks {
		if slices.Contains(batch, young) || slices.Contains(batch, youngRef) {
			t.Errorf("young chunks asked about: %v", batch)
		}
	}
	if got := metricValue(t, reg, "cairn_orphans_deleted_total"); got != 1 {
		t.Errorf("orphans deleted metric %v", got)
	}
	if u := st.Usage(); u.Chunks != 3 {
		t.Errorf("usage %+v after deleting one of four", u)
	}
	// A second pass finds nothing more.
	if stats, err := r.Pass(context.Background()); err != nil || stats.Deleted != 0 {
		t.Fatalf("second pass: %+v, %v", stats, err)
	}
}

// Any doubt stops the pass with nothing more deleted.
func TestReconcileDeletesNothingOnDoubt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check checkFunc
	}{
		{"error", func(context.Context, []chunk.ID) ([]bool, error) { return nil, errInjected }},
		{"short answer", func(ctx context.Context, ids []chunk.ID) ([]bool, error) { return make([]bool, len(ids)-1), nil }},
		{"long answer", func(ctx context.Context, ids []chunk.ID) ([]bool, error) { return make([]bool, len(ids)+1), nil }},
		{"no answer", func(ctx context.Context, ids []chunk.ID) ([]bool, error) { return nil, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			var ids []chunk.ID
			for range 3 {
				ids = append(ids, storeAged(t, st, 2*time.Hour))
			}
			reg := prometheus.NewRegistry()
			r := NewReconciler(st, ReconcileConfig{Checker: tc.check, Grace: time.Hour, Registry: reg})
			stats, err := r.Pass(context.Background())
			if err == nil || stats.Deleted != 0 {
				t.Fatalf("pass: %+v, %v", stats, err)
			}
			for _, id := range ids {
				if !has(t, st, id) {
					t.Errorf("%s deleted", id)
				}
			}
			if got := metricValue(t, reg, "cairn_reconcile_errors_total"); got != 1 {
				t.Errorf("errors metric %v", got)
			}
		})
	}
}

// Batches hold at most Batch ids; a failure part-way stops the pass after
// the batches already answered.
func TestReconcileBatches(t *testing.T) {
	st := openStore(t)
	for range 7 {
		storeAged(t, st, 2*time.Hour)
	}
	var sizes []int
	fail := false
	check := checkFunc(func(ctx context.Context, ids []chunk.ID) ([]bool, error) {
		sizes = append(sizes, len(ids))
		if fail && len(sizes) == 2 {
			return nil, errInjected
		}
		return make([]bool, len(ids)), nil
	})
	fail = true
	r := NewReconciler(st, ReconcileConfig{Checker: check, Grace: time.Hour, Batch: 3})
	stats, err := r.Pass(context.Background())
	if err == nil || stats.Deleted != 3 || st.Usage().Chunks != 4 {
		t.Fatalf("pass failing on the second batch: %+v, %v, %d chunks left", stats, err, st.Usage().Chunks)
	}
	fail, sizes = false, nil
	stats, err = r.Pass(context.Background())
	if err != nil || stats.Deleted != 4 || !slices.Equal(sizes, []int{3, 1}) {
		t.Fatalf("second pass: %+v, %v, batches %v", stats, err, sizes)
	}
	if n := NewReconciler(st, ReconcileConfig{Checker: check, Batch: 5000}); n.cfg.Batch != MaxCheckBatch {
		t.Errorf("batch %d above the bound", n.cfg.Batch)
	}
}

// A chunk stored again between the check and the delete (a repair writing
// it to this node) is kept.
func TestReconcileKeepsChunkRewrittenAfterListing(t *testing.T) {
	st := openStore(t)
	id := storeAged(t, st, 2*time.Hour)
	c := makeChunk(t, id, 3000)
	check := checkFunc(func(ctx context.Context, ids []chunk.ID) ([]bool, error) {
		// metad said "unreferenced" a moment before a repair stored it.
		if _, err := st.Put(ctx, id, bytes.NewReader(c), int64(len(c))); err != nil {
			return nil, err
		}
		return make([]bool, len(ids)), nil
	})
	r := NewReconciler(st, ReconcileConfig{Checker: check, Grace: time.Hour})
	stats, err := r.Pass(context.Background())
	if err != nil || stats.Deleted != 0 || !has(t, st, id) {
		t.Fatalf("pass: %+v, %v; chunk kept: %v", stats, err, has(t, st, id))
	}
}

// A running node reconciles on its own once registered.
func TestNodeReconciles(t *testing.T) {
	meta := newFakeMeta()
	dir := t.TempDir() + "/data"
	st, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	orphan, kept := storeAged(t, st, time.Hour), storeAged(t, st, time.Hour)
	st.Close()
	meta.referenced[kept] = true
	n := startNode(t, Config{DataDir: dir, Registrar: meta, ScrubRate: ScrubOff,
		OrphanGrace: time.Minute, ReconcileInterval: 10 * time.Millisecond})
	waitFor(t, "the orphan to be deleted", func() bool { return !has(t, n.Store(), orphan) })
	if !has(t, n.Store(), kept) {
		t.Fatal("referenced chunk deleted")
	}
}
