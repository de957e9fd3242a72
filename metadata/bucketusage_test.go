package metadata

import (
	"bytes"
	"encoding/binary"
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
// shrinking overwrites always pass; a removed quota limits nothing. The
// state records no member at level 6, so parts are not refused and a
// completion counts its object's bytes (TestBucketQuotaUploads has the
// rules of level 6).
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
		{"its part (parts are not refused)", smPutPart("q", "mp", "U1", 1, "p1", smSeg(8), smSeg(9)), nil, 2, 20},
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

// smMemberAt records metad member id at feature level level.
func smMemberAt(id string, level uint32) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetMemberAddress{SetMemberAddress: &pb.SetMemberAddress{
		Id: id, GrpcAddress: id + ":1", FeatureLevel: level}}}
}

// smSizedPart is smPutPart of a part of size bytes.
func smSizedPart(bucket, key, id string, n int32, etag string, size int64, segs ...*pb.Segment) *pb.Command {
	c := smPutPart(bucket, key, id, n, etag, segs...)
	c.GetPutPart().Part.Size = size
	return c
}

// smBucketUsage is a bucket's counts as GetBucket answers them.
func smBucketUsage(t testing.TB, s *State, bucket string) chunkCount {
	t.Helper()
	r, err := s.GetBucket(&pb.GetBucketRequest{Name: bucket})
	if err != nil {
		t.Fatal(err)
	}
	u := r.GetBucket().GetUsage()
	return chunkCount{chunks: u.GetObjects(), bytes: u.GetBytes(), uploads: u.GetUploadBytes(),
		versions: u.GetNoncurrentVersions(), versionBytes: u.GetNoncurrentBytes()}
}

// TestBucketUsageUploads: a bucket's upload bytes count the parts of its
// uploads in progress, through every command that changes them: a part, a
// part replacing one of its number (larger or smaller), a completion
// (every part of the upload leaves them, listed or not), an abort and a
// DeleteBucket; the derived counts stay what a recount finds.
func TestBucketUsageUploads(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("a"), smCreateBucket("b"))
	for _, tc := range []struct {
		name string
		cmd  *pb.Command
		want chunkCount // of bucket a afterwards
	}{
		{"an upload", smCreateUpload("a", "mp", "U1"), chunkCount{}},
		{"a part", smSizedPart("a", "mp", "U1", 1, "p1", 100, smSeg(1)), chunkCount{uploads: 100}},
		{"another", smSizedPart("a", "mp", "U1", 2, "p2", 50, smSeg(2)), chunkCount{uploads: 150}},
		{"a third, left out of the completion", smSizedPart("a", "mp", "U1", 3, "p3", 7, smSeg(3)), chunkCount{uploads: 157}},
		{"part 1 replaced by a larger one", smSizedPart("a", "mp", "U1", 1, "p1b", 120, smSeg(4)), chunkCount{uploads: 177}},
		{"part 2 replaced by a smaller one", smSizedPart("a", "mp", "U1", 2, "p2b", 30, smSeg(5)), chunkCount{uploads: 157}},
		{"a part of a missing upload", smSizedPart("a", "mp", "nope", 1, "x", 5, smSeg(6)), chunkCount{uploads: 157}},
		{"a second upload", smCreateUpload("a", "other", "U2"), chunkCount{uploads: 157}},
		{"its part", smSizedPart("a", "other", "U2", 1, "q1", 40, smSeg(7)), chunkCount{uploads: 197}},
		{"a refused completion", smComplete("U1", smObj("a", "mp", "m", smSeg(4)), nil, smCP(1, "wrong")), chunkCount{uploads: 197}},
		{"U1 completed with parts 1 and 2", func() *pb.Command {
			o := smObj("a", "mp", "m", smSeg(4), smSeg(5))
			o.Size = 150
			return smComplete("U1", o, nil, smCP(1, "p1b"), smCP(2, "p2b"))
		}(), chunkCount{chunks: 1, bytes: 150, uploads: 40}},
		{"an upload in another bucket", smCreateUpload("b", "k", "U3"), chunkCount{chunks: 1, bytes: 150, uploads: 40}},
		{"U2 aborted", smAbort("a", "other", "U2"), chunkCount{chunks: 1, bytes: 150}},
	} {
		r := h.do(tc.cmd)
		if got := smBucketUsage(t, h.s, "a"); got != tc.want {
			t.Fatalf("after %s (%v): bucket a counts %+v; want %+v", tc.name, r.Err, got, tc.want)
		}
		smCheckIndexes(t, h.s, tc.name)
	}

	// DeleteBucket aborts the uploads left: their parts leave the counts,
	// and with them the bucket's entry.
	h.must(smSizedPart("b", "k", "U3", 1, "r1", 60, smSeg(8)), smSizedPart("b", "k", "U3", 2, "r2", 70, smSeg(9)))
	if got := smBucketUsage(t, h.s, "b"); got != (chunkCount{uploads: 130}) {
		t.Fatalf("bucket b counts %+v, want 130 upload bytes", got)
	}
	h.must(smDeleteBucket("b"))
	if n := smCount(t, h.s, bucketUsageKey("b")); n != 0 {
		t.Fatalf("a deleted bucket keeps %d count entries", n)
	}
	smCheckIndexes(t, h.s, "bucket b deleted")

	// Completing moves the bytes in one batch too, after parts of the
	// same batch.
	rs := h.s.ApplyBatch([]Entry{
		h.entry(smCreateUpload("a", "mp2", "U4")),
		h.entry(smSizedPart("a", "mp2", "U4", 1, "s1", 25, smSeg(10))),
		h.entry(func() *pb.Command {
			o := smObj("a", "mp2", "m2", smSeg(10))
			o.Size = 25
			return smComplete("U4", o, nil, smCP(1, "s1"))
		}()),
	})
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("batch command %d: %v", i, r.Err)
		}
	}
	if got := smBucketUsage(t, h.s, "a"); got != (chunkCount{chunks: 2, bytes: 175}) {
		t.Fatalf("after a batch that uploads and completes: %+v, want 2 objects, 175 bytes, no upload bytes", got)
	}
	smCheckIndexes(t, h.s, "batch")
}

