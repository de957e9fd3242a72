package metadata

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"google.golang.org/protobuf/proto"
)

// The balancer's passes, round by round, on a real State without Raft:
// commands apply to the State as they are proposed (a one-member log), the
// healer has a fake clock and no loops, and the test plays the blob nodes.
// So where a move commits, fails or expires relative to the rounds is
// exact, not a matter of timing.

// balanceRig is a leader with nothing running but what the test calls.
type balanceRig struct {
	t     *testing.T
	st    *State
	view  *hookedState // the healer's view of st
	srv   *Server
	h     *healer
	clock *fakeClock
	chunk int64 // bytes of every chunk in the node index

	mu    sync.Mutex
	index uint64
}

// hookedState is the State as the healer reads it; hook, when set, runs
// once at the next ClusterMap read, which lands a commit inside a round.
type hookedState struct {
	*State
	hook func()
}

func (s *hookedState) ClusterMap() (*pb.ClusterMap, error) {
	if f := s.hook; f != nil {
		s.hook = nil
		f()
	}
	return s.State.ClusterMap()
}

// Four nodes, one per zone, and segments of a 1+1 code placed on pairs of
// them: a move from n0 to n2 keeps the failure-domain rule for every
// segment here. A node holds 1000 chunks at most, so a band of 0.05
// percentage points is half a chunk: a node one chunk off the mean is out
// of it.
const (
	rigNodeChunks = 1000
	rigThreshold  = 0.05
)

// rigLayout is how many segments each pair of nodes holds; the segments
// on n0 come first in key order. With 300 segments a pass takes two
// rounds (balancePage is 256), and the segments of n0 are all in the first.
type rigLayout struct{ ab, ad, bc, cd int }

func newBalanceRig(t *testing.T, layout rigLayout, tune func(*HealConfig)) *balanceRig {
	t.Helper()
	if balancePage != 256 {
		t.Fatalf("the layouts assume a balancer page of 256 segments, not %d", balancePage)
	}
	st := smOpen(t)
	r := &balanceRig{t: t, st: st, view: &hookedState{State: st}, clock: &fakeClock{t: time.Unix(2_000_000, 0)}, index: st.AppliedIndex()}
	cfg := DefaultHealConfig()
	cfg.RepairBytesPerSecond = 0
	cfg.RepairTaskTimeout = time.Minute
	if tune != nil {
		tune(&cfg)
	}
	r.srv = &Server{state: st, log: slog.New(slog.DiscardHandler)}
	r.newTerm(cfg)

	r.chunk = chunkBytes(rigSegment(0, "n0", "n1"))
	if r.chunk <= 0 {
		t.Fatal("the rig's segment has no chunk layout")
	}
	r.must(smBootstrap(1, 1))
	for i := range 4 {
		r.must(&pb.Command{Op: &pb.Command_RegisterNode{RegisterNode: &pb.RegisterNodeRequest{Node: &pb.Node{
			Id: fmt.Sprintf("n%d", i), Address: fmt.Sprintf("127.0.0.1:%d", 21000+i), Zone: fmt.Sprintf("z%d", i), Rack: "r0",
			CapacityBytes: rigNodeChunks * r.chunk}}}})
	}
	r.must(smCreateBucket("bk"))
	n := uint32(0)
	for _, g := range []struct {
		count int
		a, b  string
	}{{layout.ab, "n0", "n1"}, {layout.ad, "n0", "n3"}, {layout.bc, "n1", "n2"}, {layout.cd, "n2", "n3"}} {
		for range g.count {
			seg := rigSegment(n, g.a, g.b)
			r.must(smCommit(&pb.Object{Bucket: "bk", Key: fmt.Sprintf("k%04d", n), VersionId: fmt.Sprintf("v%04d", n), Etag: "e",
				Size: seg.GetSize(), Segments: []*pb.Segment{seg}}, nil))
			n++
		}
	}
	return r
}

