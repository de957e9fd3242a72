package placement

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestReplaceTable(t *testing.T) {
	nodes := cluster(3, 1, 3) // zones z0..z2, n-<zone>-0-<i>
	tests := []struct {
		name    string
		nodes   []Node
		current []string
		shard   int
		want    []string // any of these; nil: an error
		wantErr error
	}{
		{
			name:    "stays in the zone that lost the shard",
			nodes:   nodes,
			current: []string{"n-0-0-0", "n-0-0-1", "n-1-0-0", "n-1-0-1", "n-2-0-0", "n-2-0-1"},
			shard:   4,
			want:    []string{"n-2-0-2"},
		},
		{
			name:    "fixes a skewed placement",
			nodes:   nodes,
			current: []string{"n-0-0-0", "n-0-0-1", "n-0-0-2", "n-1-0-0", "n-1-0-1", "n-2-0-0"},
			shard:   0,
			want:    []string{"n-2-0-1", "n-2-0-2"},
		},
		{
			name:    "fills an empty shard",
			nodes:   nodes,
			current: []string{"n-0-0-0", "n-0-0-1", "n-1-0-0", "n-1-0-1", "n-2-0-0", ""},
			shard:   5,
			want:    []string{"n-2-0-1", "n-2-0-2"},
		},
		{
			name:    "nothing left",
			nodes:   nodes[:6],
			current: []string{"n-0-0-0", "n-0-0-1", "n-0-0-2", "n-1-0-0", "n-1-0-1", "n-1-0-2"},
			shard:   2,
			wantErr: ErrNotEnoughNodes,
		},
		{
			name:    "shard out of range",
			nodes:   nodes,
			current: []string{"n-0-0-0"},
			shard:   1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Replace(make([]byte, 16), tc.nodes, tc.current, tc.shard, Options{})
			if tc.want == nil {
				if err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("Replace = %q, %v; want error %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Contains(tc.want, got) {
				t.Fatalf("Replace = %q, %v; want one of %v", got, err, tc.want)
			}
		})
	}
}

// TestReplaceProperties fails one node of a random placement and checks the
// replacement: writable, new to the segment, deterministic, as good a
// spread as any single choice could give, and no worse than before when
// the failed node's zone or rack has a spare.
func TestReplaceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	checked := 0
	for iter := range 3000 {
		nodes := randomCluster(rng, 16)
		n := 2 + rng.IntN(7)
		seg := segmentID(rng)
		placed, err := Place(seg, nodes, n, Options{})
		if err != nil {
			continue
		}
		shard := rng.IntN(n)
		failed := slices.IndexFunc(nodes, func(nd Node) bool { return nd.ID == placed[shard] })
		after := slices.Clone(nodes)
		after[failed].State = StateDown

		got, err := Replace(seg, after, placed, shard, Options{})
		writable := writableIDs(after)
		var spares []Node // writable nodes outside the placement
		for _, nd := range after {
			if writable[nd.ID] && !slices.Contains(placed, nd.ID) {
				spares = append(spares, nd)
			}
		}
		if len(spares) == 0 {
			if !errors.Is(err, ErrNotEnoughNodes) {
				t.Fatalf("iter %d: no spare node, got %q, %v", iter, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("iter %d: Replace: %v", iter, err)
		}
		if !writable[got] || slices.Contains(placed, got) {
			t.Fatalf("iter %d: replacement %q is unwritable or already in %v", iter, got, placed)
		}
		if again, err := Replace(seg, shuffled(rng, after), placed, shard, Options{}); err != nil || again != got {
			t.Fatalf("iter %d: not deterministic: %q then %q (%v)", iter, got, again, err)
		}

		loss := func(id string) (int, int) {
			p := slices.Clone(placed)
			p[shard] = id
			z, r, err := MaxLoss(p, after)
			if err != nil {
				t.Fatal(err)
			}
			return z, r
		}
		gz, gr := loss(got)
		sameZone, sameRack := false, false
		for _, sp := range spares {
			z, r := loss(sp.ID)
			if z < gz || z == gz && r < gr {
				t.Fatalf("iter %d: %q leaves loss (%d, %d), %q would leave (%d, %d)", iter, got, gz, gr, sp.ID, z, r)
			}
			sameZone = sameZone || sp.Zone == nodes[failed].Zone
			sameRack = sameRack || sp.Zone == nodes[failed].Zone && sp.Rack == nodes[failed].Rack
		}
		bz, br := loss(placed[shard])
		if sameZone && gz > bz {
			t.Fatalf("iter %d: zone loss grew from %d to %d although the failed node's zone has a spare", iter, bz, gz)
		}
		if sameRack && (gz > bz || gz == bz && gr > br) {
			t.Fatalf("iter %d: loss grew from (%d, %d) to (%d, %d) although the failed node's rack has a spare", iter, bz, br, gz, gr)
		}
		checked++
	}
	if checked < 1000 {
		t.Fatalf("only %d cases checked; the generator needs adjusting", checked)
	}
}

// TestRepairKeepsRule fails nodes of an evenly filled cluster one after
// another, repairing every segment after each failure: the failure-domain
// rule holds throughout.
func TestRepairKeepsRule(t *testing.T) {
	const k, m = 4, 2
	rng := rand.New(rand.NewPCG(13, 14))
	nodes := cluster(4, 2, 3)
	segs := make([][]byte, 200)
	placements := make([][]string, len(segs))
	for i := range segs {
		segs[i] = segmentID(rng)
		p, err := Place(segs[i], nodes, k+m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		placements[i] = p
	}
	for _, victim := range rng.Perm(len(nodes))[:6] {
		nodes[victim].State = StateDown
		for i, p := range placements {
			shard := slices.Index(p, nodes[victim].ID)
			if shard < 0 {
				continue
			}
			target, err := Replace(segs[i], nodes, p, shard, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p[shard] = target
			if err := CheckSpread(p, nodes, m, Options{}); err != nil {
				t.Fatalf("after losing %s: %v: %v", nodes[victim].ID, p, err)
			}
			if z, _, _ := MaxLoss(p, nodes); z > m {
				t.Fatalf("after losing %s: %v loses %d to one zone", nodes[victim].ID, p, z)
			}
		}
	}
}
