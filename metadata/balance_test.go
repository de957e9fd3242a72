package metadata

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/placement"
)

// balanceFixture places n 4+2 segments on the first `placed` of nodes and
// sets every node's used bytes from them.
func balanceFixture(t *testing.T, nodes []balanceNode, placed, n int) []*pb.Segment {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, uint64(n)))
	pn := make([]placement.Node, placed)
	for i := range pn {
		pn[i] = nodes[i].Node
		pn[i].State = placement.StateUp
	}
	var segs []*pb.Segment
	for range n {
		id := make([]byte, 16)
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		got, err := placement.Place(id, pn, 6, placement.Options{})
		if err != nil {
			t.Fatal(err)
		}
		seg := &pb.Segment{Id: id, Scheme: &pb.Scheme{K: 4, M: 2}, Size: 4 << 20, Nodes: got}
		segs = append(segs, seg)
		for _, x := range got {
			for i := range nodes {
				if nodes[i].ID == x {
					nodes[i].Used += shardBytes(seg)
				}
			}
		}
	}
	return segs
}

func TestPlanRebalance(t *testing.T) {
	const chunk = 1 << 20 // shardBytes of a 4 MiB 4+2 segment
	mk := func(zones, perZone int, extra ...balanceNode) []balanceNode {
		var out []balanceNode
		for z := range zones {
			for r := range perZone {
				out = append(out, balanceNode{Node: placement.Node{ID: fmt.Sprintf("n%d%d", z, r), Zone: fmt.Sprintf("z%d", z), Rack: fmt.Sprintf("r%d", r), Capacity: 400 * chunk, State: placement.StateUp}})
			}
		}
		return append(out, extra...)
	}
	newNode := func(id, zone string, st placement.State) balanceNode {
		return balanceNode{Node: placement.Node{ID: id, Zone: zone, Rack: "r9", Capacity: 400 * chunk, State: st}}
	}
	tests := []struct {
		name      string
		nodes     []balanceNode
		placed    int
		segs      int
		threshold float64
		wantMoves bool
		converge  bool // every UP node ends within threshold of the mean
	}{
		{name: "balanced", nodes: mk(3, 2), placed: 6, segs: 200, threshold: 5},
		{name: "new node in a new zone", nodes: mk(3, 2, newNode("new", "z3", placement.StateUp)), placed: 6, segs: 200, threshold: 5, wantMoves: true, converge: true},
		{name: "two new nodes", nodes: mk(3, 2, newNode("new1", "z3", placement.StateUp), newNode("new2", "z4", placement.StateUp)), placed: 6, segs: 200, threshold: 5, wantMoves: true, converge: true},
		{name: "wide threshold", nodes: mk(3, 2, newNode("new", "z3", placement.StateUp)), placed: 6, segs: 200, threshold: 50},
		{name: "draining node gets nothing", nodes: mk(3, 2, newNode("new", "z3", placement.StateDraining)), placed: 6, segs: 200, threshold: 5},
		{name: "down node gets nothing", nodes: mk(3, 2, newNode("new", "z3", placement.StateDown)), placed: 6, segs: 200, threshold: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := balanceFixture(t, tc.nodes, tc.placed, tc.segs)
			pnodes := make([]placement.Node, len(tc.nodes))
			byID := map[string]*pb.Segment{}
			for i, n := range tc.nodes {
				pnodes[i] = n.Node
			}
			for _, s := range segs {
				byID[string(s.GetId())] = s
			}
			moves, after := planRebalance(tc.nodes, segs, tc.threshold)
			if (len(moves) > 0) != tc.wantMoves {
				t.Fatalf("%d moves, want moves: %v", len(moves), tc.wantMoves)
			}
			seen := map[string]bool{}
			placed := map[string][]string{}
			var total int64
			for _, m := range moves {
				key := fmt.Sprintf("%x/%d", m.Segment, m.Shard)
				if seen[key] {
					t.Errorf("shard %s moves twice", key)
				}
				seen[key] = true
				cur, ok := placed[string(m.Segment)]
				if !ok {
					cur = append([]string(nil), byID[string(m.Segment)].GetNodes()...)
				}
				if cur[m.Shard] != m.From {
					t.Errorf("move %+v: shard is on %s", m, cur[m.Shard])
				}
				next := append([]string(nil), cur...)
				next[m.Shard] = m.To
				if err := placement.CheckSpread(next, pnodes, 2, placement.Options{}); err != nil {
					t.Errorf("move %+v breaks the failure-domain rule: %v", m, err)
				}
				placed[string(m.Segment)] = next
				for _, n := range tc.nodes {
					if n.ID == m.To && n.State != placement.StateUp {
						t.Errorf("move %+v to a %v node", m, n.State)
					}
				}
				total += m.Bytes
			}
			var sumUsed, sumCap int64
			for _, n := range tc.nodes {
				if n.State == placement.StateUp {
					sumUsed += n.Used
					sumCap += n.Capacity
				}
			}
			mean := utilization(sumUsed, sumCap)
			if tc.converge {
				for _, n := range tc.nodes {
					if u := utilization(after[n.ID], n.Capacity); u < mean-tc.threshold/100 || u > mean+tc.threshold/100 {
						t.Errorf("%s ends at %.3f, mean %.3f ± %.2f", n.ID, u, mean, tc.threshold/100)
					}
				}
				// About what the new nodes' fair share is, and no more.
				newCap := sumCap - int64(tc.placed)*400*chunk
				if fair := int64(mean*float64(newCap)) + int64(tc.threshold/100*float64(newCap)); total > fair {
					t.Errorf("moved %d bytes, more than the new nodes' share %d", total, fair)
				}
			}
		})
	}
}

// The balancer's rate bucket starts empty (a new leader grants no fresh
// burst), lets one move through once it has refilled at all, and then
// holds further moves until the debt of that move is paid at the rate.
func TestMoveBucketStartsEmpty(t *testing.T) {
	start := time.Unix(1000, 0)
	const rate = 1 << 20 // bytes per second
	b := newMoveBucket(rate, start)
	if b.allow(start) {
		t.Fatal("a new bucket allows a move at once")
	}
	at := start.Add(10 * time.Millisecond)
	if !b.allow(at) {
		t.Fatal("the bucket does not refill")
	}
	b.charge(at, 4<<20) // a move of four seconds' budget
	if b.allow(at.Add(3 * time.Second)) {
		t.Error("a move allowed before the debt is paid")
	}
	if !b.allow(at.Add(4 * time.Second)) {
		t.Error("no move allowed once the debt is paid")
	}
	if unlimited := newMoveBucket(0, start); !unlimited.allow(start) {
		t.Error("a bucket without a rate holds moves")
	}
}