// newTerm makes this member lead a new term: a fresh healer, as Raft's
// leadership change would start.
func (r *balanceRig) newTerm(cfg HealConfig) {
	r.h = newHealer(cfg, slog.New(slog.DiscardHandler), r.view, r.propose, newHealMetrics(func() *healer { return nil }))
	r.h.now = r.clock.now
	r.srv.heal.Store(r.h)
}

// rigSegment is segment n (ids in the order of n) on nodes a and b.
func rigSegment(n uint32, a, b string) *pb.Segment {
	return &pb.Segment{Id: rigSegmentID(n), Scheme: &pb.Scheme{K: 1, M: 1}, BlockSize: 4096, Size: 4096, Nodes: []string{a, b}}
}

func rigSegmentID(n uint32) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 12), n)
}

func (r *balanceRig) propose(_ context.Context, cmd *pb.Command) (proto.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index++
	cmd.ProposedUnixNano = r.clock.now().UnixNano()
	res := r.st.ApplyBatch([]Entry{{Index: r.index, Cmd: cmd}})[0]
	return res.Resp, res.Err
}

func (r *balanceRig) must(cmd *pb.Command) {
	r.t.Helper()
	if _, err := r.propose(context.Background(), cmd); err != nil {
		r.t.Fatalf("apply %s: %v", smOpName(cmd), err)
	}
}

// start commits a running rebalance, as RebalanceStart does.
func (r *balanceRig) start() {
	r.t.Helper()
	r.must(&pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: &pb.SetRebalance{Running: true, Threshold: rigThreshold, StartedUnixNano: r.clock.now().UnixNano()}}})
}

// round runs one balancer round, step later than the last.
func (r *balanceRig) round(step time.Duration) *pb.SetRebalance {
	r.t.Helper()
	r.clock.add(step)
	if err := r.srv.balanceRound(context.Background(), r.h); err != nil {
		r.t.Fatalf("balancer round: %v", err)
	}
	return r.state()
}

// state is the balancer's record with the cursor and pass counters of the
// rounds not committed yet.
func (r *balanceRig) state() *pb.SetRebalance {
	r.t.Helper()
	cur, err := r.st.Rebalance()
	if err != nil {
		r.t.Fatal(err)
	}
	if b := &r.h.bal; b.shadow != nil && proto.Equal(cur, b.base) {
		return b.shadow
	}
	return cur
}

// report answers every move outstanding on the current healer, as the
// blob nodes would.
func (r *balanceRig) report(ok bool) {
	r.t.Helper()
	for i := range 4 {
		node := fmt.Sprintf("n%d", i)
		for _, task := range r.h.tasks.forNode(node, 100) {
			res := &pb.TaskResult{TaskId: task.GetId(), NodeId: node, Ok: ok}
			if !ok {
				res.Error = "source unreachable"
			}
			if err := r.srv.reportTask(context.Background(), res); err != nil {
				r.t.Fatalf("report %s: %v", task.GetId(), err)
			}
		}
	}
}

// plan is what RebalancePlan would list now.
func (r *balanceRig) plan() []plannedMove {
	r.t.Helper()
	moves, _, _, err := r.srv.planFromState(context.Background(), rigThreshold)
	if err != nil {
		r.t.Fatal(err)
	}
	return moves
}

// finish runs rounds, every move handed out reported done, until the run
// ends; it returns the record then.
func (r *balanceRig) finish(step time.Duration) *pb.SetRebalance {
	r.t.Helper()
	for range 40 {
		if st := r.round(step); !st.GetRunning() {
			return st
		}
		r.report(true)
	}
	r.t.Fatalf("the rebalance still runs after 40 more rounds: %v", r.state())
	return nil
}

func usageTruth(t *testing.T, st *State) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for i := range 4 {
		id := fmt.Sprintf("n%d", i)
		_, size, err := st.NodeUsage(id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = size
	}
	return out
}

