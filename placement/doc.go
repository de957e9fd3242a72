// Package placement decides which blob nodes hold the chunks of a segment.
//
// It is a pure library on its own plain types (Node, State, Options): no
// network, no protobuf, nothing else of Cairn's. The metadata service and
// the gateway convert their cluster map into []Node and call it.
//
// # Choosing nodes
//
// A segment of a k+m code needs n = k+m distinct nodes, one per shard.
// Place uses weighted rendezvous hashing (Ceph's straw2): every eligible
// node draws
//
//	u = hash(segment id, node id) mapped to (0, 1)
//	score = ln(u) / weight
//
// and the n highest scores win (subject to the failure-domain caps below);
// shard i goes to the i-th chosen node. weight is the node's free space
// above the reserve, so −score is an exponential random variable with rate
// weight, and the top score belongs to a node with probability
// weight/Σweight: a node with twice the free space gets about twice the
// chunks. Each node's draw depends only on itself and the segment, so
// adding a node changes a segment's set of nodes only if the new node
// makes the cut, swapping it for exactly one old member; removing a member
// swaps in exactly one replacement. That moves about 1/(N+1) of all chunks
// when N equal nodes grow to N+1 (the caps preserve this; see below). The
// result depends on the segment id and the node set, not on the order of
// the node list. (Shard order within a recomputed placement may shift, but
// placements are stored, not recomputed: a chunk moves only where the set
// changes, and the mover keeps its shard index; see Replace.)
//
// Nodes are eligible if they are StateUp, not full (free space at least
// Options.Reserve of capacity) and not already chosen for this segment.
//
// # Failure domains
//
// Every node is in a zone and a rack within it. Before choosing, Place
// computes two caps from the writable nodes: the smallest per-zone maximum
// L_z with which n shards fit (Σ_zones min(nodes in zone, L_z) ≥ n; it is
// ceil(n/zones) when zones are evenly populated), then, under L_z, the
// smallest per-rack maximum L_r. Going down the nodes in score order, a
// node whose zone or rack already holds its cap is skipped. Zone and rack
// caps nest, so the allowed sets form a laminar matroid: the greedy choice
// always completes, is the highest-scoring allowed set, and changes by at
// most one swap when one node comes or goes and the caps stay the same
// (they change only when a zone or rack gains or loses enough nodes to
// change how evenly n shards can be spread). Thus losing one zone loses at
// most L_z shards — at most m whenever the cluster has enough evenly filled
// zones (at least ceil(n/m)) — and when it has too few zones, the same
// holds for racks within them. CheckSpread and MaxLoss check an existing
// placement against this rule.
//
// Spreading evenly comes before weighting: when every zone is capped, each
// zone gets the same share of a segment's chunks however much free space
// it has, and weighting acts within zones. Keep zones of similar size.
//
// # Degraded writes and repair
//
// With fewer than n writable nodes Place fails with ErrNotEnoughNodes,
// unless Options.Min allows a degraded placement on w ≥ Min nodes, which
// then covers shards 0..w-1 and leaves the last n−w (parity) shards to be
// placed by repair. Replace picks a node for one shard given where the
// others are: one that keeps the worst zone, then the worst rack, as light
// as possible, and among those the best straw2 score. Placements are stored by the metadata service, not recomputed when the
// cluster map changes; the balancer moves chunks with Replace.
package placement
