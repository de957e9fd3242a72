package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// The segment indexes. Every segment referenced by an object or a part has
//
//   - seg/<id>: which record owns it and where (segRef), with a copy of the
//     Segment, so Segment(id) and the scans never decode owner records (an
//     object may hold tens of thousands of segments);
//   - a count in nu/<node> for each non-empty placement entry, with the
//     chunk's file size (nodeusage.go): NodeUsage reads one key, and
//     SegmentsOnNode filters seg/;
//   - miss/<id> when any placement entry is "" (written degraded, or a
//     chunk marked bad).
//
// Invariants, kept by every command in the same transaction as the records
// (checked against a brute-force recomputation in apply_index_test.go):
// the seg/ entries are exactly the segments of all o/, v/ and p/ records, each
// copy equal to the record's; nu/ and miss/ are exactly what those segments'
// placements say. A segment id is referenced by at most one record: commits
// that reuse a referenced id are refused (ids are fresh per write; a reused
// one would let GC of one owner delete the other's chunks).

// SegmentOwner names the record that references a segment: an object
// version (UploadID "") or a part of an in-progress multipart upload
// (VersionID "").
type SegmentOwner struct {
	Bucket, Key, VersionID, UploadID string
	PartNumber                       int32
}

// SegmentInfo is a referenced segment (with its current placement) and its
// owner.
type SegmentInfo struct {
	Segment *metadatapb.Segment
	Owner   SegmentOwner
}

// segRef is the value of seg/<id>:
//
//	uvarint position, uvarint len + owner record key,
//	uvarint len + owner version id, Segment (deterministic protobuf)
type segRef struct {
	owner     []byte // o/..., v/... or p/... key of the owning record
	pos       int    // index in the owner's segments
	versionID string
	seg       *metadatapb.Segment
}

func (r segRef) encode() ([]byte, error) {
	return r.appendTo(make([]byte, 0, r.space()))
}

// appendTo appends the encoded r to b. It must follow r.space, which sizes
// r.seg.
func (r segRef) appendTo(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(r.pos))
	b = binary.AppendUvarint(b, uint64(len(r.owner)))
	b = append(b, r.owner...)
	b = binary.AppendUvarint(b, uint64(len(r.versionID)))
	b = append(b, r.versionID...)
	b, err := marshalSized(b, r.seg)
	if err != nil {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "store segment %x: %v", r.seg.GetId(), err)
	}
	return b, nil
}

// space is an upper bound of r's encoded size.
func (r segRef) space() int {
	return 3*binary.MaxVarintLen64 + len(r.owner) + len(r.versionID) + grpcbuf.Size(r.seg)
}

func decodeSegRef(b []byte) (segRef, error) {
	var r segRef
	bad := func(what string) (segRef, error) {
		return segRef{}, fmt.Errorf("corrupt segment index entry: %s", what)
	}
	pos, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("position")
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return bad("owner key")
	}
	r.pos, r.owner = int(pos), b[n:n+int(l)]
	b = b[n+int(l):]
	l, n = binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return bad("version id")
	}
	r.versionID = string(b[n : n+int(l)])
	r.seg = &metadatapb.Segment{}
	if err := grpcbuf.UnmarshalUnchecked(b[n+int(l):], r.seg); err != nil {
		return bad(err.Error())
	}
	return r, nil
}

// info turns a segRef into the SegmentInfo the queries return.
func (r segRef) info() (SegmentInfo, error) {
	o, ok := ownerFromKey(r.owner)
	if !ok {
		return SegmentInfo{}, fmt.Errorf("corrupt segment index entry: owner key %q", r.owner)
	}
	o.VersionID = r.versionID
	return SegmentInfo{Segment: r.seg, Owner: o}, nil
}

// chunkBytes is the size of each chunk file of seg (chunk.Layout), 0 when
// the segment's parameters are not a valid layout.
func chunkBytes(seg *metadatapb.Segment) int64 {
	p := chunk.Params{
		Scheme:    chunk.Scheme{K: int(seg.GetScheme().GetK()), M: int(seg.GetScheme().GetM())},
		BlockSize: int(seg.GetBlockSize()),
	}
	l, err := chunk.NewLayout(p, seg.GetSize())
	if err != nil {
		return 0
	}
	return l.ChunkSize()
}

func hasMissing(seg *metadatapb.Segment) bool {
	for _, n := range seg.GetNodes() {
		if n == "" {
			return true
		}
	}
	return false
}