// A pass must not declare the run done when a move it planned on is lost
// midway (its task failed or expired, an earlier leader's move timed out,
// or the shard went elsewhere): the segments examined before the loss were
// planned as if it would happen. n0 holds one chunk more than the band
// allows and n2 one less: one move, n0 → n2, of the first segment.
func TestRebalancePassLosesMove(t *testing.T) {
	const step = 1100 * time.Millisecond // each round commits its cursor and a new pass reads the usage again
	lone := rigLayout{ab: 76, ad: 75, bc: 74, cd: 75}
	tests := []struct {
		name string
		// lose does what happens to the move between the two rounds of
		// the second pass; nil: it commits.
		lose func(t *testing.T, r *balanceRig, move *pb.PendingMove)
	}{
		{name: "committed", lose: nil},
		{name: "failed", lose: func(t *testing.T, r *balanceRig, _ *pb.PendingMove) { r.report(false) }},
		{name: "expired", lose: func(t *testing.T, r *balanceRig, _ *pb.PendingMove) {
			r.clock.add(r.h.cfg.RepairTaskTimeout)
			r.h.expire()
		}},
		{name: "earlier leader's, timed out", lose: func(t *testing.T, r *balanceRig, _ *pb.PendingMove) {
			// The move's task is in the old leader's table.
			r.newTerm(r.h.cfg)
			r.clock.add(r.h.cfg.RepairTaskTimeout + 2*time.Second)
		}},
		{name: "shard repaired elsewhere", lose: func(t *testing.T, r *balanceRig, m *pb.PendingMove) {
			r.must(&pb.Command{Op: &pb.Command_CommitPlacement{CommitPlacement: &pb.CommitPlacement{
				SegmentId: m.GetSegmentId(), Shard: m.GetShard(), OldNode: m.GetFromNode(), NewNode: "n3", Reason: "repair"}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newBalanceRig(t, lone, nil)
			if n := len(r.plan()); n != 1 {
				t.Fatalf("the plan at the start has %d moves, the layout wants 1", n)
			}
			r.start()

			// Pass 1 hands the move out from its first page.
			st := r.round(step)
			if len(st.GetPending()) != 1 || st.GetPassMoves() != 1 || len(st.GetCursor()) == 0 {
				t.Fatalf("after the first round: %v; want one move pending, the pass half way", st)
			}
			move := proto.CloneOf(st.GetPending()[0])
			if move.GetFromNode() != "n0" || move.GetToNode() != "n2" {
				t.Fatalf("the move is %v, want n0 → n2", move)
			}
			if st = r.round(step); st.GetPasses() != 1 || !st.GetRunning() {
				t.Fatalf("after the second round: %v; want pass 1 over, running", st)
			}
			// Pass 2 examines its first page, every segment of n0, with the
			// move still pending.
			if st = r.round(step); st.GetPasses() != 1 || len(st.GetCursor()) == 0 || len(st.GetPending()) != 1 {
				t.Fatalf("after the third round: %v; want pass 2 half way, the move pending", st)
			}
			if tc.lose == nil {
				r.report(true)
			} else {
				tc.lose(t, r, move)
			}
			st = r.round(step)
			if tc.lose == nil {
				// Nothing lost, nothing planned: the pass ends the run.
				if st.GetRunning() || st.GetOutcome() != "done" || st.GetPasses() != 2 || st.GetMovesDone() != 1 {
					t.Errorf("after the move committed, pass 2 ended with %v; want done after 2 passes, 1 move", st)
				}
			} else if !st.GetRunning() {
				if moves := r.plan(); len(moves) > 0 {
					t.Fatalf("pass 2 lost its move and declared the run %q; the plan still has %d moves: %+v", st.GetOutcome(), len(moves), moves)
				}
				t.Fatalf("pass 2 lost its move and declared the run %q", st.GetOutcome())
			}
			if st.GetRunning() {
				st = r.finish(step)
			}
			if st.GetOutcome() != "done" {
				t.Errorf("the run ended %q, want done", st.GetOutcome())
			}
			if moves := r.plan(); len(moves) > 0 {
				t.Errorf("after %q the plan still has %d moves: %+v", st.GetOutcome(), len(moves), moves)
			}
		})
	}
}

// A move that commits while the balancer reads the node usage, or between
// two rounds when the next one reads it, is counted once: n0 holds two
// chunks more than the mean and n2 two less, so two moves n0 → n2; with
// the first counted twice the usage would show the nodes even, the next
// pass would plan nothing, and the run would end with a move left.
func TestRebalanceUsageCountsCommitOnce(t *testing.T) {
	const tick = 20 * time.Millisecond // the balancer's tick in the cluster tests
	two := rigLayout{ab: 76, ad: 76, bc: 74, cd: 74}
	tests := []struct {
		name string
		// commit lands the first move's commit after the first pass; the
		// next round reads the node usage again.
		commit func(r *balanceRig)
	}{
		{name: "between rounds", commit: func(r *balanceRig) { r.report(true) }},
		{name: "during the round", commit: func(r *balanceRig) { r.view.hook = func() { r.report(true) } }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One move to a node at a time: the second waits for the first.
			r := newBalanceRig(t, two, func(c *HealConfig) { c.RepairPerNode = 1 })
			if n := len(r.plan()); n != 2 {
				t.Fatalf("the plan at the start has %d moves, the layout wants 2", n)
			}
			r.start()
			r.round(tick)
			st := r.round(tick)
			if st.GetPasses() != 1 || len(st.GetPending()) != 1 {
				t.Fatalf("after pass 1: %v; want one move pending", st)
			}
			tc.commit(r)
			r.round(balanceUsageMinAge + tick) // reads the usage again
			if r.view.hook != nil {
				t.Fatal("the round did not read the cluster map")
			}
			// The next read is a second away: until then the balancer plans
			// on the usage it has.
			r.round(tick)
			if got, want := r.h.bal.usage, usageTruth(t, r.st); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("the balancer's usage after the move settled is %v, the node index says %v", got, want)
			}
			st = r.state()
			if st.GetRunning() {
				st = r.finish(tick)
			}
			if moves := r.plan(); len(moves) > 0 {
				t.Errorf("after %q (%d moves) the plan still has %d moves: %+v", st.GetOutcome(), st.GetMovesDone(), len(moves), moves)
			}
		})
	}
}

// rigMoves reports the move tasks outstanding on the current healer, as
// the blob nodes would: fail says which fail, and why.
func (r *balanceRig) rigMoves(fail func(segment []byte) string) (handed [][]byte) {
	r.t.Helper()
	for i := range 4 {
		node := fmt.Sprintf("n%d", i)
		for _, task := range r.h.tasks.forNode(node, 100) {
			m := task.GetMove()
			if m == nil {
				continue
			}
			handed = append(handed, m.GetSegment().GetId())
			res := &pb.TaskResult{TaskId: task.GetId(), NodeId: node, Ok: true}
			if why := fail(m.GetSegment().GetId()); why != "" {
				res.Ok, res.Error = false, why
			}
			if err := r.srv.reportTask(context.Background(), res); err != nil {
				r.t.Fatalf("report %s: %v", task.GetId(), err)
			}
		}
	}
	return handed
}

// A move that fails every time (here: the first segment's chunk cannot be
// written to n2) is skipped while it waits out a growing backoff, and the
// balancer moves other chunks meanwhile. n0 holds two chunks more than the
// mean and n2 two less, and n2 takes one move at a time: planned again
// every round, the doomed move held n2's only slot and the other move
// never went.
func TestRebalanceFailingMoveBacksOff(t *testing.T) {
	const step = 1100 * time.Millisecond
	const backoff = 3 * time.Second
	r := newBalanceRig(t, rigLayout{ab: 76, ad: 76, bc: 74, cd: 74}, func(c *HealConfig) {
		c.RepairPerNode = 1
		c.RepairBackoff = backoff
	})
	doomed := rigSegmentID(0)
	const reason = "n2 refuses writes: disk read-only"
	fail := func(seg []byte) string {
		if string(seg) == string(doomed) {
			return reason
		}
		return ""
	}
	r.start()
	var attempts []time.Time
	sawSkipped := false
	st := r.state()
	for round := 0; st.GetRunning(); round++ {
		if round == 200 {
			t.Fatalf("the rebalance still runs after %d rounds (%d attempts at the doomed move, %d moves done): %v", round, len(attempts), st.GetMovesDone(), st)
		}
		st = r.round(step)
		for _, seg := range r.rigMoves(fail) {
			if string(seg) == string(doomed) {
				attempts = append(attempts, r.clock.now())
			}
		}
		c, err := r.srv.BalancerCounters()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range c.MovesSkipped {
			if string(m.Segment) != string(doomed) || m.Shard != 0 || m.From != "n0" || m.To != "n2" || m.Reason != reason || m.Failures < 1 {
				t.Fatalf("skipped move %+v, want segment %x shard 0 n0 → n2 failed with %q", m, doomed, reason)
			}
			sawSkipped = true
		}
		// What `cairn rebalance status` shows.
		resp, err := r.srv.rebalanceStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if int(resp.GetSkippedCount()) != len(c.MovesSkipped) || len(resp.GetSkipped()) != len(c.MovesSkipped) {
			t.Fatalf("status lists %d of %d skipped moves, the balancer %d", len(resp.GetSkipped()), resp.GetSkippedCount(), len(c.MovesSkipped))
		}
		for i, m := range resp.GetSkipped() {
			want := c.MovesSkipped[i]
			wantRetry := int64(0) // given up
			if !want.RetryAt.IsZero() {
				wantRetry = want.RetryAt.UnixNano()
			}
			if string(m.GetSegmentId()) != string(want.Segment) || m.GetToNode() != want.To || m.GetReason() != want.Reason ||
				m.GetFailures() != int64(want.Failures) || m.GetRetryUnixNano() != wantRetry {
				t.Fatalf("status lists skipped move %v, the balancer %+v", m, want)
			}
		}
	}
	if len(attempts) == 0 || len(attempts) > balanceMoveAttempts {
		t.Fatalf("the doomed move was handed out %d times, want 1..%d", len(attempts), balanceMoveAttempts)
	}
	for i := 1; i < len(attempts); i++ {
		if gap, want := attempts[i].Sub(attempts[i-1]), retryDelay(backoff, i); gap < want {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, want)
		}
	}
	if !sawSkipped {
		t.Error("the balancer's counters never listed the doomed move as skipped")
	}
	if st.GetOutcome() != "done" || st.GetMovesDone() != 2 {
		t.Errorf("the run ended %q with %d moves, want done with 2 (around the doomed one)", st.GetOutcome(), st.GetMovesDone())
	}
	if moves := r.plan(); len(moves) > 0 {
		t.Errorf("after the run the plan still has %d moves: %+v", len(moves), moves)
	}
}

