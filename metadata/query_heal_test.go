package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smAllSegments recomputes every referenced segment with its owner from
// the object and part records, in id order.
func smAllSegments(t *testing.T, s *State) []SegmentInfo {
	t.Helper()
	var out []SegmentInfo
	lb, _ := s.ListBuckets(&pb.ListBucketsRequest{})
	for _, b := range lb.Buckets {
		lo, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: b.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range lo.Objects {
			full, _ := smGetObject(t, s, b.Name, o.Key)
			for _, seg := range full.Segments {
				out = append(out, SegmentInfo{Segment: seg, Owner: SegmentOwner{Bucket: b.Name, Key: o.Key, VersionID: full.VersionId}})
			}
		}
		// Noncurrent versions (the workload versions some buckets).
		lv, err := s.ListObjectVersions(&pb.ListObjectVersionsRequest{Bucket: b.Name})
		if err != nil || lv.IsTruncated {
			t.Fatalf("list versions: %v (truncated: %v)", err, lv.GetIsTruncated())
		}
		for _, v := range lv.Versions {
			full, err := s.GetObject(&pb.GetObjectRequest{Bucket: b.Name, Key: v.Key, VersionId: S3VersionID(v)})
			if err != nil {
				t.Fatal(err)
			}
			if full.Object.NoncurrentSinceUnixNano == 0 {
				continue // current: counted above
			}
			for _, seg := range full.Object.Segments {
				out = append(out, SegmentInfo{Segment: seg, Owner: SegmentOwner{Bucket: b.Name, Key: v.Key, VersionID: full.Object.VersionId}})
			}
		}
		lu, _ := s.ListMultipartUploads(&pb.ListMultipartUploadsRequest{Bucket: b.Name})
		for _, u := range lu.Uploads {
			for _, p := range smParts(t, s, b.Name, u.Key, u.UploadId) {
				for _, seg := range p.Segments {
					out = append(out, SegmentInfo{Segment: seg, Owner: SegmentOwner{Bucket: b.Name, Key: u.Key, UploadID: u.UploadId, PartNumber: p.Number}})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b SegmentInfo) int { return bytes.Compare(a.Segment.Id, b.Segment.Id) })
	return out
}

// smPages collects every page of a paginated segment query: each page has
// at most limit segments, in id order after the cursor, and a next at its
// last id; only the last page is short.
func smPages(t *testing.T, limit int, q func(after []byte, limit int) ([]SegmentInfo, []byte, error)) []SegmentInfo {
	t.Helper()
	return smWalkPages(t, limit, false, q)
}

// smShortPages is smPages for a query whose pages may be short, even
// empty, before the end (SegmentsOnNodes): next is at or past the page's
// last id.
func smShortPages(t *testing.T, limit int, q func(after []byte, limit int) ([]SegmentInfo, []byte, error)) []SegmentInfo {
	t.Helper()
	return smWalkPages(t, limit, true, q)
}

func smWalkPages(t *testing.T, limit int, short bool, q func(after []byte, limit int) ([]SegmentInfo, []byte, error)) []SegmentInfo {
	t.Helper()
	var all []SegmentInfo
	var after []byte
	for pages := 0; ; pages++ {
		infos, next, err := q(after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) > limit || (!short && next != nil && len(infos) != limit) {
			t.Fatalf("page of %d with limit %d, next %x", len(infos), limit, next)
		}
		for _, in := range infos {
			if after != nil && bytes.Compare(in.Segment.Id, after) <= 0 {
				t.Fatalf("segment %x on the page after %x", in.Segment.Id, after)
			}
			after = in.Segment.Id
		}
		all = append(all, infos...)
		if next == nil {
			return all
		}
		if c := bytes.Compare(next, after); c < 0 || (!short && c != 0) {
			t.Fatalf("next %x, the page's last id %x", next, after)
		}
		if pages > 100000 {
			t.Fatal("paging does not end")
		}
		after = next
	}
}

func smSameInfos(t *testing.T, what string, got, want []SegmentInfo) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d segments, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i].Segment, want[i].Segment) || got[i].Owner != want[i].Owner {
			t.Fatalf("%s: #%d = %v %+v, want %v %+v", what, i, got[i].Segment, got[i].Owner, want[i].Segment, want[i].Owner)
		}
	}
}

