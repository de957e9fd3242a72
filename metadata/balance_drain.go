package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
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
