package placement

import (
	"errors"
	"fmt"
)

// ErrNotEnoughNodes is returned when too few writable nodes exist to place
// what was asked for.
var ErrNotEnoughNodes = errors.New("not enough writable nodes")

// candidate is a writable node, with its failure domains numbered and its
// straw2 score for the segment being placed.
type candidate struct {
	id    string
	score float64
	zone  int
	rack  int
}

// domains numbers zones and racks (a rack is named by its zone and its
// rack name) and counts how many nodes of some set each holds.
type domains struct {
	zoneOf   map[string]int
	rackOf   map[[2]string]int
	zoneSize []int
	rackSize []int
	rackZone []int // rack index → zone index
}

func newDomains() *domains {
	return &domains{zoneOf: map[string]int{}, rackOf: map[[2]string]int{}}
}

// add counts one node in its zone and rack and returns their indices.
func (d *domains) add(n *Node) (zone, rack int) {
	zone, ok := d.zoneOf[n.Zone]
	if !ok {
		zone = len(d.zoneSize)
		d.zoneOf[n.Zone] = zone
		d.zoneSize = append(d.zoneSize, 0)
	}
	key := [2]string{n.Zone, n.Rack}
	rack, ok = d.rackOf[key]
	if !ok {
		rack = len(d.rackSize)
		d.rackOf[key] = rack
		d.rackSize = append(d.rackSize, 0)
		d.rackZone = append(d.rackZone, zone)
	}
	d.zoneSize[zone]++
	d.rackSize[rack]++
	return zone, rack
}

// limits returns the smallest per-zone maximum with which t shards fit on
// the counted nodes, and within that, the smallest per-rack maximum. With
// at most zoneMax shards per zone and rackMax per rack, any choice of fewer
// than t shards can be extended to t (the caps form a laminar matroid), so
// picking greedily under them never gets stuck. t must not exceed the
// number of counted nodes.
func (d *domains) limits(t int) (zoneMax, rackMax int) {
	zoneMax = t
	for l := 1; l < t; l++ {
		sum := 0
		for _, s := range d.zoneSize {
			sum += min(s, l)
		}
		if sum >= t {
			zoneMax = l
			break
		}
	}
	rackMax = zoneMax
	perZone := make([]int, len(d.zoneSize))
	for l := 1; l < zoneMax; l++ {
		clear(perZone)
		for r, s := range d.rackSize {
			perZone[d.rackZone[r]] += min(s, l)
		}
		sum := 0
		for _, s := range perZone {
			sum += min(s, zoneMax)
		}
		if sum >= t {
			rackMax = l
			break
		}
	}
	return zoneMax, rackMax
}

// index checks the node list (ids non-empty and distinct) and returns the
// nodes by id.
func index(nodes []Node) (map[string]*Node, error) {
	byID := make(map[string]*Node, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.ID == "" {
			return nil, fmt.Errorf("node %d has an empty id", i)
		}
		if _, dup := byID[n.ID]; dup {
			return nil, fmt.Errorf("node id %q appears twice", n.ID)
		}
		byID[n.ID] = n
	}
	return byID, nil
}

// better reports whether a candidate with score s and id beats the best so
// far; ties (vanishingly rare) go to the smaller id so the result never
// depends on the order of the node list.
func better(s float64, id string, bestScore float64, bestID string) bool {
	return s > bestScore || s == bestScore && id < bestID
}