// TestSegmentQueries pages through every segment query with several page
// sizes and compares with what the records say.
func TestSegmentQueries(t *testing.T) {
	h := smNew(t)
	nodes := []string{"n1", "n2", "n3", "n4", "n5", "n\x00x"}
	for _, n := range nodes {
		h.must(smRegister(n, "h", "z", 1))
	}
	w := &smWorkload{t: t, s: h.s, rng: rand.New(rand.NewPCG(7, 7)), nodes: nodes}
	h.must(smCreateBucket("b0"), smCreateBucket("b1"))
	for i := range 400 {
		h.do(w.next())
		if i%5 == 0 { // keys the workload does not touch, so segments pile up
			h.must(smCommit(&pb.Object{Bucket: "b1", Key: fmt.Sprint("x", i), VersionId: fmt.Sprint("x", i), Segments: append(w.segs(), w.seg())}, nil))
		}
	}
	all := smAllSegments(t, h.s)
	if len(all) < 20 {
		t.Fatalf("only %d segments", len(all))
	}
	for _, limit := range []int{1, 3, 1000} {
		smSameInfos(t, fmt.Sprint("scan/", limit), smPages(t, limit, h.s.ScanSegments), all)
		var missing []SegmentInfo
		for _, in := range all {
			if slices.Contains(in.Segment.Nodes, "") {
				missing = append(missing, in)
			}
		}
		smSameInfos(t, fmt.Sprint("missing/", limit), smPages(t, limit, h.s.SegmentsWithMissing), missing)
		for _, n := range nodes {
			var on []SegmentInfo
			var chunks, size int64
			for _, in := range all {
				if slices.Contains(in.Segment.Nodes, n) {
					on = append(on, in)
				}
				for _, x := range in.Segment.Nodes {
					if x == n {
						chunks++
						size += chunkBytes(in.Segment)
					}
				}
			}
			for _, budget := range []int{defaultNodeScanBudget, 7} {
				h.s.nodeScanBudget = budget
				smSameInfos(t, fmt.Sprint("node ", n, "/", limit, "/", budget), smShortPages(t, limit, func(after []byte, limit int) ([]SegmentInfo, []byte, error) {
					return h.s.SegmentsOnNode(n, after, limit)
				}), on)
			}
			gc, gs, err := h.s.NodeUsage(n)
			if err != nil || gc != chunks || gs != size {
				t.Errorf("usage of %q: %d chunks %d bytes (%v), want %d, %d", n, gc, gs, err, chunks, size)
			}
		}
	}
	// Several nodes in one pass: a segment once, however many of them it
	// is on; "" (a missing chunk) is no node.
	for _, set := range [][]string{{"n1", "n\x00x"}, {"n2", "n3", "n4"}, {""}, {"nobody"}} {
		var on []SegmentInfo
		for _, in := range all {
			if slices.ContainsFunc(in.Segment.Nodes, func(n string) bool { return n != "" && slices.Contains(set, n) }) {
				on = append(on, in)
			}
		}
		for _, budget := range []int{defaultNodeScanBudget, 5} {
			h.s.nodeScanBudget = budget
			smSameInfos(t, fmt.Sprint("nodes ", set, "/", budget), smShortPages(t, 4, func(after []byte, limit int) ([]SegmentInfo, []byte, error) {
				return h.s.SegmentsOnNodes(set, after, limit)
			}), on)
		}
	}
	for _, in := range all {
		got, err := h.s.Segment(in.Segment.Id)
		if err != nil || !proto.Equal(got.Segment, in.Segment) || got.Owner != in.Owner {
			t.Fatalf("Segment(%x) = %v %+v, %v", in.Segment.Id, got.Segment, got.Owner, err)
		}
	}
	if _, err := h.s.Segment(smSeg(200).Id); !smIsCond(err, metaerr.ErrNoSuchKey) {
		t.Errorf("unreferenced segment: %v", err)
	}
	if _, err := h.s.Segment([]byte{1}); !smIsCond(err, metaerr.ErrNoSuchKey) {
		t.Errorf("malformed id: %v", err)
	}

	// GC entries page in key order; the backlog counts them.
	want := smGC(t, h.s)
	if len(want) < 3 {
		t.Fatalf("only %d gc entries: paging is not exercised", len(want))
	}
	var got []*pb.GCEntry
	var after []byte
	for {
		items, err := h.s.GCEntries(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			got = append(got, it.Entry)
		}
		after = items[len(items)-1].Key
	}
	if len(got) != len(want) {
		t.Fatalf("paged %d gc entries, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("gc #%d %v, want %v", i, got[i], want[i])
		}
	}
	if n, err := h.s.GCBacklog(); err != nil || n != int64(len(want)) {
		t.Errorf("backlog %d, %v; want %d", n, err, len(want))
	}
}

func TestNodeAndRebalanceQueries(t *testing.T) {
	h := smNew(t)
	if r, err := h.s.Rebalance(); r != nil || err != nil {
		t.Errorf("rebalance before any: %v, %v", r, err)
	}
	if _, err := h.s.Node("n1"); !smIsCond(err, metaerr.ErrNoSuchNode) {
		t.Errorf("unknown node: %v", err)
	}
	h.must(smRegister("n1", "h:1", "z1", 5), smSetState("n1", pb.NodeState_NODE_STATE_SUSPECT))
	n, err := h.s.Node("n1")
	if err != nil || n.Address != "h:1" || n.State != pb.NodeState_NODE_STATE_SUSPECT {
		t.Errorf("node %v, %v", n, err)
	}
	if c, b, err := h.s.NodeUsage("nobody"); c != 0 || b != 0 || err != nil {
		t.Errorf("usage of unknown node: %d %d %v", c, b, err)
	}
}
