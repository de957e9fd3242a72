package metadata

import (
	"cmp"
	"slices"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/placement"
)

// The rebalance planner: a pure function of the nodes (with the bytes the
// node index says they hold) and the segments. It moves chunks from nodes
// above the mean utilisation to nodes below it until every UP node is
// within threshold of the mean (or no allowed move is left), never to a
// node that already holds a shard of the segment and never breaking the
// failure-domain rule (placement.CheckSpread; a placement that already
// breaks it may move only if its worst zone and rack get no fuller). A
// segment may have several moves (of different shards): they apply in
// order, each checked on the placement the earlier ones leave, and are
// run one at a time, as submitMove allows.

// balanceNode is one node as the planner sees it.
type balanceNode struct {
	placement.Node
	Used int64 // bytes of chunks the node index counts on it
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
	t := threshold / 100
	pnodes := make([]placement.Node, len(nodes))
	used := map[string]int64{}
	capacity := map[string]int64{}
	var sumUsed, sumCap int64
	var up []string
	for i, n := range nodes {
		pnodes[i] = n.Node
		if n.State != placement.StateUp || n.Capacity <= 0 {
			continue
		}
		up = append(up, n.ID)
		used[n.ID] = n.Used
		capacity[n.ID] = n.Capacity
		sumUsed += n.Used
		sumCap += n.Capacity
	}
	after = used
	if len(up) < 2 || sumCap == 0 {
		return nil, after
	}
	mean := utilization(sumUsed, sumCap)
	u := func(id string, delta int64) float64 { return utilization(used[id]+delta, capacity[id]) }
	// useful: a move of b bytes from s to d brings s (above the mean) or d
	// (below it) towards the band without pushing either out of it.
	useful := func(s, d string, b int64) bool {
		us, ud := u(s, 0), u(d, 0)
		if us <= mean || ud >= mean || (us <= mean+t && ud >= mean-t) {
			return false
		}
		return u(d, b) <= mean+t && u(s, -b) >= mean-t && u(d, b) < us
	}
	spreadOK := func(old, next []string, m int) bool {
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
	for _, seg := range segs {
		b := shardBytes(seg)
		cur := slices.Clone(seg.GetNodes())
		// Targets by utilisation, emptiest first, each time afresh.
		targets := slices.Clone(up)
		slices.SortFunc(targets, func(a, c string) int {
			return cmp.Or(cmp.Compare(u(a, 0), u(c, 0)), cmp.Compare(a, c))
		})
		for sh, from := range cur {
			if _, ok := capacity[from]; !ok || u(from, 0) <= mean {
				continue
			}
			for _, to := range targets {
				if slices.Contains(cur, to) || !useful(from, to, b) {
					continue
				}
				next := slices.Clone(cur)
				next[sh] = to
				if !spreadOK(cur, next, int(seg.GetScheme().GetM())) {
					continue
				}
				moves = append(moves, plannedMove{Segment: seg.GetId(), Shard: uint32(sh), From: from, To: to, Bytes: b})
				used[from] -= b
				used[to] += b
				cur = next
				break
			}
		}
	}
	return moves, after
}
