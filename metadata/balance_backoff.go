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
// The drain keeps the same count per draining node (balance_drain.go).
const balanceMoveAttempts = 5

// balanceTargetFailures: a node to which this many moves in a row failed
// (no move to it committed in between) takes no move until
// retryDelay(RepairBackoff, failures-balanceTargetFailures+1) has passed.
// A node that refuses writes would otherwise get a move of every segment
// in turn, each failing once before the per-move backoff applies. While a
// node waits, the pass does not end: the run keeps going (and says why in
// its status) until the node takes chunks again or the run is stopped.
const balanceTargetFailures = 3

// moveFailure is what a mover remembers of a move that failed.
type moveFailure struct {
	segment  []byte
	shard    uint32
	from, to string
	failures int
	// retryAt: the move is not planned before; zero once given up.
	retryAt time.Time
	reason  string
}

// SkippedMove is a balancer or drain move that failed and is skipped:
// until RetryAt, or for the rest of the run (the drain) when RetryAt is
// zero (given up after balanceMoveAttempts failures). With no Segment it
// is every move to To (balanceTargetFailures).
type SkippedMove struct {
	Segment  []byte
	Shard    uint32
	From, To string
	Failures int
	RetryAt  time.Time
	Reason   string
}

// moveBackoff is the memory of the moves that failed for one mover: the
// balancer's run, or the drain of one node. Both plan a chunk's move to a
// target, hand it out with addMove and learn its outcome later; both must
// not hand out again and again a move that cannot succeed, so both keep
// this. Its owner serialises access (the balancer lock, the drain's mu).
type moveBackoff struct {
	// failed: moves (by pendingKey) that failed, each waiting out its
	// backoff or given up (see balanceMoveAttempts).
	failed map[string]*moveFailure
	// targets: nodes whose last moves failed, by id (see
	// balanceTargetFailures).
	targets map[string]*moveFailure
}

// recordFailure records a failure of the move of shard of segment from
// from to to, for reason; what names the mover in the log ("rebalance",
// "drain").
func (m *moveBackoff) recordFailure(h *healer, what string, segment []byte, shard uint32, from, to, reason string) {
	if m.failed == nil {
		m.failed = map[string]*moveFailure{}
	}
	key := pendingKey(segment, shard, to)
	f := m.failed[key]
	if f == nil {
		f = &moveFailure{segment: slices.Clone(segment), shard: shard, from: from, to: to}
		m.failed[key] = f
	}
	f.failures++
	f.reason = reason
	if m.targets == nil {
		m.targets = map[string]*moveFailure{}
	}
	tf := m.targets[f.to]
	if tf == nil {
		tf = &moveFailure{to: f.to}
		m.targets[f.to] = tf
	}
	tf.failures++
	tf.reason = reason
	if tf.failures >= balanceTargetFailures {
		tf.retryAt = h.now().Add(retryDelay(h.cfg.RepairBackoff, tf.failures-balanceTargetFailures+1))
		h.log.Warn(what+" target failed moves in a row; no move to it until its retry", "to", f.to, "failures", tf.failures, "retry_at", tf.retryAt, "reason", reason)
	}
	if f.failures >= balanceMoveAttempts {
		f.retryAt = time.Time{}
		h.log.Warn(what+" move given up", "segment", fmt.Sprintf("%x", f.segment), "shard", f.shard, "from", f.from, "to", f.to, "failures", f.failures, "reason", reason)
		return
	}
	f.retryAt = h.now().Add(retryDelay(h.cfg.RepairBackoff, f.failures))
	h.log.Warn(what+" move failed; skipped until its retry", "segment", fmt.Sprintf("%x", f.segment), "shard", f.shard, "from", f.from, "to", f.to, "failures", f.failures, "retry_at", f.retryAt, "reason", reason)
}

// recordSuccess records that the move of shard of segment to to
// committed: it is forgotten, and to is no longer failing moves in a row.
func (m *moveBackoff) recordSuccess(segment []byte, shard uint32, to string) {
	delete(m.failed, pendingKey(segment, shard, to))
	delete(m.targets, to)
}

// moveFailed records a failure of the balancer's move p, which
// settlePending drops.
func (h *healer) moveFailed(p *pb.PendingMove, reason string) {
	h.bal.recordFailure(h, "rebalance", p.GetSegmentId(), p.GetShard(), p.GetFromNode(), p.GetToNode(), reason)
}

// skipMove reports whether the planner must not plan shard of segment to
// node now, and whether that is a wait (a retry is due later) rather than
// a move given up.
func (m *moveBackoff) skipMove(segment []byte, shard uint32, to string, now time.Time) (skip, waiting bool) {
	if tf := m.targets[to]; tf != nil && tf.failures >= balanceTargetFailures && now.Before(tf.retryAt) {
		return true, true
	}
	f := m.failed[pendingKey(segment, shard, to)]
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

// skipped lists the moves skipped now, by segment and shard.
func (m *moveBackoff) skipped(now time.Time) []SkippedMove {
	var out []SkippedMove
	for _, tf := range m.targets {
		if tf.failures >= balanceTargetFailures && now.Before(tf.retryAt) {
			out = append(out, SkippedMove{To: tf.to, Failures: tf.failures, RetryAt: tf.retryAt, Reason: tf.reason})
		}
	}
	for _, f := range m.failed {
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

// skippedToPB is skipped as an RPC answer lists it: the first max, and
// how many there are.
func skippedToPB(skipped []SkippedMove, max int) ([]*pb.SkippedMove, int64) {
	var out []*pb.SkippedMove
	for _, m := range skipped[:min(len(skipped), max)] {
		sm := &pb.SkippedMove{SegmentId: m.Segment, Shard: m.Shard, FromNode: m.From, ToNode: m.To, Failures: int64(m.Failures), Reason: m.Reason}
		if !m.RetryAt.IsZero() {
			sm.RetryUnixNano = m.RetryAt.UnixNano()
		}
		out = append(out, sm)
	}
	return out, int64(len(skipped))
}
