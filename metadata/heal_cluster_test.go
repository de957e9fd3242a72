package metadata

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Self-healing against the in-process metad cluster, with fake blob nodes:
// goroutines that register, heartbeat, and "execute" the tasks they are
// handed by reporting them done (no chunk data moves).

// stringAt prints what its string holds when printed, for a message whose
// detail is only known when it is printed.
type stringAt struct{ s *string }

func (a stringAt) String() string { return *a.s }

// healTimings shortens the self-healing loops for tests.
func healTimings(c *Config) {
	c.Heal.NodeSuspectAfter = 500 * time.Millisecond
	c.Heal.NodeDownAfter = 2 * time.Second
	c.Heal.RepairScanInterval = 200 * time.Millisecond
	c.Heal.RepairTaskTimeout = 5 * time.Second
	c.Heal.RepairBackoff = 50 * time.Millisecond
	c.Heal.GCInterval = 50 * time.Millisecond
	c.Heal.GCGrace = 0
	c.Heal.HealthScanInterval = 100 * time.Millisecond
	c.Heal.HealthScanRate = 0
}

// fakeBlob is a blob node that heartbeats every 30ms and reports every
// task it is handed done, unless told to stop heartbeating or to hold its
// results.
type fakeBlob struct {
	t      testing.TB
	node   *pb.Node
	cl     *metaclient.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	silent   bool            // no heartbeats
	hold     bool            // keep results instead of reporting them
	reported map[string]bool // task ids reported
	held     []*pb.TaskResult
	tasks    map[string]*pb.Task // every task seen, by id
}

func startFakeBlob(t testing.TB, cl *metaclient.Client, id, zone, rack string) *fakeBlob {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &fakeBlob{
		t:        t,
		node:     &pb.Node{Id: id, Address: "127.0.0.1:9" + strconv.Itoa(100+len(id)), Zone: zone, Rack: rack, CapacityBytes: 1 << 40, UsedBytes: 1 << 30},
		cl:       cl,
		cancel:   cancel,
		done:     make(chan struct{}),
		reported: map[string]bool{},
		tasks:    map[string]*pb.Task{},
	}
	if _, err := cl.RegisterNode(testCtx(t), &pb.RegisterNodeRequest{Node: b.node}); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	go b.run(ctx)
	t.Cleanup(b.stop)
	return b
}

func (b *fakeBlob) stop() {
	b.cancel()
	<-b.done
}

func (b *fakeBlob) setSilent(v bool) { b.mu.Lock(); b.silent = v; b.mu.Unlock() }
func (b *fakeBlob) setHold(v bool)   { b.mu.Lock(); b.hold = v; b.mu.Unlock() }

func (b *fakeBlob) run(ctx context.Context) {
	defer close(b.done)
	tick := time.NewTicker(30 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b.mu.Lock()
		silent, hold := b.silent, b.hold
		b.mu.Unlock()
		if silent {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := b.cl.Heartbeat(cctx, &pb.HeartbeatRequest{Id: b.node.GetId(), CapacityBytes: b.node.GetCapacityBytes(), UsedBytes: b.node.GetUsedBytes()})
		cancel()
		if err != nil {
			continue
		}
		var results []*pb.TaskResult
		b.mu.Lock()
		for _, task := range resp.GetTasks() {
			b.tasks[task.GetId()] = task
			if b.reported[task.GetId()] || slices.ContainsFunc(b.held, func(r *pb.TaskResult) bool { return r.GetTaskId() == task.GetId() }) {
				continue
			}
			res := &pb.TaskResult{TaskId: task.GetId(), NodeId: b.node.GetId(), Ok: true}
			if r := task.GetRepair(); r != nil {
				res.ShardsDone = r.GetShards()
			}
			if hold && task.GetDelete() == nil {
				b.held = append(b.held, res)
				continue
			}
			results = append(results, res)
		}
		if !hold {
			results = append(results, b.held...)
			b.held = nil
		}
		b.mu.Unlock()
		for _, res := range results {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := b.cl.ReportTask(cctx, &pb.ReportTaskRequest{Result: res})
			cancel()
			b.mu.Lock()
			if err == nil {
				b.reported[res.GetTaskId()] = true
			} else if ctx.Err() == nil {
				b.t.Logf("%s: report %s: %v (will retry)", b.node.GetId(), res.GetTaskId(), err)
				b.held = append(b.held, res) // try again next round
			}
			b.mu.Unlock()
		}
	}
}

// heldCount returns how many results b holds.
func (b *fakeBlob) heldCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// heldRepairs returns the repair tasks whose results b holds.
func (b *fakeBlob) heldRepairs() []*pb.Task {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*pb.Task
	for _, r := range b.held {
		if t := b.tasks[r.GetTaskId()]; t.GetRepair() != nil {
			out = append(out, t)
		}
	}
	return out
}

// seenTasks returns every task b has been handed.
func (b *fakeBlob) seenTasks() []*pb.Task {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*pb.Task, 0, len(b.tasks))
	for _, t := range b.tasks {
		out = append(out, t)
	}
	return out
}

