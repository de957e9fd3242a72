package blob

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// fillStore stores n valid chunks of the given payload sizes (cycled) and
// returns their ids in id order and their total size.
func fillStore(t testing.TB, st *Store, n int, payloads ...int) ([]chunk.ID, int64) {
	t.Helper()
	var ids []chunk.ID
	var total int64
	for i := range n {
		id := randomID(t, i%chunk.MaxShards)
		c := makeChunk(t, id, payloads[i%len(payloads)])
		if _, err := st.Put(context.Background(), id, bytes.NewReader(c), int64(len(c))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		total += int64(len(c))
	}
	slices.SortFunc(ids, func(a, b chunk.ID) int {
		switch as, bs := a.String(), b.String(); {
		case as < bs:
			return -1
		case as > bs:
			return 1
		}
		return 0
	})
	return ids, total
}

func newTestScrubber(t testing.TB, st scrubStore, cfg ScrubConfig) (*Scrubber, *fakeMeta, *prometheus.Registry) {
	meta := newFakeMeta()
	reg := prometheus.NewRegistry()
	cfg.Node = "n1"
	cfg.Reporter = meta
	cfg.Registry = reg
	cfg.Logger = testLogger(t)
	if cfg.clock == nil {
		cfg.clock = newFakeClock()
	}
	return NewScrubber(st, cfg), meta, reg
}

// A clean pass reads every byte, finds nothing, and records the pass.
func TestScrubCleanPass(t *testing.T) {
	st := openStore(t)
	_, total := fillStore(t, st, 10, 5000, 40000, 0)
	clk := newFakeClock()
	cursor := scrubCursorPath(st.Dir())
	s, meta, reg := newTestScrubber(t, st, ScrubConfig{clock: clk, CursorFile: cursor})
	stats, err := s.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Chunks != 10 || stats.Bytes != total || len(stats.Bad) != 0 || stats.Errors != 0 {
		t.Fatalf("stats %+v, want 10 chunks, %d bytes, nothing bad", stats, total)
	}
	if len(meta.reports) != 0 {
		t.Fatalf("reported %v", <-meta.reports)
	}
	for name, want := range map[string]float64{
		"cairn_scrub_bytes_total":                      float64(total),
		"cairn_scrub_errors_total":                     0,
		"cairn_scrub_pass_progress_ratio":              1,
		"cairn_scrub_passes_total":                     1,
		"cairn_scrub_last_full_pass_timestamp_seconds": float64(clk.Now().Unix()),
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	var c scrubCursor
	b, err := os.ReadFile(cursor)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.After != "" || c.LastFullPass != clk.Now().UnixNano() {
		t.Fatalf("cursor %+v, %v", c, err)
	}
}

// Every kind of damage to a chunk file is found and reported as corrupt;
// the healthy chunks around it are not.
func TestScrubFindsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, id chunk.ID)
	}{
		{"flipped block byte", func(t *testing.T, path string, _ chunk.ID) {
			flipByte(t, path, chunk.HeaderSize+3*(testBlockSize+4)+100)
		}},
		{"flipped checksum byte", func(t *testing.T, path string, _ chunk.ID) { flipByte(t, path, chunk.HeaderSize+testBlockSize+1) }},
		{"flipped header byte", func(t *testing.T, path string, _ chunk.ID) { flipByte(t, path, 7) }},
		{"truncated", func(t *testing.T, path string, _ chunk.ID) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"extended", func(t *testing.T, path string, _ chunk.ID) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{0})
			f.Close()
		}},
		{"another chunk's file", func(t *testing.T, path string, id chunk.ID) {
			other := id
			other.Shard = (id.Shard + 1) % chunk.MaxShards
			if err := os.WriteFile(path, makeChunk(t, other, 30000), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			ids, _ := fillStore(t, st, 5, 30000)
			bad := ids[2]
			tc.damage(t, chunkFile(st.Dir(), bad), bad)
			s, meta, reg := newTestScrubber(t, st, ScrubConfig{})
			stats, err := s.Pass(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(stats.Bad, []chunk.ID{bad}) || stats.Chunks != 5 {
				t.Fatalf("stats %+v, want %s bad of 5", stats, bad)
			}
			if got := await(t, meta.reports, "the report"); got != (ChunkRef{ID: bad, NodeID: "n1"}) {
				t.Errorf("reported %v", got)
			}
			if len(meta.reports) != 0 || !slices.Equal(meta.reasons, []string{ReasonCorrupt}) {
				t.Errorf("reports: %d more, reasons %v", len(meta.reports), meta.reasons)
			}
			if got := metricValue(t, reg, "cairn_scrub_errors_total"); got != 1 {
				t.Errorf("errors metric %v", got)
			}
			// The scrubber does not delete: metad decides, once the chunk
			// is recorded missing.
			if _, err := st.Stat(context.Background(), bad); err != nil {
				t.Errorf("bad chunk removed by the scrubber: %v", err)
			}
		})
	}
}

