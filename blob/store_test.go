package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func openTestStore(t *testing.T, capacity int64) *Store {
	t.Helper()
	s, err := OpenStore(StoreConfig{Dir: filepath.Join(t.TempDir(), "data"), Capacity: capacity, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The store takes opaque bytes; a body that disagrees with its declared
// size, fails, or is cancelled leaves nothing.
func TestStorePutFailures(t *testing.T) {
	s := openTestStore(t, 0)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		body    io.Reader
		size    int64
		wantErr error
	}{
		{"short body", context.Background(), strings.NewReader("abc"), 4, ErrIncomplete},
		{"long body", context.Background(), strings.NewReader("abcde"), 4, ErrIncomplete},
		{"failing body, size known", context.Background(), io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(errDisk)), 4, errDisk},
		{"failing body, size unknown", context.Background(), io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(errDisk)), -1, errDisk},
		{"cancelled", cancelled, strings.NewReader("abcd"), 4, context.Canceled},
	} {
		id := randomID(t, 0)
		_, err := s.Put(tc.ctx, id, tc.body, tc.size)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
		if _, err := s.Stat(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: chunk stored (Stat err %v)", tc.name, err)
		}
		if got := tmpFiles(t, s.Dir()); len(got) != 0 {
			t.Errorf("%s: temp files left: %v", tc.name, got)
		}
	}
	if u := s.Usage(); u.Used != 0 || u.Chunks != 0 {
		t.Fatalf("usage %+v", u)
	}
}

func TestStoreUsageAndOpen(t *testing.T) {
	s := openTestStore(t, 0)
	ctx := context.Background()
	if u := s.Usage(); u.Capacity <= 0 {
		t.Fatalf("capacity from statfs: %d", u.Capacity)
	}
	a, b := randomID(t, 0), randomID(t, 1)
	steps := []struct {
		do           func() error
		used, chunks int64
	}{
		{func() error { _, err := s.Put(ctx, a, bytes.NewReader(randomBytes(100)), 100); return err }, 100, 1},
		{func() error { _, err := s.Put(ctx, b, bytes.NewReader(randomBytes(50)), -1); return err }, 150, 2},
		{func() error { _, err := s.Put(ctx, a, bytes.NewReader(randomBytes(30)), 30); return err }, 80, 2},
		{func() error { return s.Delete(ctx, b) }, 30, 1},
		{func() error { return s.Delete(ctx, b) }, 30, 1},
		{func() error { return s.Delete(ctx, randomID(t, 2)) }, 30, 1},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if u := s.Usage(); u.Used != st.used || u.Chunks != st.chunks {
			t.Fatalf("step %d: usage %+v, want %d bytes in %d chunks", i, u, st.used, st.chunks)
		}
	}
	f, info, err := s.Open(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info.Size != 30 || info.ID != a {
		t.Fatalf("Open info %+v", info)
	}
	// Random access reads the bytes at the offset.
	want := randomBytes(30) // what was stored: same n, same bytes
	got := make([]byte, 10)
	if _, err := f.ReadAt(got, 20); err != nil || !bytes.Equal(got, want[20:]) {
		t.Fatalf("ReadAt: %v, equal %v", err, bytes.Equal(got, want[20:]))
	}
	// The file sits where the layout says.
	if _, err := os.Stat(filepath.Join(s.Dir(), chunksDirName, a.String()[:2], a.String())); err != nil {
		t.Fatalf("chunk file: %v", err)
	}
	if _, _, err := s.Open(ctx, b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open deleted: %v", err)
	}
}
