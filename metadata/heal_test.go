package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
)

// Unit tests of the healer against an in-memory stand-in for the state
// and Raft, with a clock the test moves.

// fakeHealState is a healState with a propose that applies the
// self-healing commands to it.
type fakeHealState struct {
	mu      sync.Mutex
	cm      *pb.ClusterMap
	segs    map[string]SegmentInfo
	gc      []GCItem
	pending map[string]bool // chunk deletions queued: "<id>.<shard>@<node>"
	cmds    []*pb.Command
	// failCommits makes this many CommitPlacements fail as if leadership
	// were lost.
	failCommits int
}

func newFakeHealState() *fakeHealState {
	return &fakeHealState{cm: &pb.ClusterMap{}, segs: map[string]SegmentInfo{}, pending: map[string]bool{}}
}

func (f *fakeHealState) addNode(id, zone, rack string, st pb.NodeState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cm.Nodes = append(f.cm.Nodes, &pb.Node{Id: id, Zone: zone, Rack: rack, Address: id + ":1", CapacityBytes: 1 << 40, UsedBytes: 1 << 30, State: st})
}

func (f *fakeHealState) setState(id string, st pb.NodeState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.cm.Nodes {
		if n.Id == id {
			n.State = st
		}
	}
}

func (f *fakeHealState) addSegment(key string, id byte, nodes ...string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	sid := bytes.Repeat([]byte{id}, 16)
	f.segs[string(sid)] = SegmentInfo{
		Segment: &pb.Segment{Id: sid, Scheme: &pb.Scheme{K: 4, M: 2}, Size: 4 << 20, Nodes: nodes},
		Owner:   SegmentOwner{Bucket: "b", Key: key},
	}
	return sid
}

func (f *fakeHealState) nodes(id []byte) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.segs[string(id)].Segment.GetNodes())
}

func (f *fakeHealState) ClusterMap() (*pb.ClusterMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return proto.CloneOf(f.cm), nil
}

func (f *fakeHealState) Segment(id []byte) (SegmentInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.segs[string(id)]
	if !ok {
		return SegmentInfo{}, metaerr.ErrNoSuchKey
	}
	return SegmentInfo{Segment: proto.CloneOf(in.Segment), Owner: in.Owner}, nil
}

func (f *fakeHealState) page(after []byte, limit int, keep func(*pb.Segment) bool) ([]SegmentInfo, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, in := range f.segs {
		if keep(in.Segment) && (after == nil || id > string(after)) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var next []byte
	if len(ids) > limit {
		ids = ids[:limit]
		next = []byte(ids[limit-1])
	}
	var out []SegmentInfo
	for _, id := range ids {
		out = append(out, SegmentInfo{Segment: proto.CloneOf(f.segs[id].Segment), Owner: f.segs[id].Owner})
	}
	return out, next, nil
}

func (f *fakeHealState) SegmentsWithMissing(after []byte, limit int) ([]SegmentInfo, []byte, error) {
	return f.page(after, limit, func(s *pb.Segment) bool { return slices.Contains(s.GetNodes(), "") })
}

func (f *fakeHealState) SegmentsOnNode(node string, after []byte, limit int) ([]SegmentInfo, []byte, error) {
	return f.page(after, limit, func(s *pb.Segment) bool { return slices.Contains(s.GetNodes(), node) })
}

func (f *fakeHealState) SegmentsOnNodes(nodes []string, after []byte, limit int) ([]SegmentInfo, []byte, error) {
	return f.page(after, limit, func(s *pb.Segment) bool {
		return slices.ContainsFunc(s.GetNodes(), func(n string) bool { return n != "" && slices.Contains(nodes, n) })
	})
}

func (f *fakeHealState) ScanSegments(after []byte, limit int) ([]SegmentInfo, []byte, error) {
	return f.page(after, limit, func(*pb.Segment) bool { return true })
}

func (f *fakeHealState) GCEntries(after []byte, limit int) ([]GCItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []GCItem
	for _, it := range f.gc {
		if (after == nil || bytes.Compare(it.Key, after) > 0) && len(out) < limit {
			out = append(out, it)
		}
	}
	return out, nil
}

func (f *fakeHealState) Uploads([]byte, int) ([]*pb.MultipartUpload, []byte, error) {
	return nil, nil, nil
}

func (f *fakeHealState) ListBuckets(*pb.ListBucketsRequest) (*pb.ListBucketsResponse, error) {
	return &pb.ListBucketsResponse{}, nil
}

func (f *fakeHealState) ListObjects(*pb.ListObjectsRequest) (*pb.ListObjectsResponse, error) {
	return &pb.ListObjectsResponse{}, nil
}

func (f *fakeHealState) Versions(string, *VersionCursor, int) ([]VersionInfo, *VersionCursor, error) {
	return nil, nil, nil
}

func (f *fakeHealState) GCBacklog() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.gc)), nil
}