// Place chooses the nodes for a new segment's n = k+m shards: result[i] is
// the node for shard i, in descending order of straw2 score. segment is the
// 16-byte segment id.
//
// Only writable nodes (StateUp, not full) are chosen, each at most once.
// The result depends only on the segment id, n, the options and the set of
// nodes with their zones, racks, states and free space — not on the order
// of nodes. Nodes win in proportion to their free space, and the shards
// are spread as evenly over zones as the writable nodes allow, then as
// evenly over racks as that allows (see the package doc).
//
// When fewer than n nodes are writable, Place returns an error wrapping
// ErrNotEnoughNodes, unless opts.Min is set and at least opts.Min nodes are
// writable: then it places a degraded segment on all w < n writable nodes
// and returns w ids, for shards 0..w-1. Shards w..n-1 (parity shards, when
// Min ≥ k) have no node: the writer records them as missing so that repair
// places them later with Replace.
func Place(segment []byte, nodes []Node, n int, opts Options) ([]string, error) {
	if n <= 0 {
		return nil, fmt.Errorf("place %d shards: shard count must be positive", n)
	}
	if opts.Min < 0 || opts.Min > n {
		return nil, fmt.Errorf("place %d shards: minimum %d out of range", n, opts.Min)
	}
	if _, err := index(nodes); err != nil {
		return nil, fmt.Errorf("place %d shards: %w", n, err)
	}
	reserve := opts.reserve()
	seg := hashBytes(segment)
	doms := newDomains()
	var cands []candidate
	for i := range nodes {
		nd := &nodes[i]
		w := nd.weight(reserve)
		if w <= 0 {
			continue
		}
		z, r := doms.add(nd)
		cands = append(cands, candidate{id: nd.ID, score: draw(seg, hashBytes(nd.ID)) / w, zone: z, rack: r})
	}
	t := n
	if len(cands) < n {
		need := n
		if opts.Min > 0 {
			need = opts.Min
		}
		if len(cands) < need {
			return nil, fmt.Errorf("place %d shards (at least %d): %d writable of %d nodes: %w",
				n, need, len(cands), len(nodes), ErrNotEnoughNodes)
		}
		t = len(cands)
	}

	// Greedy in descending score order under the caps: this is the
	// highest-scoring basis of a (truncated laminar) matroid, so adding or
	// removing one node swaps at most one member of the set, as long as
	// the caps stay the same.
	zoneMax, rackMax := doms.limits(t)
	inZone := make([]int, len(doms.zoneSize))
	inRack := make([]int, len(doms.rackSize))
	taken := make([]bool, len(cands))
	out := make([]string, 0, t)
	for shard := range t {
		best := -1
		for i := range cands {
			c := &cands[i]
			if taken[i] || inZone[c.zone] >= zoneMax || inRack[c.rack] >= rackMax {
				continue
			}
			if best < 0 || better(c.score, c.id, cands[best].score, cands[best].id) {
				best = i
			}
		}
		if best < 0 {
			// A bug: domains.limits guarantees a candidate.
			return nil, fmt.Errorf("place shard %d of %d: no node within %d per zone and %d per rack",
				shard, t, zoneMax, rackMax)
		}
		c := &cands[best]
		taken[best] = true
		inZone[c.zone]++
		inRack[c.rack]++
		out = append(out, c.id)
	}
	return out, nil
}

// Replace chooses a new node for shard `shard` of a segment whose shards
// are on current (current[i] holds shard i; "" marks a shard with no node).
// current[shard] is the node being replaced — down, draining, or one the
// balancer wants to empty — and is never chosen again; neither is any other
// node in current.
//
// The target is a writable node that leaves the placement with the fewest
// shards in its worst zone, then in its worst rack, and among those the
// best straw2 score for this segment (as in Place). So when the replaced
// node's zone still has a writable node outside the placement, no zone ends
// up worse than before; when its rack has one, no rack does either. Nodes
// in current that are not in nodes count toward no zone or rack.
//
// To replace several shards, call Replace once per shard and store each
// answer in current before the next call.
func Replace(segment []byte, nodes []Node, current []string, shard int, opts Options) (string, error) {
	if shard < 0 || shard >= len(current) {
		return "", fmt.Errorf("replace shard %d of %d: shard out of range", shard, len(current))
	}
	byID, err := index(nodes)
	if err != nil {
		return "", fmt.Errorf("replace shard %d: %w", shard, err)
	}
	inZone := map[string]int{}
	inRack := map[[2]string]int{}
	zoneMax, rackMax := 0, 0 // over the other shards
	used := make(map[string]bool, len(current))
	for i, id := range current {
		used[id] = true
		if nd, ok := byID[id]; ok && i != shard {
			inZone[nd.Zone]++
			zoneMax = max(zoneMax, inZone[nd.Zone])
			k := [2]string{nd.Zone, nd.Rack}
			inRack[k]++
			rackMax = max(rackMax, inRack[k])
		}
	}
	reserve := opts.reserve()
	seg := hashBytes(segment)
	var (
		best         string
		bestZ, bestR int // the placement's worst zone and rack with best
		bestScore    float64
	)
	for i := range nodes {
		nd := &nodes[i]
		w := nd.weight(reserve)
		if w <= 0 || used[nd.ID] {
			continue
		}
		z := max(zoneMax, inZone[nd.Zone]+1)
		r := max(rackMax, inRack[[2]string{nd.Zone, nd.Rack}]+1)
		if best != "" && (z > bestZ || z == bestZ && r > bestR) {
			continue
		}
		s := draw(seg, hashBytes(nd.ID)) / w
		if best != "" && z == bestZ && r == bestR && !better(s, nd.ID, bestScore, best) {
			continue
		}
		best, bestZ, bestR, bestScore = nd.ID, z, r, s
	}
	if best == "" {
		return "", fmt.Errorf("replace shard %d of %d: no writable node outside the placement among %d nodes: %w",
			shard, len(current), len(nodes), ErrNotEnoughNodes)
	}
	return best, nil
}
