package metadata

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/placement"
)

// moveTasks counts the move tasks handed to the fake blob nodes.
func moveTasks(blobs map[string]*fakeBlob) int {
	n := 0
	for _, b := range blobs {
		for _, task := range b.seenTasks() {
			if task.GetMove() != nil {
				n++
			}
		}
	}
	return n
}

// Drain a node: moves start, undrain stops them, drain again empties the
// node within the failure-domain rule, and decommission then succeeds
// (refusing, with its reasons, before).
func TestDrainDecommission(t *testing.T) {
	c := newTestCluster(t, 3, func(c *Config) {
		healTimings(c)
		c.Heal.RepairPerNode = 2
		// Results are held for a while below: on a loaded machine that can
		// take longer than healTimings' task timeout. Liveness is not under
		// test: a fake node that misses heartbeats on a loaded machine would
		// go DOWN and be repaired wherever a node is writable, breaking the
		// failure-domain rule this test checks the drain and balancer keep.
		c.Heal.RepairTaskTimeout = time.Minute
		c.Heal.NodeSuspectAfter = 30 * time.Second
		c.Heal.NodeDownAfter = time.Minute
		steadyLeader(c)
	})
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "bk")
	blobs, pnodes := healNodes(t, cl)
	rng := rand.New(rand.NewPCG(7, 8))
	segs := commitSegments(t, cl, "bk", 24, pnodes, rng)

	usage := func(id string) int64 {
		n, _, err := c.waitLeader().srv.state.NodeUsage(id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	victim, most := "", int64(0)
	for _, p := range pnodes {
		if n := usage(p.ID); n > most || n == most && p.ID < victim {
			victim, most = p.ID, n
		}
	}
	if most == 0 {
		t.Fatal("no node holds chunks")
	}
	t.Logf("draining %s, which holds %d chunks", victim, most)

	// Before the drain: decommission refuses and says why. (Each call has
	// its own deadline, testCtx: on a loaded machine the waits between them
	// can outlast one.)
	dec, err := cl.Decommission(testCtx(t), &pb.DecommissionRequest{Id: victim})
	if err != nil {
		t.Fatal(err)
	}
	if dec.GetDecommissioned() || dec.GetChunksRemaining() != most || len(dec.GetBlockers()) != 2 ||
		!strings.Contains(dec.GetBlockers()[0], "not draining") || !strings.Contains(dec.GetBlockers()[1], "have not moved yet") {
		t.Fatalf("decommission of an undrained node = %v, want refused: not draining, %d chunks", dec, most)
	}
	// A dry run changes nothing.
	dr, err := cl.SetNodeDrain(testCtx(t), &pb.SetNodeDrainRequest{Id: victim, Drain: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dr.GetNode().GetState() != pb.NodeState_NODE_STATE_UP || dr.GetChunksRemaining() != most || dr.GetBytesRemaining() <= 0 {
		t.Errorf("dry-run drain = %v, want still up with %d chunks", dr, most)
	}
	if st := nodeState(t, c.waitLeader().srv.state, victim); st != pb.NodeState_NODE_STATE_UP {
		t.Fatalf("after a dry run %s is %v", victim, st)
	}

	// Drain with results held: moves are handed out within the budget,
	// then undrain stops further ones.
	for _, b := range blobs {
		b.setHold(true)
	}
	if dr, err = cl.SetNodeDrain(testCtx(t), &pb.SetNodeDrainRequest{Id: victim, Drain: true}); err != nil {
		t.Fatal(err)
	}
	if dr.GetNode().GetState() != pb.NodeState_NODE_STATE_DRAINING {
		t.Fatalf("drain answered %v", dr)
	}
	waitFor(t, 30*time.Second, func() bool { return moveTasks(blobs) > 0 }, "moves off %s to be handed out", victim)
	if _, err := cl.SetNodeDrain(testCtx(t), &pb.SetNodeDrainRequest{Id: victim, Drain: false}); err != nil {
		t.Fatal(err)
	}
	// A round that read the cluster map before the undrain may still hand
	// out its moves: let it end, then count what the leader assigned.
	waitDrainRounds(t, c, 2)
	_, handedMoves, _ := c.waitLeader().srv.heal.Load().tasks.counts()
	handed := handedMoves
	waitFor(t, 30*time.Second, func() bool { return moveTasks(blobs) == handed }, "the %d assigned moves to reach the blob nodes", handed)
	for id, b := range blobs {
		for _, task := range b.seenTasks() {
			if m := task.GetMove(); m != nil && (m.GetSource().GetNodeId() != victim || id == victim) {
				t.Errorf("move %s to %s from %s, want from %s", task.GetId(), id, m.GetSource().GetNodeId(), victim)
			}
		}
	}
	for _, b := range blobs {
		b.setHold(false)
	}
	waitFor(t, 30*time.Second, func() bool { return usage(victim) <= most-int64(handed) }, "the %d handed-out moves to commit", handed)
	// Absence of further moves: let the drain loop run many rounds.
	waitDrainRounds(t, c, 10)
	if n := moveTasks(blobs); n != handed {
		t.Errorf("after undrain %d moves were handed out, before %d", n, handed)
	}
	if u := usage(victim); u != most-int64(handed) || u == 0 {
		t.Errorf("after undrain %s holds %d chunks, want %d (and the test needs some left)", victim, u, most-int64(handed))
	}

	// Drain again to the end, then decommission.
	if _, err := cl.SetNodeDrain(testCtx(t), &pb.SetNodeDrainRequest{Id: victim, Drain: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { return usage(victim) == 0 }, "%s to empty", victim)
	for key, id := range segs {
		info, err := c.waitLeader().srv.state.Segment(id)
		if err != nil {
			t.Fatal(err)
		}
		nodes := info.Segment.GetNodes()
		if slices.Contains(nodes, victim) || slices.Contains(nodes, "") {
			t.Errorf("%s placement %v after the drain", key, nodes)
		}
		if err := placement.CheckSpread(nodes, pnodes, 2, placement.Options{}); err != nil {
			t.Errorf("%s placement %v breaks the failure-domain rule: %v", key, nodes, err)
		}
	}
	if dec, err = cl.Decommission(testCtx(t), &pb.DecommissionRequest{Id: victim, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(dec.GetBlockers()) != 0 || dec.GetDecommissioned() {
		t.Errorf("dry-run decommission of a drained node = %v, want no blockers, not done", dec)
	}
	if dec, err = cl.Decommission(testCtx(t), &pb.DecommissionRequest{Id: victim}); err != nil {
		t.Fatal(err)
	}
	if !dec.GetDecommissioned() || dec.GetNode().GetState() != pb.NodeState_NODE_STATE_DECOMMISSIONED {
		t.Errorf("decommission = %v, want done", dec)
	}
	if _, err := cl.SetNodeDrain(testCtx(t), &pb.SetNodeDrainRequest{Id: victim, Drain: false}); err == nil {
		t.Error("undrain of a decommissioned node succeeded")
	}

	// The plan covers the 8 remaining nodes and moves nothing onto the
	// decommissioned one; its totals match its moves.
	plan, err := cl.RebalancePlan(testCtx(t), &pb.RebalancePlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.GetBefore()) != 8 || len(plan.GetAfter()) != 8 || plan.GetMovesTotal() != int64(len(plan.GetMoves())) {
		t.Errorf("plan = %v, want 8 nodes before and after, every move listed", plan)
	}
	var planned int64
	for _, m := range plan.GetMoves() {
		planned += m.GetBytes()
		if m.GetToNode() == victim || m.GetFromNode() == victim {
			t.Errorf("planned move %v involves the decommissioned node", m)
		}
	}
	if planned != plan.GetBytesTotal() {
		t.Errorf("plan bytes_total %d, moves sum to %d", plan.GetBytesTotal(), planned)
	}
}

// Rebalance onto two new nodes: start, stop halts moves, start again runs
// to done; placements keep the failure-domain rule.
func TestRebalanceStartStop(t *testing.T) {
	c := newTestCluster(t, 3, func(c *Config) {
		healTimings(c)
		c.Heal.RepairPerNode = 2
		// Results are held for a while below: on a loaded machine that can
		// take longer than healTimings' task timeout. Liveness is not under
		// test: a fake node that misses heartbeats on a loaded machine would
		// go DOWN and be repaired wherever a node is writable, breaking the
		// failure-domain rule this test checks the drain and balancer keep.
		c.Heal.RepairTaskTimeout = time.Minute
		c.Heal.NodeSuspectAfter = 30 * time.Second
		c.Heal.NodeDownAfter = time.Minute
		steadyLeader(c)
	})
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "bk")
	blobs := map[string]*fakeBlob{}
	var pnodes []placement.Node
	for z := range 3 {
		for r := range 2 {
			id := fmt.Sprintf("b%d%d", z, r)
			blobs[id] = startFakeBlob(t, cl, id, fmt.Sprintf("z%d", z), fmt.Sprintf("r%d", r))
			pnodes = append(pnodes, toPlacementNode(blobs[id].node))
			pnodes[len(pnodes)-1].State = placement.StateUp
		}
	}
	segs := commitSegments(t, cl, "bk", 40, pnodes, rand.New(rand.NewPCG(9, 10)))
	for r := range 2 {
		id := fmt.Sprintf("b3%d", r)
		blobs[id] = startFakeBlob(t, cl, id, "z3", fmt.Sprintf("r%d", r))
		pnodes = append(pnodes, toPlacementNode(blobs[id].node))
		pnodes[len(pnodes)-1].State = placement.StateUp
	}
	// The fake nodes have 1 TiB each: a tiny band makes the 40 MiB matter.
	const threshold = 0.0002

	// Each call has its own deadline (testCtx): on a loaded machine the
	// waits between them can outlast one.
	dry, err := cl.RebalanceStart(testCtx(t), &pb.RebalanceStartRequest{Threshold: threshold, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.GetRunning() || dry.GetMovesTotal() == 0 {
		t.Fatalf("dry-run start = %v, want moves, not running", dry)
	}
	if r, err := c.waitLeader().srv.state.Rebalance(); err != nil || r != nil {
		t.Fatalf("after a dry run the balancer state is %v, %v", r, err)
	}

	for _, b := range blobs {
		b.setHold(true)
	}
	st, err := cl.RebalanceStart(testCtx(t), &pb.RebalanceStartRequest{Threshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	if !st.GetRunning() || st.GetMovesTotal() != dry.GetMovesTotal() {
		t.Fatalf("start = %v, want running with %d moves", st, dry.GetMovesTotal())
	}
	waitFor(t, 30*time.Second, func() bool { return moveTasks(blobs) > 0 }, "moves to be handed out")
	if st, err = cl.RebalanceStop(testCtx(t), &pb.RebalanceStopRequest{}); err != nil {
		t.Fatal(err)
	}
	if st.GetRunning() || st.GetOutcome() != "stopped" {
		t.Fatalf("stop = %v", st)
	}
	// Stop takes the balancer's lock: no move is handed out after it
	// returns, so what is outstanding now is all there will be.
	_, handed, _ := c.waitLeader().srv.heal.Load().tasks.counts()
	waitFor(t, 30*time.Second, func() bool { return moveTasks(blobs) == handed }, "the %d assigned moves to reach the blob nodes", handed)
	for _, b := range blobs {
		b.setHold(false)
	}
	waitFor(t, 30*time.Second, func() bool {
		_, moves, _ := c.waitLeader().srv.heal.Load().tasks.counts()
		return moves == 0
	}, "the handed-out moves to commit")
	waitBalanceRounds(t, c, 10)
	if n := moveTasks(blobs); n != handed {
		t.Errorf("after stop %d moves were handed out, before %d", n, handed)
	}
	if st, err = cl.RebalanceStatus(testCtx(t), &pb.RebalanceStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	if st.GetRunning() || st.GetMovesDone() == 0 || st.GetMovesDone() >= st.GetMovesTotal() {
		t.Errorf("status after stop = %v, want stopped part way", st)
	}

	if _, err = cl.RebalanceStart(testCtx(t), &pb.RebalanceStartRequest{Threshold: threshold}); err != nil {
		t.Fatal(err)
	}
	// A generous deadline: a leader change (a loaded machine) costs an
	// election before the new leader hands the pending moves out again
	// (adoptPending) and the run goes on.
	waitFor(t, 2*time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err = cl.RebalanceStatus(ctx, &pb.RebalanceStatusRequest{})
		return err == nil && !st.GetRunning() && st.GetOutcome() == "done"
	}, "the rebalance to finish")
	count := map[string]int{}
	for key, id := range segs {
		info, err := c.waitLeader().srv.state.Segment(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range info.Segment.GetNodes() {
			count[n]++
		}
		if err := placement.CheckSpread(info.Segment.GetNodes(), pnodes, 2, placement.Options{}); err != nil {
			t.Errorf("%s placement %v breaks the failure-domain rule: %v", key, info.Segment.GetNodes(), err)
		}
	}
	if count["b30"] == 0 || count["b31"] == 0 {
		t.Errorf("chunks per node after the rebalance: %v; the new nodes got none", count)
	}
	plan, err := cl.RebalancePlan(testCtx(t), &pb.RebalancePlanRequest{Threshold: threshold})
	if err != nil || plan.GetMovesTotal() != 0 {
		t.Errorf("plan after done = %v, %v; want no moves", plan, err)
	}
	t.Logf("chunks per node: %v", count)
}

// steadyLeader gives Raft timings that ride out the stalls of a loaded
// machine (at a load average of 12-15 a leader missed fastTimings' lease
// and stepped down mid-test). These tests count the moves one leader hands
// out and wait for what it settles; a leader change loses its task table
// (the next leader hands the pending moves out again, adoptPending, but the
// counts start over). Elections take a few seconds instead; liveness is not
// under test here.
func steadyLeader(c *Config) {
	c.HeartbeatTimeout = 2 * time.Second
	c.ElectionTimeout = 2 * time.Second
	c.LeaderLeaseTimeout = 1500 * time.Millisecond
}

// waitBalanceRounds waits until the leader's balancer loop has run n more
// rounds.
func waitBalanceRounds(t *testing.T, c *testCluster, n uint64) {
	t.Helper()
	waitCounter(t, c, n, "balancer", func(b BalancerCounters) uint64 { return b.Rounds })
}

// waitDrainRounds waits until the leader's drain loop has run n more
// rounds.
func waitDrainRounds(t *testing.T, c *testCluster, n uint64) {
	t.Helper()
	waitCounter(t, c, n, "drain", func(b BalancerCounters) uint64 { return b.DrainRounds })
}

func waitCounter(t *testing.T, c *testCluster, n uint64, what string, get func(BalancerCounters) uint64) {
	t.Helper()
	srv := c.waitLeader().srv
	b, err := srv.BalancerCounters()
	if err != nil {
		t.Fatal(err)
	}
	from := get(b)
	waitFor(t, 30*time.Second, func() bool {
		b, err := srv.BalancerCounters()
		if err != nil {
			t.Fatalf("the leader lost its term while waiting for %s rounds: %v", what, err)
		}
		return get(b) >= from+n
	}, "%d more %s rounds", n, what)
}