func (f *fakeHealState) ChunkDeletePending(id []byte, shard int, node string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending[fmt.Sprintf("%x.%d@%s", id, shard, node)], nil
}

func (f *fakeHealState) propose(_ context.Context, cmd *pb.Command) (proto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	switch op := cmd.Op.(type) {
	case *pb.Command_CommitPlacement:
		c := op.CommitPlacement
		if f.failCommits > 0 {
			f.failCommits--
			return nil, errors.New("commit outcome unknown: leadership lost")
		}
		in, ok := f.segs[string(c.SegmentId)]
		if !ok {
			return nil, metaerr.ErrPreconditionFailed
		}
		nodes := in.Segment.Nodes
		if nodes[c.Shard] != c.OldNode || slices.Contains(nodes, c.NewNode) {
			return nil, metaerr.ErrPreconditionFailed
		}
		nodes[c.Shard] = c.NewNode
		return in.Segment, nil
	case *pb.Command_AckGc:
		f.gc = slices.DeleteFunc(f.gc, func(it GCItem) bool {
			return slices.ContainsFunc(op.AckGc.Keys, func(k []byte) bool { return bytes.Equal(k, it.Key) })
		})
		return op.AckGc, nil
	}
	return nil, fmt.Errorf("fake state: unexpected command %T", cmd.Op)
}

