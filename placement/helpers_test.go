package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

const gib = 1 << 30

// cluster builds zones×racks×perRack identical up nodes of 100 GiB, 10 used.
func cluster(zones, racks, perRack int) []Node {
	var nodes []Node
	for z := range zones {
		for r := range racks {
			for i := range perRack {
				nodes = append(nodes, Node{
					ID:       fmt.Sprintf("n-%d-%d-%d", z, r, i),
					Zone:     fmt.Sprintf("z%d", z),
					Rack:     fmt.Sprintf("r%d", r),
					Capacity: 100 * gib,
					Used:     10 * gib,
					State:    StateUp,
				})
			}
		}
	}
	return nodes
}

// randomCluster builds an irregular cluster: uneven zones and racks, random
// capacities and usage, some nodes not up and some full.
func randomCluster(rng *rand.Rand, maxNodes int) []Node {
	zones := 1 + rng.IntN(5)
	racks := 1 + rng.IntN(3)
	count := 1 + rng.IntN(maxNodes)
	nodes := make([]Node, count)
	for i := range nodes {
		capacity := int64(1+rng.IntN(16)) * gib
		nodes[i] = Node{
			ID:       fmt.Sprintf("node-%d", i),
			Zone:     fmt.Sprintf("z%d", rng.IntN(zones)),
			Rack:     fmt.Sprintf("r%d", rng.IntN(racks)),
			Capacity: capacity,
			Used:     rng.Int64N(capacity),
			State:    StateUp,
		}
		switch rng.IntN(10) {
		case 0:
			nodes[i].State = State(rng.IntN(int(StateDecommissioned) + 1))
		case 1:
			nodes[i].Used = capacity - capacity/100 // full under the default reserve
		}
	}
	return nodes
}

func segmentID(rng *rand.Rand) []byte {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func writableIDs(nodes []Node) map[string]bool {
	w := map[string]bool{}
	for i := range nodes {
		if nodes[i].weight(DefaultReserve) > 0 {
			w[nodes[i].ID] = true
		}
	}
	return w
}

// bestSpread finds by brute force the lexicographically smallest
// (max per zone, max per rack) of any n distinct writable nodes.
func bestSpread(nodes []Node, n int) (zone, rack int) {
	var w []Node
	for _, nd := range nodes {
		if nd.weight(DefaultReserve) > 0 {
			w = append(w, nd)
		}
	}
	zone, rack = n+1, n+1
	var pick []string
	var walk func(start int)
	walk = func(start int) {
		if len(pick) == n {
			z, r, err := MaxLoss(pick, nodes)
			if err != nil {
				panic(err)
			}
			if z < zone || z == zone && r < rack {
				zone, rack = z, r
			}
			return
		}
		for i := start; i <= len(w)-(n-len(pick)); i++ {
			pick = append(pick, w[i].ID)
			walk(i + 1)
			pick = pick[:len(pick)-1]
		}
	}
	walk(0)
	return zone, rack
}

func shuffled(rng *rand.Rand, nodes []Node) []Node {
	s := slices.Clone(nodes)
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}