// A move that fails balanceMoveAttempts times is given up for the run: it
// is no longer planned, and no longer holds the pass open.
func TestRebalanceMoveGivenUp(t *testing.T) {
	r := newBalanceRig(t, rigLayout{ab: 76, ad: 75, bc: 74, cd: 75}, func(c *HealConfig) { c.RepairBackoff = time.Second })
	p := &pb.PendingMove{SegmentId: rigSegmentID(0), Shard: 0, FromNode: "n0", ToNode: "n2"}
	b := &r.h.bal
	for i := 1; i <= balanceMoveAttempts; i++ {
		r.h.moveFailed(p, "no space")
		if skip, _ := b.skipMove(p.GetSegmentId(), 0, "n2", r.clock.now()); !skip {
			t.Fatalf("after %d failures the move is not skipped", i)
		}
		r.clock.add(time.Hour) // past any backoff, the target's too
		skip, waiting := b.skipMove(p.GetSegmentId(), 0, "n2", r.clock.now())
		if given := i == balanceMoveAttempts; skip != given || waiting {
			t.Fatalf("after %d failures and the backoff: skip %v, waiting %v; want skip %v, not waiting", i, skip, waiting, given)
		}
	}
	if got := b.skipped(r.clock.now()); len(got) != 1 || !got[0].RetryAt.IsZero() || got[0].Failures != balanceMoveAttempts || got[0].Reason != "no space" {
		t.Fatalf("skipped = %+v, want the move given up after %d failures", got, balanceMoveAttempts)
	}
	if skip, _ := b.skipMove(p.GetSegmentId(), 0, "n3", r.clock.now()); skip {
		t.Fatal("the same chunk to another node is skipped too")
	}
}