// The scrubber reads no faster than its rate: on a fake clock, the time it
// sleeps is exactly what the bytes beyond the first burst cost.
func TestScrubRate(t *testing.T) {
	st := openStore(t)
	_, total := fillStore(t, st, 12, 100000, 7000, 250000)
	for _, rate := range []int64{256 << 10, 1 << 20, 3 << 20} {
		clk := newFakeClock()
		s, _, _ := newTestScrubber(t, st, ScrubConfig{Rate: rate, clock: clk})
		if _, err := s.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		burst := s.bucket.burst
		want := time.Duration(float64(total-int64(burst)) / float64(rate) * float64(time.Second))
		if got := clk.sleptTotal(); math.Abs(float64(got-want)) > float64(time.Millisecond) {
			t.Errorf("rate %d B/s: slept %v for %d bytes, want %v (burst %d)", rate, got, total, want, burst)
		}
	}
}

func TestTokenBucketBurst(t *testing.T) {
	for _, tc := range []struct {
		rate  int64
		burst int
	}{
		{1, 64 << 10},
		{50 << 20, 50 << 20 / 8},
		{1 << 30, 8 << 20},
	} {
		if b := newTokenBucket(tc.rate, newFakeClock()); b.burst != tc.burst {
			t.Errorf("rate %d: burst %d, want %d", tc.rate, b.burst, tc.burst)
		}
	}
}

// cancelAfterOpens cancels a context on the nth Open.
type cancelAfterOpens struct {
	*Store
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfterOpens) Open(ctx context.Context, id chunk.ID) (File, Info, error) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return c.Store.Open(ctx, id)
}

// A pass cut short resumes after the last chunk verified, from the cursor
// file, in a new scrubber (a restarted node).
func TestScrubResumesFromCursor(t *testing.T) {
	st := openStore(t)
	ids, _ := fillStore(t, st, 6, 2000)
	cursor := scrubCursorPath(st.Dir())
	ctx, cancel := context.WithCancel(context.Background())
	s1, _, _ := newTestScrubber(t, &cancelAfterOpens{Store: st, n: 3, cancel: cancel}, ScrubConfig{CursorFile: cursor})
	stats, err := s1.Pass(ctx)
	if err == nil || stats.Chunks != 2 {
		t.Fatalf("interrupted pass: %+v, %v", stats, err)
	}
	s2, _, reg := newTestScrubber(t, st, ScrubConfig{CursorFile: cursor})
	if s2.cur.After != ids[1].String() {
		t.Fatalf("cursor after %q, want %s", s2.cur.After, ids[1])
	}
	stats, err = s2.Pass(context.Background())
	if err != nil || stats.Chunks != 4 {
		t.Fatalf("resumed pass: %+v, %v (want the last 4 chunks)", stats, err)
	}
	if got := metricValue(t, reg, "cairn_scrub_passes_total"); got != 1 {
		t.Errorf("passes %v", got)
	}
	// A damaged cursor means starting over.
	if err := os.WriteFile(cursor, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	s3, _, _ := newTestScrubber(t, st, ScrubConfig{CursorFile: cursor})
	if stats, err := s3.Pass(context.Background()); err != nil || stats.Chunks != 6 {
		t.Fatalf("pass after a damaged cursor: %+v, %v", stats, err)
	}
}

// A running node scrubs by default and reports what it finds to metad.
func TestNodeScrubsAndReports(t *testing.T) {
	meta := newFakeMeta()
	n := startNode(t, Config{ID: "n7", Registrar: meta, ScrubInterval: 5 * time.Millisecond})
	if n.Scrubber() == nil {
		t.Fatal("scrubbing is not on by default")
	}
	id := randomID(t, 3)
	putChunk(t, n, id, makeChunk(t, id, 20000))
	flipByte(t, chunkFile(n.cfg.DataDir, id), chunk.HeaderSize+9)
	if got := await(t, meta.reports, "the scrubber's report"); got != (ChunkRef{ID: id, NodeID: "n7"}) {
		t.Fatalf("reported %v", got)
	}
	waitFor(t, "the scrub metrics", func() bool { return metricValue(t, n.reg, "cairn_scrub_errors_total") >= 1 })
}