func nodeState(t testing.TB, st *State, id string) pb.NodeState {
	t.Helper()
	cm, err := st.ClusterMap()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cm.GetNodes() {
		if n.GetId() == id {
			return n.GetState()
		}
	}
	return pb.NodeState_NODE_STATE_UNSPECIFIED
}

func TestHealLivenessSuspectDownUp(t *testing.T) {
	c := newTestCluster(t, 3, healTimings)
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	live := startFakeBlob(t, cl, "b-live", "z1", "r1")
	quiet := startFakeBlob(t, cl, "b-quiet", "z2", "r1")
	_ = live

	quiet.setSilent(true)
	// Watch the leader's state: suspect first, then down.
	var seen []pb.NodeState
	waitFor(t, 10*time.Second, func() bool {
		l := c.waitLeader()
		st := nodeState(t, l.srv.state, "b-quiet")
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		return st == pb.NodeState_NODE_STATE_DOWN
	}, "b-quiet to go down")
	if !slices.Contains(seen, pb.NodeState_NODE_STATE_SUSPECT) {
		t.Errorf("b-quiet went %v, never suspect", seen)
	}
	// Committed: every member's state says so, and the API's map too.
	waitFor(t, 5*time.Second, func() bool {
		for _, nd := range c.live() {
			if nodeState(t, nd.srv.state, "b-quiet") != pb.NodeState_NODE_STATE_DOWN {
				return false
			}
		}
		return true
	}, "every member to see b-quiet down")
	// Awaited, not read once: b-live's heartbeats come every 30ms against
	// a 500ms suspicion, but a loaded CI machine can pause every process
	// for longer than that, and b-live is then suspect until its next one.
	var mapErr string
	waitFor(t, 5*time.Second, func() bool {
		cm, err := cl.GetClusterMap(testCtx(t), &pb.GetClusterMapRequest{})
		if err != nil {
			mapErr = err.Error()
			return false
		}
		mapErr = ""
		for _, n := range cm.GetClusterMap().GetNodes() {
			want := pb.NodeState_NODE_STATE_UP
			if n.GetId() == "b-quiet" {
				want = pb.NodeState_NODE_STATE_DOWN
			}
			if n.GetState() != want {
				mapErr = fmt.Sprintf("%s is %v, want %v", n.GetId(), n.GetState(), want)
			}
		}
		return mapErr == ""
	}, "GetClusterMap to show b-quiet down and b-live up (last: %v)", stringAt{&mapErr})

	// A leader change keeps b-quiet down and b-live up (it heartbeats the
	// new leader within its grace).
	old := c.waitLeader()
	c.kill(old)
	nl := c.waitLeader()
	if st := nodeState(t, nl.srv.state, "b-quiet"); st != pb.NodeState_NODE_STATE_DOWN {
		t.Fatalf("after leader change b-quiet is %v", st)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, heard := nl.srv.hb.lastSeen("b-live")
		return heard
	}, "b-live to heartbeat the new leader")
	waitFor(t, 5*time.Second, func() bool {
		return nodeState(t, nl.srv.state, "b-live") == pb.NodeState_NODE_STATE_UP
	}, "b-live up under the new leader")

	// Heartbeats resume: up again.
	quiet.setSilent(false)
	waitFor(t, 5*time.Second, func() bool {
		return nodeState(t, nl.srv.state, "b-quiet") == pb.NodeState_NODE_STATE_UP
	}, "b-quiet to come back up")
	waitFor(t, 5*time.Second, func() bool {
		return nodeState(t, nl.srv.state, "b-live") == pb.NodeState_NODE_STATE_UP
	}, "b-live up at the end")
}

