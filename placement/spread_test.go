package placement

import (
	"errors"
	"testing"
)

func TestCheckSpread(t *testing.T) {
	threeZones := cluster(3, 2, 2) // n-<zone>-<rack>-<i>
	oneZone := cluster(1, 3, 3)
	tests := []struct {
		name               string
		nodes              []Node
		placement          []string
		zoneLoss, rackLoss int
		ok                 bool
	}{
		{"two per zone", threeZones,
			[]string{"n-0-0-0", "n-0-1-0", "n-1-0-0", "n-1-1-0", "n-2-0-0", "n-2-1-0"}, 2, 1, true},
		{"two per zone in one rack", threeZones,
			[]string{"n-0-0-0", "n-0-0-1", "n-1-0-0", "n-1-1-0", "n-2-0-0", "n-2-1-0"}, 2, 2, true},
		{"three in one zone", threeZones,
			[]string{"n-0-0-0", "n-0-0-1", "n-0-1-0", "n-1-1-0", "n-2-0-0", "n-2-1-0"}, 3, 2, false},
		{"same node twice", threeZones,
			[]string{"n-0-0-0", "n-0-0-0", "n-1-0-0", "n-1-1-0", "n-2-0-0", "n-2-1-0"}, 2, 2, false},
		{"missing shards are skipped", threeZones,
			[]string{"n-0-0-0", "", "n-1-0-0", "n-1-1-0", "", "n-2-1-0"}, 2, 1, true},
		{"one zone, two per rack", oneZone,
			[]string{"n-0-0-0", "n-0-0-1", "n-0-1-0", "n-0-1-1", "n-0-2-0", "n-0-2-1"}, 6, 2, true},
		{"one zone, three in a rack", oneZone,
			[]string{"n-0-0-0", "n-0-0-1", "n-0-0-2", "n-0-1-1", "n-0-2-0", "n-0-2-1"}, 6, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, r, err := MaxLoss(tc.placement, tc.nodes)
			if err != nil || z != tc.zoneLoss || r != tc.rackLoss {
				t.Fatalf("MaxLoss = %d, %d, %v; want %d, %d", z, r, err, tc.zoneLoss, tc.rackLoss)
			}
			err = CheckSpread(tc.placement, tc.nodes, 2, Options{})
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrSpread) {
				t.Fatalf("CheckSpread = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCheckSpreadUnknownNode(t *testing.T) {
	nodes := cluster(3, 1, 2)
	err := CheckSpread([]string{"n-0-0-0", "nope"}, nodes, 1, Options{})
	if err == nil || errors.Is(err, ErrSpread) {
		t.Fatalf("CheckSpread with an unknown node = %v, want a non-spread error", err)
	}
}

// A placement that was the best possible becomes a violation once the
// cluster grows zones that allow better.
func TestCheckSpreadClusterGrows(t *testing.T) {
	nodes := cluster(2, 1, 3)
	p := []string{"n-0-0-0", "n-0-0-1", "n-0-0-2", "n-1-0-0", "n-1-0-1", "n-1-0-2"}
	if err := CheckSpread(p, nodes, 2, Options{}); err != nil {
		t.Fatalf("two zones of three: %v", err)
	}
	if err := CheckSpread(p, cluster(3, 1, 3), 2, Options{}); !errors.Is(err, ErrSpread) {
		t.Fatalf("after a third zone arrives: %v, want ErrSpread", err)
	}
}
