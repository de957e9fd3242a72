package metadata

import (
	"context"
	"strings"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// The drain's rounds on the balancer's rig (balance_pass_test.go): a real
// State without Raft, a fake clock, and the test playing the blob nodes.

// drainRound runs one drain round, step later than the last.
func (r *balanceRig) drainRound(step time.Duration, cursors map[string][]byte) {
	r.t.Helper()
	r.clock.add(step)
	if err := r.srv.drainRound(context.Background(), r.h, cursors); err != nil {
		r.t.Fatalf("drain round: %v", err)
	}
}

// setNodeState commits id's state, as liveness or an operator would.
func (r *balanceRig) setNodeState(id string, st pb.NodeState) {
	r.t.Helper()
	r.must(&pb.Command{Op: &pb.Command_SetNodeState{SetNodeState: &pb.SetNodeState{Id: id, State: st, Reason: "test"}}})
}

// newDrainRig is the rig with n3 down and n0 draining: n2 is then the only
// target that keeps n0's chunks off their segment's other node. A node
// takes one move at a time, and a failed move waits retryDelay(backoff, …).
func newDrainRig(t *testing.T, layout rigLayout, backoff time.Duration) *balanceRig {
	t.Helper()
	r := newBalanceRig(t, layout, func(c *HealConfig) {
		c.RepairPerNode = 1
		c.RepairBackoff = backoff
	})
	r.setNodeState("n3", pb.NodeState_NODE_STATE_DOWN)
	r.setNodeState("n0", pb.NodeState_NODE_STATE_DRAINING)
	return r
}

// A drain move that fails every time (here: segment 0's chunk cannot be
// written to n2, its only target) backs off as the balancer's moves do and
// is given up after balanceMoveAttempts failures; the other chunks move
// meanwhile; and the drain does not count as done: the chunk stays on the
// node, and Decommission refuses, naming the given-up move and why.
// Before, the drain handed the doomed move out again every round: with n2
// taking one move at a time it held n2's only slot each round, and the
// other chunks never moved.
func TestDrainFailingMoveBacksOff(t *testing.T) {
	const step = 1100 * time.Millisecond
	const backoff = 2 * time.Second
	// Segments 0-2 on n0 and n1, segment 3 on n1 and n2.
	r := newDrainRig(t, rigLayout{ab: 3, bc: 1}, backoff)
	doomed := rigSegmentID(0)
	const reason = "n2 refuses writes: disk read-only"
	fail := func(seg []byte) string {
		if string(seg) == string(doomed) {
			return reason
		}
		return ""
	}
	chunksOn := func(node string) int64 {
		t.Helper()
		n, _, err := r.st.NodeUsage(node)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	cursors := map[string][]byte{}
	var attempts []time.Time
	const rounds = 60 // 66 s: well past the 5th attempt (2+4+8+16 s of backoff)
	for range rounds {
		r.drainRound(step, cursors)
		for _, seg := range r.rigMoves(fail) {
			if string(seg) == string(doomed) {
				attempts = append(attempts, r.clock.now())
			}
		}
	}
	if len(attempts) == 0 || len(attempts) > balanceMoveAttempts {
		t.Fatalf("the doomed move was handed out %d times in %d rounds, want 1..%d", len(attempts), rounds, balanceMoveAttempts)
	}
	for i := 1; i < len(attempts); i++ {
		if gap, want := attempts[i].Sub(attempts[i-1]), retryDelay(backoff, i); gap < want {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+1, gap, want)
		}
	}
	if len(attempts) != balanceMoveAttempts {
		t.Fatalf("the doomed move was handed out %d times, want %d before it is given up", len(attempts), balanceMoveAttempts)
	}
	if got := chunksOn("n0"); got != 1 {
		t.Fatalf("n0 holds %d chunks after the drain's rounds, want 1 (the doomed one; the others moved around it)", got)
	}

	// Not done: decommission refuses, and says which move was given up
	// and why.
	resp, err := r.srv.decommission(context.Background(), &pb.DecommissionRequest{Id: "n0"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDecommissioned() {
		t.Fatal("n0 was decommissioned with a chunk on it")
	}
	blockers := strings.Join(resp.GetBlockers(), "\n")
	if !strings.Contains(blockers, "gave up 1 moves") || !strings.Contains(blockers, reason) {
		t.Errorf("blockers %q do not name the given-up move and its reason", blockers)
	}
	if sk := resp.GetSkipped(); resp.GetSkippedCount() != 1 || len(sk) != 1 || string(sk[0].GetSegmentId()) != string(doomed) ||
		sk[0].GetFromNode() != "n0" || sk[0].GetToNode() != "n2" || sk[0].GetFailures() != balanceMoveAttempts || sk[0].GetRetryUnixNano() != 0 || sk[0].GetReason() != reason {
		t.Errorf("skipped = %v (count %d), want segment %x n0 → n2 given up after %d failures for %q", sk, resp.GetSkippedCount(), doomed, balanceMoveAttempts, reason)
	}

	// Draining the node again tries the given-up move again: it works now.
	if _, err := r.srv.setNodeDrain(context.Background(), &pb.SetNodeDrainRequest{Id: "n0", Drain: true}); err != nil {
		t.Fatal(err)
	}
	r.drainRound(step, cursors)
	if moved := r.rigMoves(func([]byte) string { return "" }); len(moved) != 1 || string(moved[0]) != string(doomed) {
		t.Fatalf("after the drain was asked again it handed out %x, want the given-up move of %x", moved, doomed)
	}
	if got := chunksOn("n0"); got != 0 {
		t.Fatalf("n0 holds %d chunks, want 0", got)
	}
	if resp, err = r.srv.decommission(context.Background(), &pb.DecommissionRequest{Id: "n0", StatusOnly: true}); err != nil {
		t.Fatal(err)
	}
	if len(resp.GetBlockers()) != 0 || resp.GetSkippedCount() != 0 {
		t.Errorf("after the last move: blockers %q, %d skipped; want none", resp.GetBlockers(), resp.GetSkippedCount())
	}
}

// A target to which balanceTargetFailures drain moves in a row failed
// takes no drain move until its own backoff has passed, and the drain's
// status lists it as every move to it.
func TestDrainFailingTargetBacksOff(t *testing.T) {
	const step = 1100 * time.Millisecond
	const backoff = 10 * time.Second
	r := newDrainRig(t, rigLayout{ab: 6, bc: 1}, backoff)
	const reason = "no space left on device"
	cursors := map[string][]byte{}
	handed := 0
	for range balanceTargetFailures + 3 {
		r.drainRound(step, cursors)
		handed += len(r.rigMoves(func([]byte) string { return reason }))
	}
	if handed != balanceTargetFailures {
		t.Fatalf("n2 was handed %d moves, each failing, want %d before it backs off", handed, balanceTargetFailures)
	}
	sk := r.h.bal.drain.skipped("n0", r.clock.now())
	if len(sk) == 0 || sk[0].Segment != nil || sk[0].To != "n2" || sk[0].RetryAt.IsZero() || sk[0].Reason != reason {
		t.Fatalf("skipped = %+v, want n2 first, as a whole, waiting for its retry", sk)
	}
}