// healNodes starts 9 fake blob nodes, 3 per zone, one rack each.
func healNodes(t testing.TB, cl *metaclient.Client) (map[string]*fakeBlob, []placement.Node) {
	blobs := map[string]*fakeBlob{}
	var pnodes []placement.Node
	for z := range 3 {
		for i := range 3 {
			id := fmt.Sprintf("b%d%d", z, i)
			zone := fmt.Sprintf("z%d", z)
			b := startFakeBlob(t, cl, id, zone, "r"+strconv.Itoa(i))
			blobs[id] = b
			pnodes = append(pnodes, toPlacementNode(b.node))
			pnodes[len(pnodes)-1].State = placement.StateUp
		}
	}
	return blobs, pnodes
}

// commitSegments commits n objects of one 4+2 segment each, placed by
// placement.Place, and returns their segment ids by key.
func commitSegments(t testing.TB, cl pb.MetadataClient, bucket string, n int, pnodes []placement.Node, rng *rand.Rand) map[string][]byte {
	t.Helper()
	ids := map[string][]byte{}
	for i := range n {
		id := make([]byte, 16)
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		nodes, err := placement.Place(id, pnodes, 6, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("k%03d", i)
		obj := &pb.Object{Bucket: bucket, Key: key, VersionId: "v-" + key, Size: 4 << 20, Etag: "e",
			Segments: []*pb.Segment{{Id: id, Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 1 << 18, Size: 4 << 20, Nodes: nodes}}}
		commitSure(t, cl, &pb.CommitObjectRequest{Object: obj})
		ids[key] = id
	}
	return ids
}

// commitSure commits req for a test's setup. At a high load a 3-member
// test cluster can lose its leader mid-commit (fastTimings' 300 ms lease),
// and the commit's outcome is then unknown: commitSure asks the state
// which it was (a linearizable read, answered once a leader has committed
// or dropped the entry) and commits again only if it did not happen.
func commitSure(t testing.TB, cl pb.MetadataClient, req *pb.CommitObjectRequest) {
	t.Helper()
	o := req.GetObject()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cl.CommitObject(testCtx(t), req)
		if err == nil {
			return
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("commit %s/%s: %v", o.GetBucket(), o.GetKey(), err)
		}
		t.Logf("commit %s/%s: %v; finding out whether it happened", o.GetBucket(), o.GetKey(), err)
		for {
			got, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: o.GetBucket(), Key: o.GetKey()})
			if err == nil && got.GetObject().GetVersionId() == o.GetVersionId() {
				return
			}
			if err == nil || errors.Is(err, metaerr.ErrNoSuchKey) {
				break // not committed: commit again
			}
			if time.Now().After(deadline) {
				t.Fatalf("get %s/%s after an unknown commit outcome: %v", o.GetBucket(), o.GetKey(), err)
			}
		}
	}
}

// metricValue reads one sample from a member's /metrics ("" labels: the
// unlabelled series); ok is false when it is absent.
func metricValue(t testing.TB, nd *testNode, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + nd.srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f, true
		}
	}
	return 0, false
}

func TestHealRepairAcrossLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, func(c *Config) {
		healTimings(c)
		c.Heal.RepairPerNode = 32 // all repairs in flight at once
	})
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "bk")
	blobs, pnodes := healNodes(t, cl)
	rng := rand.New(rand.NewPCG(1, 2))
	segs := commitSegments(t, cl, "bk", 24, pnodes, rng)

	// Take down the node holding the most chunks; results are held so the
	// repairs stay in flight.
	count := map[string]int{}
	for key := range segs {
		o, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "bk", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range o.GetObject().GetSegments()[0].GetNodes() {
			count[n]++
		}
	}
	victim := ""
	for id, n := range count {
		if victim == "" || n > count[victim] || n == count[victim] && id < victim {
			victim = id
		}
	}
	affected := count[victim]
	t.Logf("taking down %s, which holds %d chunks", victim, affected)
	for _, b := range blobs {
		b.setHold(true)
	}
	epochAt := func() uint64 {
		t.Helper()
		m, err := cl.GetClusterMap(testCtx(t), &pb.GetClusterMapRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return m.GetClusterMap().GetEpoch()
	}
	epoch0 := epochAt()
	blobs[victim].setSilent(true)

	leader := c.waitLeader()
	waitFor(t, 10*time.Second, func() bool {
		n := 0
		for _, b := range blobs {
			n += b.heldCount()
		}
		return n >= affected
	}, "repair tasks for all %d chunks of %s to be handed out", affected, victim)

	// Degraded, visible in the gauges and in HealthStatus.
	waitFor(t, 5*time.Second, func() bool {
		v, ok := metricValue(t, leader, "cairn_segments_degraded")
		return ok && v == float64(affected)
	}, "cairn_segments_degraded = %d on the leader", affected)
	if v, ok := metricValue(t, leader, `cairn_segments_by_missing{missing="1"}`); !ok || v != float64(affected) {
		t.Errorf(`cairn_segments_by_missing{missing="1"} = %v, %v; want %d`, v, ok, affected)
	}
	for _, f := range c.followers() {
		if _, ok := metricValue(t, f, "cairn_segments_degraded"); ok {
			t.Errorf("follower %s exports cairn_segments_degraded", f.id)
		}
	}
	hs, err := cl.HealthStatus(testCtx(t), &pb.HealthStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetSegmentsDegraded() != int64(affected) || hs.GetSegmentsTotal() != int64(len(segs)) || hs.GetRepairsInFlight() < int64(affected) || hs.GetSegmentsLost() != 0 {
		t.Errorf("HealthStatus = %v, want %d degraded of %d, all in flight, none lost", hs, affected, len(segs))
	}

	// Every repair targets a node outside the placement that keeps the
	// failure-domain rule, and CheckChunks calls its chunk referenced.
	// The rule-keeping target is the one spare node in the victim's zone;
	// Replace takes the best writable node, so if that spare's heartbeats
	// lapsed (a loaded machine; 500 ms makes a node SUSPECT here) the
	// repair goes to another zone instead of waiting. The victim's own
	// SUSPECT and DOWN move the cluster map's epoch by 2: only a further
	// state change excuses a repair that breaks the rule.
	otherStateChanges := epochAt()-epoch0 > 2
	var check []*pb.ChunkRef
	for id, b := range blobs {
		for _, task := range b.heldRepairs() {
			r := task.GetRepair()
			seg := r.GetSegment()
			nodes := slices.Clone(seg.GetNodes())
			for _, sh := range r.GetShards() {
				if nodes[sh] != victim {
					t.Errorf("task %s repairs shard %d, which is on %q, not %s", task.GetId(), sh, nodes[sh], victim)
				}
				nodes[sh] = id
			}
			if err := placement.CheckSpread(nodes, pnodes, 2, placement.Options{}); err != nil {
				if otherStateChanges {
					t.Logf("repair of %x to %s breaks the failure-domain rule (%v), but nodes besides %s changed state meanwhile", seg.GetId(), id, err, victim)
				} else {
					t.Errorf("repair of %x to %s breaks the failure-domain rule: %v", seg.GetId(), id, err)
				}
			}
			if len(r.GetSources()) != 5 || slices.ContainsFunc(r.GetSources(), func(p *pb.PeerChunk) bool { return p.GetNodeId() == victim }) {
				t.Errorf("task %s sources = %v, want the 5 healthy chunks", task.GetId(), r.GetSources())
			}
			check = append(check, &pb.ChunkRef{SegmentId: seg.GetId(), Shard: r.GetShards()[0], NodeId: id})
		}
	}
	check = append(check, &pb.ChunkRef{SegmentId: make([]byte, 16), Shard: 0, NodeId: "b000"})
	cc, err := cl.CheckChunks(testCtx(t), &pb.CheckChunksRequest{Chunks: check})
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range cc.GetReferenced() {
		if want := i < len(check)-1; ref != want {
			t.Errorf("CheckChunks(%x.%d on %s) = %v, want %v", check[i].GetSegmentId(), check[i].GetShard(), check[i].GetNodeId(), ref, want)
		}
	}

	// The leader goes away with every repair in flight; the results reach
	// the new leader, which never handed those tasks out.
	c.kill(leader)
	leader = c.waitLeader()
	for _, b := range blobs {
		b.setHold(false)
	}
	waitFor(t, 20*time.Second, func() bool {
		for _, id := range segs {
			info, err := leader.srv.state.Segment(id)
			if err != nil || slices.Contains(info.Segment.GetNodes(), victim) {
				return false
			}
		}
		return true
	}, "every segment to move off %s", victim)
	for key, id := range segs {
		info, err := leader.srv.state.Segment(id)
		if err != nil {
			t.Fatal(err)
		}
		nodes := info.Segment.GetNodes()
		if slices.Contains(nodes, "") {
			t.Errorf("%s: placement %q has a missing shard", key, nodes)
		}
		if err := placement.CheckSpread(nodes, pnodes, 2, placement.Options{}); err != nil {
			t.Errorf("%s: placement %q after repair: %v", key, nodes, err)
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		v, ok := metricValue(t, leader, "cairn_segments_degraded")
		return ok && v == 0
	}, "cairn_segments_degraded back to 0")
	if v, _ := metricValue(t, leader, "cairn_repair_bytes_total"); v < float64(affected)*(1<<20) {
		t.Errorf("cairn_repair_bytes_total = %v on the new leader, want at least %d MiB", v, affected)
	}
}

func TestHealLostSegmentsAndGC(t *testing.T) {
	c := newTestCluster(t, 3, healTimings)
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "bk")
	blobs, pnodes := healNodes(t, cl)
	rng := rand.New(rand.NewPCG(3, 4))
	segs := commitSegments(t, cl, "bk", 3, pnodes, rng)

	// A lost object (3 of 6 chunks, k = 4) and a lost multipart part.
	lostSeg := func(nodes []string) *pb.Segment {
		id := make([]byte, 16)
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		return &pb.Segment{Id: id, Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 1 << 18, Size: 1 << 20, Nodes: nodes}
	}
	ctx := testCtx(t)
	if _, err := cl.CommitObject(ctx, &pb.CommitObjectRequest{Object: &pb.Object{Bucket: "bk", Key: "gone", VersionId: "v-gone", Size: 1 << 20,
		Segments: []*pb.Segment{lostSeg([]string{"b00", "", "b10", "", "b20", ""})}}}); err != nil {
		t.Fatal(err)
	}
	up, err := cl.CreateMultipart(ctx, &pb.CreateMultipartRequest{Upload: &pb.MultipartUpload{Bucket: "bk", Key: "mp", UploadId: "u1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutPart(ctx, &pb.PutPartRequest{Bucket: "bk", Key: "mp", Part: &pb.Part{UploadId: up.GetUpload().GetUploadId(), Number: 3, Size: 1 << 20, Etag: "p3",
		Segments: []*pb.Segment{lostSeg([]string{"", "", "", "b01", "b11", "b21"})}}}); err != nil {
		t.Fatal(err)
	}
	var hs *pb.HealthStatusResponse
	waitFor(t, 5*time.Second, func() bool {
		hs, err = cl.HealthStatus(ctx, &pb.HealthStatusRequest{MaxLost: 10})
		return err == nil && hs.GetSegmentsLost() == 2
	}, "2 lost segments in HealthStatus")
	var names []string
	for _, l := range hs.GetLost() {
		names = append(names, fmt.Sprintf("%s/%s v=%q u=%q p=%d %d/%d", l.GetBucket(), l.GetKey(), l.GetVersionId(), l.GetUploadId(), l.GetPartNumber(), l.GetHealthy(), l.GetNeeded()))
	}
	slices.Sort(names)
	want := []string{`bk/gone v="v-gone" u="" p=0 3/4`, `bk/mp v="" u="u1" p=3 3/4`}
	if !slices.Equal(names, want) {
		t.Errorf("lost = %q, want %q", names, want)
	}
	if v, ok := metricValue(t, c.waitLeader(), "cairn_segments_lost"); !ok || v != 2 {
		t.Errorf("cairn_segments_lost = %v, %v; want 2", v, ok)
	}
	if hs.GetSegmentsTotal() != 5 || hs.GetSegmentsDegraded() != 2 || hs.GetRepairQueue() != 0 {
		t.Errorf("HealthStatus = %v: want 5 segments, 2 degraded (the lost), none queued", hs)
	}

	// A chunk reported corrupt is rebuilt elsewhere and deleted where it
	// was.
	old := map[string]bool{}
	bad, err := c.waitLeader().srv.state.Segment(segs["k001"])
	if err != nil {
		t.Fatal(err)
	}
	badNode := bad.Segment.GetNodes()[0]
	if _, err := cl.ReportChunks(ctx, &pb.ReportChunksRequest{Reason: "corrupt", Reporter: "test",
		Chunks: []*pb.ChunkRef{{SegmentId: segs["k001"], Shard: 0, NodeId: badNode}}}); err != nil {
		t.Fatal(err)
	}
	old[fmt.Sprintf("%x.0@%s", segs["k001"], badNode)] = true
	waitFor(t, 10*time.Second, func() bool {
		info, err := c.waitLeader().srv.state.Segment(segs["k001"])
		return err == nil && info.Segment.GetNodes()[0] != "" && info.Segment.GetNodes()[0] != badNode
	}, "the corrupt chunk to be rebuilt elsewhere")

	// Overwrite and delete: the old chunks are handed out for deletion on
	// exactly the nodes that hold them, and the entries acknowledged.
	for key, id := range segs {
		info, err := c.waitLeader().srv.state.Segment(id)
		if err != nil {
			t.Fatal(err)
		}
		for sh, n := range info.Segment.GetNodes() {
			old[fmt.Sprintf("%x.%d@%s", id, sh, n)] = true
		}
		if key == "k000" {
			if _, err := cl.DeleteObject(ctx, &pb.DeleteObjectRequest{Bucket: "bk", Key: key}); err != nil {
				t.Fatal(err)
			}
		} else {
			mustCommit(t, cl, "bk", key) // an inline overwrite
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		n, err := c.waitLeader().srv.state.GCBacklog()
		return err == nil && n == 0
	}, "the gc backlog to drain")
	deleted := map[string]bool{}
	for id, b := range blobs {
		for _, task := range b.seenTasks() {
			for _, ch := range task.GetDelete().GetChunks() {
				if ch.GetNodeId() != id {
					t.Errorf("delete task for %s handed to %s", ch.GetNodeId(), id)
				}
				deleted[fmt.Sprintf("%x.%d@%s", ch.GetSegmentId(), ch.GetShard(), ch.GetNodeId())] = true
			}
		}
	}
	for k := range old {
		if !deleted[k] {
			t.Errorf("chunk %s of a replaced version was never handed out for deletion", k)
		}
	}
	for k := range deleted {
		if !old[k] {
			t.Errorf("chunk %s handed out for deletion was not garbage", k)
		}
	}
	if v, ok := metricValue(t, c.waitLeader(), "cairn_gc_backlog"); !ok || v != 0 {
		t.Errorf("cairn_gc_backlog = %v, %v; want 0", v, ok)
	}
}