// A node to which every move fails (it refuses writes) takes no move for a
// while after balanceTargetFailures of them in a row, and again only after
// a longer wait each time, and the status says so: without this it got a
// move of every segment in turn, each failing once. n2 is the only node
// below the mean, so nothing else moves, and the run keeps going.
func TestRebalanceTargetRefusingWritesBacksOff(t *testing.T) {
	const step = 1100 * time.Millisecond
	const backoff = 3 * time.Second
	const rounds = 100
	r := newBalanceRig(t, rigLayout{ab: 76, ad: 76, bc: 74, cd: 74}, func(c *HealConfig) {
		c.RepairPerNode = 1
		c.RepairBackoff = backoff
	})
	const reason = "write chunk: read-only file system"
	r.start()
	var handed []time.Time
	for range rounds {
		st := r.round(step)
		if !st.GetRunning() {
			t.Fatalf("the run ended %q with n2 refusing every move", st.GetOutcome())
		}
		for range r.rigMoves(func([]byte) string { return reason }) {
			handed = append(handed, r.clock.now())
		}
	}
	// Without the target's backoff: a move (of another segment) each round.
	if max := balanceTargetFailures + 6; len(handed) > max {
		t.Fatalf("%d moves to n2 in %d rounds, want at most %d", len(handed), rounds, max)
	}
	for i := balanceTargetFailures; i < len(handed); i++ {
		if gap, want := handed[i].Sub(handed[i-1]), retryDelay(backoff, i-balanceTargetFailures+1); gap < want {
			t.Errorf("move %d to n2 came %v after the one before, want at least %v", i+1, gap, want)
		}
	}
	resp, err := r.srv.rebalanceStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var node *pb.SkippedMove
	for _, m := range resp.GetSkipped() {
		if len(m.GetSegmentId()) == 0 {
			node = m
		}
	}
	if node == nil || node.GetToNode() != "n2" || node.GetReason() != reason || node.GetRetryUnixNano() <= r.clock.now().UnixNano() || int(node.GetFailures()) != len(handed) {
		t.Fatalf("status lists %v; want every move to n2 skipped after %d failures, with its reason", resp.GetSkipped(), len(handed))
	}
}

