package blob

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// blockingStorage holds every Delete until released (or its ctx ends).
type blockingStorage struct {
	Storage
	started chan chunk.ID
	release chan struct{}
	deletes atomic.Int64
}

func newBlockingStorage(st Storage) *blockingStorage {
	return &blockingStorage{Storage: st, started: make(chan chunk.ID, 100), release: make(chan struct{})}
}

func (b *blockingStorage) Delete(ctx context.Context, id chunk.ID) error {
	b.deletes.Add(1)
	b.started <- id
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Storage.Delete(ctx, id)
}

// resultRecorder is a TaskReporter that records.
type resultRecorder struct {
	mu      sync.Mutex
	results chan TaskResult
	fail    int // fail this many reports first
}

func (r *resultRecorder) ReportTask(ctx context.Context, res TaskResult) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errInjected
	}
	r.results <- res
	return nil
}

func deleteTask(id string) Task {
	return Task{ID: id, Kind: TaskDelete, Delete: DeleteTask{Chunks: []chunk.ID{{Shard: 1}}}}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Tasks past the concurrency bound are not taken (metad hands them out
// again); a task already queued or running is not taken twice; failed
// reports are retried.
func TestExecutorBoundsAndDedup(t *testing.T) {
	bs := newBlockingStorage(openStore(t))
	rec := &resultRecorder{results: make(chan TaskResult, 10), fail: 1}
	reg := prometheus.NewRegistry()
	e := NewExecutor(ExecutorConfig{Store: bs, Reporter: rec, Concurrency: 2, Registry: reg, Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if n := e.Submit([]Task{deleteTask("a"), deleteTask("a"), deleteTask("b"), deleteTask("c")}); n != 2 {
		t.Fatalf("took %d tasks, want 2 (a once, b; c over the bound)", n)
	}
	await(t, bs.started, "task a or b to start")
	await(t, bs.started, "task a or b to start")
	for range 5 {
		if n := e.Submit([]Task{deleteTask("a"), deleteTask("b")}); n != 0 {
			t.Fatalf("re-issued running tasks were taken again (%d)", n)
		}
	}
	if e.Running() != 2 || bs.deletes.Load() != 2 {
		t.Fatalf("running %d, deletes %d", e.Running(), bs.deletes.Load())
	}
	if got := metricValue(t, reg, "cairn_blob_tasks_skipped_total"); got != 12 {
		t.Errorf("skipped metric %v, want 12", got)
	}
	close(bs.release)
	got := map[string]bool{}
	for range 2 {
		res := await(t, rec.results, "a result")
		if !res.OK {
			t.Errorf("result %+v", res)
		}
		got[res.TaskID] = true
	}
	if !got["a"] || !got["b"] {
		t.Fatalf("results for %v", got)
	}
	waitFor(t, "the executor to be idle", func() bool { return e.Running() == 0 })
	if n := e.Submit([]Task{deleteTask("c")}); n != 1 {
		t.Fatalf("took %d after the others finished", n)
	}
	if res := await(t, rec.results, "task c"); res.TaskID != "c" || !res.OK {
		t.Fatalf("result %+v", res)
	}
	if bs.deletes.Load() != 3 {
		t.Errorf("%d deletes, want 3", bs.deletes.Load())
	}
}

// A task cut short by shutdown is not reported: metad hands it out again.
func TestExecutorShutdown(t *testing.T) {
	bs := newBlockingStorage(openStore(t))
	rec := &resultRecorder{results: make(chan TaskResult, 10)}
	e := NewExecutor(ExecutorConfig{Store: bs, Reporter: rec})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	e.Submit([]Task{deleteTask("a")})
	await(t, bs.started, "the task to start")
	cancel()
	await(t, done, "Run to return")
	select {
	case res := <-rec.results:
		t.Fatalf("reported %+v after shutdown", res)
	default:
	}
	if e.Running() != 0 {
		t.Errorf("%d tasks still marked active", e.Running())
	}
}

// A task that runs past its deadline fails.
func TestExecutorTimeout(t *testing.T) {
	bs := newBlockingStorage(openStore(t))
	rec := &resultRecorder{results: make(chan TaskResult, 10)}
	e := NewExecutor(ExecutorConfig{Store: bs, Reporter: rec, Timeout: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	e.Submit([]Task{deleteTask("slow")})
	res := await(t, rec.results, "the result")
	if res.OK || res.TaskID != "slow" {
		t.Fatalf("result %+v", res)
	}
}

// Through the heartbeat path: metad re-issues a task with every heartbeat
// while it runs, and the node runs it once and reports it.
func TestNodeRunsReissuedTaskOnce(t *testing.T) {
	meta := newFakeMeta()
	var bs *blockingStorage
	n := startNode(t, Config{Registrar: meta, HeartbeatInterval: 2 * time.Millisecond, ScrubRate: ScrubOff,
		WrapStorage: func(s Storage) Storage { bs = newBlockingStorage(s); return bs }})
	id := randomID(t, 4)
	putChunk(t, n, id, makeChunk(t, id, 3000))
	meta.hand(Task{ID: "del-1", Kind: TaskDelete, Delete: DeleteTask{Chunks: []chunk.ID{id}}})

	await(t, bs.started, "the delete to start")
	handed := meta.heartbeatsWithTasks()
	waitFor(t, "metad to re-issue the task 5 times", func() bool { return meta.heartbeatsWithTasks() >= handed+5 })
	if got := bs.deletes.Load(); got != 1 {
		t.Fatalf("the running task was started %d times", got)
	}
	close(bs.release)
	res := await(t, meta.results, "the task's result")
	if !res.OK || res.TaskID != "del-1" {
		t.Fatalf("result %+v", res)
	}
	if _, err := n.Store().Stat(context.Background(), id); err == nil {
		t.Fatal("chunk still there after the delete task")
	}
}

// A repair handed out with a heartbeat is run and reported, and the node
// then serves the rebuilt chunk.
func TestNodeRepairsThroughHeartbeat(t *testing.T) {
	nodes := startNodes(t, 6)
	ts := encodeSegment(t, testParams, testSegmentSize)
	var sources []Peer
	for i, nd := range nodes[1:] {
		putChunk(t, nd, ts.id(i+1), ts.chunks[i+1])
		sources = append(sources, Peer{Shard: i + 1, NodeID: nd.cfg.ID, Addr: nd.Addr()})
	}
	meta := newFakeMeta()
	target := startNode(t, Config{ID: "target", Registrar: meta, HeartbeatInterval: 5 * time.Millisecond, ScrubRate: ScrubOff})
	meta.hand(Task{ID: "r-1", Kind: TaskRepair, Repair: RepairTask{Segment: ts.seg, Shards: []int{0}, Sources: sources}})
	res := await(t, meta.results, "the repair's result")
	if !res.OK || fmt.Sprint(res.ShardsDone) != "[0]" {
		t.Fatalf("result %+v", res)
	}
	rc, err := target.client.Get(context.Background(), target.Addr(), ts.id(0))
	if err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "rebuilt chunk served by the target", readAllClose(t, rc), ts.chunks[0])
}