// TestBucketQuotaUploads: once every member records feature level 6, a
// bucket's quota of bytes bounds its objects' and uploads' bytes
// together: a part, or a commit, that would go over is refused and
// changes nothing; a part no bigger than the one it replaces passes; a
// completion grows no bytes, so it passes even over a lowered quota, and
// only one adding an object can hit the objects limit; an abort frees
// room. With a member below 6 the earlier rules hold: parts pass, and
// completions count the object's bytes.
func TestBucketQuotaUploads(t *testing.T) {
	h := smNew(t)
	quota := func(bytes, objects int64) *pb.Command {
		return &pb.Command{Op: &pb.Command_SetBucketQuota{SetBucketQuota: &pb.SetBucketQuotaRequest{Name: "q",
			Quota: &pb.BucketQuota{MaxBytes: bytes, MaxObjects: objects}}}}
	}
	complete := func(id, key string, size int64, segs []*pb.Segment, parts ...*pb.CompletePart) *pb.Command {
		o := smObj("q", key, "m-"+id, segs...)
		o.Size = size
		return smComplete(id, o, nil, parts...)
	}
	h.must(smMemberAt("m1", FeatureLevel), smMemberAt("m2", quotaUploadsLevel),
		smCreateBucket("q"), quota(100, 2),
		smCreateUpload("q", "mp", "U1"), smCreateUpload("q", "mp2", "U2"))
	for _, tc := range []struct {
		name string
		cmd  *pb.Command
		want error
		u    chunkCount // bucket q's counts afterwards
	}{
		{"a part", smSizedPart("q", "mp", "U1", 1, "p1", 40, smSeg(1)), nil, chunkCount{uploads: 40}},
		{"a part of another upload", smSizedPart("q", "mp2", "U2", 1, "x1", 30, smSeg(11)), nil, chunkCount{uploads: 70}},
		{"a part a byte over", smSizedPart("q", "mp", "U1", 2, "p2", 31, smSeg(2)), metaerr.ErrQuotaExceeded, chunkCount{uploads: 70}},
		{"up to the limit", smSizedPart("q", "mp", "U1", 2, "p2", 30, smSeg(2)), nil, chunkCount{uploads: 100}},
		{"a part replaced by a larger one", smSizedPart("q", "mp", "U1", 2, "p2b", 31, smSeg(3)), metaerr.ErrQuotaExceeded, chunkCount{uploads: 100}},
		{"a part replaced by one as large", smSizedPart("q", "mp", "U1", 2, "p2c", 30, smSeg(4)), nil, chunkCount{uploads: 100}},
		{"a put while parts fill the quota", smPut("q", "k", "e1", smSeg(20)), metaerr.ErrQuotaExceeded, chunkCount{uploads: 100}},
		{"an empty object (no bytes)", smPut("q", "empty", "e0"), nil, chunkCount{chunks: 1, uploads: 100}},
		{"U1 completed, its bytes moved", complete("U1", "mp", 70, []*pb.Segment{smSeg(1), smSeg(4)}, smCP(1, "p1"), smCP(2, "p2c")), nil, chunkCount{chunks: 2, bytes: 70, uploads: 30}},
		{"U2 completed, an object over the count", complete("U2", "mp2", 30, []*pb.Segment{smSeg(11)}, smCP(1, "x1")), metaerr.ErrQuotaExceeded, chunkCount{chunks: 2, bytes: 70, uploads: 30}},
		{"an object deleted", smDelete("q", "empty", nil), nil, chunkCount{chunks: 1, bytes: 70, uploads: 30}},
		{"a part replacing U2's, smaller, once the quota is lowered", quota(50, 0), nil, chunkCount{chunks: 1, bytes: 70, uploads: 30}},
		{"(the part)", smSizedPart("q", "mp2", "U2", 1, "x2", 20, smSeg(12)), nil, chunkCount{chunks: 1, bytes: 70, uploads: 20}},
		{"a part growing an over-quota bucket", smSizedPart("q", "mp2", "U2", 2, "x3", 1, smSeg(13)), metaerr.ErrQuotaExceeded, chunkCount{chunks: 1, bytes: 70, uploads: 20}},
		{"U2 completed over the lowered quota (grows nothing)", complete("U2", "mp2", 20, []*pb.Segment{smSeg(12)}, smCP(1, "x2")), nil, chunkCount{chunks: 2, bytes: 90}},
		{"quota raised", quota(150, 0), nil, chunkCount{chunks: 2, bytes: 90}},
		{"an upload", smCreateUpload("q", "mp3", "U3"), nil, chunkCount{chunks: 2, bytes: 90}},
		{"its part", smSizedPart("q", "mp3", "U3", 1, "y1", 60, smSeg(14)), nil, chunkCount{chunks: 2, bytes: 90, uploads: 60}},
		{"a put that needs the part's room", smPut("q", "k", "e2", smSeg(21)), metaerr.ErrQuotaExceeded, chunkCount{chunks: 2, bytes: 90, uploads: 60}},
		{"the upload aborted", smAbort("q", "mp3", "U3"), nil, chunkCount{chunks: 2, bytes: 90}},
		{"the put, with room made", smPut("q", "k", "e2", smSeg(21)), nil, chunkCount{chunks: 3, bytes: 100}},
	} {
		if err := h.do(tc.cmd).Err; !smIsCond(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := smBucketUsage(t, h.s, "q"); got != tc.u {
			t.Fatalf("after %s: counts %+v, want %+v", tc.name, got, tc.u)
		}
	}
	smCheckIndexes(t, h.s, "end of the quota cases")

	// Two parts in one batch with room for one: the second counts the
	// first.
	h.must(smCreateUpload("q", "mp4", "U4"))
	rs := h.s.ApplyBatch([]Entry{
		h.entry(smSizedPart("q", "mp4", "U4", 1, "z1", 30, smSeg(30))),
		h.entry(smSizedPart("q", "mp4", "U4", 2, "z2", 30, smSeg(31))),
	})
	if rs[0].Err != nil || !smIsCond(rs[1].Err, metaerr.ErrQuotaExceeded) {
		t.Fatalf("a batch of two parts with room for one: %v, %v", rs[0].Err, rs[1].Err)
	}
	if got := smBucketUsage(t, h.s, "q"); got != (chunkCount{chunks: 3, bytes: 100, uploads: 30}) {
		t.Fatalf("after the batch: %+v", got)
	}

	// A member recorded below level 6 (one not yet upgraded): the rules of
	// level 4, which it applies. Parts are counted but never refused; a
	// completion counts the object's bytes, not the sum. The record of a
	// member that comes back at level 6 restores the new rules, within
	// one batch too.
	h.must(smMemberAt("m3", quotaUploadsLevel-1))
	h.must(smSizedPart("q", "mp4", "U4", 2, "z2", 30, smSeg(31)))
	if got := smBucketUsage(t, h.s, "q"); got != (chunkCount{chunks: 3, bytes: 100, uploads: 60}) {
		t.Fatalf("a part over the quota with a member at level 5: %+v", got)
	}
	completeU4 := func() *pb.Command {
		return complete("U4", "mp4", 60, []*pb.Segment{smSeg(30), smSeg(31)}, smCP(1, "z1"), smCP(2, "z2"))
	}
	rs = h.s.ApplyBatch([]Entry{h.entry(completeU4()), h.entry(smMemberAt("m3", FeatureLevel)), h.entry(completeU4())})
	if !smIsCond(rs[0].Err, metaerr.ErrQuotaExceeded) || rs[1].Err != nil || rs[2].Err != nil {
		t.Fatalf("in one batch, a completion over the objects' bytes with a member at level 5, the member at level 6, the completion again: %v, %v, %v",
			rs[0].Err, rs[1].Err, rs[2].Err)
	}
	if got := smBucketUsage(t, h.s, "q"); got != (chunkCount{chunks: 4, bytes: 160}) {
		t.Fatalf("after the completion: %+v", got)
	}
	smCheckIndexes(t, h.s, "end")
}

// TestBucketUsageRecount: a state of the previous counts' version (its
// marker at version 1, entries of two varints that count no parts) has
// its counts rebuilt from the objects and the parts when it is opened.
func TestBucketUsageRecount(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir, nil, smSmallBadger)
	if err != nil {
		t.Fatal(err)
	}
	h := &smHarness{t: t, s: s, next: s.AppliedIndex() + 1}
	h.must(smCreateBucket("a"), smCreateBucket("b"), smCreateBucket("c"),
		smPut("a", "k", "e", smSeg(1), smSeg(2)),
		smCreateUpload("a", "mp", "U1"), smSizedPart("a", "mp", "U1", 1, "p1", 33, smSeg(3)), smSizedPart("a", "mp", "U1", 2, "p2", 44, smSeg(4)),
		smCreateUpload("b", "mp", "U2"), smSizedPart("b", "mp", "U2", 1, "p1", 5, smSeg(5)),
		// c: no current object, two noncurrent versions and a marker.
		smSetVersioning("c", pb.VersioningStatus_VERSIONING_STATUS_ENABLED),
		smPut("c", "k", "e1", smSeg(6)), smPut("c", "k", "e2", smSeg(7)), smDelete("c", "k", nil))
	// What version 1 wrote for the same records.
	applied := h.s.AppliedIndex()
	if err := h.s.db.Update(func(txn *badger.Txn) error {
		old := appendU64(appendU64(nil, 1), applied)
		if err := txn.Set(keyBucketUsage, old); err != nil {
			return err
		}
		if err := txn.Set(bucketUsageKey("a"), binary.AppendVarint(binary.AppendVarint(nil, 1), 20)); err != nil {
			return err
		}
		// Version 1 had no entry for a bucket with parts only, and one
		// counting nothing could not exist; a stray one must go too.
		if err := txn.Delete(bucketUsageKey("b")); err != nil {
			return err
		}
		return txn.Set(bucketUsageKey("c"), binary.AppendVarint(binary.AppendVarint(nil, 3), 30))
	}); err != nil {
		t.Fatal(err)
	}
	// The two-varint value decodes, as the old count it is.
	if u := smBucketUsage(t, h.s, "a"); u != (chunkCount{chunks: 1, bytes: 20}) {
		t.Fatalf("a version 1 entry reads as %+v", u)
	}
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if h.s, err = openState(dir, nil, smSmallBadger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.s.Close() })
	for bucket, want := range map[string]chunkCount{"a": {chunks: 1, bytes: 20, uploads: 77}, "b": {uploads: 5}, "c": {versions: 3, versionBytes: 20}} {
		if got := smBucketUsage(t, h.s, bucket); got != want {
			t.Fatalf("after the recount: bucket %s counts %+v, want %+v", bucket, got, want)
		}
	}
	smCheckIndexes(t, h.s, "after the recount")
	current, err := h.s.holds(keyBucketUsage, bucketUsageMarker(h.s.AppliedIndex()))
	if err != nil || !current {
		t.Fatalf("the marker after the recount is not the current version's: %v, %v", current, err)
	}
}

// TestUsageEncoding: counts without upload bytes are the two varints they
// always were (node counts, and buckets without parts or versions); the
// third varint, and the fourth and fifth, round-trip; anything else is
// refused.
func TestUsageEncoding(t *testing.T) {
	for _, u := range []chunkCount{{}, {chunks: 3, bytes: 300}, {chunks: -1, bytes: 5, uploads: 7}, {uploads: 1 << 40},
		{chunks: 1, bytes: 2, versions: 3, versionBytes: 4}, {versions: 1}, {uploads: 9, versionBytes: 1 << 41}} {
		b := u.appendTo(nil)
		if u.uploads == 0 && u.versions == 0 && u.versionBytes == 0 && !bytes.Equal(b, binary.AppendVarint(binary.AppendVarint(nil, u.chunks), u.bytes)) {
			t.Fatalf("%+v encodes as %x, not two varints", u, b)
		}
		got, err := decodeUsage(b)
		if err != nil || got != u {
			t.Fatalf("%+v: decoded %+v, %v", u, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x80}, {2}, {2, 4, 6, 8}, {2, 4, 0x80}} {
		if u, err := decodeUsage(bad); err == nil {
			t.Fatalf("%x decoded as %+v", bad, u)
		}
	}
}