// checkNewSegments refuses segments a command wants to reference for the
// first time unless each has a 16-byte id not referenced anywhere (nor
// twice in segs) and a placement the indexes can hold: at most
// chunk.MaxShards entries (exactly k+m when the segment has a scheme),
// node ids of at most maxIDLen bytes.
func (a *applier) checkNewSegments(what string, segs []*metadatapb.Segment) error {
	var seen map[string]bool
	if len(segs) > 1 {
		seen = make(map[string]bool, len(segs))
	}
	for i, seg := range segs {
		id := seg.GetId()
		if len(id) != segmentIDLen {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %d has a %d-byte id, want %d", what, i, len(id), segmentIDLen)
		}
		nodes := seg.GetNodes()
		if len(nodes) > chunk.MaxShards {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %x has %d placement entries, at most %d", what, id, len(nodes), chunk.MaxShards)
		}
		if sch := seg.GetScheme(); sch.GetK() > 0 && uint64(len(nodes)) != uint64(sch.GetK())+uint64(sch.GetM()) {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %x has %d placement entries for scheme %d+%d", what, id, len(nodes), sch.GetK(), sch.GetM())
		}
		for _, n := range nodes {
			if len(n) > maxIDLen {
				return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %x: node id longer than %d bytes", what, id, maxIDLen)
			}
		}
		if seen != nil {
			if seen[string(id)] {
				return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %x listed twice", what, id)
			}
			seen[string(id)] = true
		}
		a.st.scratch = appendSegmentKey(a.st.scratch[:0], id)
		if found, err := a.st.has(a.st.scratch); err != nil {
			return err
		} else if found {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: segment %x is already referenced (segment ids must be fresh)", what, id)
		}
	}
	return nil
}

// putSegRef stages seg/<id> for the segment at position pos of the record
// at owner.
func (a *applier) putSegRef(owner []byte, pos int, versionID string, seg *metadatapb.Segment) error {
	r := segRef{owner: owner, pos: pos, versionID: versionID, seg: seg}
	v, err := r.appendTo(a.st.space(r.space()))
	if err != nil {
		return err
	}
	a.st.scratch = appendSegmentKey(a.st.scratch[:0], seg.GetId())
	a.st.set(a.st.scratch, v)
	return nil
}

// indexAdd stages the index entries of segs, newly referenced by the
// record at owner (checked by checkNewSegments).
func (a *applier) indexAdd(owner []byte, versionID string, segs []*metadatapb.Segment) error {
	for i, seg := range segs {
		if err := a.putSegRef(owner, i, versionID, seg); err != nil {
			return err
		}
		a.indexPlacement(seg)
	}
	return nil
}

// indexPlacement counts every non-empty placement entry of seg on its node
// and stages miss/ when one is empty.
func (a *applier) indexPlacement(seg *metadatapb.Segment) {
	a.countPlacement(seg, +1)
	if hasMissing(seg) {
		a.st.set(missingKey(seg.GetId()), []byte{})
	}
}

// countPlacement adds (sign +1) or removes (-1) seg's chunks to or from the
// counts of the nodes its placement names.
func (a *applier) countPlacement(seg *metadatapb.Segment, sign int64) {
	size := int64(-1)
	for _, n := range seg.GetNodes() {
		if n == "" {
			continue
		}
		if size < 0 {
			size = chunkBytes(seg)
		}
		a.st.addUsage(n, size, sign)
	}
}

// indexRemove stages the removal of the index entries of segs, no longer
// referenced by their record.
func (a *applier) indexRemove(segs []*metadatapb.Segment) {
	for _, seg := range segs {
		id := seg.GetId()
		a.st.del(segmentKey(id))
		a.countPlacement(seg, -1)
		if hasMissing(seg) {
			a.st.del(missingKey(id))
		}
	}
}

// indexMove stages new seg/ entries for segs, which now belong to the
// record at owner (CompleteMultipart: from parts to the object). Their
// placements, and so nu/ and miss/, are unchanged.
func (a *applier) indexMove(owner []byte, versionID string, segs []*metadatapb.Segment) error {
	for i, seg := range segs {
		if err := a.putSegRef(owner, i, versionID, seg); err != nil {
			return err
		}
	}
	return nil
}

// readSegRef reads seg/<id> as the command sees it.
func (a *applier) readSegRef(id []byte) (segRef, bool, error) {
	if len(id) != segmentIDLen {
		return segRef{}, false, nil
	}
	v, found, err := a.st.getRaw(segmentKey(id))
	if err != nil || !found {
		return segRef{}, false, err
	}
	r, err := decodeSegRef(v)
	if err != nil {
		return segRef{}, false, fmt.Errorf("segment %x: %w", id, err)
	}
	r.owner = bytes.Clone(r.owner)
	return r, true, nil
}

