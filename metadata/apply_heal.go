package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// The self-healing commands: node states, bad chunks, placement changes,
// GC acknowledgements and the balancer's replicated state.

// setNodeState changes a blob node's state and bumps the cluster map epoch
// (not when the state is already the requested one). A DECOMMISSIONED node
// stays so: it is gone from the cluster for good.
func (a *applier) setNodeState(req *metadatapb.SetNodeState) (proto.Message, error) {
	st := req.GetState()
	if _, known := metadatapb.NodeState_name[int32(st)]; !known || st == metadatapb.NodeState_NODE_STATE_UNSPECIFIED {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set node state: state %d", st)
	}
	node := &metadatapb.Node{}
	found, err := a.st.get(nodeKey(req.GetId()), node)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchNode, "node %q", req.GetId())
	}
	if node.State == st {
		return node, nil
	}
	if node.State == metadatapb.NodeState_NODE_STATE_DECOMMISSIONED {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "node %q is decommissioned; it cannot become %s", node.Id, st)
	}
	node.State = st
	if err := a.st.put(nodeKey(node.Id), node); err != nil {
		return nil, err
	}
	epoch, err := readU64(a.st.txn, keyEpoch)
	if err != nil {
		return nil, err
	}
	a.st.set(keyEpoch, appendU64(nil, epoch+1))
	return node, nil
}

// markChunks records chunks found bad: each whose placement entry still
// names the reported node becomes missing ("") and is queued for deletion
// on that node. Chunks of unreferenced segments, of shards that moved on,
// or already missing are ignored, so a late or repeated report is harmless.
// One GC entry is queued per affected segment.
func (a *applier) markChunks(req *metadatapb.MarkChunks) (proto.Message, error) {
	resp := &metadatapb.MarkChunks{Reason: req.GetReason(), Reporter: req.GetReporter()}
	type marked struct {
		ref   segRef
		seg   *metadatapb.Segment
		nodes map[int]string
	}
	var order []string
	bySeg := map[string]*marked{}
	for _, c := range req.GetChunks() {
		node, shard := c.GetNodeId(), int(c.GetShard())
		if node == "" {
			continue
		}
		ref, found, err := a.readSegRef(c.GetSegmentId())
		if err != nil {
			return nil, err
		}
		if !found || shard >= len(ref.seg.GetNodes()) || ref.seg.Nodes[shard] != node {
			continue
		}
		if m := bySeg[string(ref.seg.GetId())]; m != nil {
			ref.seg = m.seg // this command's earlier marks of the segment
		}
		if placed(ref.seg.GetNodes())-1 < int(ref.seg.GetScheme().GetK()) {
			// Marking it would leave fewer than k chunks: a chunk with
			// one bad block still holds every other stripe, which may be
			// all that is left of them. Keep it; the segment is reported
			// as at risk by the health scan rather than destroyed here.
			continue
		}
		seg, err := a.setPlacement(ref, shard, "")
		if err != nil {
			return nil, err
		}
		m := bySeg[string(ref.seg.GetId())]
		if m == nil {
			m = &marked{ref: ref, nodes: map[int]string{}}
			bySeg[string(ref.seg.GetId())] = m
			order = append(order, string(ref.seg.GetId()))
		}
		m.seg = seg
		m.nodes[shard] = node
		resp.Chunks = append(resp.Chunks, proto.CloneOf(c))
	}
	for _, id := range order {
		m := bySeg[id]
		if err := a.queueChunkGC(m.ref, m.seg, m.nodes); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// commitPlacement moves one shard of a segment from old_node ("" =
// missing) to new_node, in the owning record and the indexes: a
// compare-and-set, refused with PreconditionFailed when the segment is not
// referenced or the shard is not on old_node, and also when new_node
// already holds another shard of the segment, is decommissioned, or still
// has a queued deletion of this very chunk (see chunkGCSeq). A new_node
// that is not registered is ErrNoSuchNode. For reason "rebalance" the
// chunk left on old_node is queued for deletion; otherwise (a repair off a
// down node) it is left for orphan reconciliation.
func (a *applier) commitPlacement(req *metadatapb.CommitPlacement) (proto.Message, error) {
	id, shard, oldNode, newNode := req.GetSegmentId(), int(req.GetShard()), req.GetOldNode(), req.GetNewNode()
	if len(id) != segmentIDLen {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "commit placement: %d-byte segment id", len(id))
	}
	if newNode == "" || newNode == oldNode {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "commit placement: new node %q (old %q)", newNode, oldNode)
	}
	ref, found, err := a.readSegRef(id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x is not referenced", id)
	}
	nodes := ref.seg.GetNodes()
	if shard >= len(nodes) {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x has no shard %d", id, shard)
	}
	if nodes[shard] != oldNode {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x shard %d is on %q, not %q", id, shard, nodes[shard], oldNode)
	}
	for i, n := range nodes {
		if n == newNode {
			return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x: node %q already holds shard %d", id, newNode, i)
		}
	}
	target := &metadatapb.Node{}
	found, err = a.st.get(nodeKey(newNode), target)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchNode, "node %q", newNode)
	}
	if target.GetState() == metadatapb.NodeState_NODE_STATE_DECOMMISSIONED {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "node %q is decommissioned", newNode)
	}
	if _, pending, err := a.st.getRaw(chunkGCKey(id, shard, newNode)); err != nil {
		return nil, err
	} else if pending {
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x shard %d: a deletion of it on %q is still queued", id, shard, newNode)
	}
	seg, err := a.setPlacement(ref, shard, newNode)
	if err != nil {
		return nil, err
	}
	if req.GetReason() == "rebalance" && oldNode != "" {
		if err := a.queueChunkGC(ref, seg, map[int]string{shard: oldNode}); err != nil {
			return nil, err
		}
	}
	return proto.CloneOf(seg), nil
}