// commits returns the CommitPlacements proposed so far.
func (f *fakeHealState) commits() []*pb.CommitPlacement {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pb.CommitPlacement
	for _, c := range f.cmds {
		if cp := c.GetCommitPlacement(); cp != nil {
			out = append(out, cp)
		}
	}
	return out
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// unitHealer builds a healer on f with a fake clock; tune adjusts the
// config first.
func unitHealer(t *testing.T, f *fakeHealState, tune func(*HealConfig)) (*healer, *fakeClock) {
	t.Helper()
	cfg := DefaultHealConfig()
	cfg.RepairBytesPerSecond = 0
	cfg.RepairTaskTimeout = time.Minute
	cfg.RepairBackoff = time.Second
	if tune != nil {
		tune(&cfg)
	}
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	h := newHealer(cfg, slog.New(slog.DiscardHandler), f, f.propose, newHealMetrics(func() *healer { return nil }))
	h.now = clock.now
	h.meter.start = clock.now()
	return h, clock
}

// nineNodes adds 3 zones x 3 nodes (a rack each), all up.
func nineNodes(f *fakeHealState) {
	for z := range 3 {
		for i := range 3 {
			f.addNode(fmt.Sprintf("n%d%d", z, i), fmt.Sprintf("z%d", z), fmt.Sprintf("r%d", i), pb.NodeState_NODE_STATE_UP)
		}
	}
}

// round runs one scan and dispatch, like a repair loop iteration.
func round(t *testing.T, h *healer) {
	t.Helper()
	ctx := context.Background()
	if err := h.scan(ctx); err != nil {
		t.Fatal(err)
	}
	h.expire()
	if err := h.dispatch(ctx); err != nil {
		t.Logf("dispatch: %v", err)
	}
}

// outstanding returns the outstanding repair tasks as "segbyte/shard@node".
func outstanding(h *healer) []string {
	h.tasks.mu.Lock()
	defer h.tasks.mu.Unlock()
	var out []string
	for _, a := range h.tasks.byID {
		if a.ref.kind == kindRepair {
			out = append(out, fmt.Sprintf("%d/%d@%s", a.ref.segment[0], a.ref.shards[0], a.ref.node))
		}
	}
	sort.Strings(out)
	return out
}

// reportAll reports every outstanding repair and move done.
func reportAll(t *testing.T, h *healer) {
	t.Helper()
	h.tasks.mu.Lock()
	var refs []taskRef
	for _, a := range h.tasks.byID {
		if a.ref.kind != kindDelete {
			refs = append(refs, a.ref)
		}
	}
	h.tasks.mu.Unlock()
	for _, ref := range refs {
		h.tasks.take(ref.id())
		if err := h.placementResult(context.Background(), ref, &pb.TaskResult{TaskId: ref.id(), NodeId: ref.node, Ok: true}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanRepairKeepsFailureDomains(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	const down = pb.NodeState_NODE_STATE_DOWN
	none := func(string) bool { return false }
	never := func(uint32, string) bool { return false }
	for _, tc := range []struct {
		name     string
		nodes    []string
		down     []string
		suspect  []string
		busy     []string
		unusable []string // for every shard
		// wantZone: the zone each planned target must be in, by shard.
		wantZone map[uint32]string
		wantBusy bool // some shard deferred for budget
	}{
		{name: "one down: its zone-mate", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00"},
			wantZone: map[uint32]string{0: "z0"}},
		{name: "missing entry", nodes: []string{"n00", "n01", "n10", "", "n20", "n21"},
			wantZone: map[uint32]string{3: "z1"}},
		{name: "two down in two zones", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n01", "n21"},
			wantZone: map[uint32]string{1: "", 5: ""}}, // one each in z0 and z2, either way round
		{name: "best busy, none as good", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00"}, busy: []string{"n02"},
			wantZone: map[uint32]string{}, wantBusy: true},
		{name: "deletion pending on the zone-mate", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n10"}, unusable: []string{"n12"},
			wantZone: map[uint32]string{}, wantBusy: true}, // waits for the deletion rather than put 3 shards in one zone
		{name: "deletion pending on the only other zone-mate", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00"}, unusable: []string{"n02"},
			wantZone: map[uint32]string{}, wantBusy: true},
		{name: "zone-mate suspect: waits for it", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00"}, suspect: []string{"n02"},
			wantZone: map[uint32]string{}, wantBusy: true},
		{name: "suspect node not the best: not waited for", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00"}, suspect: []string{"n12"},
			wantZone: map[uint32]string{0: "z0"}},
		{name: "down node's zone has no writable node: least-bad zone", nodes: []string{"n00", "n01", "n10", "n11", "n20", "n21"}, down: []string{"n00", "n02"},
			wantZone: map[uint32]string{0: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm, _ := f.ClusterMap()
			for _, n := range cm.Nodes {
				if slices.Contains(tc.down, n.Id) {
					n.State = down
				}
				if slices.Contains(tc.suspect, n.Id) {
					n.State = pb.NodeState_NODE_STATE_SUSPECT
				}
			}
			v := newClusterView(cm)
			seg := &pb.Segment{Id: []byte("0123456789abcdef"), Scheme: &pb.Scheme{K: 4, M: 2}, Nodes: tc.nodes}
			healthy, bad := v.segmentHealth(seg)
			if healthy+len(bad) != 6 {
				t.Fatalf("segmentHealth = %d, %v", healthy, bad)
			}
			busy := none
			if tc.busy != nil {
				busy = func(n string) bool { return slices.Contains(tc.busy, n) }
			}
			unusable := never
			if tc.unusable != nil {
				unusable = func(_ uint32, n string) bool { return slices.Contains(tc.unusable, n) }
			}
			plans, deferred := v.planRepair(seg, bad, busy, unusable)
			if got := errors.Is(deferred, errTargetBusy); got != tc.wantBusy {
				t.Errorf("deferred = %v, want busy %v", deferred, tc.wantBusy)
			}
			if len(plans) != len(tc.wantZone) {
				t.Fatalf("plans = %+v, want shards %v", plans, tc.wantZone)
			}
			after := slices.Clone(tc.nodes)
			for _, p := range plans {
				want, ok := tc.wantZone[p.shard]
				if !ok || p.old != tc.nodes[p.shard] {
					t.Errorf("plan %+v not expected", p)
				}
				if want != "" && v.nodes[p.target].GetZone() != want {
					t.Errorf("shard %d to %s in %s, want zone %s", p.shard, p.target, v.nodes[p.target].GetZone(), want)
				}
				if slices.Contains(tc.busy, p.target) || slices.Contains(tc.unusable, p.target) || slices.Contains(tc.suspect, p.target) || slices.Contains(tc.nodes, p.target) {
					t.Errorf("shard %d to %s, which is busy, unusable, suspect or in the placement", p.shard, p.target)
				}
				after[p.shard] = p.target
			}
			if len(plans) == len(bad) {
				if err := placement.CheckSpread(after, v.place, 2, placement.Options{}); err != nil {
					t.Errorf("placement after repair %q: %v", after, err)
				}
			}
		})
	}
}

func TestRepairQueuePriority(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	// Segment 1 misses one chunk, segment 2 two, segment 3 one (on a down
	// node), segment 4 is lost, segment 5 is whole.
	f.addSegment("one", 1, "n00", "", "n10", "n11", "n20", "n21")
	two := f.addSegment("two", 2, "n00", "n01", "", "n11", "", "n21")
	f.addSegment("down", 3, "n02", "n01", "n12", "n11", "n22", "n21")
	f.addSegment("lost", 4, "", "", "", "n11", "n20", "n21")
	f.addSegment("whole", 5, "n00", "n01", "n10", "n11", "n20", "n21")
	f.setState("n22", pb.NodeState_NODE_STATE_DOWN)
	h, _ := unitHealer(t, f, func(c *HealConfig) { c.RepairMaxInflight = 1 })
	round(t, h)
	h.mu.Lock()
	var order []byte
	for _, it := range h.queue.order {
		order = append(order, it.id[0])
	}
	h.mu.Unlock()
	if want := []byte{2, 1, 3}; !bytes.Equal(order, want) {
		t.Errorf("queue order = %v, want %v (fewest healthy first, lost and whole left out)", order, want)
	}
	if got := outstanding(h); len(got) != 1 || got[0][0] != '2' {
		t.Fatalf("with one repair allowed, outstanding = %v, want one of segment 2", got)
	}
	for range 5 {
		reportAll(t, h)
		round(t, h)
	}
	if nodes := f.nodes(two); slices.Contains(nodes, "") {
		t.Errorf("segment 2 still %q", nodes)
	}
	if n := len(f.commits()); n != 4 {
		t.Errorf("%d placements committed, want 4 (2 + 1 + 1)", n)
	}
	if got := outstanding(h); len(got) != 0 {
		t.Errorf("outstanding at the end: %v", got)
	}
	if h.queue.len() != 0 {
		t.Errorf("queue at the end: %d", h.queue.len())
	}
}

func TestRepairBudgets(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	// Ten segments that each lose their chunk on n00: every best target
	// is in z0 (n01 or n02, whichever is not in the placement).
	for i := range 10 {
		f.addSegment(fmt.Sprint(i), byte(10+i), "n00", "n01", "n10", "n11", "n20", "n21")
	}
	f.setState("n00", pb.NodeState_NODE_STATE_DOWN)

	t.Run("per node", func(t *testing.T) {
		h, _ := unitHealer(t, f, func(c *HealConfig) { c.RepairPerNode = 3 })
		round(t, h)
		if got := outstanding(h); len(got) != 3 || !strings0(got, "@n02") {
			t.Errorf("outstanding = %v, want 3, all to n02 (the only z0 node outside the placements)", got)
		}
	})
	t.Run("total", func(t *testing.T) {
		h, _ := unitHealer(t, f, func(c *HealConfig) { c.RepairPerNode = 100; c.RepairMaxInflight = 4 })
		round(t, h)
		if got := outstanding(h); len(got) != 4 {
			t.Errorf("outstanding = %v, want 4", got)
		}
	})
	t.Run("bytes per second", func(t *testing.T) {
		// Each repair is charged the segment (4 MiB); 8 MiB/s allows two
		// per second.
		h, clock := unitHealer(t, f, func(c *HealConfig) { c.RepairPerNode = 100; c.RepairBytesPerSecond = 8 << 20 })
		round(t, h)
		if got := outstanding(h); len(got) != 2 {
			t.Errorf("outstanding = %v, want 2 in the first second", got)
		}
		clock.add(500 * time.Millisecond)
		round(t, h)
		if got := outstanding(h); len(got) != 3 {
			t.Errorf("outstanding = %v, want 3 after half a second more", got)
		}
		clock.add(10 * time.Second) // the bucket holds at most one second
		round(t, h)
		if got := outstanding(h); len(got) != 5 {
			t.Errorf("outstanding = %v, want 5 after a long pause (burst of one second)", got)
		}
	})
}

func strings0(list []string, suffix string) bool {
	for _, s := range list {
		if !bytes.HasSuffix([]byte(s), []byte(suffix)) {
			return false
		}
	}
	return true
}

func TestRepairRetries(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	a := f.addSegment("a", 1, "n00", "", "n10", "n11", "n20", "n21")
	b := f.addSegment("b", 2, "n00", "n01", "n10", "", "n20", "n21")
	h, clock := unitHealer(t, f, nil)
	round(t, h)
	if got := outstanding(h); len(got) != 2 {
		t.Fatalf("outstanding = %v, want both segments", got)
	}
	var ta, tb taskRef
	for _, as := range h.tasks.byID {
		if as.ref.segment[0] == 1 {
			ta = as.ref
		} else {
			tb = as.ref
		}
	}

	// a's task fails; b's is never reported. Neither holds the other up.
	h.tasks.take(ta.id())
	if err := h.placementResult(context.Background(), ta, &pb.TaskResult{TaskId: ta.id(), NodeId: ta.node, Error: "source unreachable"}); err != nil {
		t.Fatal(err)
	}
	round(t, h)
	if got := outstanding(h); len(got) != 1 || got[0][0] != '2' {
		t.Fatalf("after a's failure, outstanding = %v: want only b's (a backs off)", got)
	}
	clock.add(2 * time.Second) // past a's first backoff (1s)
	round(t, h)
	if got := outstanding(h); len(got) != 2 {
		t.Fatalf("after the backoff, outstanding = %v: want a again", got)
	}

	// b's task expires and is planned again, under a new id.
	clock.add(61 * time.Second)
	round(t, h) // expires b (and a's second task), backs both off
	clock.add(5 * time.Second)
	round(t, h)
	var again taskRef
	for _, as := range h.tasks.byID {
		if as.ref.segment[0] == 2 {
			again = as.ref
		}
	}
	if again.id() == "" || again.id() == tb.id() || again.shards[0] != tb.shards[0] {
		t.Fatalf("b's repair after expiry = %+v, want a new task for shard %d", again, tb.shards[0])
	}

	// The expired task's late result still counts (the id says what to
	// commit); the new one then loses the compare-and-set harmlessly.
	if err := h.placementResult(context.Background(), tb, &pb.TaskResult{TaskId: tb.id(), NodeId: tb.node, Ok: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.nodes(b)[tb.shards[0]]; got != tb.node {
		t.Errorf("after the late result, shard is on %q, want %s", got, tb.node)
	}
	reportAll(t, h)
	nodes := f.nodes(b)
	if slices.Contains(nodes, "") || len(slices.Compact(slices.Sorted(slices.Values(nodes)))) != 6 {
		t.Errorf("b's placement %q: want 6 distinct nodes", nodes)
	}
	// A repeated report changes nothing and commits nothing.
	before := len(f.commits())
	if err := h.placementResult(context.Background(), tb, &pb.TaskResult{TaskId: tb.id(), NodeId: tb.node, Ok: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.commits()) != before {
		t.Error("a repeated report proposed a commit")
	}
	if slices.Contains(f.nodes(a), "") {
		t.Errorf("a still %q", f.nodes(a))
	}

	// A commit whose outcome is unknown is an error for the reporter to
	// retry; the retry commits.
	c := f.addSegment("c", 3, "", "n01", "n10", "n11", "n20", "n21")
	round(t, h)
	f.mu.Lock()
	f.failCommits = 1
	f.mu.Unlock()
	var tc taskRef
	for _, as := range h.tasks.byID {
		if as.ref.segment[0] == 3 {
			tc = as.ref
		}
	}
	if err := h.placementResult(context.Background(), tc, &pb.TaskResult{TaskId: tc.id(), NodeId: tc.node, Ok: true}); err == nil {
		t.Fatal("a failed commit was not reported as an error")
	}
	if err := h.placementResult(context.Background(), tc, &pb.TaskResult{TaskId: tc.id(), NodeId: tc.node, Ok: true}); err != nil {
		t.Fatal(err)
	}
	if f.nodes(c)[0] != tc.node {
		t.Errorf("c's shard 0 on %q after the retried report, want %s", f.nodes(c)[0], tc.node)
	}
}

func TestGCRound(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	f.setState("n10", pb.NodeState_NODE_STATE_DOWN)
	f.setState("n20", pb.NodeState_NODE_STATE_DECOMMISSIONED)
	seg := func(id byte, nodes ...string) *pb.Segment {
		return &pb.Segment{Id: bytes.Repeat([]byte{id}, 16), Nodes: nodes}
	}
	f.gc = []GCItem{
		{Key: []byte("gc/1"), Entry: &pb.GCEntry{Segments: []*pb.Segment{seg(1, "n00", "n01", "", "n20")}}},
		{Key: []byte("gc/2"), Entry: &pb.GCEntry{Segments: []*pb.Segment{seg(2, "n00", "n10")}}},
		{Key: []byte("gc/3"), Entry: &pb.GCEntry{}}, // inline object: nothing to delete
	}
	h, _ := unitHealer(t, f, nil)
	ctx := context.Background()
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.GCBacklog(); n != 2 {
		t.Errorf("backlog after the first round = %d, want 2 (gc/3 acked at once)", n)
	}
	deletes := map[string][]string{}
	for node, m := range h.tasks.byNode {
		for _, a := range m {
			for _, c := range a.task.GetDelete().GetChunks() {
				deletes[node] = append(deletes[node], fmt.Sprintf("%s:%d.%d", a.ref.gcKey, c.SegmentId[0], c.Shard))
			}
		}
	}
	for _, l := range deletes {
		sort.Strings(l)
	}
	want := map[string][]string{"n00": {"gc/1:1.0", "gc/2:2.0"}, "n01": {"gc/1:1.1"}}
	if fmt.Sprint(deletes) != fmt.Sprint(want) {
		t.Errorf("delete tasks = %v, want %v (none to the down n10 or decommissioned n20)", deletes, want)
	}
	// Everyone reports; gc/1 is acked, gc/2 waits for n10.
	for _, task := range slices.Concat(h.tasks.forNode("n00", 10), h.tasks.forNode("n01", 10)) {
		ref, _ := parseTaskID(task.Id)
		h.tasks.take(task.Id)
		h.deleteResult(ref, &pb.TaskResult{TaskId: task.Id, NodeId: ref.node, Ok: true})
	}
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.gc) != 1 || string(f.gc[0].Key) != "gc/2" {
		t.Fatalf("gc entries left = %v, want gc/2", f.gc)
	}
	// n10 returns: it gets its delete, and gc/2 goes once it reports.
	f.setState("n10", pb.NodeState_NODE_STATE_UP)
	for range 3 {
		if err := h.gcRound(ctx); err != nil {
			t.Fatal(err)
		}
		for _, task := range slices.Concat(h.tasks.forNode("n00", 10), h.tasks.forNode("n10", 10)) {
			ref, _ := parseTaskID(task.Id)
			h.tasks.take(task.Id)
			h.deleteResult(ref, &pb.TaskResult{TaskId: task.Id, NodeId: ref.node, Ok: true})
		}
	}
	if len(f.gc) != 0 {
		t.Errorf("gc entries left = %v, want none", f.gc)
	}
}

func TestHealthFigures(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	f.setState("n22", pb.NodeState_NODE_STATE_DOWN)
	f.addSegment("whole", 1, "n00", "n01", "n10", "n11", "n20", "n21")
	f.addSegment("minus1", 2, "n00", "n01", "n10", "n11", "n20", "")
	f.addSegment("minus2", 3, "n00", "n01", "n10", "n11", "n22", "")
	f.addSegment("lost", 4, "", "", "n10", "n11", "n22", "")
	h, clock := unitHealer(t, f, nil)
	fig, err := h.healthPass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fig.total != 4 || fmt.Sprint(fig.byMissing) != "[1 1 1 0 1]" || fig.degraded != 3 || fig.lost != 1 || fig.bytesAtRisk != 12<<20 {
		t.Errorf("figures = %+v", fig)
	}
	if fig.rebuildBytes != 3<<20 { // 1 + 2 chunks of 1 MiB; the lost one cannot be rebuilt
		t.Errorf("rebuildBytes = %d, want 3 MiB", fig.rebuildBytes)
	}
	if len(fig.lostList) != 1 || fig.lostList[0].GetKey() != "lost" || fig.lostList[0].GetHealthy() != 2 || fig.lostList[0].GetNeeded() != 4 {
		t.Errorf("lost = %v", fig.lostList)
	}
	if st := h.repairStats(); st.eta != -1 {
		t.Errorf("eta with nothing repaired yet = %v, want -1 (unknown)", st.eta)
	}
	// 1 MiB repaired over the next 10 s: 2 MiB left at ~0.1 MiB/s.
	clock.add(time.Second)
	h.meter.add(clock.now(), 1<<20)
	clock.add(9 * time.Second)
	st := h.repairStats()
	if st.rate < 1<<20/10-1 || st.rate > 1<<20/10+1 || st.eta < 19 || st.eta > 21 {
		t.Errorf("rate %.0f B/s, eta %.1fs; want ~104858 B/s and ~20s", st.rate, st.eta)
	}
}

func TestMoveTask(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	seg := f.addSegment("m", 7, "n00", "n01", "n10", "n11", "n20", "n21")
	h, _ := unitHealer(t, f, func(c *HealConfig) { c.RepairPerNode = 1 })
	id, err := h.addMove(seg, 0, "n02")
	if err != nil {
		t.Fatal(err)
	}
	tasks := h.tasks.forNode("n02", 10)
	if len(tasks) != 1 || tasks[0].GetId() != id {
		t.Fatalf("n02's tasks = %v", tasks)
	}
	mv := tasks[0].GetMove()
	if mv.GetShard() != 0 || mv.GetSource().GetNodeId() != "n00" || mv.GetSource().GetAddress() != "n00:1" {
		t.Errorf("move task = %v", mv)
	}
	if !h.tasks.isWriting(seg, 0, "n02") {
		t.Error("the move's target chunk is not counted as being written")
	}
	if _, err := h.addMove(seg, 1, "n12"); !errors.Is(err, metaerr.ErrPreconditionFailed) {
		t.Errorf("a second move of a busy segment = %v, want PreconditionFailed", err)
	}
	other := f.addSegment("o", 8, "n00", "n01", "n10", "n11", "n20", "n21")
	if _, err := h.addMove(other, 0, "n02"); !errors.Is(err, errTargetBusy) {
		t.Errorf("a move to a node without budget = %v, want errTargetBusy", err)
	}
	ref, err := parseTaskID(id)
	if err != nil {
		t.Fatal(err)
	}
	h.tasks.take(id)
	if err := h.placementResult(context.Background(), ref, &pb.TaskResult{TaskId: id, NodeId: "n02", Ok: true, ShardsDone: []uint32{0}}); err != nil {
		t.Fatal(err)
	}
	cs := f.commits()
	if len(cs) != 1 || cs[0].GetOldNode() != "n00" || cs[0].GetNewNode() != "n02" || cs[0].GetReason() != "rebalance" {
		t.Errorf("commits = %v, want n00 -> n02 for rebalance", cs)
	}
}

func TestRepairQueueReplace(t *testing.T) {
	item := func(id byte, healthy, missing int) *repairItem {
		return &repairItem{id: []byte{id}, healthy: healthy, missing: missing, k: 4}
	}
	var q repairQueue
	q.replace([]*repairItem{item(3, 5, 1), item(1, 5, 1), item(2, 4, 2), item(1, 5, 1), item(4, 5, 1)}, 3)
	var got []byte
	for _, it := range q.order {
		got = append(got, it.id[0])
	}
	if !bytes.Equal(got, []byte{2, 1, 3}) || q.len() != 4 || q.beyond != 1 {
		t.Fatalf("queue = %v (len %d, beyond %d), want [2 1 3], a repeat dropped and one beyond", got, q.len(), q.beyond)
	}
	q.items["\x01"].attempts, q.items["\x01"].notBefore = 3, time.Unix(5, 0)
	q.replace([]*repairItem{item(1, 5, 1)}, 3)
	if it := q.items["\x01"]; it.attempts != 3 || !it.notBefore.Equal(time.Unix(5, 0)) || q.len() != 1 {
		t.Errorf("after a rescan: %+v, len %d; want the backoff kept", it, q.len())
	}
	q.remove([]byte{1})
	if q.len() != 0 || len(q.items) != 0 {
		t.Errorf("after remove: len %d", q.len())
	}
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, 64 * time.Second}, {30, 64 * time.Second}} {
		if got := retryDelay(time.Second, tc.attempts); got != tc.want {
			t.Errorf("retryDelay(1s, %d) = %v, want %v", tc.attempts, got, tc.want)
		}
	}
}

// TestGCGrace: segments released less than GCGrace ago are not deleted
// yet, so reads that resolved them can finish.
func TestGCGrace(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	h, clock := unitHealer(t, f, func(c *HealConfig) { c.GCGrace = time.Minute })
	queued := clock.now().Add(-10 * time.Second).UnixNano()
	f.gc = []GCItem{{Key: []byte("gc/1"), Entry: &pb.GCEntry{QueuedUnixNano: queued, Segments: []*pb.Segment{{Id: bytes.Repeat([]byte{1}, 16), Nodes: []string{"n00"}}}}}}
	ctx := context.Background()
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.tasks.byNode["n00"]); n != 0 {
		t.Fatalf("%d delete tasks within the grace period, want 0", n)
	}
	clock.add(time.Minute)
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.tasks.byNode["n00"]); n != 1 {
		t.Fatalf("%d delete tasks after the grace period, want 1", n)
	}
}

// TestGCGraceSkipsChunkEntries: single-chunk deletions (a chunk marked
// bad, the old copy of a moved one) are handed out at once, even queued
// behind a version's deletion still within its grace: while one is
// pending, its node cannot take that shard again, and in a cluster where
// that node is the only one keeping the failure-domain rule the segment
// would stay degraded for the whole grace.
func TestGCGraceSkipsChunkEntries(t *testing.T) {
	f := newFakeHealState()
	nineNodes(f)
	h, clock := unitHealer(t, f, func(c *HealConfig) { c.GCGrace = time.Minute })
	young := clock.now().Add(-10 * time.Second).UnixNano()
	f.gc = []GCItem{
		{Key: gcKey(young, 5, 0), Entry: &pb.GCEntry{QueuedUnixNano: young, Segments: []*pb.Segment{{Id: bytes.Repeat([]byte{1}, 16), Nodes: []string{"n00"}}}}},
		{Key: gcKey(young+1, 6, chunkGCSeq), Entry: &pb.GCEntry{QueuedUnixNano: young + 1, Segments: []*pb.Segment{{Id: bytes.Repeat([]byte{2}, 16), Nodes: []string{"", "n01"}}}}},
	}
	ctx := context.Background()
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.tasks.byNode["n00"]); n != 0 {
		t.Fatalf("%d delete tasks for the version within its grace, want 0", n)
	}
	if n := len(h.tasks.byNode["n01"]); n != 1 {
		t.Fatalf("%d delete tasks for the single-chunk entry, want 1", n)
	}
	clock.add(time.Minute)
	if err := h.gcRound(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(h.tasks.byNode["n00"]); n != 1 {
		t.Fatalf("%d delete tasks for the version after its grace, want 1", n)
	}
}