// A new leader hands out at once, under the same task id, the moves its
// predecessor committed as pending but that no blob node fetched: waiting
// a task's timeout for them stalled the run after every leader change.
func TestRebalanceNewLeaderReissuesMoves(t *testing.T) {
	const step = 1100 * time.Millisecond
	r := newBalanceRig(t, rigLayout{ab: 76, ad: 75, bc: 74, cd: 75}, nil)
	r.start()
	st := r.round(step)
	if len(st.GetPending()) != 1 {
		t.Fatalf("after the first round: %v; want one move pending", st)
	}
	old := r.h.tasks
	old.mu.Lock()
	var oldIDs []string
	for id := range old.byID {
		oldIDs = append(oldIDs, id)
	}
	old.mu.Unlock()
	if len(oldIDs) != 1 {
		t.Fatalf("the old leader has %d tasks, want 1", len(oldIDs))
	}

	// The leader changes before any blob node heartbeats.
	r.newTerm(r.h.cfg)
	r.round(step)
	tasks := r.h.tasks.forNode("n2", 100)
	if len(tasks) != 1 || tasks[0].GetId() != oldIDs[0] {
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.GetId())
		}
		t.Fatalf("the new leader hands n2 %v, want the earlier leader's move %s at once", ids, oldIDs[0])
	}
	r.report(true)
	st = r.round(step)
	if st.GetMovesDone() != 1 || len(st.GetPending()) != 0 {
		t.Fatalf("after the move was reported to the new leader: %v; want it done", st)
	}
	if st.GetRunning() {
		st = r.finish(step)
	}
	if st.GetOutcome() != "done" {
		t.Errorf("the run ended %q, want done", st.GetOutcome())
	}
}
