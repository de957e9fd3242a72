package placement

import "strconv"

// State says whether a node may receive new chunks. It mirrors the cluster
// map's node states; only StateUp nodes are written to. The zero value,
// StateUnknown, is deliberately not writable, so a node whose state was
// never filled in is never chosen.
type State uint8

const (
	StateUnknown State = iota
	StateUp
	StateSuspect        // missed heartbeats; may come back
	StateDown           // timed out; its chunks are being repaired
	StateDraining       // being emptied by the balancer
	StateDecommissioned // gone for good
)

func (s State) String() string {
	switch s {
	case StateUnknown:
		return "unknown"
	case StateUp:
		return "up"
	case StateSuspect:
		return "suspect"
	case StateDown:
		return "down"
	case StateDraining:
		return "draining"
	case StateDecommissioned:
		return "decommissioned"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Node is one blob node as placement sees it: an id, its failure domains and
// its space. Rack names are local to their zone: rack "r1" in zone "a" and
// rack "r1" in zone "b" are different racks. Empty zone and rack names are
// ordinary names (all nodes with Zone "" share one zone).
type Node struct {
	ID       string
	Zone     string
	Rack     string
	Capacity int64 // bytes
	Used     int64 // bytes
	State    State
}

// DefaultReserve is the fraction of a node's capacity kept free when
// Options.Reserve is zero.
const DefaultReserve = 0.05

// Options tune Place, Replace and CheckSpread. The zero value is ready to use.
type Options struct {
	// Min is the fewest shards Place may place when fewer than n nodes are
	// writable (a degraded placement); 0 means n, i.e. no degraded
	// placements. The writer sets it to its write quorum (at least k+1).
	Min int
	// Reserve is the fraction of capacity, in [0, 1), that a node keeps
	// free: a node with less free space than Reserve×Capacity is full and
	// receives nothing. 0 selects DefaultReserve.
	Reserve float64
}

func (o Options) reserve() float64 {
	if o.Reserve == 0 {
		return DefaultReserve
	}
	return o.Reserve
}

// weight is a node's placement weight: its free space above the reserve, in
// bytes, or 0 when it may not receive new chunks (not up, or full).
func (n *Node) weight(reserve float64) float64 {
	if n.State != StateUp || n.Capacity <= 0 {
		return 0
	}
	free := float64(n.Capacity-n.Used) - reserve*float64(n.Capacity)
	if free <= 0 {
		return 0
	}
	return free
}
