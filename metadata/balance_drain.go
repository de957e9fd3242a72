package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
)

// Drain and decommission (`cairn node drain | undrain | decommission`).
//
// A DRAINING node receives no new chunks (placement skips it) and still
// counts as holding its chunks (repair leaves them alone); the leader's
// drain loop moves them away one shard at a time with addMove, choosing
// each target with placement.Replace, within the repair budgets. A move's
// result commits CommitPlacement{reason "rebalance"}, which queues the old
// chunk for deletion. Once the node counts say the node holds no chunk,
// Decommission commits it DECOMMISSIONED. Undrain (back to UP) stops
// further moves; moves already handed out finish and commit.
//
// A drain move that fails (its task reports an error or expires, or it
// cannot be handed out) backs off as the balancer's do, with the same
// moveBackoff (balance_backoff.go), kept per draining node in the leader's
// memory: not handed out again before retryDelay(RepairBackoff, failures)
// (the drain picks another target meanwhile if one keeps the failure
// domains), given up after balanceMoveAttempts failures, and a target to
// which balanceTargetFailures moves in a row failed takes none until its
// own backoff has passed. A given-up move leaves its chunk on the node, so
// the drain is not done: Decommission lists it as a blocker with the
// blob node's reason, and asking to drain the node again (or a new leader)
// tries it again.

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
		// Nothing to change; a drain asked again tries the moves it gave up.
		if req.GetDrain() && !req.GetDryRun() {
			s.forgetDrainFailures(n.GetId())
		}
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
		if h, err := s.currentHealer(); err == nil {
			// Only the leader knows which drain moves failed (a member
			// that does not lead answers without them).
			skipped := h.bal.drain.skipped(id, h.now())
			resp.Skipped, resp.SkippedCount = skippedToPB(skipped, statusSkippedMax)
			if b := givenUpBlocker(id, skipped); b != "" {
				resp.Blockers = append(resp.Blockers, b)
			}
		}
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

// givenUpBlocker says which of the drain's skipped moves off node were
// given up ("" when none): their chunks stay until the drain is asked
// again.
func givenUpBlocker(node string, skipped []SkippedMove) string {
	var given []SkippedMove
	for _, m := range skipped {
		if m.Segment != nil && m.RetryAt.IsZero() {
			given = append(given, m)
		}
	}
	if len(given) == 0 {
		return ""
	}
	f := given[0]
	return fmt.Sprintf("the drain gave up %d moves off it after %d failures each (first: segment %x shard %d to %s: %s); `cairn node drain %s` tries them again",
		len(given), balanceMoveAttempts, f.Segment, f.Shard, f.To, f.Reason, node)
}

