package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPlaceErrors(t *testing.T) {
	seg := make([]byte, 16)
	six := cluster(3, 1, 2)
	downOne := slices.Clone(six)
	downOne[0].State = StateDown
	fullOne := slices.Clone(six)
	fullOne[1].Used = fullOne[1].Capacity - fullOne[1].Capacity/50 // 2% free < 5% reserve
	tests := []struct {
		name    string
		nodes   []Node
		n       int
		opts    Options
		wantLen int
		wantErr error // nil: any error is fine when wantLen is 0
	}{
		{"exact", six, 6, Options{}, 6, nil},
		{"fewer shards than nodes", six, 4, Options{}, 4, nil},
		{"one down", downOne, 6, Options{}, 0, ErrNotEnoughNodes},
		{"one full", fullOne, 6, Options{}, 0, ErrNotEnoughNodes},
		{"one full, no reserve", fullOne, 6, Options{Reserve: 0.01}, 6, nil},
		{"one down, degraded allowed", downOne, 6, Options{Min: 5}, 5, nil},
		{"one down, Min = n", downOne, 6, Options{Min: 6}, 0, ErrNotEnoughNodes},
		{"too few for Min", downOne[:3], 6, Options{Min: 5}, 0, ErrNotEnoughNodes},
		{"no nodes", nil, 6, Options{Min: 1}, 0, ErrNotEnoughNodes},
		{"zero shards", six, 0, Options{}, 0, nil},
		{"Min above n", six, 4, Options{Min: 5}, 0, nil},
		{"negative Min", six, 4, Options{Min: -1}, 0, nil},
		{"duplicate id", append(slices.Clone(six), six[0]), 4, Options{}, 0, nil},
		{"empty id", append(slices.Clone(six), Node{State: StateUp, Capacity: gib}), 4, Options{}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Place(seg, tc.nodes, tc.n, tc.opts)
			if tc.wantLen == 0 {
				if err == nil {
					t.Fatalf("Place = %v, want an error", got)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("Place error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			if len(got) != tc.wantLen {
				t.Fatalf("Place returned %d nodes %v, want %d", len(got), got, tc.wantLen)
			}
		})
	}
}

// TestPlaceProperties checks every placement of many random clusters:
// distinct writable nodes, the right count, independence from node order,
// the best spread any choice could reach, and CheckSpread agreeing.
func TestPlaceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for iter := range 3000 {
		nodes := randomCluster(rng, 14)
		k, m := 1+rng.IntN(6), 1+rng.IntN(3)
		n := k + m
		seg := segmentID(rng)
		writable := writableIDs(nodes)
		opts := Options{}
		if rng.IntN(2) == 0 {
			opts.Min = k + 1
		}
		got, err := Place(seg, nodes, n, opts)
		want := min(n, len(writable))
		if len(writable) < n && (opts.Min == 0 || len(writable) < opts.Min) {
			if !errors.Is(err, ErrNotEnoughNodes) {
				t.Fatalf("iter %d: %d writable for %d shards (min %d): got %v, %v; want ErrNotEnoughNodes",
					iter, len(writable), n, opts.Min, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: Place: %v", iter, err)
		}
		if len(got) != want {
			t.Fatalf("iter %d: got %d nodes, want %d", iter, len(got), want)
		}
		seen := map[string]bool{}
		for _, id := range got {
			if !writable[id] {
				t.Fatalf("iter %d: chose unwritable node %q", iter, id)
			}
			if seen[id] {
				t.Fatalf("iter %d: chose %q twice in %v", iter, id, got)
			}
			seen[id] = true
		}
		again, err := Place(seg, shuffled(rng, nodes), n, opts)
		if err != nil || !slices.Equal(got, again) {
			t.Fatalf("iter %d: not deterministic: %v then %v (%v)", iter, got, again, err)
		}
		zone, rack, err := MaxLoss(got, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if bz, br := bestSpread(nodes, len(got)); zone != bz || rack != br {
			t.Fatalf("iter %d: spread (zone %d, rack %d), best possible (%d, %d): %v", iter, zone, rack, bz, br, got)
		}
		if len(got) == n {
			if err := CheckSpread(got, nodes, m, opts); err != nil {
				t.Fatalf("iter %d: CheckSpread rejects Place's choice %v: %v", iter, got, err)
			}
		}
		checked++
	}
	if checked < 1000 {
		t.Fatalf("only %d random clusters had enough nodes; the generator needs adjusting", checked)
	}
}

// TestZoneRule: with at least ceil(n/m) evenly filled zones, losing any
// zone loses at most m shards (exactly ceil(n/zones) at most); with fewer
// zones, racks take over.
func TestZoneRule(t *testing.T) {
	tests := []struct {
		k, m, zones, racks, perRack int
		zoneLoss, rackLoss          int
	}{
		{4, 2, 3, 1, 3, 2, 2},
		{4, 2, 6, 2, 1, 1, 1},
		{4, 2, 4, 2, 2, 2, 1},
		{8, 3, 4, 1, 5, 3, 3},
		{10, 4, 5, 3, 2, 3, 1},
		{4, 2, 1, 3, 4, 6, 2},  // one zone: spread over racks
		{4, 2, 2, 3, 2, 3, 1},  // two zones, three racks each
		{6, 3, 1, 9, 1, 9, 1},  // one node per rack
		{12, 4, 2, 4, 4, 8, 2}, // 16 shards over 2 zones of 4 racks
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range tests {
		name := fmt.Sprintf("%d+%d/%dz%dr%dn", tc.k, tc.m, tc.zones, tc.racks, tc.perRack)
		t.Run(name, func(t *testing.T) {
			nodes := cluster(tc.zones, tc.racks, tc.perRack)
			for range 300 {
				got, err := Place(segmentID(rng), nodes, tc.k+tc.m, Options{})
				if err != nil {
					t.Fatal(err)
				}
				zone, rack, err := MaxLoss(got, nodes)
				if err != nil {
					t.Fatal(err)
				}
				if zone != tc.zoneLoss || rack != tc.rackLoss {
					t.Fatalf("%v loses %d to a zone, %d to a rack; want %d, %d", got, zone, rack, tc.zoneLoss, tc.rackLoss)
				}
				if tc.zones*tc.m >= tc.k+tc.m && zone > tc.m {
					t.Fatalf("%v loses %d > m to one zone", got, zone)
				}
				if err := CheckSpread(got, nodes, tc.m, Options{}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestCapacityWeighting: over many segments, nodes with twice the free
// space hold about twice the chunks.
func TestCapacityWeighting(t *testing.T) {
	tests := []struct {
		name              string
		zones, perZone, n int
		lo, hi            float64
	}{
		// One shard: straw2 draws exactly in proportion to weight.
		{"one shard", 1, 20, 1, 1.9, 2.1},
		// k+m over three zones: two picks per zone without replacement
		// from 20 nodes, which pulls the ratio a little below 2.
		{"4+2 over 3 zones", 3, 20, 6, 1.8, 2.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes := cluster(tc.zones, 1, tc.perZone)
			big := map[string]bool{}
			for i := range nodes {
				if i%2 == 0 {
					// Free space above the 5% reserve: 180−10 = 2×(90−5) GiB.
					nodes[i].Capacity, nodes[i].Used = 200*gib, 20*gib
					big[nodes[i].ID] = true
				}
			}
			rng := rand.New(rand.NewPCG(5, 6))
			var bigChunks, smallChunks float64
			const segments = 40000
			for range segments {
				got, err := Place(segmentID(rng), nodes, tc.n, Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range got {
					if big[id] {
						bigChunks++
					} else {
						smallChunks++
					}
				}
			}
			// Same number of big and small nodes, so chunk totals compare directly.
			ratio := bigChunks / smallChunks
			t.Logf("big/small chunk ratio %.3f over %d segments", ratio, segments)
			if ratio < tc.lo || ratio > tc.hi {
				t.Fatalf("nodes with twice the free space got %.3f× the chunks, want %.2f–%.2f", ratio, tc.lo, tc.hi)
			}
		})
	}
}

// moved counts the nodes of a that are not in b: chunks that would move.
// (A chunk keeps its shard index when it moves, so the shard order of a
// recomputed placement does not matter; see the package doc.)
func moved(a, b []string) int {
	c := 0
	for _, id := range a {
		if !slices.Contains(b, id) {
			c++
		}
	}
	return c
}

// TestMinimalDisruption: adding one node to N equal nodes moves about
// 1/(N+1) of the chunks, and removing one about 1/N, each segment changing
// by at most one node.
func TestMinimalDisruption(t *testing.T) {
	tests := []struct {
		zones, racks, perRack, n int
	}{
		{4, 1, 5, 6},  // N=20, 4+2
		{3, 2, 4, 6},  // N=24
		{5, 2, 3, 9},  // N=30, 6+3
		{1, 12, 1, 6}, // one zone, spread over racks
		{2, 2, 2, 6},  // N=8: 3 per zone
	}
	for _, tc := range tests {
		nodes := cluster(tc.zones, tc.racks, tc.perRack)
		name := fmt.Sprintf("%d nodes/%d zones/n=%d", len(nodes), tc.zones, tc.n)
		t.Run(name, func(t *testing.T) {
			grown := append(slices.Clone(nodes), Node{
				ID: "new", Zone: "z0", Rack: "r0", Capacity: 100 * gib, Used: 10 * gib, State: StateUp,
			})
			shrunk := slices.Clone(nodes[1:])
			rng := rand.New(rand.NewPCG(7, 8))
			const segments = 10000
			var addMoves, removeMoves, total int
			for range segments {
				seg := segmentID(rng)
				before, err1 := Place(seg, nodes, tc.n, Options{})
				after, err2 := Place(seg, grown, tc.n, Options{})
				less, err3 := Place(seg, shrunk, tc.n, Options{})
				if err := errors.Join(err1, err2, err3); err != nil {
					t.Fatal(err)
				}
				a, r := moved(before, after), moved(before, less)
				if a > 1 || r > 1 {
					t.Fatalf("one node more or less changed a segment by %d / %d nodes: %v → %v / %v", a, r, before, after, less)
				}
				addMoves += a
				removeMoves += r
				total += tc.n
			}
			n := float64(len(nodes))
			add, remove := float64(addMoves)/float64(total), float64(removeMoves)/float64(total)
			t.Logf("add one: %.4f moved (ideal %.4f); remove one: %.4f moved (ideal %.4f)", add, 1/(n+1), remove, 1/n)
			if add > 2/(n+1) || add < 0.5/(n+1) {
				t.Errorf("adding a node moved %.4f of chunks, want about %.4f", add, 1/(n+1))
			}
			if remove > 2/n || remove < 0.5/n {
				t.Errorf("removing a node moved %.4f of chunks, want about %.4f", remove, 1/n)
			}
		})
	}
}

func BenchmarkPlace(b *testing.B) {
	for _, size := range []struct{ zones, racks, perRack int }{{3, 1, 2}, {3, 10, 20}} {
		nodes := cluster(size.zones, size.racks, size.perRack)
		b.Run(fmt.Sprintf("nodes=%d", len(nodes)), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 10))
			seg := segmentID(rng)
			b.ReportAllocs()
			for b.Loop() {
				seg[0]++
				if _, err := Place(seg, nodes, 6, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
