package blob

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// repairFixture is a 4+2 segment whose chunks sit on six blob nodes (shard
// i on nodes[i]) and an executor storing into its own store.
type repairFixture struct {
	ts     testSegment
	nodes  []*testNode
	target *Store
	exec   *Executor
	reg    *prometheus.Registry
}

// newRepairFixture puts a fresh segment on nodes (six fresh ones when nil:
// for tests that stop one).
func newRepairFixture(t *testing.T, size int, nodes []*testNode) *repairFixture {
	t.Helper()
	if nodes == nil {
		nodes = startNodes(t, 6)
	}
	f := &repairFixture{ts: encodeSegment(t, testParams, size), nodes: nodes, target: openStore(t), reg: prometheus.NewRegistry()}
	for i, n := range f.nodes {
		putChunk(t, n, f.ts.id(i), f.ts.chunks[i])
	}
	client := NewClient(ClientConfig{})
	t.Cleanup(client.Close)
	f.exec = NewExecutor(ExecutorConfig{Node: "target", Store: f.target, Client: client, Logger: testLogger(t), Registry: f.reg})
	return f
}

// sources lists the peers of the given shards.
func (f *repairFixture) sources(shards ...int) []Peer {
	var out []Peer
	for _, i := range shards {
		out = append(out, Peer{Shard: i, NodeID: f.nodes[i].cfg.ID, Addr: f.nodes[i].Addr()})
	}
	return out
}

func (f *repairFixture) repair(shards []int, sources []Peer) TaskResult {
	return f.exec.Execute(context.Background(), Task{ID: "t1", Kind: TaskRepair, Repair: RepairTask{Segment: f.ts.seg, Shards: shards, Sources: sources}})
}

// Lost chunks are rebuilt byte-identical to the ones Encode wrote.
func TestRepairRebuildsIdenticalChunks(t *testing.T) {
	nodes := startNodes(t, 6)
	for _, tc := range []struct {
		name string
		size int
		lost []int
	}{
		{"one data shard", testSegmentSize, []int{1}},
		{"one parity shard", testSegmentSize, []int{5}},
		{"data and parity", testSegmentSize, []int{0, 4}},
		{"two data shards", testSegmentSize, []int{2, 3}},
		{"two parity shards", testSegmentSize, []int{4, 5}},
		{"one short stripe", 10, []int{0, 3}},
		{"empty segment", 0, []int{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRepairFixture(t, tc.size, nodes)
			// The lost chunks are gone from their nodes, and metad still
			// lists their old nodes among the sources.
			for _, i := range tc.lost {
				if err := f.nodes[i].Store().Delete(context.Background(), f.ts.id(i)); err != nil {
					t.Fatal(err)
				}
			}
			res := f.repair(tc.lost, f.sources(0, 1, 2, 3, 4, 5))
			if !res.OK || res.TaskID != "t1" {
				t.Fatalf("repair: %+v", res)
			}
			if !slices.Equal(res.ShardsDone, tc.lost) {
				t.Errorf("ShardsDone %v, want %v", res.ShardsDone, tc.lost)
			}
			if len(res.BadSources) != 0 {
				t.Errorf("BadSources %v: the lost shards were never to be read", res.BadSources)
			}
			for _, i := range tc.lost {
				mustEqualBytes(t, fmt.Sprintf("rebuilt shard %d", i), storedChunk(t, f.target, f.ts.id(i)), f.ts.chunks[i])
			}
			if got := listAll(t, f.target); len(got) != len(tc.lost) {
				t.Errorf("target holds %v, want only the %d rebuilt", got, len(tc.lost))
			}
			if got := metricValue(t, f.reg, "cairn_blob_task_written_bytes_total"); got != float64(len(tc.lost)*len(f.ts.chunks[0])) {
				t.Errorf("written bytes metric %v", got)
			}
		})
	}
}

