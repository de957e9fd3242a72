package metadata

import (
	"context"
	"fmt"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
	"google.golang.org/protobuf/proto"
)

// The balancer's RPCs (plan, start, status, stop). The balancer itself,
// and how it works, is in balance_round.go, its backoff of failing moves in
// balance_backoff.go, the planner in balance.go; drain and decommission in
// balance_drain.go.

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
		resp.Skipped, resp.SkippedCount = skippedToPB(h.bal.skipped(h.now()), statusSkippedMax)
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
