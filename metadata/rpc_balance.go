package metadata

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"
)

// Drain and decommission (`cairn node drain | undrain | decommission`).
//
// A DRAINING node receives no new chunks (placement skips it) and still
// counts as holding its chunks (repair leaves them alone); the leader's
// drain loop moves them away one shard at a time with submitMove, choosing
// each target with placement.Replace, within the repair budgets. A move's
// result commits CommitPlacement{reason "rebalance"}, which queues the old
// chunk for deletion. Once the node index says the node holds no chunk,
// Decommission commits it DECOMMISSIONED. Undrain (back to UP) stops
// further moves; moves already handed out finish and commit.

func (a *api) SetNodeDrain(ctx context.Context, req *pb.SetNodeDrainRequest) (*pb.SetNodeDrainResponse, error) {
	// Answers come from the leader's state once it has applied everything
	// acknowledged (a follower's may lag: a node just registered missing
	// from a plan, a drain just committed not yet seen).
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.setNodeDrain(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) Decommission(ctx context.Context, req *pb.DecommissionRequest) (*pb.DecommissionResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.decommission(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (s *Server) setNodeDrain(ctx context.Context, req *pb.SetNodeDrainRequest) (*pb.SetNodeDrainResponse, error) {
	n, err := s.state.Node(req.GetId())
	if err != nil {
		return nil, err
	}
	want := pb.NodeState_NODE_STATE_UP
	if req.GetDrain() {
		want = pb.NodeState_NODE_STATE_DRAINING
	}
	switch st := n.GetState(); {
	case st == want:
		// Nothing to change.
	case st == pb.NodeState_NODE_STATE_DECOMMISSIONED:
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "node %s is decommissioned; it cannot be drained or undrained", n.GetId())
	case req.GetDrain() && st == pb.NodeState_NODE_STATE_DOWN:
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "node %s is down: repair rebuilds its chunks elsewhere; drain it once it is back up", n.GetId())
	case !req.GetDrain() && st != pb.NodeState_NODE_STATE_DRAINING:
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "node %s is %s, not draining: nothing to undrain", n.GetId(), stateWord(st))
	case !req.GetDryRun():
		reason := "drain requested"
		if !req.GetDrain() {
			reason = "undrain requested"
		}
		if err := s.commitNodeState(ctx, n.GetId(), st, want, reason); err != nil {
			return nil, err
		}
		if n, err = s.state.Node(req.GetId()); err != nil {
			return nil, err
		}
	}
	chunks, size, err := s.state.NodeUsage(n.GetId())
	if err != nil {
		return nil, err
	}
	return &pb.SetNodeDrainResponse{Node: n, ChunksRemaining: chunks, BytesRemaining: size}, nil
}

// decommissionProbe bounds how many remaining segments Decommission tries
// to place elsewhere when it explains what blocks.
const decommissionProbe = 16

func (s *Server) decommission(ctx context.Context, req *pb.DecommissionRequest) (*pb.DecommissionResponse, error) {
	n, err := s.state.Node(req.GetId())
	if err != nil {
		return nil, err
	}
	id := n.GetId()
	chunks, size, err := s.state.NodeUsage(id)
	if err != nil {
		return nil, err
	}
	resp := &pb.DecommissionResponse{Node: n, ChunksRemaining: chunks, BytesRemaining: size}
	if n.GetState() == pb.NodeState_NODE_STATE_DECOMMISSIONED {
		resp.Decommissioned = true
		return resp, nil
	}
	if n.GetState() != pb.NodeState_NODE_STATE_DRAINING {
		resp.Blockers = append(resp.Blockers, fmt.Sprintf("node is not draining: run `cairn node drain %s` first", id))
	}
	if chunks > 0 {
		resp.Blockers = append(resp.Blockers, fmt.Sprintf("node holds %d chunks (%d bytes) that have not moved yet", chunks, size))
		b, err := s.placementBlockers(n)
		if err != nil {
			return nil, err
		}
		resp.Blockers = append(resp.Blockers, b...)
	}
	if len(resp.Blockers) > 0 || req.GetStatusOnly() || req.GetDryRun() {
		return resp, nil
	}
	if err := s.commitNodeState(ctx, id, n.GetState(), pb.NodeState_NODE_STATE_DECOMMISSIONED, "decommission requested"); err != nil {
		return nil, err
	}
	if resp.Node, err = s.state.Node(id); err != nil {
		return nil, err
	}
	resp.Decommissioned = true
	return resp, nil
}

// placementBlockers tries to place elsewhere the first few chunks still on
// node n, as the drain would, and says why those that cannot move cannot.
func (s *Server) placementBlockers(n *pb.Node) ([]string, error) {
	cm, err := s.state.ClusterMap()
	if err != nil {
		return nil, err
	}
	v := newClusterView(cm)
	infos, _, err := s.state.SegmentsOnNode(n.GetId(), nil, decommissionProbe)
	if err != nil {
		return nil, err
	}
	never := func(string) bool { return false }
	unplaceable := 0
	var first error
	for _, in := range infos {
		seg := in.Segment
		for sh, id := range seg.GetNodes() {
			if id != n.GetId() {
				continue
			}
			to, err := v.pickTarget(seg.GetId(), seg.GetNodes(), uint32(sh), never, func(uint32, string) bool { return false })
			if err == nil {
				// placement.Replace settles for the least bad node when none
				// keeps the rule; the move would then be refused (addMove).
				next := slices.Clone(seg.GetNodes())
				next[sh] = to
				if !spreadKept(seg.GetNodes(), next, v.place, int(seg.GetScheme().GetM())) {
					err = fmt.Errorf("the only target, %s, would put too many shards in its zone or rack: %w", to, placement.ErrSpread)
				}
			}
			if err != nil {
				unplaceable++
				if first == nil {
					first = err
				}
			}
		}
	}
	if first == nil {
		return nil, nil
	}
	if errors.Is(first, placement.ErrNotEnoughNodes) || errors.Is(first, placement.ErrSpread) {
		return []string{fmt.Sprintf("removing it would leave zone %s with too few writable nodes: %d of the first %d chunks checked have no target that keeps the failure-domain rule (%v)", n.GetZone(), unplaceable, len(infos), first)}, nil
	}
	return []string{fmt.Sprintf("%d of the first %d chunks checked have no target: %v", unplaceable, len(infos), first)}, nil
}

