package metadata

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// balanceMoveAttempts is how many times the balancer hands out a move (one
// chunk of a segment to one target) that keeps failing before it gives the
// move up for the rest of the run; after each failure the move waits
// retryDelay(RepairBackoff, failures) and the balancer plans around it (the
// chunk may go to another target). Without this a move whose target
// refuses writes, or whose source cannot be read, was planned again every
// round: the balancer spent its per-node budget on it and never ended.
const balanceMoveAttempts = 5

// balanceTargetFailures: a node to which this many moves in a row failed
// (no move to it committed in between) takes no move until
// retryDelay(RepairBackoff, failures-balanceTargetFailures+1) has passed.
// A node that refuses writes would otherwise get a move of every segment
// in turn, each failing once before the per-move backoff applies. While a
// node waits, the pass does not end: the run keeps going (and says why in
// its status) until the node takes chunks again or the run is stopped.
const balanceTargetFailures = 3

// moveFailure is what the balancer remembers of a move that failed.
type moveFailure struct {
	segment  []byte
	shard    uint32
	from, to string
	failures int
	// retryAt: the move is not planned before; zero once given up.
	retryAt time.Time
	reason  string
}

// SkippedMove is a balancer move that failed and is skipped: until
// RetryAt, or for the rest of the run when RetryAt is zero (given up after
// balanceMoveAttempts failures). With no Segment it is every move to To
// (balanceTargetFailures).
type SkippedMove struct {
	Segment  []byte
	Shard    uint32
	From, To string
	Failures int
	RetryAt  time.Time
	Reason   string
}

// moveFailed records a failure of the move p, which settlePending drops.
func (h *healer) moveFailed(p *pb.PendingMove, reason string) {
	b := &h.bal
	if b.failed == nil {
		b.failed = map[string]*moveFailure{}
	}
	key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
	f := b.failed[key]
	if f == nil {
		f = &moveFailure{segment: p.GetSegmentId(), shard: p.GetShard(), from: p.GetFromNode(), to: p.GetToNode()}
		b.failed[key] = f
	}
	f.failures++
	f.reason = reason
	if b.targets == nil {
		b.targets = map[string]*moveFailure{}
	}
	tf := b.targets[f.to]
	if tf == nil {
		tf = &moveFailure{to: f.to}
		b.targets[f.to] = tf
	}
	tf.failures++
	tf.reason = reason
	if tf.failures >= balanceTargetFailures {
		tf.retryAt = h.now().Add(retryDelay(h.cfg.RepairBackoff, tf.failures-balanceTargetFailures+1))
		h.log.Warn("rebalance target failed moves in a row; no move to it until its retry", "to", f.to, "failures", tf.failures, "retry_at", tf.retryAt, "reason", reason)
	}
	if f.failures >= balanceMoveAttempts {
		f.retryAt = time.Time{}
		h.log.Warn("rebalance move given up for this run", "segment", fmt.Sprintf("%x", f.segment), "shard", f.shard, "from", f.from, "to", f.to, "failures", f.failures, "reason", reason)
		return
	}
	f.retryAt = h.now().Add(retryDelay(h.cfg.RepairBackoff, f.failures))
	h.log.Warn("rebalance move failed; skipped until its retry", "segment", fmt.Sprintf("%x", f.segment), "shard", f.shard, "from", f.from, "to", f.to, "failures", f.failures, "retry_at", f.retryAt, "reason", reason)
}

// skipMove reports whether the planner must not plan shard of segment to
// node now, and whether that is a wait (a retry is due later) rather than
// a move given up.
func (b *balancer) skipMove(segment []byte, shard uint32, to string, now time.Time) (skip, waiting bool) {
	if tf := b.targets[to]; tf != nil && tf.failures >= balanceTargetFailures && now.Before(tf.retryAt) {
		return true, true
	}
	f := b.failed[pendingKey(segment, shard, to)]
	switch {
	case f == nil:
		return false, false
	case f.retryAt.IsZero():
		return true, false
	case now.Before(f.retryAt):
		return true, true
	}
	return false, false
}

// skipped lists the moves the balancer skips now, by segment and shard.
func (b *balancer) skipped(now time.Time) []SkippedMove {
	var out []SkippedMove
	for _, tf := range b.targets {
		if tf.failures >= balanceTargetFailures && now.Before(tf.retryAt) {
			out = append(out, SkippedMove{To: tf.to, Failures: tf.failures, RetryAt: tf.retryAt, Reason: tf.reason})
		}
	}
	for _, f := range b.failed {
		if !f.retryAt.IsZero() && !now.Before(f.retryAt) {
			continue // due: planned again
		}
		out = append(out, SkippedMove{Segment: slices.Clone(f.segment), Shard: f.shard, From: f.from, To: f.to, Failures: f.failures, RetryAt: f.retryAt, Reason: f.reason})
	}
	slices.SortFunc(out, func(x, y SkippedMove) int {
		return cmp.Or(bytes.Compare(x.Segment, y.Segment), cmp.Compare(x.Shard, y.Shard), cmp.Compare(x.To, y.To))
	})
	return out
}
