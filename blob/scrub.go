package blob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the scrubber.
const (
	// DefaultScrubRate is the read rate of the scrubber in bytes per
	// second: a 4 TB disk is verified in about a day.
	DefaultScrubRate = 50 << 20
	// DefaultScrubInterval is the pause between the end of a full pass
	// and the start of the next.
	DefaultScrubInterval = time.Hour
)

// scrubPage is how many chunks one List page of the scrubber holds; the
// cursor is saved after each page.
const scrubPage = 256

// scrubRetry is the wait after a pass failed (a listing error) before the
// scrubber tries again.
const scrubRetry = time.Minute

// ScrubConfig configures a Scrubber.
type ScrubConfig struct {
	// Node is this node's id: the node named in reports, and a metrics
	// label.
	Node string
	// Rate bounds the bytes read per second; ≤ 0 means unlimited.
	Rate int64
	// Interval is the pause between full passes (default
	// DefaultScrubInterval).
	Interval time.Duration
	// Reporter takes the bad chunks found; nil only logs and counts them.
	Reporter ChunkReporter
	// CursorFile, when set, keeps the scrubber's place across restarts: a
	// restarted node resumes its pass (or waits out the interval after a
	// finished one) instead of starting over.
	CursorFile string
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry gets the scrub metrics; nil means none are exported.
	Registry prometheus.Registerer

	clock clock // nil: the real one
}

// scrubStore is what the scrubber needs of a store.
type scrubStore interface {
	List(ctx context.Context, after string, limit int) ([]Info, bool, error)
	Open(ctx context.Context, id chunk.ID) (File, Info, error)
	Usage() Usage
}

// Scrubber re-reads every chunk of a store, at a bounded rate, and verifies
// its header (which must name the chunk's id), every block's checksum and
// its length (chunk.Verify). Bad chunks are reported for repair; they are
// not deleted here: metad queues their deletion once it has recorded them
// missing, so a chunk is never dropped that metad still counts on.
type Scrubber struct {
	st     scrubStore
	cfg    ScrubConfig
	log    *slog.Logger
	clk    clock
	bucket *tokenBucket
	m      *scrubMetrics
	cur    scrubCursor
}

// scrubCursor is the scrubber's place, saved in ScrubConfig.CursorFile.
type scrubCursor struct {
	// After is the last chunk verified in the pass under way; "" when no
	// pass is under way.
	After string `json:"after"`
	// Bytes verified so far in the pass under way.
	Bytes int64 `json:"bytes"`
	// LastFullPass is when the last full pass ended (Unix nanoseconds; 0
	// never).
	LastFullPass int64 `json:"last_full_pass_unix_nano"`
}

// ScrubStats is what one pass (or the rest of one) found.
type ScrubStats struct {
	Chunks int64
	Bytes  int64
	// Bad lists the chunks found corrupt.
	Bad []chunk.ID
	// Errors counts chunks that could not be read for another reason
	// (they are not reported, and are tried again next pass).
	Errors int64
}