// ownerRecord is a decoded object or part that owns segments.
type ownerRecord struct {
	key  []byte
	obj  *metadatapb.Object
	part *metadatapb.Part
}

func (o ownerRecord) segments() []*metadatapb.Segment {
	if o.obj != nil {
		return o.obj.GetSegments()
	}
	return o.part.GetSegments()
}

// readOwner reads the record a seg/ entry names. Its absence is corrupt
// state, not a condition.
func (a *applier) readOwner(key []byte) (ownerRecord, error) {
	o := ownerRecord{key: key}
	var m proto.Message
	switch {
	case bytes.HasPrefix(key, prefixObject):
		o.obj = &metadatapb.Object{}
		m = o.obj
	case bytes.HasPrefix(key, prefixPart):
		o.part = &metadatapb.Part{}
		m = o.part
	case bytes.HasPrefix(key, prefixVersion):
		o.obj = &metadatapb.Object{}
		m = o.obj
	default:
		return o, fmt.Errorf("corrupt segment index: owner key %q", key)
	}
	found, err := a.st.get(key, m)
	if err != nil {
		return o, err
	}
	if !found {
		return o, fmt.Errorf("corrupt segment index: owner %q does not exist", key)
	}
	return o, nil
}

// ownerSegment returns the segment at ref's position in its owner record,
// checking that the index and the record agree.
func (a *applier) ownerSegment(ref segRef) (ownerRecord, *metadatapb.Segment, error) {
	o, err := a.readOwner(ref.owner)
	if err != nil {
		return o, nil, err
	}
	segs := o.segments()
	if ref.pos >= len(segs) || !proto.Equal(segs[ref.pos], ref.seg) {
		return o, nil, fmt.Errorf("corrupt segment index: %q does not hold segment %x at %d as indexed", ref.owner, ref.seg.GetId(), ref.pos)
	}
	return o, segs[ref.pos], nil
}

// setPlacement sets one placement entry of the segment ref names, in its
// owner record and in every index, staged together. The caller has checked
// that the entry holds old and that new differs.
func (a *applier) setPlacement(ref segRef, shard int, newNode string) (*metadatapb.Segment, error) {
	o, seg, err := a.ownerSegment(ref)
	if err != nil {
		return nil, err
	}
	old := seg.Nodes[shard]
	wasMissing := hasMissing(seg)
	seg.Nodes[shard] = newNode
	var m proto.Message = o.part
	if o.obj != nil {
		m = o.obj
	}
	if err := a.st.put(o.key, m); err != nil {
		return nil, err
	}
	if err := a.putSegRef(ref.owner, ref.pos, ref.versionID, seg); err != nil {
		return nil, err
	}
	id := seg.GetId()
	size := chunkBytes(seg)
	if old != "" {
		a.st.addUsage(old, size, -1)
	}
	if newNode != "" {
		a.st.addUsage(newNode, size, +1)
	}
	switch nowMissing := hasMissing(seg); {
	case nowMissing && !wasMissing:
		a.st.set(missingKey(id), []byte{})
	case !nowMissing && wasMissing:
		a.st.del(missingKey(id))
	}
	return seg, nil
}

// queueChunkGC queues the deletion of single chunks of a still-referenced
// segment: nodes maps shard index to the node holding the chunk to delete.
// The GC entry carries the segment with only those placement entries set,
// so the GC loop treats it like any released segment; each chunk gets a
// gcc/ guard (see keys.go) until AckGC.
func (a *applier) queueChunkGC(ref segRef, seg *metadatapb.Segment, nodes map[int]string) error {
	o, ok := ownerFromKey(ref.owner)
	if !ok {
		return fmt.Errorf("corrupt segment index: owner key %q", ref.owner)
	}
	g := proto.CloneOf(seg)
	g.Nodes = make([]string, len(seg.GetNodes()))
	for shard, n := range nodes {
		g.Nodes[shard] = n
	}
	key, err := a.queueGCSeq(&metadatapb.GCEntry{
		Bucket: o.Bucket, Key: o.Key, VersionId: ref.versionID, UploadId: o.UploadID, PartNumber: o.PartNumber,
		Segments: []*metadatapb.Segment{g},
	}, chunkGCSeq)
	if err != nil {
		return err
	}
	for shard, n := range g.Nodes {
		if n != "" {
			a.st.set(chunkGCKey(g.GetId(), shard, n), key)
		}
	}
	return nil
}