// ackGC removes GC entries whose chunks have all been deleted, with their
// chunk guards. Keys that are not (or no longer) queued are ignored, so an
// ack may be repeated; a key that cannot be a gc/ key refuses the command.
func (a *applier) ackGC(req *metadatapb.AckGC) (proto.Message, error) {
	for _, k := range req.GetKeys() {
		if len(k) != gcKeyLen || !bytes.HasPrefix(k, prefixGC) {
			return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "ack gc: %q is not a gc key", k)
		}
	}
	resp := &metadatapb.AckGC{}
	for _, k := range req.GetKeys() {
		v, found, err := a.st.getRaw(k)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		a.st.del(k)
		resp.Keys = append(resp.Keys, bytes.Clone(k))
		if binary.BigEndian.Uint32(k[gcKeyLen-4:])&chunkGCSeq == 0 {
			continue // released segments have no guards
		}
		e := &metadatapb.GCEntry{}
		if err := grpcbuf.UnmarshalUnchecked(v, e); err != nil {
			return nil, fmt.Errorf("read %q: %w", k, err)
		}
		for _, seg := range e.GetSegments() {
			for shard, n := range seg.GetNodes() {
				if n == "" {
					continue
				}
				gk := chunkGCKey(seg.GetId(), shard, n)
				if v, found, err := a.st.getRaw(gk); err != nil {
					return nil, err
				} else if found && bytes.Equal(v, k) {
					a.st.del(gk)
				}
			}
		}
	}
	return resp, nil
}

// setRebalance records the balancer's state.
func (a *applier) setRebalance(req *metadatapb.SetRebalance) (proto.Message, error) {
	th := req.GetThreshold()
	if math.IsNaN(th) || th < 0 || req.GetRateBytesPerSecond() < 0 || req.GetBytesTotal() < 0 || req.GetMovesTotal() < 0 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set rebalance: negative or NaN figures")
	}
	stored := proto.CloneOf(req)
	if err := a.st.put(keyRebalance, stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// placed counts the shards of a placement that name a node.
func placed(nodes []string) int {
	n := 0
	for _, id := range nodes {
		if id != "" {
			n++
		}
	}
	return n
}