// stateWord is a node state in plain words ("up", "draining").
func stateWord(st pb.NodeState) string {
	switch st {
	case pb.NodeState_NODE_STATE_UP:
		return "up"
	case pb.NodeState_NODE_STATE_SUSPECT:
		return "suspect"
	case pb.NodeState_NODE_STATE_DOWN:
		return "down"
	case pb.NodeState_NODE_STATE_DRAINING:
		return "draining"
	case pb.NodeState_NODE_STATE_DECOMMISSIONED:
		return "decommissioned"
	}
	return "unknown"
}

// drainLoop moves chunks off DRAINING nodes until ctx ends (the term).
func (s *Server) drainLoop(ctx context.Context, h *healer) {
	tick := time.NewTicker(dispatchTick(h.cfg))
	defer tick.Stop()
	cursors := map[string][]byte{} // per draining node: where the last round stopped
	for {
		if err := s.drainRound(ctx, h, cursors); err != nil && ctx.Err() == nil {
			h.log.Warn("drain", "err", err)
		}
		h.bal.drainRounds.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drainRound hands out moves off each draining node while the budgets
// allow; it examines at most one page of segments per node.
func (s *Server) drainRound(ctx context.Context, h *healer, cursors map[string][]byte) error {
	cm, err := h.st.ClusterMap()
	if err != nil {
		return err
	}
	v := newClusterView(cm)
	busy := func(node string) bool {
		on, _ := h.tasks.load(node)
		return on >= h.cfg.RepairPerNode
	}
	var errs []error
	for _, n := range cm.GetNodes() {
		id := n.GetId()
		if n.GetState() != pb.NodeState_NODE_STATE_DRAINING {
			delete(cursors, id)
			continue
		}
		infos, next, err := h.st.SegmentsOnNode(id, cursors[id], scanPage)
		if err != nil {
			errs = append(errs, fmt.Errorf("segments on draining node %s: %w", id, err))
			continue
		}
		cursors[id] = next // nil: start over next round
		for _, in := range infos {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if _, total := h.tasks.load(""); total >= h.cfg.RepairMaxInflight {
				return errors.Join(errs...)
			}
			h.mu.Lock()
			allowed := h.bucket.allow(h.now())
			h.mu.Unlock()
			if !allowed {
				return errors.Join(errs...)
			}
			seg := in.Segment
			if h.tasks.segmentBusy(seg.GetId()) {
				continue
			}
			healthy, _ := v.segmentHealth(seg)
			if healthy < segShards(seg) {
				continue // degraded: repair first, then the drain
			}
			if err := s.drainSegment(v, h, seg, id, busy); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d chunks not moved, first: %w", len(errs), errs[0])
	}
	return nil
}

// drainSegment hands out a move of seg's chunk on the draining node.
func (s *Server) drainSegment(v *clusterView, h *healer, seg *pb.Segment, node string, busy func(string) bool) error {
	for sh, id := range seg.GetNodes() {
		if id != node {
			continue
		}
		unusable := func(shard uint32, n string) bool {
			pending, err := h.st.ChunkDeletePending(seg.GetId(), int(shard), n)
			return err != nil || pending
		}
		target, err := v.pickTarget(seg.GetId(), seg.GetNodes(), uint32(sh), busy, unusable)
		if errors.Is(err, errTargetBusy) {
			return nil // a later round
		}
		if err != nil {
			return fmt.Errorf("segment %x shard %d off %s: %w", seg.GetId(), sh, node, err)
		}
		if cur, err := s.state.Node(node); err != nil || cur.GetState() != pb.NodeState_NODE_STATE_DRAINING {
			return err // undrained (or gone) meanwhile
		}
		if _, err := h.addMove(seg.GetId(), uint32(sh), target); err != nil {
			if errors.Is(err, errTargetBusy) || isPrecondition(err) {
				return nil
			}
			return fmt.Errorf("move segment %x shard %d off %s: %w", seg.GetId(), sh, node, err)
		}
		h.log.Debug("drain move planned", "segment", fmt.Sprintf("%x", seg.GetId()), "shard", sh, "from", node, "to", target)
		return nil // one move per segment at a time
	}
	return nil
}

// defaultRebalanceThreshold is the balancer's band around the mean
// utilisation, in percentage points.
const defaultRebalanceThreshold = 5

// defaultPlanMoves is how many moves RebalancePlan lists when not told.
const defaultPlanMoves = 1000

func (a *api) RebalancePlan(ctx context.Context, req *pb.RebalancePlanRequest) (*pb.RebalancePlanResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.rebalancePlan(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// rebalancePlan plans the balancer's moves from this member's state; it
// changes nothing.
func (s *Server) rebalancePlan(ctx context.Context, req *pb.RebalancePlanRequest) (*pb.RebalancePlanResponse, error) {
	threshold := req.GetThreshold()
	if threshold <= 0 {
		threshold = defaultRebalanceThreshold
	}
	limit := int(req.GetMaxMoves())
	if limit <= 0 {
		limit = defaultPlanMoves
	}
	moves, nodes, used, err := s.planFromState(ctx, threshold)
	if err != nil {
		return nil, err
	}
	resp := &pb.RebalancePlanResponse{MovesTotal: int64(len(moves))}
	for i, m := range moves {
		resp.BytesTotal += m.Bytes
		if i < limit {
			resp.Moves = append(resp.Moves, &pb.PlannedMove{SegmentId: m.Segment, Shard: m.Shard, FromNode: m.From, ToNode: m.To, Bytes: m.Bytes})
		}
	}
	for _, n := range nodes {
		if n.State != placement.StateUp {
			continue
		}
		resp.Before = append(resp.Before, &pb.NodeUtilization{Id: n.ID, CapacityBytes: n.Capacity, UsedBytes: n.Used, Utilization: utilization(n.Used, n.Capacity)})
		resp.After = append(resp.After, &pb.NodeUtilization{Id: n.ID, CapacityBytes: n.Capacity, UsedBytes: used[n.ID], Utilization: utilization(used[n.ID], n.Capacity)})
	}
	return resp, nil
}

// planFromState plans the balancer's moves on this member's state.
func (s *Server) planFromState(ctx context.Context, threshold float64) ([]plannedMove, []balanceNode, map[string]int64, error) {
	cm, err := s.state.ClusterMap()
	if err != nil {
		return nil, nil, nil, err
	}
	var nodes []balanceNode
	for _, n := range cm.GetNodes() {
		_, size, err := s.state.NodeUsage(n.GetId())
		if err != nil {
			return nil, nil, nil, err
		}
		nodes = append(nodes, balanceNode{Node: toPlacementNode(n), Used: size})
	}
	var segs []*pb.Segment
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		infos, next, err := s.state.ScanSegments(after, scanPage)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("scan segments: %w", err)
		}
		for _, in := range infos {
			segs = append(segs, in.Segment)
		}
		if next == nil {
			break
		}
		after = next
	}
	moves, used := planRebalance(nodes, segs, threshold)
	return moves, nodes, used, nil
}

// The balancer (`cairn rebalance start | status | stop`).
//
// Start plans once over every segment, for the totals the progress is
// measured against, and commits SetRebalance{running}. From then on the
// leader's balancer works incrementally, a bounded amount per round
// (balanceLoop): it reads one page of segments after the cursor, plans
// their moves against the utilisation the node index shows plus the moves
// still in flight, hands them out within the repair budgets and --rate, and
// commits the new cursor and the moves it handed out (pending) in one
// SetRebalance — before handing them out, so that a new leader knows what
// may still be in flight. A pending move is settled once: counted into
// bytes_moved/moves_done when its placement shows the new node (the move's
// CommitPlacement), or dropped when its task failed or expired. When a pass
// over all segments ends having planned nothing, with nothing deferred and
// nothing pending, the rebalance is done. A move dropped in the middle of a
// pass counts as deferred: the segments examined before were planned as if
// it would happen.
//
// A move dropped because it failed is not planned again until its backoff
// has passed, and not at all after balanceMoveAttempts failures.
//
// So a leader change neither loses nor repeats work: the new leader reads
// the cursor, counters and pending moves from the state, and hands the
// pending moves out again under their task ids (adoptPending); placements are
// compare-and-set, so a move reported twice commits once, and it is
// counted when settled, which removes it from pending in the same command.
//
// Every SetRebalance the leader commits is read-modify-write under the
// term's balancer lock, which Start and Stop also take: a round cannot
// overwrite a stop, and no move is handed out after Stop returns (moves
// already handed out finish and commit).
//
// Rate: --rate is a token bucket in the leader's memory. A new leader's
// bucket starts empty rather than full, so a leader change does not grant
// a fresh burst; the old leader's debt is forgiven, so across a change the
// balancer can run ahead of the rate by at most one move.

// balancePage bounds the segments one balancer round examines.
const balancePage = 256

// balanceUsageMaxAge bounds how long the balancer plans on node usage it
// read from the node index (a scan of every chunk entry, so not every
// round); moves settled meanwhile are applied to it, and it is read again
// at the start of each pass.
const balanceUsageMaxAge = 30 * time.Second

// balanceUsageMinAge: a new pass reads the node usage again only if it
// is older than this (in a small cluster every round is a pass).
const balanceUsageMinAge = time.Second

// balanceCursorCommit is how often the balancer commits a cursor that
// moved while nothing else changed.
const balanceCursorCommit = time.Second

// balancer is the balancer's state for one term (the healer's bal).
type balancer struct {
	// mu serialises this term's SetRebalance commits (rounds, Start, Stop).
	mu sync.Mutex

	// Observed by tests: rounds of the balancer loop (running or not),
	// moves handed out.
	rounds atomic.Uint64
	moves  atomic.Uint64
	// drainRounds counts the drain loop's rounds.
	drainRounds atomic.Uint64

	// The rest belongs to the loop's goroutine (and is read under mu).
	run        int64            // started_unix_nano of the run the fields below are for
	usage      map[string]int64 // node index bytes per node
	usageAt    time.Time
	usagePass  int64
	bucket     *tokenBucket
	bucketRate int64
	// drop: pending moves whose hand-out failed after they were committed,
	// with why when that counts as a failure of the move ("" when it does
	// not: its target was busy, or the placement changed).
	drop map[string]string
	// failed: moves (by pendingKey) that failed this run, each waiting out
	// its backoff or given up (see balanceMoveAttempts).
	failed map[string]*moveFailure
	// targets: nodes whose last moves failed, by id (see
	// balanceTargetFailures).
	targets map[string]*moveFailure
	// counted: pending moves (by pendingKey) whose commit the last usage
	// read already shows, so that neither the planner nor settlePending
	// applies them a second time.
	counted map[string]bool
	// shadow is the record with the cursor and pass counters of the last
	// rounds, not committed yet; it applies while the state still holds
	// base (a stop or start replaces that, and the shadow with it).
	shadow, base *pb.SetRebalance
	committedAt  time.Time

	// fmu guards mine and finished, which task results update.
	fmu sync.Mutex
	// mine: pending moves this leader handed out (by pendingKey), true
	// once their result has been handled (committed or not) or their task
	// expired. A move leaves the task table when its result arrives, before
	// its placement commits: only finished tells "failed" from "committing".
	mine map[string]bool
	// why: what the blob node or the expiry said of a finished move of
	// mine that failed.
	why map[string]string
}

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

// handedOut records a move this leader handed out.
func (b *balancer) handedOut(key string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if b.mine == nil {
		b.mine = map[string]bool{}
	}
	b.mine[key] = false
}

// finish records that the result of a move was handled (its placement
// committed or refused), or that its task expired; why, when not "", says
// why it failed.
func (b *balancer) finish(key, why string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if _, ok := b.mine[key]; ok {
		b.mine[key] = true
		if why != "" {
			if b.why == nil {
				b.why = map[string]string{}
			}
			b.why[key] = why
		}
	}
}

// failure returns why a finished move of mine failed ("" when not told).
func (b *balancer) failure(key string) string {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	return b.why[key]
}

// state reports whether key is a move this leader handed out, and whether
// it has finished.
func (b *balancer) state(key string) (mine, finished bool) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	finished, mine = b.mine[key]
	return mine, finished
}

// unfinished counts the moves handed out whose result is not handled.
func (b *balancer) unfinished() int {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	n := 0
	for _, done := range b.mine {
		if !done {
			n++
		}
	}
	return n
}

func (b *balancer) forget(key string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	delete(b.mine, key)
	delete(b.why, key)
}

// BalancerCounters are the balancer's counters on the leader's current
// term (tests wait on them instead of sleeping).
type BalancerCounters struct {
	// Rounds of the balancer loop (whether a rebalance runs or not), and
	// moves it handed out, in this term.
	Rounds, MovesHandedOut uint64
	// DrainRounds are the drain loop's rounds in this term.
	DrainRounds uint64
	// MovesInFlight are the move tasks outstanding now (balancer's and
	// drain's).
	MovesInFlight int
	// MovesUnfinished are the balancer's moves of this term whose result
	// has not been handled yet: a move leaves the task table when its
	// result arrives, before its placement commits, so only this says
	// that no balancer move can still change a placement.
	MovesUnfinished int
	// MovesSkipped are the balancer's moves that failed and are skipped
	// now (waiting for their retry, or given up for the run).
	MovesSkipped []SkippedMove
}

// BalancerCounters returns the counters of this member's term, or
// NotLeader.
func (s *Server) BalancerCounters() (BalancerCounters, error) {
	h, err := s.currentHealer()
	if err != nil {
		return BalancerCounters{}, err
	}
	_, moves, _ := h.tasks.counts()
	h.bal.mu.Lock()
	skipped := h.bal.skipped(h.now())
	h.bal.mu.Unlock()
	return BalancerCounters{Rounds: h.bal.rounds.Load(), MovesHandedOut: h.bal.moves.Load(), DrainRounds: h.bal.drainRounds.Load(),
		MovesInFlight: moves, MovesUnfinished: h.bal.unfinished(), MovesSkipped: skipped}, nil
}

// RebalanceState returns the balancer's replicated state as this member
// has applied it (nil before the first start).
func (s *Server) RebalanceState() (*pb.SetRebalance, error) { return s.state.Rebalance() }

func pendingKey(segment []byte, shard uint32, to string) string {
	return fmt.Sprintf("%x/%d/%s", segment, shard, to)
}

func (a *api) RebalanceStart(ctx context.Context, req *pb.RebalanceStartRequest) (*pb.RebalanceStatusResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.rebalanceStart(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) RebalanceStatus(ctx context.Context, _ *pb.RebalanceStatusRequest) (*pb.RebalanceStatusResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.rebalanceStatus(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) RebalanceStop(ctx context.Context, _ *pb.RebalanceStopRequest) (*pb.RebalanceStatusResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	resp, err := a.s.rebalanceStop(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// lockBalance takes the term's balancer lock (NotLeader when this member
// does not lead).
func (s *Server) lockBalance() (*healer, error) {
	h, err := s.currentHealer()
	if err != nil {
		return nil, err
	}
	h.bal.mu.Lock()
	return h, nil
}

func (s *Server) rebalanceStart(ctx context.Context, req *pb.RebalanceStartRequest) (*pb.RebalanceStatusResponse, error) {
	threshold := req.GetThreshold()
	if threshold <= 0 {
		threshold = defaultRebalanceThreshold
	}
	if req.GetRateBytesPerSecond() < 0 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "rate %d bytes/s is negative", req.GetRateBytesPerSecond())
	}
	moves, _, _, err := s.planFromState(ctx, threshold)
	if err != nil {
		return nil, err
	}
	r := &pb.SetRebalance{Running: true, Threshold: threshold, RateBytesPerSecond: req.GetRateBytesPerSecond(),
		MovesTotal: int64(len(moves)), StartedUnixNano: time.Now().UnixNano()}
	for _, m := range moves {
		r.BytesTotal += m.Bytes
	}
	if len(moves) == 0 {
		r.Running, r.Outcome = false, "done"
	}
	if req.GetDryRun() {
		resp := rebalanceStatusOf(r, 0, 0)
		resp.Running = false // nothing was started
		return resp, nil
	}
	h, err := s.lockBalance()
	if err != nil {
		return nil, err
	}
	defer h.bal.mu.Unlock()
	// Moves a previous run still has in flight stay tracked (they hold
	// their segments and their bytes in the utilisation); those that
	// committed or can no longer commit are the previous run's, settled
	// here so the new run does not count them.
	if old, err := s.state.Rebalance(); err != nil {
		return nil, err
	} else if len(old.GetPending()) > 0 {
		old = proto.CloneOf(old)
		s.settlePending(h, old, false)
		r.Pending = append(r.Pending, old.GetPending()...)
		if len(r.Pending) > 0 {
			r.Running, r.Outcome = true, ""
		}
	}
	if _, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
		return nil, err
	}
	return s.rebalanceStatusLocked(h)
}

func (s *Server) rebalanceStop(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
	h, err := s.lockBalance()
	if err != nil {
		return nil, err
	}
	defer h.bal.mu.Unlock()
	r, err := s.state.Rebalance()
	if err != nil {
		return nil, err
	}
	if r != nil && r.GetRunning() {
		r = proto.CloneOf(r)
		s.settlePending(h, r, false)
		r.Running, r.Outcome = false, "stopped"
		if _, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
			return nil, err
		}
	}
	return s.rebalanceStatusLocked(h)
}

func (s *Server) rebalanceStatus(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := s.lockBalance()
	if err != nil {
		// Leading (the read was linearized) but the term's balancer is not
		// up yet: the replicated state, without skipped moves.
		return s.rebalanceStatusLocked(nil)
	}
	defer h.bal.mu.Unlock()
	return s.rebalanceStatusLocked(h)
}

// statusSkippedMax bounds the skipped moves a status lists.
const statusSkippedMax = 100

// rebalanceStatusLocked reports the recorded state, with the pending moves
// that have committed meanwhile counted as moved (without committing
// anything: the balancer settles them), and the moves h's balancer skips
// (h nil: none known). Callers hold h's balancer lock.
func (s *Server) rebalanceStatusLocked(h *healer) (*pb.RebalanceStatusResponse, error) {
	r, err := s.state.Rebalance()
	if err != nil {
		return nil, err
	}
	if r == nil {
		return &pb.RebalanceStatusResponse{}, nil
	}
	movedBytes, movedMoves := r.GetBytesMoved(), r.GetMovesDone()
	var inFlight int64
	for _, p := range r.GetPending() {
		switch s.pendingOutcome(p) {
		case pendingCommitted:
			movedBytes += p.GetBytes()
			movedMoves++
		case pendingOpen:
			inFlight += p.GetBytes()
		}
	}
	resp := rebalanceStatusOf(r, movedBytes, movedMoves)
	// A run moves what its rounds find, which can exceed what the plan at
	// the start found (writes meanwhile, a move that failed and went
	// elsewhere): the total is then what is moved and in flight.
	if resp.BytesTotal < movedBytes+inFlight {
		resp.BytesTotal = movedBytes + inFlight
	}
	if resp.MovesTotal < movedMoves {
		resp.MovesTotal = movedMoves
	}
	if r.GetRunning() {
		if el := time.Since(time.Unix(0, r.GetStartedUnixNano())).Seconds(); el > 0 && movedBytes > 0 {
			resp.BytesPerSecond = float64(movedBytes) / el
			resp.EtaSeconds = float64(max(0, resp.BytesTotal-movedBytes)) / resp.BytesPerSecond
		}
	}
	if h != nil && h.bal.run == r.GetStartedUnixNano() {
		skipped := h.bal.skipped(h.now())
		resp.SkippedCount = int64(len(skipped))
		for _, m := range skipped[:min(len(skipped), statusSkippedMax)] {
			sm := &pb.SkippedMove{SegmentId: m.Segment, Shard: m.Shard, FromNode: m.From, ToNode: m.To, Failures: int64(m.Failures), Reason: m.Reason}
			if !m.RetryAt.IsZero() {
				sm.RetryUnixNano = m.RetryAt.UnixNano()
			}
			resp.Skipped = append(resp.Skipped, sm)
		}
	}
	return resp, nil
}

// rebalanceStatusOf reports r with movedBytes and movedMoves done.
func rebalanceStatusOf(r *pb.SetRebalance, movedBytes, movedMoves int64) *pb.RebalanceStatusResponse {
	return &pb.RebalanceStatusResponse{
		Running: r.GetRunning(), Threshold: r.GetThreshold(), RateBytesPerSecond: r.GetRateBytesPerSecond(),
		BytesTotal: r.GetBytesTotal(), BytesMoved: movedBytes,
		MovesTotal: r.GetMovesTotal(), MovesDone: movedMoves,
		StartedUnixNano: r.GetStartedUnixNano(), Outcome: r.GetOutcome(),
	}
}

type pendingState int

const (
	pendingOpen      pendingState = iota // may still commit
	pendingCommitted                     // the placement shows the new node
	pendingGone                          // the segment is gone, or the shard moved elsewhere
)

// pendingOutcome reads where p's shard is now.
func (s *Server) pendingOutcome(p *pb.PendingMove) pendingState {
	info, err := s.state.Segment(p.GetSegmentId())
	if errors.Is(err, metaerr.ErrNoSuchKey) {
		return pendingGone
	}
	if err != nil {
		return pendingOpen
	}
	return outcomeOn(info.Segment.GetNodes(), p)
}

// outcomeOn reads where p's shard is in a placement of its segment.
func outcomeOn(nodes []string, p *pb.PendingMove) pendingState {
	switch sh := int(p.GetShard()); {
	case sh >= len(nodes):
		return pendingGone
	case nodes[sh] == p.GetToNode():
		return pendingCommitted
	case nodes[sh] != p.GetFromNode():
		return pendingGone // repaired or moved by someone else
	}
	return pendingOpen
}

// settlePending counts r's pending moves that committed and drops those
// that cannot commit any more (gone; failed on this leader; or older than
// a task's timeout, when handed out by an earlier leader). With stopping,
// moves still open stay pending (they may still commit; a later status or
// start counts them). It reports whether r changed, and how many moves it
// dropped: the balancer planned on those happening.
func (s *Server) settlePending(h *healer, r *pb.SetRebalance, applyUsage bool) (changed bool, lost int) {
	b := &h.bal
	now := h.now()
	kept := r.GetPending()[:0:0]
	for _, p := range r.GetPending() {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		// Whether the move finished is read before where its shard is, so
		// that a result handled in between is seen as committed.
		mine, finished := b.state(key)
		switch s.pendingOutcome(p) {
		case pendingCommitted:
			r.BytesMoved += p.GetBytes()
			r.MovesDone++
			delete(b.failed, key)
			delete(b.targets, p.GetToNode())
			if applyUsage && b.usage != nil && !b.counted[key] {
				b.usage[p.GetFromNode()] -= p.GetBytes()
				b.usage[p.GetToNode()] += p.GetBytes()
			}
			changed = true
			b.forget(key)
			delete(b.counted, key)
			continue
		case pendingGone:
			changed = true
			lost++
			b.forget(key)
			delete(b.counted, key)
			continue
		}
		// Open: drop it when handed out by this leader and finished
		// without committing (failed, expired, or its commit refused), or
		// past a task's timeout without a task here (an earlier leader's,
		// or a result whose commit failed and was never reported again).
		expired := now.Sub(time.Unix(0, p.GetHandedUnixNano())) > h.cfg.RepairTaskTimeout+time.Second
		inTable := h.tasks.isWriting(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		dropReason, dropped := b.drop[key]
		if dropped || mine && finished || !inTable && expired {
			switch {
			case dropped:
				if dropReason != "" {
					h.moveFailed(p, dropReason)
				}
			case mine && finished:
				why := b.failure(key)
				if why == "" {
					why = "its placement commit was refused"
				}
				h.moveFailed(p, why)
			default:
				h.moveFailed(p, "no result within the task timeout")
			}
			changed = true
			lost++
			b.forget(key)
			delete(b.drop, key)
			delete(b.counted, key)
			continue
		}
		kept = append(kept, p)
	}
	r.Pending = kept
	return changed, lost
}

// moveNonce is the task id nonce of the balancer's move p: the time it was
// handed out, which the pending record keeps, so that every leader derives
// the same task id for it.
func moveNonce(p *pb.PendingMove) uint64 { return uint64(p.GetHandedUnixNano()) }

// adoptPending hands out again, at once, the pending moves of r that this
// leader did not hand out (an earlier leader's) and has no task for. A
// move no blob node fetched from the earlier leader is not in progress
// anywhere, and waiting a task's timeout for it stalled the run after
// every leader change; one that was fetched may be running, so it goes
// out under the task id the earlier leader gave it (moveNonce): a node
// already running that task does not start it twice (blob.Executor drops
// a task whose id is running), and its result, reported to this leader,
// matches the task here. One that cannot go now (its target busy) is
// tried next round; one that cannot go at all (the placement changed) is
// dropped from pending in the next round.
func (s *Server) adoptPending(h *healer, r *pb.SetRebalance) {
	b := &h.bal
	for _, p := range r.GetPending() {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		if mine, _ := b.state(key); mine || b.counted[key] || h.tasks.isWriting(p.GetSegmentId(), p.GetShard(), p.GetToNode()) {
			continue
		}
		if _, dropped := b.drop[key]; dropped {
			continue
		}
		if _, err := h.addMoveNonce(p.GetSegmentId(), p.GetShard(), p.GetToNode(), moveNonce(p)); err != nil {
			if !errors.Is(err, errTargetBusy) {
				b.drop[key] = ""
				h.log.Info("an earlier leader's rebalance move cannot go out again; dropped", "segment", fmt.Sprintf("%x", p.GetSegmentId()), "shard", p.GetShard(), "to", p.GetToNode(), "err", err)
			}
			continue
		}
		b.handedOut(key)
		h.log.Debug("an earlier leader's rebalance move handed out again", "segment", fmt.Sprintf("%x", p.GetSegmentId()), "shard", p.GetShard(), "to", p.GetToNode())
	}
}

// balanceLoop runs the balancer while the replicated state says it runs,
// one bounded round per tick.
func (s *Server) balanceLoop(ctx context.Context, h *healer) {
	tick := time.NewTicker(dispatchTick(h.cfg))
	defer tick.Stop()
	for {
		if err := s.balanceRound(ctx, h); err != nil && ctx.Err() == nil {
			h.log.Warn("rebalance", "err", err)
		}
		h.bal.rounds.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// balanceRound settles pending moves, plans one page of segments and
// hands out what the budgets allow, and commits the progress.
func (s *Server) balanceRound(ctx context.Context, h *healer) error {
	b := &h.bal
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, err := s.state.Rebalance()
	if err != nil || cur == nil || !cur.GetRunning() {
		return err
	}
	if b.run != cur.GetStartedUnixNano() {
		// A new run (or a new term): fresh usage, and a bucket that starts
		// empty (see the rate note above).
		b.run, b.usage, b.counted, b.drop = cur.GetStartedUnixNano(), nil, nil, map[string]string{}
		b.failed, b.targets = nil, nil
		b.shadow, b.base = nil, nil
		b.bucket, b.bucketRate = nil, -1
	}
	if rate := cur.GetRateBytesPerSecond(); b.bucket == nil || b.bucketRate != rate {
		b.bucket, b.bucketRate = newMoveBucket(rate, h.now()), rate
	}
	r := proto.CloneOf(cur)
	if b.shadow != nil && proto.Equal(cur, b.base) {
		r = proto.CloneOf(b.shadow) // the cursor has moved on since the last commit
	}
	// The node usage is read (when due) before the pending moves are
	// settled, in one snapshot with the placements of those moves: a move
	// that commits before the read is then in the bytes and in counted
	// (settlePending leaves the bytes alone), one that commits after it
	// is settled into the bytes. Reading after settling, a move
	// committing in between was counted twice.
	var usageErr error
	if age := h.now().Sub(b.usageAt); b.usage == nil || age > balanceUsageMaxAge || b.usagePass != r.GetPasses() && age > balanceUsageMinAge {
		if usageErr = s.readBalanceUsage(h, r.GetPending()); usageErr == nil {
			b.usagePass = r.GetPasses()
		}
	}
	// changed: r must be committed (moves settled or handed out, the run
	// done); progressed: only the cursor and the pass counters moved,
	// which is committed at most every balanceCursorCommit, so that an
	// idle or small cluster does not commit every round. Losing that to a
	// crash only makes the next leader examine some segments again.
	changed, lost := s.settlePending(h, r, true)
	s.adoptPending(h, r)
	progressed := false
	if lost > 0 && len(r.GetCursor()) > 0 {
		// The segments this pass examined before were planned as if these
		// moves would happen: the pass cannot show that nothing is left to
		// move, so it must not end the run (the next pass plans without
		// them).
		r.PassDeferred += int64(lost)
		progressed = true
	}
	commit := func() error {
		now := h.now()
		if !changed && !(progressed && now.Sub(b.committedAt) >= balanceCursorCommit) {
			if progressed {
				b.shadow, b.base = r, cur
			}
			return nil
		}
		if _, err := h.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
			b.shadow, b.base = nil, nil
			return err
		}
		b.shadow, b.base, b.committedAt = r, proto.CloneOf(r), now
		return nil
	}

	if usageErr != nil {
		return errors.Join(usageErr, commit())
	}
	cm, err := h.st.ClusterMap()
	if err != nil {
		return errors.Join(err, commit())
	}
	var nodes []balanceNode
	for _, n := range cm.GetNodes() {
		nodes = append(nodes, balanceNode{Node: toPlacementNode(n), Used: b.usage[n.GetId()]})
	}
	pendingSeg := map[string]bool{}
	for i := range nodes {
		for _, p := range r.GetPending() {
			if b.counted[pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())] {
				continue // in the bytes already (not settled: its segment could not be read)
			}
			if nodes[i].ID == p.GetFromNode() {
				nodes[i].Used -= p.GetBytes()
			}
			if nodes[i].ID == p.GetToNode() {
				nodes[i].Used += p.GetBytes()
			}
		}
	}
	for _, p := range r.GetPending() {
		pendingSeg[string(p.GetSegmentId())] = true
	}
	planner := newBalancePlanner(nodes, r.GetThreshold())
	// Moves that failed are planned around while they wait for their
	// retry (a segment whose only move waits is deferred: the pass cannot
	// show that nothing is left) or once given up (not deferred, so the
	// run can end).
	roundNow, waiting := h.now(), false
	planner.skip = func(segment []byte, shard uint32, to string) bool {
		skip, wait := b.skipMove(segment, shard, to, roundNow)
		waiting = waiting || wait
		return skip
	}

	infos, next, err := h.st.ScanSegments(r.GetCursor(), balancePage)
	if err != nil {
		return errors.Join(err, commit())
	}
	rate := r.GetRateBytesPerSecond()
	var handOut []*pb.PendingMove
	cursor := r.GetCursor()
	complete := true // the page was examined to its end
	for _, in := range infos {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seg := in.Segment
		waiting = false
		moves := planner.plan(seg)
		if len(moves) == 0 {
			cursor = seg.GetId()
			if waiting {
				r.PassDeferred++
				progressed = true
			}
			continue
		}
		if _, total := h.tasks.load(""); total+len(handOut) >= h.cfg.RepairMaxInflight || rate > 0 && !b.bucket.allow(h.now()) {
			complete = false // out of budget: this segment and the rest next round
			break
		}
		cursor = seg.GetId()
		m := moves[0] // one move per segment at a time
		if pendingSeg[string(seg.GetId())] || h.tasks.segmentBusy(seg.GetId()) || s.targetBusy(h, m.To, handOut) {
			r.PassDeferred++
			progressed = true
			continue
		}
		if len(moves) > 1 {
			// Its other moves wait for this one: the pass is not the last.
			r.PassDeferred++
		}
		planner.apply(moves[:1])
		if rate > 0 {
			b.bucket.charge(h.now(), m.Bytes)
		}
		handOut = append(handOut, &pb.PendingMove{SegmentId: m.Segment, Shard: m.Shard, FromNode: m.From, ToNode: m.To, Bytes: m.Bytes, HandedUnixNano: h.now().UnixNano()})
		pendingSeg[string(seg.GetId())] = true
	}
	r.Pending = append(r.Pending, handOut...)
	r.PassMoves += int64(len(handOut))
	if len(handOut) > 0 {
		changed = true
	}
	if !bytes.Equal(cursor, r.GetCursor()) {
		progressed = true
	}
	r.Cursor = cursor
	if complete && next == nil {
		// The pass is over.
		progressed = true
		if r.GetPassMoves() == 0 && r.GetPassDeferred() == 0 && len(r.GetPending()) == 0 {
			r.Running, r.Outcome = false, "done"
			changed = true
			h.log.Info("rebalance done", "moves", r.GetMovesDone(), "bytes", r.GetBytesMoved(), "passes", r.GetPasses()+1)
		}
		r.Passes++
		r.Cursor, r.PassMoves, r.PassDeferred = nil, 0, 0
	}
	if err := commit(); err != nil {
		return err
	}
	// Committed: hand the moves out. One that cannot go now is dropped
	// from pending next round.
	var errs []error
	for _, p := range handOut {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		b.handedOut(key)
		if _, err := h.addMoveNonce(p.GetSegmentId(), p.GetShard(), p.GetToNode(), moveNonce(p)); err != nil {
			b.forget(key)
			b.drop[key] = ""
			if !errors.Is(err, errTargetBusy) && !isPrecondition(err) {
				b.drop[key] = err.Error()
				errs = append(errs, fmt.Errorf("move segment %x shard %d %s -> %s: %w", p.GetSegmentId(), p.GetShard(), p.GetFromNode(), p.GetToNode(), err))
			}
			continue
		}
		b.moves.Add(1)
	}
	return errors.Join(errs...)
}

// newMoveBucket is the balancer's --rate bucket for a new run or term: it
// starts empty, not full, so that a new leader does not grant the run a
// fresh second of budget on top of what its predecessor spent.
func newMoveBucket(rate int64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: float64(rate), last: now}
}

// targetBusy reports whether node has no room for another move, counting
// those this round is about to hand out.
func (s *Server) targetBusy(h *healer, node string, handOut []*pb.PendingMove) bool {
	on, _ := h.tasks.load(node)
	for _, p := range handOut {
		if p.GetToNode() == node {
			on++
		}
	}
	return on >= h.cfg.RepairPerNode
}

// readBalanceUsage reads every node's bytes from the node index, and
// which of the pending moves those bytes already count (b.counted). A
// pending move applied to bytes that already show it is counted twice: the
// balancer then plans on a node one chunk emptier and another one chunk
// fuller than they are, until the next read — long enough for a pass to
// plan nothing and end the run with imbalance left.
func (s *Server) readBalanceUsage(h *healer, pending []*pb.PendingMove) error {
	usage, counted, err := s.state.balanceUsage(pending)
	if err != nil {
		return fmt.Errorf("read node usage for the balancer: %w", err)
	}
	h.bal.usage, h.bal.counted, h.bal.usageAt = usage, counted, h.now()
	return nil
}

// balanceUsage reads, in one snapshot, the bytes the node index counts on
// each node of the cluster map and which moves of pending (by pendingKey)
// the placements show committed. One snapshot, so that a move committing
// meanwhile is seen on both of its nodes and in its placement, or nowhere.
func (s *State) balanceUsage(pending []*pb.PendingMove) (usage map[string]int64, committed map[string]bool, err error) {
	usage, committed = map[string]int64{}, map[string]bool{}
	err = s.view(func(txn *badger.Txn) error {
		cm, err := readClusterMap(txn, func(p []byte, fn func(k, v []byte) error) error { return scanTxn(txn, p, fn) })
		if err != nil {
			return err
		}
		for _, n := range cm.GetNodes() {
			if _, usage[n.GetId()], err = nodeUsageTxn(txn, n.GetId()); err != nil {
				return err
			}
		}
		for _, p := range pending {
			ref, found, err := readSegRefTxn(txn, p.GetSegmentId())
			if err != nil {
				return fmt.Errorf("segment %x of a pending move: %w", p.GetSegmentId(), err)
			}
			if found && outcomeOn(ref.seg.GetNodes(), p) == pendingCommitted {
				committed[pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return usage, committed, nil
}
