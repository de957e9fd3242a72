package placement

import (
	"errors"
	"fmt"
)

// ErrSpread is returned by CheckSpread for a placement that breaks the
// failure-domain rule.
var ErrSpread = errors.New("placement breaks the failure-domain rule")

// MaxLoss returns the most shards of a placement that any one zone, and any
// one rack, holds: what losing the worst zone or rack would cost. Empty
// entries (shards with no node) are skipped; an id not in nodes is an
// error, since its domains are unknown.
func MaxLoss(placement []string, nodes []Node) (zone, rack int, err error) {
	byID, err := index(nodes)
	if err != nil {
		return 0, 0, fmt.Errorf("max loss: %w", err)
	}
	inZone := map[string]int{}
	inRack := map[[2]string]int{}
	for i, id := range placement {
		if id == "" {
			continue
		}
		nd, ok := byID[id]
		if !ok {
			return 0, 0, fmt.Errorf("max loss: shard %d is on unknown node %q", i, id)
		}
		inZone[nd.Zone]++
		zone = max(zone, inZone[nd.Zone])
		k := [2]string{nd.Zone, nd.Rack}
		inRack[k]++
		rack = max(rack, inRack[k])
	}
	return zone, rack, nil
}

// CheckSpread checks a placement against the failure-domain rule for a
// code with m parity shards: no two shards share a node, and losing any one
// zone loses at most m shards.
// When the cluster cannot do that — the writable nodes together with the
// placement's own nodes cannot hold the placed shards with at most m per
// zone — the placement must instead be as even over zones as those nodes
// allow and lose at most m shards to any one rack, or be as even over racks
// as they allow (the limits Place uses). It returns nil or an error
// wrapping ErrSpread.
//
// A placement can start to fail this check without moving, when nodes are
// added in new zones: the balancer then has work to do.
func CheckSpread(placement []string, nodes []Node, m int, opts Options) error {
	zoneLoss, rackLoss, err := MaxLoss(placement, nodes)
	if err != nil {
		return fmt.Errorf("check spread: %w", err)
	}
	placed := map[string]bool{}
	for i, id := range placement {
		if id == "" {
			continue
		}
		if placed[id] {
			return fmt.Errorf("shard %d is on node %q with another shard: %w", i, id, ErrSpread)
		}
		placed[id] = true
	}
	if zoneLoss <= m {
		return nil
	}
	reserve := opts.reserve()
	doms := newDomains()
	for i := range nodes {
		if nd := &nodes[i]; placed[nd.ID] || nd.weight(reserve) > 0 {
			doms.add(nd)
		}
	}
	zoneMax, rackMax := doms.limits(len(placed))
	if zoneLoss > zoneMax {
		return fmt.Errorf("%d shards in one zone, cluster allows %d (m=%d): %w", zoneLoss, zoneMax, m, ErrSpread)
	}
	if rackLoss > max(m, rackMax) {
		return fmt.Errorf("%d shards in one rack, cluster allows %d (m=%d): %w", rackLoss, max(m, rackMax), m, ErrSpread)
	}
	return nil
}