// A bad source is reported and read around while K usable ones remain.
func TestRepairAroundBadSource(t *testing.T) {
	nodes := startNodes(t, 6)
	for _, tc := range []struct {
		name string
		// spoil makes shard 2's source bad, and returns whether it must
		// be reported as a bad source.
		spoil func(t *testing.T, f *repairFixture) bool
	}{
		{"corrupt block", func(t *testing.T, f *repairFixture) bool {
			flipByte(t, chunkFile(f.nodes[2].cfg.DataDir, f.ts.id(2)), chunk.HeaderSize+2*(4096+4)+17)
			return true
		}},
		{"corrupt header", func(t *testing.T, f *repairFixture) bool {
			flipByte(t, chunkFile(f.nodes[2].cfg.DataDir, f.ts.id(2)), 20)
			return true
		}},
		{"missing chunk", func(t *testing.T, f *repairFixture) bool {
			f.nodes[2].Store().Delete(context.Background(), f.ts.id(2))
			return true
		}},
		{"node unreachable", func(t *testing.T, f *repairFixture) bool {
			f.nodes[2] = &testNode{cfg: Config{ID: "gone"}, Server: &Server{ln: closedListener(t)}}
			return false // a node that is down is liveness's business
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRepairFixture(t, testSegmentSize, nodes)
			report := tc.spoil(t, f)
			// Shard 0 is lost; shard 2 is among the first K sources the
			// codec reads (parity first, then data).
			res := f.repair([]int{0}, f.sources(1, 2, 3, 4, 5))
			if !res.OK {
				t.Fatalf("repair failed with 4 good sources left: %+v", res)
			}
			want := []ChunkRef(nil)
			if report {
				want = []ChunkRef{{ID: f.ts.id(2), NodeID: f.nodes[2].cfg.ID}}
			}
			if !slices.Equal(res.BadSources, want) {
				t.Errorf("BadSources %v, want %v", res.BadSources, want)
			}
			mustEqualBytes(t, "rebuilt shard 0", storedChunk(t, f.target, f.ts.id(0)), f.ts.chunks[0])
		})
	}
}

// With fewer than K usable sources the repair fails and stores nothing.
func TestRepairTooFewSources(t *testing.T) {
	nodes := startNodes(t, 6)
	for _, tc := range []struct {
		name    string
		sources []int
		corrupt int // shard whose source is corrupt, -1 none
	}{
		{"three sources", []int{1, 2, 3}, -1},
		{"four sources, one corrupt", []int{1, 2, 3, 4}, 3},
		{"none", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRepairFixture(t, testSegmentSize, nodes)
			if tc.corrupt >= 0 {
				flipByte(t, chunkFile(f.nodes[tc.corrupt].cfg.DataDir, f.ts.id(tc.corrupt)), int64(len(f.ts.chunks[0])-2))
			}
			res := f.repair([]int{0, 5}, f.sources(tc.sources...))
			if res.OK || len(res.ShardsDone) != 0 {
				t.Fatalf("repair with too few sources: %+v", res)
			}
			if !strings.Contains(res.Error, "shards usable") {
				t.Errorf("error %q does not say why", res.Error)
			}
			if tc.corrupt >= 0 && !slices.Contains(res.BadSources, ChunkRef{ID: f.ts.id(tc.corrupt), NodeID: f.nodes[tc.corrupt].cfg.ID}) {
				t.Errorf("BadSources %v lack the corrupt shard %d", res.BadSources, tc.corrupt)
			}
			if got := listAll(t, f.target); len(got) != 0 {
				t.Errorf("failed repair stored %v", got)
			}
			if tmp := tmpFiles(t, f.target.Dir()); len(tmp) != 0 {
				t.Errorf("failed repair left temp files %v", tmp)
			}
		})
	}
}

