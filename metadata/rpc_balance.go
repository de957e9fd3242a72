package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
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
	resp, err := a.s.setNodeDrain(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) Decommission(ctx context.Context, req *pb.DecommissionRequest) (*pb.DecommissionResponse, error) {
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
			if _, err := v.pickTarget(seg.GetId(), seg.GetNodes(), uint32(sh), never, func(uint32, string) bool { return false }); err != nil {
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

// The balancer (`cairn rebalance start | status | stop`). Its replicated
// state is SetRebalance (running, threshold, rate, the totals planned at
// the start); its progress is derived, not counted: what the plan still
// holds now, against the totals at the start. So a leader change neither
// loses nor repeats work: the new leader's balancer plans afresh from the
// state, where every committed move already is. Stop commits running =
// false; the leader's loop hands out no move after it sees that (moves
// already handed out finish and commit).

func (a *api) RebalanceStart(ctx context.Context, req *pb.RebalanceStartRequest) (*pb.RebalanceStatusResponse, error) {
	resp, err := a.s.rebalanceStart(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) RebalanceStatus(ctx context.Context, _ *pb.RebalanceStatusRequest) (*pb.RebalanceStatusResponse, error) {
	resp, err := a.s.rebalanceStatus(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func (a *api) RebalanceStop(ctx context.Context, _ *pb.RebalanceStopRequest) (*pb.RebalanceStatusResponse, error) {
	resp, err := a.s.rebalanceStop(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
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
		resp := rebalanceStatusOf(r, r.BytesTotal, r.MovesTotal)
		resp.Running = false // nothing was started
		return resp, nil
	}
	if _, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
		return nil, err
	}
	return s.rebalanceStatus(ctx)
}

func (s *Server) rebalanceStop(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
	r, err := s.state.Rebalance()
	if err != nil {
		return nil, err
	}
	if r != nil && r.GetRunning() {
		r = proto.CloneOf(r)
		r.Running, r.Outcome = false, "stopped"
		if _, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
			return nil, err
		}
	}
	return s.rebalanceStatus(ctx)
}

func (s *Server) rebalanceStatus(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
	r, err := s.state.Rebalance()
	if err != nil {
		return nil, err
	}
	if r == nil {
		return &pb.RebalanceStatusResponse{}, nil
	}
	if !r.GetRunning() {
		if r.GetOutcome() == "done" {
			return rebalanceStatusOf(r, 0, 0), nil
		}
		// Stopped: what it would still move now.
		moves, _, _, err := s.planFromState(ctx, r.GetThreshold())
		if err != nil {
			return nil, err
		}
		left, n := movesBytes(moves)
		return rebalanceStatusOf(r, left, n), nil
	}
	moves, _, _, err := s.planFromState(ctx, r.GetThreshold())
	if err != nil {
		return nil, err
	}
	left, n := movesBytes(moves)
	resp := rebalanceStatusOf(r, left, n)
	if el := time.Since(time.Unix(0, r.GetStartedUnixNano())).Seconds(); el > 0 && resp.BytesMoved > 0 {
		resp.BytesPerSecond = float64(resp.BytesMoved) / el
		resp.EtaSeconds = float64(left) / resp.BytesPerSecond
	}
	return resp, nil
}

func movesBytes(moves []plannedMove) (bytes, n int64) {
	for _, m := range moves {
		bytes += m.Bytes
	}
	return bytes, int64(len(moves))
}

// rebalanceStatusOf reports r with leftBytes and leftMoves still to move.
func rebalanceStatusOf(r *pb.SetRebalance, leftBytes, leftMoves int64) *pb.RebalanceStatusResponse {
	return &pb.RebalanceStatusResponse{
		Running: r.GetRunning(), Threshold: r.GetThreshold(), RateBytesPerSecond: r.GetRateBytesPerSecond(),
		BytesTotal: r.GetBytesTotal(), BytesMoved: max(0, r.GetBytesTotal()-leftBytes),
		MovesTotal: r.GetMovesTotal(), MovesDone: max(0, r.GetMovesTotal()-leftMoves),
		StartedUnixNano: r.GetStartedUnixNano(), Outcome: r.GetOutcome(),
	}
}

// balanceLoop runs the balancer while the replicated state says it runs:
// each round it plans afresh and hands out moves within the repair budgets
// and the balancer's own rate; an empty plan commits it done.
func (s *Server) balanceLoop(ctx context.Context, h *healer) {
	tick := time.NewTicker(dispatchTick(h.cfg))
	defer tick.Stop()
	var bucket *tokenBucket
	var bucketRate int64
	for {
		if err := s.balanceRound(ctx, h, &bucket, &bucketRate); err != nil && ctx.Err() == nil {
			h.log.Warn("rebalance", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) balanceRound(ctx context.Context, h *healer, bucket **tokenBucket, bucketRate *int64) error {
	r, err := s.state.Rebalance()
	if err != nil || r == nil || !r.GetRunning() {
		return err
	}
	moves, _, _, err := s.planFromState(ctx, r.GetThreshold())
	if err != nil {
		return err
	}
	if len(moves) == 0 {
		done := proto.CloneOf(r)
		done.Running, done.Outcome = false, "done"
		_, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: done}})
		if err == nil {
			h.log.Info("rebalance done", "moves", r.GetMovesTotal(), "bytes", r.GetBytesTotal())
		}
		return err
	}
	rate := r.GetRateBytesPerSecond()
	if *bucket == nil || *bucketRate != rate {
		*bucket, *bucketRate = &tokenBucket{rate: float64(rate)}, rate
	}
	seen := map[string]bool{}
	for _, m := range moves {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if seen[string(m.Segment)] || h.tasks.segmentBusy(m.Segment) {
			continue // one move per segment at a time
		}
		seen[string(m.Segment)] = true
		if rate > 0 && !(*bucket).allow(h.now()) {
			return nil
		}
		if _, total := h.tasks.load(""); total >= h.cfg.RepairMaxInflight {
			return nil
		}
		if cur, err := s.state.Rebalance(); err != nil || !cur.GetRunning() || cur.GetStartedUnixNano() != r.GetStartedUnixNano() {
			return err // stopped (or restarted) meanwhile
		}
		if _, err := h.addMove(m.Segment, m.Shard, m.To); err != nil {
			if errors.Is(err, errTargetBusy) || isPrecondition(err) {
				continue
			}
			return fmt.Errorf("move segment %x shard %d %s -> %s: %w", m.Segment, m.Shard, m.From, m.To, err)
		}
		if rate > 0 {
			(*bucket).charge(h.now(), m.Bytes)
		}
	}
	return nil
}