// placementBlockers tries to place elsewhere the first few chunks still on
// node n, as the drain would, and says why those that cannot move cannot.
func (s *Server) placementBlockers(n *pb.Node) ([]string, error) {
	cm, err := s.state.ClusterMap()
	if err != nil {
		return nil, err
	}
	v := newClusterView(cm)
	// A page may come back short before the end (SegmentsOnNodes).
	var infos []SegmentInfo
	for after := []byte(nil); len(infos) < decommissionProbe; {
		page, next, err := s.state.SegmentsOnNode(n.GetId(), after, decommissionProbe-len(infos))
		if err != nil {
			return nil, err
		}
		infos = append(infos, page...)
		if next == nil {
			break
		}
		after = next
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
	// A node undrained (or gone) ends its drain: a later drain of it
	// starts with no failures remembered.
	draining := map[string]bool{}
	for _, n := range cm.GetNodes() {
		draining[n.GetId()] = n.GetState() == pb.NodeState_NODE_STATE_DRAINING
	}
	h.bal.drain.keepOnly(draining)
	var errs []error
	for _, n := range cm.GetNodes() {
		id := n.GetId()
		if !draining[id] {
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
			if err := s.drainSegment(v, h, seg, id); err != nil {
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
func (s *Server) drainSegment(v *clusterView, h *healer, seg *pb.Segment, node string) error {
	for sh, id := range seg.GetNodes() {
		if id != node {
			continue
		}
		now := h.now()
		unusable := func(shard uint32, n string) bool {
			// A move that failed waits out its backoff, or was given up:
			// another target, if one keeps the failure domains, or none.
			if skip, _ := h.bal.drain.skipMove(node, seg.GetId(), shard, n, now); skip {
				return true
			}
			pending, err := h.st.ChunkDeletePending(seg.GetId(), int(shard), n)
			return err != nil || pending
		}
		target, err := v.pickTarget(seg.GetId(), seg.GetNodes(), uint32(sh), h.nodeBusy, unusable)
		if errors.Is(err, errTargetBusy) {
			return nil // a later round
		}
		if err != nil {
			return fmt.Errorf("segment %x shard %d off %s: %w", seg.GetId(), sh, node, err)
		}
		if cur, err := s.state.Node(node); err != nil || cur.GetState() != pb.NodeState_NODE_STATE_DRAINING {
			return err // undrained (or gone) meanwhile
		}
		// Recorded before the task exists, so that no result can come
		// before the drain knows the move is its own.
		h.bal.drain.handedOut(seg.GetId(), uint32(sh), node, target)
		if _, err := h.addMove(seg.GetId(), uint32(sh), target); err != nil {
			h.bal.drain.notHandedOut(seg.GetId(), uint32(sh), target)
			if errors.Is(err, errTargetBusy) || isPrecondition(err) {
				return nil
			}
			h.bal.drain.failedToHandOut(h, seg.GetId(), uint32(sh), node, target, err.Error())
			return fmt.Errorf("move segment %x shard %d off %s: %w", seg.GetId(), sh, node, err)
		}
		h.log.Debug("drain move planned", "segment", fmt.Sprintf("%x", seg.GetId()), "shard", sh, "from", node, "to", target)
		return nil // one move per segment at a time
	}
	return nil
}

// drainBackoff is the drain's memory of its moves that failed, for the
// leader's term: a moveBackoff per draining node, and the drain's moves
// handed out whose outcome is not known yet. Task results update it, so
// it has its own lock.
type drainBackoff struct {
	mu sync.Mutex
	// nodes: per draining node, its moves that failed.
	nodes map[string]*moveBackoff
	// moves: the drain's moves handed out (by pendingKey), with the node
	// they drain.
	moves map[string]string
}

// backoffLocked is node's moveBackoff, made when missing.
func (d *drainBackoff) backoffLocked(node string) *moveBackoff {
	if d.nodes == nil {
		d.nodes = map[string]*moveBackoff{}
	}
	m := d.nodes[node]
	if m == nil {
		m = &moveBackoff{}
		d.nodes[node] = m
	}
	return m
}

// handedOut records a move of shard of segment off node to to.
func (d *drainBackoff) handedOut(segment []byte, shard uint32, node, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.moves == nil {
		d.moves = map[string]string{}
	}
	d.moves[pendingKey(segment, shard, to)] = node
}

// notHandedOut undoes handedOut for a move addMove refused.
func (d *drainBackoff) notHandedOut(segment []byte, shard uint32, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.moves, pendingKey(segment, shard, to))
}

// failedToHandOut records a move off node that addMove refused for a
// reason that will not pass by itself (not a busy target, not a placement
// that changed).
func (d *drainBackoff) failedToHandOut(h *healer, segment []byte, shard uint32, node, to, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backoffLocked(node).recordFailure(h, "drain", segment, shard, node, to, reason)
}

// finish records the outcome of a move task to to, when it is one of the
// drain's: committed when why is "", else failed for why.
func (d *drainBackoff) finish(h *healer, segment []byte, shard uint32, to, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := pendingKey(segment, shard, to)
	node, ok := d.moves[key]
	if !ok {
		return
	}
	delete(d.moves, key)
	m := d.backoffLocked(node)
	if why != "" {
		m.recordFailure(h, "drain", segment, shard, node, to, why)
		return
	}
	m.recordSuccess(segment, shard, to)
	// The chunk has left the node: the moves of it to other targets that
	// failed before are moot.
	for k, f := range m.failed {
		if f.shard == shard && bytes.Equal(f.segment, segment) {
			delete(m.failed, k)
		}
	}
}

// skipMove reports whether the drain of node must not move shard of
// segment to to now, and whether that is a wait rather than a move given
// up.
func (d *drainBackoff) skipMove(node string, segment []byte, shard uint32, to string, now time.Time) (skip, waiting bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.nodes[node]
	if m == nil {
		return false, false
	}
	return m.skipMove(segment, shard, to, now)
}

// skipped lists the moves off node that the drain skips now.
func (d *drainBackoff) skipped(node string, now time.Time) []SkippedMove {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.nodes[node]
	if m == nil {
		return nil
	}
	return m.skipped(now)
}

// forget drops what the drain of node remembers of failed moves.
func (d *drainBackoff) forget(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, node)
}

// keepOnly forgets the failed moves of nodes no longer draining.
func (d *drainBackoff) keepOnly(draining map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for node := range d.nodes {
		if !draining[node] {
			delete(d.nodes, node)
		}
	}
}

// forgetDrainFailures makes the leader's drain of node try its failed and
// given-up moves again (a no-op on a member that does not lead).
func (s *Server) forgetDrainFailures(node string) {
	if h, err := s.currentHealer(); err == nil {
		h.bal.drain.forget(node)
	}
}