// Malformed repairs are refused before anything is read.
func TestRepairRejectsMalformedTasks(t *testing.T) {
	f := newRepairFixture(t, testSegmentSize, nil)
	for name, rt := range map[string]RepairTask{
		"no shards":       {Segment: f.ts.seg, Sources: f.sources(0, 1, 2, 3)},
		"shard too large": {Segment: f.ts.seg, Shards: []int{6}, Sources: f.sources(0, 1, 2, 3)},
		"shard twice":     {Segment: f.ts.seg, Shards: []int{5, 5}, Sources: f.sources(0, 1, 2, 3)},
		"bad params":      {Segment: Segment{ID: f.ts.seg.ID, Size: 10}, Shards: []int{5}, Sources: f.sources(0, 1, 2, 3)},
	} {
		res := f.exec.Execute(context.Background(), Task{ID: name, Kind: TaskRepair, Repair: rt})
		if res.OK || res.Error == "" {
			t.Errorf("%s: %+v", name, res)
		}
	}
	if res := f.exec.Execute(context.Background(), Task{ID: "x", Kind: TaskInvalid, Invalid: "bad segment id"}); res.OK || !strings.Contains(res.Error, "bad segment id") {
		t.Errorf("invalid task: %+v", res)
	}
	if got := listAll(t, f.target); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

// A repair whose store fails reports the store's error and keeps nothing.
func TestRepairStoreFails(t *testing.T) {
	f := newRepairFixture(t, testSegmentSize, nil)
	f.exec.cfg.Store = &faultStorage{Storage: f.target, putErr: errInjected}
	res := f.repair([]int{0}, f.sources(1, 2, 3, 4, 5))
	if res.OK || !strings.Contains(res.Error, errInjected.Error()) || len(res.BadSources) != 0 {
		t.Fatalf("repair into a failing store: %+v", res)
	}
	if got := listAll(t, f.target); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

// A move copies the chunk exactly; a bad source is reported.
func TestMove(t *testing.T) {
	nodes := startNodes(t, 6)
	for _, tc := range []struct {
		name   string
		spoil  func(t *testing.T, f *repairFixture)
		ok     bool
		badSrc bool
	}{
		{"healthy", func(*testing.T, *repairFixture) {}, true, false},
		{"corrupt", func(t *testing.T, f *repairFixture) {
			flipByte(t, chunkFile(f.nodes[3].cfg.DataDir, f.ts.id(3)), chunk.HeaderSize+5)
		}, false, true},
		{"missing", func(t *testing.T, f *repairFixture) {
			f.nodes[3].Store().Delete(context.Background(), f.ts.id(3))
		}, false, true},
		{"wrong length", func(t *testing.T, f *repairFixture) {
			// A valid chunk, but of another segment size than metad's.
			other := encodeSegment(t, testParams, testSegmentSize-4096*4)
			b := other.chunks[3]
			hdr, _ := chunk.Header{Params: testParams, Segment: f.ts.seg.ID, Shard: 3}.AppendBinary(nil)
			putChunk(t, f.nodes[3], f.ts.id(3), append(hdr, b[chunk.HeaderSize:]...))
		}, false, true},
		{"unreachable", func(t *testing.T, f *repairFixture) {
			f.nodes[3] = &testNode{cfg: Config{ID: "gone"}, Server: &Server{ln: closedListener(t)}}
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRepairFixture(t, testSegmentSize, nodes)
			tc.spoil(t, f)
			res := f.exec.Execute(context.Background(), Task{ID: "m", Kind: TaskMove, Move: MoveTask{Segment: f.ts.seg, Shard: 3, Source: f.sources(3)[0]}})
			if res.OK != tc.ok {
				t.Fatalf("move: %+v", res)
			}
			if got := len(res.BadSources) == 1 && res.BadSources[0] == (ChunkRef{ID: f.ts.id(3), NodeID: f.nodes[3].cfg.ID}); got != tc.badSrc {
				t.Errorf("BadSources %v (want the source reported: %v)", res.BadSources, tc.badSrc)
			}
			if tc.ok {
				if !slices.Equal(res.ShardsDone, []int{3}) {
					t.Errorf("ShardsDone %v", res.ShardsDone)
				}
				mustEqualBytes(t, "moved chunk", storedChunk(t, f.target, f.ts.id(3)), f.ts.chunks[3])
			} else if got := listAll(t, f.target); len(got) != 0 {
				t.Errorf("failed move stored %v", got)
			}
		})
	}
}

// Deleting is idempotent: missing chunks are fine, and the second run of a
// task does what the first did.
func TestDeleteTask(t *testing.T) {
	st := openStore(t)
	e := NewExecutor(ExecutorConfig{Store: st, Client: NewClient(ClientConfig{})})
	keep, gone := randomID(t, 1), randomID(t, 2)
	for _, id := range []chunk.ID{keep, gone} {
		c := makeChunk(t, id, 5000)
		if _, err := st.Put(context.Background(), id, strings.NewReader(string(c)), int64(len(c))); err != nil {
			t.Fatal(err)
		}
	}
	task := Task{ID: "d", Kind: TaskDelete, Delete: DeleteTask{Chunks: []chunk.ID{gone, randomID(t, 3)}}}
	for run := range 2 {
		if res := e.Execute(context.Background(), task); !res.OK {
			t.Fatalf("run %d: %+v", run, res)
		}
		if got := listAll(t, st); !slices.Equal(got, []chunk.ID{keep}) {
			t.Fatalf("run %d: store holds %v, want only %s", run, got, keep)
		}
	}
	if u := st.Usage(); u.Chunks != 1 {
		t.Errorf("usage %+v", u)
	}
	// A failing store fails the task.
	e.cfg.Store = &failingDeleteStorage{Storage: st}
	if res := e.Execute(context.Background(), Task{ID: "d2", Kind: TaskDelete, Delete: DeleteTask{Chunks: []chunk.ID{keep}}}); res.OK {
		t.Fatalf("delete on a failing store: %+v", res)
	}
}

type failingDeleteStorage struct{ Storage }

func (failingDeleteStorage) Delete(ctx context.Context, id chunk.ID) error {
	return fmt.Errorf("delete chunk %s: %w", id, errInjected)
}

// closedListener is a listener already closed: its address is one nothing
// listens on (a node that is down).
func closedListener(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return ln
}
