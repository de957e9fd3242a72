package metadata

import (
	"testing"

	"github.com/dgraph-io/badger/v4"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// TestBucketUsage: GetBucket and ListBuckets answer each bucket's objects
// and bytes as commits, overwrites, multipart completions and deletes
// change them; a refused command changes nothing; a state without the
// counts (an earlier version's) has them rebuilt when opened.
func TestBucketUsage(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir, nil, smSmallBadger)
	if err != nil {
		t.Fatal(err)
	}
	h := &smHarness{t: t, s: s, next: s.AppliedIndex() + 1}
	usage := func(bucket string) (int64, int64) {
		t.Helper()
		r, err := h.s.GetBucket(&pb.GetBucketRequest{Name: bucket})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetBucket().GetUsage().GetObjects(), r.GetBucket().GetUsage().GetBytes()
	}
	h.must(smCreateBucket("a"), smCreateBucket("b"))
	for _, tc := range []struct {
		name          string
		cmd           *pb.Command
		objects, size int64 // of bucket a afterwards
	}{
		{"a first object", smPut("a", "k1", "e1", smSeg(1), smSeg(2)), 1, 20},
		{"a second", smPut("a", "k2", "e2", smSeg(3)), 2, 30},
		{"an overwrite, smaller", smPut("a", "k1", "e3", smSeg(4)), 2, 20},
		{"a refused conditional put", smCommit(smObj("a", "k2", "e4", smSeg(5), smSeg(6), smSeg(7)), &pb.Condition{MustNotExist: true}), 2, 20},
		{"a delete", smDelete("a", "k2", nil), 1, 10},
		{"a delete of nothing", smDelete("a", "nope", nil), 1, 10},
		{"an upload", smCreateUpload("a", "mp", "U1"), 1, 10},
		{"its part", smPutPart("a", "mp", "U1", 1, "p1", smSeg(8)), 1, 10},
		{"completed", smComplete("U1", smObj("a", "mp", "m", smSeg(8)), nil, smCP(1, "p1")), 2, 20},
		{"in another bucket", smPut("b", "k", "e", smSeg(10)), 2, 20},
	} {
		r := h.do(tc.cmd)
		if o, b := usage("a"); o != tc.objects || b != tc.size {
			t.Fatalf("after %s (%v): bucket a holds %d objects, %d bytes; want %d, %d", tc.name, r.Err, o, b, tc.objects, tc.size)
		}
	}
	l, err := h.s.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.GetBuckets()) != 2 || l.GetBuckets()[1].GetUsage().GetObjects() != 1 || l.GetBuckets()[1].GetUsage().GetBytes() != 10 {
		t.Fatalf("ListBuckets: %v", l.GetBuckets())
	}

	// An earlier version's state: no counts, no marker.
	if err := h.s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(keyBucketUsage); err != nil {
			return err
		}
		return txn.Delete(bucketUsageKey("a"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if h.s, err = openState(dir, nil, smSmallBadger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.s.Close() })
	if o, b := usage("a"); o != 2 || b != 20 {
		t.Fatalf("after the rebuild: bucket a holds %d objects, %d bytes; want 2, 20", o, b)
	}
}