// NewScrubber returns a scrubber of st. The cursor file, when set, is read
// here; a missing or damaged one means starting from the beginning.
func NewScrubber(st scrubStore, cfg ScrubConfig) *Scrubber {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultScrubInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := cfg.clock
	if clk == nil {
		clk = realClock{}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Scrubber{st: st, cfg: cfg, log: log.With("component", "scrub"), clk: clk, m: newScrubMetrics(reg, cfg.Node)}
	if cfg.Rate > 0 {
		s.bucket = newTokenBucket(cfg.Rate, clk)
	}
	s.loadCursor()
	if s.cur.LastFullPass > 0 {
		s.m.lastFull.Set(float64(s.cur.LastFullPass) / 1e9)
	}
	return s
}

func (s *Scrubber) loadCursor() {
	if s.cfg.CursorFile == "" {
		return
	}
	b, err := os.ReadFile(s.cfg.CursorFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var c scrubCursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		s.log.Warn("scrub cursor unreadable; starting over", "file", s.cfg.CursorFile, "err", err)
		return
	}
	s.cur = c
}

// saveCursor writes the cursor (temp file and rename, no fsync: a cursor
// lost in a crash only costs rescrubbing).
func (s *Scrubber) saveCursor() {
	if s.cfg.CursorFile == "" {
		return
	}
	b, _ := json.Marshal(s.cur)
	tmp := s.cfg.CursorFile + ".tmp"
	err := os.WriteFile(tmp, b, 0o644)
	if err == nil {
		err = os.Rename(tmp, s.cfg.CursorFile)
	}
	if err != nil {
		s.log.Warn("save scrub cursor", "file", s.cfg.CursorFile, "err", err)
	}
}

// Run scrubs pass after pass until ctx ends, pausing Interval between
// passes.
func (s *Scrubber) Run(ctx context.Context) {
	if s.cur.After == "" && s.cur.LastFullPass > 0 {
		// A restart after a finished pass waits out the rest of the pause.
		next := time.Unix(0, s.cur.LastFullPass).Add(s.cfg.Interval)
		if d := next.Sub(s.clk.Now()); d > 0 {
			if s.clk.Sleep(ctx, min(d, s.cfg.Interval)) != nil {
				return
			}
		}
	}
	for {
		st, err := s.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.Interval
		if err != nil {
			s.log.Warn("scrub pass failed; retrying", "in", scrubRetry, "err", err)
			wait = min(wait, scrubRetry)
		} else {
			s.log.Info("scrub pass done", "chunks", st.Chunks, "bytes", st.Bytes, "bad", len(st.Bad), "errors", st.Errors)
		}
		if s.clk.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// Pass verifies the chunks from the cursor to the end of the store, then
// records a full pass. It stops at ctx's end or a listing error, keeping
// its place.
func (s *Scrubber) Pass(ctx context.Context) (ScrubStats, error) {
	var stats ScrubStats
	total := s.st.Usage().Used
	if s.cur.After != "" {
		s.log.Info("resuming scrub pass", "after", s.cur.After)
	}
	for {
		page, more, err := s.st.List(ctx, s.cur.After, scrubPage)
		if err != nil {
			return stats, fmt.Errorf("scrub: %w", err)
		}
		for _, info := range page {
			n, err := s.verify(ctx, info, &stats)
			if ctx.Err() != nil {
				s.saveCursor()
				return stats, ctx.Err()
			}
			if err != nil {
				s.handle(ctx, info.ID, err, &stats)
			}
			stats.Chunks++
			stats.Bytes += n
			s.cur.Bytes += n
			s.cur.After = info.ID.String()
			if total > 0 {
				s.m.progress.Set(min(float64(s.cur.Bytes)/float64(total), 1))
			}
		}
		s.saveCursor()
		if !more {
			break
		}
	}
	now := s.clk.Now()
	s.cur = scrubCursor{LastFullPass: now.UnixNano()}
	s.saveCursor()
	s.m.lastFull.Set(float64(now.UnixNano()) / 1e9)
	s.m.progress.Set(1)
	s.m.passes.Inc()
	return stats, nil
}

// verify reads one chunk through the rate limiter and checks it.
func (s *Scrubber) verify(ctx context.Context, info Info, stats *ScrubStats) (int64, error) {
	f, _, err := s.st.Open(ctx, info.ID)
	if errors.Is(err, ErrNotFound) {
		return 0, nil // deleted since it was listed
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := &throttledReader{ctx: ctx, r: f, bucket: s.bucket, onRead: func(n int) { s.m.bytes.Add(float64(n)) }}
	h, _, err := chunk.Verify(r)
	if err == nil && h.ID() != info.ID {
		err = fmt.Errorf("header names chunk %s: %w", h.ID(), chunk.ErrCorrupt)
	}
	return r.n, err
}

// handle deals with a chunk that failed verification: a corrupt or
// unreadable (EIO) one is reported for repair; anything else is counted and
// logged, and tried again next pass.
func (s *Scrubber) handle(ctx context.Context, id chunk.ID, err error, stats *ScrubStats) {
	if errors.Is(err, chunk.ErrVersion) {
		s.log.Warn("chunk of a newer format; not checked", "chunk", id, "err", err)
		return
	}
	s.m.errors.Inc()
	if !errors.Is(err, chunk.ErrCorrupt) && !errors.Is(err, syscall.EIO) {
		stats.Errors++
		s.log.Warn("scrub could not read chunk", "chunk", id, "err", err)
		return
	}
	stats.Bad = append(stats.Bad, id)
	s.log.Error("scrub found a bad chunk", "chunk", id, "err", err)
	if s.cfg.Reporter == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if rerr := s.cfg.Reporter.ReportChunks(rctx, ReasonCorrupt, []ChunkRef{{ID: id, NodeID: s.cfg.Node}}); rerr != nil {
		s.log.Warn("report bad chunk; it will be found again next pass", "chunk", id, "err", rerr)
	}
}

// CursorFileName is the scrubber's cursor file in a data directory.
const CursorFileName = "scrub-cursor.json"

func scrubCursorPath(dataDir string) string { return filepath.Join(dataDir, CursorFileName) }

type scrubMetrics struct {
	bytes    prometheus.Counter
	errors   prometheus.Counter
	passes   prometheus.Counter
	lastFull prometheus.Gauge
	progress prometheus.Gauge
}

func newScrubMetrics(reg prometheus.Registerer, node string) *scrubMetrics {
	labels := nodeLabels(node)
	m := &scrubMetrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "scrub", Name: "bytes_total",
			Help: "Chunk bytes read and verified by the scrubber.", ConstLabels: labels,
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "scrub", Name: "errors_total",
			Help: "Chunks the scrubber found corrupt or could not read.", ConstLabels: labels,
		}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "scrub", Name: "passes_total",
			Help: "Full scrub passes completed.", ConstLabels: labels,
		}),
		lastFull: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "scrub", Name: "last_full_pass_timestamp_seconds",
			Help: "When the last full scrub pass ended (Unix seconds; 0 never).", ConstLabels: labels,
		}),
		progress: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "scrub", Name: "pass_progress_ratio",
			Help: "Bytes verified in the pass under way over the bytes stored (1 when a pass has just ended).", ConstLabels: labels,
		}),
	}
	reg.MustRegister(m.bytes, m.errors, m.passes, m.lastFull, m.progress)
	return m
}
