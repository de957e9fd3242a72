package metadata

import (
	"testing"

	"github.com/dgraph-io/badger/v4"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
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

// TestBucketQuota: a commit that would take a bucket over its quota of
// bytes or objects is refused with QuotaExceeded and changes nothing, in
// one entry or with earlier entries of its batch counted; deletes and
// shrinking overwrites always pass; a removed quota limits nothing.
func TestBucketQuota(t *testing.T) {
	h := smNew(t)
	quota := func(bytes, objects int64) *pb.Command {
		return &pb.Command{Op: &pb.Command_SetBucketQuota{SetBucketQuota: &pb.SetBucketQuotaRequest{Name: "q",
			Quota: &pb.BucketQuota{MaxBytes: bytes, MaxObjects: objects}}}}
	}
	usage := func() (int64, int64) {
		t.Helper()
		r, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "q"})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetBucket().GetUsage().GetObjects(), r.GetBucket().GetUsage().GetBytes()
	}
	h.must(smCreateBucket("q"), quota(30, 3))
	for _, tc := range []struct {
		name          string
		cmd           *pb.Command
		want          error
		objects, size int64
	}{
		{"within", smPut("q", "a", "e1", smSeg(1)), nil, 1, 10},
		{"up to the byte limit", smPut("q", "b", "e2", smSeg(2), smSeg(3)), nil, 2, 30},
		{"a byte over", smPut("q", "c", "e3", smSeg(4)), metaerr.ErrQuotaExceeded, 2, 30},
		{"an overwrite that grows", smPut("q", "a", "e4", smSeg(5), smSeg(6)), metaerr.ErrQuotaExceeded, 2, 30},
		{"an overwrite that shrinks", smPut("q", "b", "e5", smSeg(7)), nil, 2, 20},
		{"an empty object", smPut("q", "d", "e6"), nil, 3, 20},
		{"an object over the count", smPut("q", "e", "e7"), metaerr.ErrQuotaExceeded, 3, 20},
		{"a delete", smDelete("q", "d", nil), nil, 2, 20},
		{"a multipart upload over", smCreateUpload("q", "mp", "U1"), nil, 2, 20},
		{"its part (parts are not counted)", smPutPart("q", "mp", "U1", 1, "p1", smSeg(8), smSeg(9)), nil, 2, 20},
		{"completing it", smComplete("U1", smObj("q", "mp", "m", smSeg(8), smSeg(9)), nil, smCP(1, "p1")), metaerr.ErrQuotaExceeded, 2, 20},
	} {
		if err := h.do(tc.cmd).Err; !smIsCond(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if o, b := usage(); o != tc.objects || b != tc.size {
			t.Fatalf("after %s: %d objects, %d bytes; want %d, %d", tc.name, o, b, tc.objects, tc.size)
		}
	}

	// Two commits in one batch: the second counts the first.
	rs := h.s.ApplyBatch([]Entry{h.entry(smPut("q", "f", "e8")), h.entry(smPut("q", "g", "e9"))})
	h.next += 2
	if rs[0].Err != nil || !smIsCond(rs[1].Err, metaerr.ErrQuotaExceeded) {
		t.Fatalf("a batch of two puts with room for one: %v, %v", rs[0].Err, rs[1].Err)
	}
	if o, _ := usage(); o != 3 {
		t.Fatalf("after the batch: %d objects, want 3", o)
	}

	// Refused: negative limits. Removed: anything goes.
	if err := h.do(quota(-1, 0)).Err; !smIsCond(err, metaerr.ErrInvalidArgument) {
		t.Fatalf("a negative quota: %v", err)
	}
	h.must(quota(0, 0), smPut("q", "g", "e10", smSeg(10), smSeg(11), smSeg(12)))
	if o, b := usage(); o != 4 || b != 50 {
		t.Fatalf("without a quota: %d objects, %d bytes; want 4, 50", o, b)
	}
}
