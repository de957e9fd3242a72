package metadata

import (
	"cmp"
	"slices"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/placement"
)

// The rebalance planner: a pure function of the nodes (with the bytes the
// node counts say they hold) and the segments. It moves chunks from nodes
// above the mean utilisation to nodes below it until every UP node is
// within threshold of the mean (or no allowed move is left), never to a
// node that already holds a shard of the segment and never breaking the
// failure-domain rule (placement.CheckSpread; a placement that already
// breaks it may move only if its worst zone and rack get no fuller). A
// segment may have several moves (of different shards): they apply in
// order, each checked on the placement the earlier ones leave, and are
// run one at a time, as addMoveNonce allows.

// balanceNode is one node as the planner sees it.
type balanceNode struct {
	placement.Node
	Used int64 // bytes of chunks the node counts (nu/) give it
}

// plannedMove is one chunk to move.
type plannedMove struct {
	Segment  []byte
	Shard    uint32
	From, To string
	Bytes    int64
}

// utilization returns used/capacity (0 for no capacity).
func utilization(used, capacity int64) float64 {
	if capacity <= 0 {
		return 0
	}
	return float64(used) / float64(capacity)
}

// planRebalance plans moves among nodes for segs; threshold is in
// percentage points. It returns the moves and each UP node's used bytes
// after them.
func planRebalance(nodes []balanceNode, segs []*pb.Segment, threshold float64) (moves []plannedMove, after map[string]int64) {
	p := newBalancePlanner(nodes, threshold)
	for _, seg := range segs {
		ms := p.plan(seg)
		p.apply(ms)
		moves = append(moves, ms...)
	}
	return moves, p.used
}

// balancePlanner plans segment by segment against utilisation it keeps up
// to date as moves are applied: the full plan runs it over every segment,
// the balancer's rounds over one page at a time, starting from the
// utilisation the node counts show plus the moves still in flight.
type balancePlanner struct {
	t        float64 // threshold, as a fraction
	mean     float64
	pnodes   []placement.Node
	up       []string
	used     map[string]int64 // UP nodes only
	capacity map[string]int64
	// skip, when set, rules out moving shard of segment to a node (the
	// balancer's moves that failed: see balanceMoveAttempts).
	skip func(segment []byte, shard uint32, to string) bool
}

func newBalancePlanner(nodes []balanceNode, threshold float64) *balancePlanner {
	p := &balancePlanner{t: threshold / 100, used: map[string]int64{}, capacity: map[string]int64{}}
	var sumUsed, sumCap int64
	for _, n := range nodes {
		p.pnodes = append(p.pnodes, n.Node)
		if n.State != placement.StateUp || n.Capacity <= 0 {
			continue
		}
		p.up = append(p.up, n.ID)
		p.used[n.ID] = n.Used
		p.capacity[n.ID] = n.Capacity
		sumUsed += n.Used
		sumCap += n.Capacity
	}
	if len(p.up) < 2 || sumCap == 0 {
		p.up = nil // nothing to balance between
		return p
	}
	p.mean = utilization(sumUsed, sumCap)
	return p
}

func (p *balancePlanner) u(id string, delta int64) float64 {
	return utilization(p.used[id]+delta, p.capacity[id])
}

// useful: a move of b bytes from s to d brings s (above the mean) or d
// (below it) towards the band without pushing either out of it.
func (p *balancePlanner) useful(s, d string, b int64) bool {
	us, ud := p.u(s, 0), p.u(d, 0)
	if us <= p.mean || ud >= p.mean || (us <= p.mean+p.t && ud >= p.mean-p.t) {
		return false
	}
	return p.u(d, b) <= p.mean+p.t && p.u(s, -b) >= p.mean-p.t && p.u(d, b) < us
}

func (p *balancePlanner) spreadOK(old, next []string, m int) bool {
	return spreadKept(old, next, p.pnodes, m)
}

// spreadKept reports whether changing a placement from old to next keeps
// the failure-domain rule: next satisfies it, or old did not either and
// next leaves the worst zone and rack no fuller.
func spreadKept(old, next []string, pnodes []placement.Node, m int) bool {
	if placement.CheckSpread(next, pnodes, m, placement.Options{}) == nil {
		return true
	}
	if placement.CheckSpread(old, pnodes, m, placement.Options{}) == nil {
		return false
	}
	oz, or, err1 := placement.MaxLoss(old, pnodes)
	nz, nr, err2 := placement.MaxLoss(next, pnodes)
	return err1 == nil && err2 == nil && (nz < oz || nz == oz && nr <= or)
}

// plan returns the moves seg should make (in order, each on the placement
// the earlier ones leave) without applying them.
func (p *balancePlanner) plan(seg *pb.Segment) []plannedMove {
	if len(p.up) == 0 {
		return nil
	}
	b := balanceBytes(seg)
	cur := slices.Clone(seg.GetNodes())
	var moves []plannedMove
	// Each move's effect on the utilisation, so that later shards of the
	// segment are planned on it; undone before returning.
	delta := map[string]int64{}
	defer func() {
		for id, d := range delta {
			p.used[id] -= d
		}
	}()
	// Targets by utilisation, emptiest first, each time afresh.
	targets := slices.Clone(p.up)
	slices.SortFunc(targets, func(a, c string) int {
		return cmp.Or(cmp.Compare(p.u(a, 0), p.u(c, 0)), cmp.Compare(a, c))
	})
	for sh, from := range cur {
		if _, ok := p.capacity[from]; !ok || p.u(from, 0) <= p.mean {
			continue
		}
		for _, to := range targets {
			if slices.Contains(cur, to) || !p.useful(from, to, b) || p.skip != nil && p.skip(seg.GetId(), uint32(sh), to) {
				continue
			}
			next := slices.Clone(cur)
			next[sh] = to
			if !p.spreadOK(cur, next, int(seg.GetScheme().GetM())) {
				continue
			}
			moves = append(moves, plannedMove{Segment: seg.GetId(), Shard: uint32(sh), From: from, To: to, Bytes: b})
			p.used[from] -= b
			p.used[to] += b
			delta[from] -= b
			delta[to] += b
			cur = next
			break
		}
	}
	return moves
}

// balanceBytes is what moving one chunk of seg changes on its nodes, in
// the node counts' measure (chunk files, framing and padding included), so
// the planner's utilisation follows what the index will show.
func balanceBytes(seg *pb.Segment) int64 {
	if b := chunkBytes(seg); b > 0 {
		return b
	}
	return shardBytes(seg)
}

// apply records moves in the utilisation.
func (p *balancePlanner) apply(moves []plannedMove) {
	for _, m := range moves {
		if _, ok := p.capacity[m.From]; ok {
			p.used[m.From] -= m.Bytes
		}
		if _, ok := p.capacity[m.To]; ok {
			p.used[m.To] += m.Bytes
		}
	}
}
