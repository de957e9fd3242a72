package object

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairnstore/cairn/chunk"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/placement"
)

// clusterMap is one epoch of the cluster map, indexed for the write and
// read paths.
type clusterMap struct {
	epoch     uint64
	scheme    chunk.Scheme
	nodes     map[string]*pb.Node
	placement []placement.Node
}

func newClusterMap(m *pb.ClusterMap) (*clusterMap, error) {
	if m.GetDefaultScheme() == nil {
		return nil, errors.New("cluster not bootstrapped yet: no default erasure-coding scheme")
	}
	cm := &clusterMap{
		epoch:  m.Epoch,
		scheme: chunk.Scheme{K: int(m.DefaultScheme.K), M: int(m.DefaultScheme.M)},
		nodes:  make(map[string]*pb.Node, len(m.Nodes)),
	}
	if err := cm.scheme.Validate(); err != nil {
		return nil, fmt.Errorf("cluster default scheme: %w", err)
	}
	for _, n := range m.Nodes {
		cm.nodes[n.Id] = n
		cm.placement = append(cm.placement, placement.Node{
			ID: n.Id, Zone: n.Zone, Rack: n.Rack,
			Capacity: n.CapacityBytes, Used: n.UsedBytes,
			State: placementState(n.State),
		})
	}
	return cm, nil
}

func placementState(s pb.NodeState) placement.State {
	switch s {
	case pb.NodeState_NODE_STATE_UP:
		return placement.StateUp
	case pb.NodeState_NODE_STATE_SUSPECT:
		return placement.StateSuspect
	case pb.NodeState_NODE_STATE_DOWN:
		return placement.StateDown
	case pb.NodeState_NODE_STATE_DRAINING:
		return placement.StateDraining
	case pb.NodeState_NODE_STATE_DECOMMISSIONED:
		return placement.StateDecommissioned
	}
	return placement.StateUnknown
}

// clusterMapCache keeps the gateway's copy of the cluster map. Writes use a
// copy at most maxAge old and force a refresh when placement fails; reads
// refresh only when a chunk names a node the copy does not know.
type clusterMapCache struct {
	meta   Metadata
	maxAge time.Duration

	mu      sync.Mutex
	cur     *clusterMap
	fetched time.Time
}

func newClusterMapCache(meta Metadata, maxAge time.Duration) *clusterMapCache {
	return &clusterMapCache{meta: meta, maxAge: maxAge}
}

// get returns the cached map, refreshing it when it is older than maxAge
// (or always, with fresh). Concurrent refreshes are serialised: one fetch
// serves everyone waiting.
func (c *clusterMapCache) get(ctx context.Context, fresh bool) (*clusterMap, error) {
	asked := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.fetched.After(asked) {
		return c.cur, nil // someone fetched while we waited for the lock
	}
	if c.cur != nil && !fresh && time.Since(c.fetched) < c.maxAge {
		return c.cur, nil
	}
	resp, err := c.meta.GetClusterMap(ctx, &pb.GetClusterMapRequest{})
	if err != nil {
		if c.cur != nil && !fresh {
			// A stale map still places and reads correctly (placements
			// are recorded per segment); metad being briefly unreachable
			// should not fail reads.
			return c.cur, nil
		}
		return nil, fmt.Errorf("get cluster map: %w", err)
	}
	cm, err := newClusterMap(resp.ClusterMap)
	if err != nil {
		return nil, err
	}
	c.cur, c.fetched = cm, time.Now()
	return cm, nil
}
