package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeMeta is metad as a blob node sees it, in memory: it hands out the
// tasks given to it with every heartbeat until their result is reported (as
// metad does), records results and chunk reports, and answers CheckChunks
// from a set.
type fakeMeta struct {
	mu         sync.Mutex
	registered chan NodeInfo
	pending    []Task
	handedOut  int // heartbeats that carried tasks
	results    chan TaskResult
	reports    chan ChunkRef
	reasons    []string
	referenced map[chunk.ID]bool
	checkErr   error
	checks     [][]chunk.ID
}

var _ Registrar = (*fakeMeta)(nil)

func newFakeMeta() *fakeMeta {
	return &fakeMeta{
		registered: make(chan NodeInfo, 100),
		results:    make(chan TaskResult, 100),
		reports:    make(chan ChunkRef, 100),
		referenced: make(map[chunk.ID]bool),
	}
}

func (f *fakeMeta) Register(ctx context.Context, n NodeInfo) error {
	select {
	case f.registered <- n:
	default:
	}
	return nil
}

// hand queues a task to be handed out with every heartbeat until reported.
func (f *fakeMeta) hand(t Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, t)
}

func (f *fakeMeta) Heartbeat(ctx context.Context, u Usage) ([]Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) > 0 {
		f.handedOut++
	}
	return slices.Clone(f.pending), nil
}

func (f *fakeMeta) heartbeatsWithTasks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handedOut
}

func (f *fakeMeta) ReportTask(ctx context.Context, res TaskResult) error {
	f.mu.Lock()
	f.pending = slices.DeleteFunc(f.pending, func(t Task) bool { return t.ID == res.TaskID })
	f.mu.Unlock()
	f.results <- res
	return nil
}

func (f *fakeMeta) ReportChunks(ctx context.Context, reason string, chunks []ChunkRef) error {
	f.mu.Lock()
	f.reasons = append(f.reasons, reason)
	f.mu.Unlock()
	for _, c := range chunks {
		select {
		case f.reports <- c:
		default: // the test stopped looking (a scrubber reports every pass)
		}
	}
	return nil
}

func (f *fakeMeta) CheckChunks(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = append(f.checks, slices.Clone(ids))
	if f.checkErr != nil {
		return nil, f.checkErr
	}
	out := make([]bool, len(ids))
	for i, id := range ids {
		out[i] = f.referenced[id]
	}
	return out, nil
}

// testSegment is a segment encoded in memory: its chunk files by shard.
type testSegment struct {
	seg    Segment
	data   []byte
	chunks [][]byte
}

// encodeSegment encodes size random bytes with p.
func encodeSegment(t testing.TB, p chunk.Params, size int) testSegment {
	t.Helper()
	c, err := chunk.NewCodec(p)
	if err != nil {
		t.Fatal(err)
	}
	id := chunk.NewSegmentID()
	data := randomBytes(size)
	bufs := make([]*bytes.Buffer, p.Scheme.Shards())
	ws := make([]io.Writer, len(bufs))
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	res, err := c.Encode(context.Background(), id, bytes.NewReader(data), int64(size), ws)
	if err != nil || res.Size != int64(size) {
		t.Fatalf("encode: %v (size %d)", err, res.Size)
	}
	ts := testSegment{seg: Segment{ID: id, Params: p, Size: int64(size)}, data: data}
	for _, b := range bufs {
		ts.chunks = append(ts.chunks, b.Bytes())
	}
	return ts
}

func (s testSegment) id(shard int) chunk.ID { return chunk.ID{Segment: s.seg.ID, Shard: shard} }

// testParams: 4+2 with small blocks, so a test segment spans several
// stripes and a short last one.
var testParams = chunk.Params{Scheme: chunk.Scheme{K: 4, M: 2}, BlockSize: 4096}

// testSegmentSize is three full stripes and a short fourth.
const testSegmentSize = 3*4*4096 + 1001

// startNodes boots n plain blob nodes (no registrar, no scrubbing).
func startNodes(t testing.TB, n int) []*testNode {
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, Config{ID: "src" + string(rune('a'+i)), ScrubRate: ScrubOff})
	}
	return nodes
}

// putChunk stores a chunk file on a node through its API.
func putChunk(t testing.TB, n *testNode, id chunk.ID, b []byte) {
	t.Helper()
	if err := n.client.Put(context.Background(), n.Addr(), id, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("put %s on %s: %v", id, n.cfg.ID, err)
	}
}

// chunkFile is where a node keeps a chunk.
func chunkFile(dataDir string, id chunk.ID) string {
	name := id.String()
	return filepath.Join(dataDir, chunksDirName, name[:2], name)
}

// flipByte damages a stored chunk file in place at offset off.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// openStore opens a store in a fresh directory.
func openStore(t testing.TB) *Store {
	t.Helper()
	st, err := OpenStore(StoreConfig{Dir: filepath.Join(t.TempDir(), "data"), Capacity: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storedChunk reads a chunk back from a store.
func storedChunk(t testing.TB, st Storage, id chunk.ID) []byte {
	t.Helper()
	f, _, err := st.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listAll lists every chunk of a store.
func listAll(t testing.TB, st Storage) []chunk.ID {
	t.Helper()
	infos, _, err := st.List(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []chunk.ID
	for _, in := range infos {
		ids = append(ids, in.ID)
	}
	return ids
}

// fakeClock is a clock whose Sleep moves time on at once and adds up what
// was slept.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
	// onSleep, when set, runs on each Sleep (outside the lock).
	onSleep func()
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept += d
	f := c.onSleep
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return ctx.Err()
}

func (c *fakeClock) sleptTotal() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}

// metricValue reads a counter or gauge from a registry (0 when absent).
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += metricOf(m)
		}
		return sum
	}
	return 0
}

func metricOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

var errInjected = errors.New("injected failure")
