package metadata

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smSegP is a segment with scheme (len(nodes)-1)+1, 100 bytes in 64-byte
// blocks, placed on nodes ("" = missing).
func smSegP(id byte, nodes ...string) *pb.Segment {
	s := smSeg(id)
	s.Scheme = &pb.Scheme{K: uint32(len(nodes) - 1), M: 1}
	s.BlockSize, s.Size, s.Nodes = 64, 100, nodes
	return s
}

func smSetState(id string, st pb.NodeState) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetNodeState{SetNodeState: &pb.SetNodeState{Id: id, State: st, Reason: "test"}}}
}

func smRef(seg byte, shard uint32, node string) *pb.ChunkRef {
	return &pb.ChunkRef{SegmentId: smSeg(seg).Id, Shard: shard, NodeId: node}
}

func smMark(refs ...*pb.ChunkRef) *pb.Command {
	return &pb.Command{Op: &pb.Command_MarkChunks{MarkChunks: &pb.MarkChunks{Chunks: refs, Reason: "corrupt", Reporter: "test"}}}
}

func smMove(seg byte, shard uint32, old, new, reason string) *pb.Command {
	return &pb.Command{Op: &pb.Command_CommitPlacement{CommitPlacement: &pb.CommitPlacement{
		SegmentId: smSeg(seg).Id, Shard: shard, OldNode: old, NewNode: new, Reason: reason}}}
}

func smAck(keys ...[]byte) *pb.Command {
	return &pb.Command{Op: &pb.Command_AckGc{AckGc: &pb.AckGC{Keys: keys}}}
}

func smSetRebalance(r *pb.SetRebalance) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}
}

// smSegment returns the segment's current placement, failing if it is
// not referenced.
func smSegment(t *testing.T, s *State, id byte) SegmentInfo {
	t.Helper()
	info, err := s.Segment(smSeg(id).Id)
	if err != nil {
		t.Fatalf("segment %d: %v", id, err)
	}
	return info
}

func smNodes(t *testing.T, s *State, id byte) []string {
	t.Helper()
	return smSegment(t, s, id).Segment.Nodes
}

func smEq(a, b []string) bool { return slices.Equal(a, b) }

func smUsageOf(t *testing.T, s *State, node string) int64 {
	t.Helper()
	n, _, err := s.NodeUsage(node)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestApplyHealCommands(t *testing.T) {
	nodes := []*pb.Command{smRegister("n1", "h:1", "z1", 1), smRegister("n2", "h:2", "z2", 1), smRegister("n3", "h:3", "z3", 1), smRegister("n4", "h:4", "z4", 1)}
	// Object k: segment 1 fully placed, segment 2 written degraded.
	base := append(append([]*pb.Command{}, nodes...), smCreateBucket("bk"),
		smPut("bk", "k", "e", smSegP(1, "n1", "n2", "n3"), smSegP(2, "n1", "", "n3")))
	// Plus an upload with a part on segment 5.
	withPart := append(append([]*pb.Command{}, base...), smCreateUpload("bk", "mp", "U"), smPutPart("bk", "mp", "U", 1, "pe", smSegP(5, "n2", "n3", "n4")))
	marked := append(append([]*pb.Command{}, base...), smMark(smRef(1, 1, "n2")))

	smRunCases(t, []smCase{
		// ---- SetNodeState
		{name: "node down bumps epoch", setup: nodes, cmd: smSetState("n2", pb.NodeState_NODE_STATE_DOWN), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.Epoch != 5 || cm.Nodes[1].State != pb.NodeState_NODE_STATE_DOWN {
				t.Errorf("cluster map %v", cm)
			}
			if n, err := s.Node("n2"); err != nil || !proto.Equal(n, r.Resp) {
				t.Errorf("node %v (%v), response %v", n, err, r.Resp)
			}
		}},
		{name: "node state unchanged keeps epoch", setup: nodes, cmd: smSetState("n2", pb.NodeState_NODE_STATE_UP), check: func(t *testing.T, s *State, r Result) {
			if cm, _ := s.ClusterMap(); cm.Epoch != 4 {
				t.Errorf("epoch %d, want 4", cm.Epoch)
			}
		}},
		{name: "node decommissioned", setup: append(nodes, smSetState("n2", pb.NodeState_NODE_STATE_DRAINING)), cmd: smSetState("n2", pb.NodeState_NODE_STATE_DECOMMISSIONED)},
		{name: "decommissioned again is a no-op", setup: append(nodes, smSetState("n2", pb.NodeState_NODE_STATE_DECOMMISSIONED)), cmd: smSetState("n2", pb.NodeState_NODE_STATE_DECOMMISSIONED)},
		{name: "out of decommissioned", setup: append(nodes, smSetState("n2", pb.NodeState_NODE_STATE_DECOMMISSIONED)), cmd: smSetState("n2", pb.NodeState_NODE_STATE_UP), wantErr: metaerr.ErrPreconditionFailed},
		{name: "state of unknown node", setup: nodes, cmd: smSetState("n9", pb.NodeState_NODE_STATE_DOWN), wantErr: metaerr.ErrNoSuchNode},
		{name: "unspecified state", setup: nodes, cmd: smSetState("n1", pb.NodeState_NODE_STATE_UNSPECIFIED), wantErr: metaerr.ErrInvalidArgument},
		{name: "unknown state", setup: nodes, cmd: smSetState("n1", pb.NodeState(99)), wantErr: metaerr.ErrInvalidArgument},

		// ---- MarkChunks
		{name: "mark chunk", setup: base, cmd: smMark(smRef(1, 1, "n2")), check: func(t *testing.T, s *State, r Result) {
			if got := smNodes(t, s, 1); !smEq(got, []string{"n1", "", "n3"}) {
				t.Errorf("placement %q", got)
			}
			if resp := r.Resp.(*pb.MarkChunks); len(resp.Chunks) != 1 || resp.Reason != "corrupt" {
				t.Errorf("response %v", resp)
			}
			gc := smGC(t, s)
			if len(gc) != 1 || gc[0].Key != "k" || gc[0].VersionId != "v-k-e" || !smEq(gc[0].Segments[0].Nodes, []string{"", "n2", ""}) {
				t.Errorf("gc %v", gc)
			}
			if pending, _ := s.ChunkDeletePending(smSeg(1).Id, 1, "n2"); !pending {
				t.Error("no delete guard")
			}
			miss, _, _ := s.SegmentsWithMissing(nil, 0)
			if len(miss) != 2 {
				t.Errorf("%d segments with missing chunks, want 2", len(miss))
			}
			if n := smUsageOf(t, s, "n2"); n != 0 {
				t.Errorf("n2 holds %d chunks", n)
			}
		}},
		// 2+1: marking a second chunk would leave 1 < k chunks, so it is
		// kept (it still holds the stripes its bad block is not in).
		{name: "never mark a segment below k", setup: base, cmd: smMark(smRef(1, 1, "n2"), smRef(1, 2, "n3"), smRef(1, 2, "n3")), check: func(t *testing.T, s *State, r Result) {
			if got := smNodes(t, s, 1); !smEq(got, []string{"n1", "", "n3"}) {
				t.Errorf("placement %q", got)
			}
			if resp := r.Resp.(*pb.MarkChunks); len(resp.Chunks) != 1 {
				t.Errorf("response %v", resp)
			}
			if gc := smGC(t, s); len(gc) != 1 || !smEq(gc[0].Segments[0].Nodes, []string{"", "n2", ""}) {
				t.Errorf("gc %v", gc)
			}
		}},
		{name: "mark part chunk", setup: withPart, cmd: smMark(smRef(5, 0, "n2")), check: func(t *testing.T, s *State, r Result) {
			if ps := smParts(t, s, "bk", "mp", "U"); !smEq(ps[0].Segments[0].Nodes, []string{"", "n3", "n4"}) {
				t.Errorf("part %v", ps[0])
			}
			if gc := smGC(t, s); len(gc) != 1 || gc[0].UploadId != "U" || gc[0].PartNumber != 1 {
				t.Errorf("gc %v", gc)
			}
		}},

		// ---- CommitPlacement
		{name: "repair a missing chunk", setup: base, cmd: smMove(2, 1, "", "n4", "repair"), check: func(t *testing.T, s *State, r Result) {
			if got := smNodes(t, s, 2); !smEq(got, []string{"n1", "n4", "n3"}) {
				t.Errorf("placement %q", got)
			}
			if o, _ := smGetObject(t, s, "bk", "k"); !smEq(o.Segments[1].Nodes, []string{"n1", "n4", "n3"}) {
				t.Errorf("object %v", o)
			}
			if !proto.Equal(r.Resp, smSegment(t, s, 2).Segment) {
				t.Errorf("response %v", r.Resp)
			}
			if miss, _, _ := s.SegmentsWithMissing(nil, 0); len(miss) != 0 {
				t.Errorf("still missing: %v", miss)
			}
			if len(smGC(t, s)) != 0 {
				t.Error("repair queued gc")
			}
		}},
		{name: "repair off a down node", setup: base, cmd: smMove(1, 0, "n1", "n4", "repair"), check: func(t *testing.T, s *State, r Result) {
			if n := smUsageOf(t, s, "n1"); n != 1 {
				t.Errorf("n1 holds %d chunks, want 1", n)
			}
			if len(smGC(t, s)) != 0 {
				t.Error("repair queued gc: the old chunk is left for reconciliation")
			}
		}},
		{name: "rebalance queues the old chunk", setup: base, cmd: smMove(1, 0, "n1", "n4", "rebalance"), check: func(t *testing.T, s *State, r Result) {
			gc := smGC(t, s)
			if len(gc) != 1 || !smEq(gc[0].Segments[0].Nodes, []string{"n1", "", ""}) {
				t.Errorf("gc %v", gc)
			}
			chunks, size, _ := s.NodeUsage("n4")
			if chunks != 1 || size != chunkBytes(smSegP(1, "n1", "n2", "n3")) || size == 0 {
				t.Errorf("n4 usage %d chunks %d bytes", chunks, size)
			}
		}},
		{name: "commit placement on a part", setup: withPart, cmd: smMove(5, 2, "n4", "n1", "rebalance"), check: func(t *testing.T, s *State, r Result) {
			if ps := smParts(t, s, "bk", "mp", "U"); !smEq(ps[0].Segments[0].Nodes, []string{"n2", "n3", "n1"}) {
				t.Errorf("part %v", ps[0])
			}
			if info := smSegment(t, s, 5); info.Owner != (SegmentOwner{Bucket: "bk", Key: "mp", UploadID: "U", PartNumber: 1}) {
				t.Errorf("owner %+v", info.Owner)
			}
		}},
		{name: "complete keeps the part's new placement", setup: append(withPart, smMove(5, 2, "n4", "n1", "repair")),
			cmd: smComplete("U", smObj("bk", "mp", "m", smSegP(5, "n2", "n3", "n4")), nil, smCP(1, "pe")), check: func(t *testing.T, s *State, r Result) {
				o, _ := smGetObject(t, s, "bk", "mp")
				if !smEq(o.Segments[0].Nodes, []string{"n2", "n3", "n1"}) {
					t.Errorf("object placement %q", o.Segments[0].Nodes)
				}
				if info := smSegment(t, s, 5); info.Owner != (SegmentOwner{Bucket: "bk", Key: "mp", VersionID: "v-mp-m"}) {
					t.Errorf("owner %+v", info.Owner)
				}
			}},
		{name: "placement moved on", setup: base, cmd: smMove(1, 0, "n2", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement of a missing shard with an old node", setup: base, cmd: smMove(2, 1, "n2", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement of unreferenced segment", setup: base, cmd: smMove(9, 0, "n1", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement of released segment", setup: append(base, smDelete("bk", "k", nil)), cmd: smMove(1, 0, "n1", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement shard out of range", setup: base, cmd: smMove(1, 3, "", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement on a node holding another shard", setup: base, cmd: smMove(2, 1, "", "n3", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement on unknown node", setup: base, cmd: smMove(2, 1, "", "n9", "repair"), wantErr: metaerr.ErrNoSuchNode},
		{name: "placement on decommissioned node", setup: append(base, smSetState("n4", pb.NodeState_NODE_STATE_DECOMMISSIONED)), cmd: smMove(2, 1, "", "n4", "repair"), wantErr: metaerr.ErrPreconditionFailed},
		{name: "placement to the same node", setup: base, cmd: smMove(1, 0, "n1", "n1", "rebalance"), wantErr: metaerr.ErrInvalidArgument},
		{name: "placement to no node", setup: base, cmd: smMove(1, 0, "n1", "", "repair"), wantErr: metaerr.ErrInvalidArgument},
		{name: "placement with a short id", setup: base, cmd: &pb.Command{Op: &pb.Command_CommitPlacement{CommitPlacement: &pb.CommitPlacement{SegmentId: []byte{1}, NewNode: "n4"}}}, wantErr: metaerr.ErrInvalidArgument},
		{name: "placement back where a delete is queued", setup: marked, cmd: smMove(1, 1, "", "n2", "repair"), wantErr: metaerr.ErrPreconditionFailed},

		// ---- AckGC
		{name: "ack gc", setup: marked, cmd: smAck(), check: func(t *testing.T, s *State, r Result) {
			if len(r.Resp.(*pb.AckGC).Keys) != 0 || len(smGC(t, s)) != 1 {
				t.Error("empty ack acked something")
			}
		}},
		{name: "ack unknown gc key", setup: base, cmd: smAck(gcKey(1, 2, 3)), check: func(t *testing.T, s *State, r Result) {
			if len(r.Resp.(*pb.AckGC).Keys) != 0 {
				t.Errorf("response %v", r.Resp)
			}
		}},
		{name: "ack a key that is not a gc key", setup: base, cmd: smAck(objectKey("bk", "k")), wantErr: metaerr.ErrInvalidArgument},
		{name: "ack a short gc key", setup: base, cmd: smAck(prefixGC), wantErr: metaerr.ErrInvalidArgument},

		// ---- SetRebalance
		{name: "set rebalance", cmd: smSetRebalance(&pb.SetRebalance{Running: true, Threshold: 5, RateBytesPerSecond: 1 << 20, BytesTotal: 10, MovesTotal: 2, StartedUnixNano: 7}), check: func(t *testing.T, s *State, r Result) {
			got, err := s.Rebalance()
			if err != nil || !got.Running || got.Threshold != 5 || !proto.Equal(got, r.Resp) {
				t.Errorf("rebalance %v, %v", got, err)
			}
		}},
		{name: "set rebalance with a negative rate", cmd: smSetRebalance(&pb.SetRebalance{RateBytesPerSecond: -1}), wantErr: metaerr.ErrInvalidArgument},
		{name: "set rebalance with NaN threshold", cmd: smSetRebalance(&pb.SetRebalance{Threshold: math.NaN()}), wantErr: metaerr.ErrInvalidArgument},
		{name: "set rebalance with bad UTF-8", cmd: smSetRebalance(&pb.SetRebalance{Outcome: "\xff"}), wantErr: metaerr.ErrInvalidArgument},

		// ---- what the indexes demand of the existing commands
		{name: "commit reusing a referenced segment", setup: base, cmd: smPut("bk", "other", "e", smSegP(1, "n1", "n2", "n3")), wantErr: metaerr.ErrInvalidArgument},
		{name: "overwrite reusing the replaced version's segment", setup: base, cmd: smPut("bk", "k", "e2", smSegP(2, "n1", "n2", "n3")), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit with a segment twice", setup: base, cmd: smPut("bk", "o", "e", smSegP(7, "n1", "n2", "n3"), smSegP(7, "n1", "n2", "n3")), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit with a short segment id", setup: base, cmd: smPut("bk", "o", "e", &pb.Segment{Id: []byte{1, 2}}), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit with placement not k+m", setup: base, cmd: smPut("bk", "o", "e", &pb.Segment{Id: smSeg(7).Id, Scheme: &pb.Scheme{K: 2, M: 1}, Nodes: []string{"a", "b"}}), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit with too many placement entries", setup: base, cmd: smPut("bk", "o", "e", &pb.Segment{Id: smSeg(7).Id, Nodes: make([]string, 25)}), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit with a huge node id", setup: base, cmd: smPut("bk", "o", "e", &pb.Segment{Id: smSeg(7).Id, Nodes: []string{string(make([]byte, 1025))}}), wantErr: metaerr.ErrInvalidArgument},
		{name: "part reusing an object's segment", setup: withPart, cmd: smPutPart("bk", "mp", "U", 2, "x", smSegP(1, "n1", "n2", "n3")), wantErr: metaerr.ErrInvalidArgument},
		{name: "released segment id may come back", setup: append(base, smDelete("bk", "k", nil)), cmd: smPut("bk", "k", "e", smSegP(1, "n1", "n2", "n3"))},
	})
}

// TestMarkStaleChunkIsNoOp: a report about a chunk whose placement moved
// on (or was already marked, or whose segment is gone) changes nothing.
func TestMarkStaleChunkIsNoOp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []*pb.Command
		ref   *pb.ChunkRef
	}{
		{"moved by repair", []*pb.Command{smMove(1, 0, "n1", "n4", "repair")}, smRef(1, 0, "n1")},
		{"moved by rebalance", []*pb.Command{smMove(1, 0, "n1", "n4", "rebalance")}, smRef(1, 0, "n1")},
		{"already marked", []*pb.Command{smMark(smRef(1, 0, "n1"))}, smRef(1, 0, "n1")},
		{"missing from the start", nil, smRef(2, 1, "n2")},
		{"missing, reported without node", nil, smRef(2, 1, "")},
		{"wrong node", nil, smRef(1, 0, "n2")},
		{"shard out of range", nil, smRef(1, 7, "n1")},
		{"segment released", []*pb.Command{smDelete("bk", "k", nil)}, smRef(1, 0, "n1")},
		{"segment never referenced", nil, smRef(9, 0, "n1")},
		{"malformed id", nil, &pb.ChunkRef{SegmentId: []byte{1}, NodeId: "n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := smNew(t)
			h.must(smRegister("n1", "h:1", "z1", 1), smRegister("n2", "h:2", "z2", 1), smRegister("n3", "h:3", "z3", 1), smRegister("n4", "h:4", "z4", 1),
				smCreateBucket("bk"), smPut("bk", "k", "e", smSegP(1, "n1", "n2", "n3"), smSegP(2, "n1", "", "n3")))
			h.must(tc.setup...)
			before := smDump(t, h.s)
			r := h.do(smMark(tc.ref))
			if r.Err != nil || len(r.Resp.(*pb.MarkChunks).Chunks) != 0 {
				t.Fatalf("mark: %v, %v", r.Resp, r.Err)
			}
			if after := smDump(t, h.s); !smMapsEqual(before, after) {
				t.Errorf("stale mark changed state")
			}
		})
	}
}

// TestCommitPlacementRace: two placements of one shard (two repairs that
// chose different targets, or one committed twice), in one batch or in
// two: exactly one wins.
func TestCommitPlacementRace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   *pb.Command
		sameTx bool
		seg    byte
		want   []string // the segment's placement afterwards
	}{
		{"two targets, one batch", smMove(2, 1, "", "n4", "repair"), smMove(2, 1, "", "n5", "repair"), true, 2, []string{"n1", "n4", "n3"}},
		{"two targets, two batches", smMove(2, 1, "", "n4", "repair"), smMove(2, 1, "", "n5", "repair"), false, 2, []string{"n1", "n4", "n3"}},
		{"same target twice", smMove(2, 1, "", "n4", "repair"), smMove(2, 1, "", "n4", "repair"), true, 2, []string{"n1", "n4", "n3"}},
		{"repair and rebalance of one shard", smMove(1, 0, "n1", "n4", "repair"), smMove(1, 0, "n1", "n5", "rebalance"), true, 1, []string{"n4", "n2", "n3"}},
		{"mark and rebalance of one shard", smMark(smRef(1, 0, "n1")), smMove(1, 0, "n1", "n5", "rebalance"), false, 1, []string{"", "n2", "n3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := smNew(t)
			for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
				h.must(smRegister(n, "h:"+n, "z", 1))
			}
			h.must(smCreateBucket("bk"), smPut("bk", "k", "e", smSegP(1, "n1", "n2", "n3"), smSegP(2, "n1", "", "n3")))
			var rs []Result
			if tc.sameTx {
				rs = h.s.ApplyBatch([]Entry{h.entry(tc.a), h.entry(tc.b)})
			} else {
				rs = []Result{h.do(tc.a), h.do(tc.b)}
			}
			if rs[0].Err != nil {
				t.Fatalf("first: %v", rs[0].Err)
			}
			if !smIsCond(rs[1].Err, metaerr.ErrPreconditionFailed) {
				t.Fatalf("second: %v, want PreconditionFailed", rs[1].Err)
			}
			smCheckIndexes(t, h.s, tc.name)
			if got := smNodes(t, h.s, tc.seg); !smEq(got, tc.want) {
				t.Errorf("placement %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGuardClearedByAck: a shard marked bad on a node can go back to that
// node once the deletion there is acknowledged.
func TestGuardClearedByAck(t *testing.T) {
	h := smNew(t)
	h.must(smRegister("n1", "h:1", "z1", 1), smRegister("n2", "h:2", "z2", 1), smRegister("n3", "h:3", "z3", 1),
		smCreateBucket("bk"), smPut("bk", "k", "e", smSegP(1, "n1", "n2", "n3")), smMark(smRef(1, 1, "n2")))
	if r := h.do(smMove(1, 1, "", "n2", "repair")); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("repair onto a node with a queued delete of the chunk: %v", r.Err)
	}
	items, err := h.s.GCEntries(nil, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("gc %v, %v", items, err)
	}
	r := h.do(smAck(items[0].Key, items[0].Key))
	if r.Err != nil || len(r.Resp.(*pb.AckGC).Keys) != 1 || !bytes.Equal(r.Resp.(*pb.AckGC).Keys[0], items[0].Key) {
		t.Fatalf("ack: %v, %v", r.Resp, r.Err)
	}
	if pending, _ := h.s.ChunkDeletePending(smSeg(1).Id, 1, "n2"); pending {
		t.Error("guard survived the ack")
	}
	h.must(smMove(1, 1, "", "n2", "repair"))
	if got := smNodes(t, h.s, 1); !smEq(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("placement %q", got)
	}
	if n, _ := h.s.GCBacklog(); n != 0 {
		t.Errorf("backlog %d", n)
	}
	smCheckIndexes(t, h.s, "end")
}
