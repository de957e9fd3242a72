package metadata

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smVersions lists every version of bucket as "key@id" strings, with
// "*" after the latest and "(m)" after delete markers.
func smVersions(t testing.TB, s *State, bucket string) []string {
	t.Helper()
	resp, err := s.ListObjectVersions(&pb.ListObjectVersionsRequest{Bucket: bucket})
	if err != nil {
		t.Fatalf("list versions: %v", err)
	}
	var out []string
	for _, v := range resp.GetVersions() {
		e := v.GetKey() + "@" + S3VersionID(v)
		if v.GetDeleteMarker() {
			e += "(m)"
		}
		if v.GetIsLatest() {
			e += "*"
		}
		out = append(out, e)
	}
	return out
}

func smGetUsage(t testing.TB, s *State, bucket string) *pb.BucketUsage {
	t.Helper()
	b, err := s.GetBucket(&pb.GetBucketRequest{Name: bucket})
	if err != nil {
		t.Fatal(err)
	}
	return b.GetBucket().GetUsage()
}

// TestVersioningLifecycle walks one key through S3 versioning: an
// unversioned object, enabling, overwrites, a delete marker, deletes by
// version id making older versions current again, suspending (null
// versions replacing each other), and a bucket that cannot be deleted
// while versions remain. The indexes are checked after every step.
func TestVersioningLifecycle(t *testing.T) {
	h := smNew(t)
	s := h.s
	h.must(smCreateBucket("b"))
	step := func(name string, cmd *pb.Command, wantVersions ...string) Result {
		t.Helper()
		r := h.do(cmd)
		if r.Err != nil {
			t.Fatalf("%s: %v", name, r.Err)
		}
		if got := smVersions(t, s, "b"); !smVersionsMatch(got, wantVersions) {
			t.Fatalf("%s: versions %v, want %v", name, got, wantVersions)
		}
		smCheckIndexes(t, s, name)
		return r
	}
	put := func(etag string, seg byte) *pb.Command {
		o := smObj("b", "k", etag, smSeg(seg))
		o.VersionId = "id-" + etag
		return smCommit(o, nil)
	}
	get := func(id string, marker bool) (*pb.Object, error) {
		r, err := s.GetObject(&pb.GetObjectRequest{Bucket: "b", Key: "k", VersionId: id, IncludeDeleteMarker: marker})
		return r.GetObject(), err
	}

	r := step("unversioned put", put("e1", 1), "k@null*")
	if id := r.Resp.(*pb.CommitObjectResponse).GetVersionId(); id != "" {
		t.Fatalf("a never-versioned bucket answered version id %q", id)
	}
	step("unversioned overwrite", put("e2", 2), "k@null*")
	if gc := smGC(t, s); len(gc) != 1 || gc[0].GetVersionId() != "id-e1" {
		t.Fatalf("the overwritten unversioned object was not released: %v", gc)
	}

	step("enable", smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_ENABLED), "k@null*")
	r = step("put v3", put("e3", 3), "k@id-e3*", "k@null")
	if id := r.Resp.(*pb.CommitObjectResponse).GetVersionId(); id != "id-e3" {
		t.Fatalf("put answered version id %q", id)
	}
	step("put v4", put("e4", 4), "k@id-e4*", "k@id-e3", "k@null")
	if u := smGetUsage(t, s, "b"); u.GetObjects() != 1 || u.GetBytes() != 10 || u.GetNoncurrentVersions() != 2 || u.GetNoncurrentBytes() != 20 {
		t.Fatalf("usage %v", u)
	}
	if gc := smGC(t, s); len(gc) != 1 {
		t.Fatalf("a versioned overwrite released segments: %v", gc)
	}

	// A delete adds a marker; the data stays.
	r = step("delete", smDelete("b", "k", nil), "k@?(m)*", "k@id-e4", "k@id-e3", "k@null")
	del := r.Resp.(*pb.DeleteObjectResponse)
	if !del.GetDeleteMarker() || del.GetVersionId() == "" {
		t.Fatalf("delete answered %v", del)
	}
	marker := del.GetVersionId()
	if _, err := get("", false); !smIsCond(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("GET after the delete: %v", err)
	}
	if m, err := get("", true); err != nil || !m.GetDeleteMarker() || S3VersionID(m) != marker || !m.GetIsLatest() {
		t.Fatalf("GET with markers: %v, %v", m, err)
	}
	if m, err := get(marker, false); err != nil || !m.GetDeleteMarker() || !m.GetIsLatest() {
		t.Fatalf("GET of the marker by id: %v, %v", m, err)
	}
	if o, err := get("id-e3", false); err != nil || o.GetEtag() != "e3" || len(o.GetSegments()) != 1 || o.GetIsLatest() {
		t.Fatalf("GET of a noncurrent version: %v, %v", o, err)
	}
	if o, err := get("null", false); err != nil || o.GetEtag() != "e2" {
		t.Fatalf("GET of the null version: %v, %v", o, err)
	}
	if _, err := get("nope", false); !smIsCond(err, metaerr.ErrNoSuchVersion) {
		t.Fatalf("GET of a version that does not exist: %v", err)
	}
	if l, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "b"}); err != nil || len(l.GetObjects()) != 0 {
		t.Fatalf("a deleted key is listed: %v, %v", l, err)
	}

	// Deleting the marker makes the newest version current again.
	r = step("delete the marker", smDeleteVersion("b", "k", marker), "k@id-e4*", "k@id-e3", "k@null")
	if del := r.Resp.(*pb.DeleteObjectResponse); !del.GetDeleted() || !del.GetDeleteMarker() {
		t.Fatalf("deleting the marker answered %v", del)
	}
	if o, err := get("", false); err != nil || o.GetEtag() != "e4" {
		t.Fatalf("GET after the marker's delete: %v, %v", o, err)
	}
	// Deleting the current version by id: the one before is current.
	step("delete the current version", smDeleteVersion("b", "k", "id-e4"), "k@id-e3*", "k@null")
	if gc := smGC(t, s); len(gc) != 2 || gc[1].GetVersionId() != "id-e4" {
		t.Fatalf("the deleted version was not released: %v", gc)
	}
	step("delete a noncurrent version", smDeleteVersion("b", "k", "null"), "k@id-e3*")
	step("delete a version that does not exist", smDeleteVersion("b", "k", "nope"), "k@id-e3*")

	// Suspended: writes are null versions and replace each other.
	step("suspend", smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED), "k@id-e3*")
	r = step("suspended put", put("e5", 5), "k@null*", "k@id-e3")
	if id := r.Resp.(*pb.CommitObjectResponse).GetVersionId(); id != "null" {
		t.Fatalf("a suspended bucket's put answered version id %q", id)
	}
	step("suspended overwrite", put("e6", 6), "k@null*", "k@id-e3")
	r = step("suspended delete", smDelete("b", "k", nil), "k@null(m)*", "k@id-e3")
	if del := r.Resp.(*pb.DeleteObjectResponse); del.GetVersionId() != "null" || !del.GetDeleteMarker() {
		t.Fatalf("suspended delete answered %v", del)
	}
	step("suspended put over the null marker", put("e7", 7), "k@null*", "k@id-e3")
	if u := smGetUsage(t, s, "b"); u.GetObjects() != 1 || u.GetNoncurrentVersions() != 1 || u.GetNoncurrentBytes() != 10 {
		t.Fatalf("usage %v", u)
	}

	// The bucket holds versions until each is deleted.
	step("delete the current object", smDeleteVersion("b", "k", "null"), "k@id-e3*")
	step("delete the last version", smDelete("b", "k", nil), "k@null(m)*", "k@id-e3")
	if r := h.do(smDeleteBucket("b")); !smIsCond(r.Err, metaerr.ErrBucketNotEmpty) {
		t.Fatalf("deleting a bucket with versions: %v", r.Err)
	}
	step("drop the marker", smDeleteVersion("b", "k", "null"), "k@id-e3*")
	step("drop the version", smDeleteVersion("b", "k", "id-e3"))
	if u := smGetUsage(t, s, "b"); u != nil {
		t.Fatalf("an empty bucket has usage %v", u)
	}
	h.must(smDeleteBucket("b"))
}

// TestVersioningRefusals: versioning cannot be unset, tagging a marker is
// refused, and a condition never applies to a noncurrent version.
func TestVersioningRefusals(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"), smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_ENABLED),
		smPut("b", "k", "e1", smSeg(1)), smPut("b", "k", "e2", smSeg(2)), smDelete("b", "k", nil))
	if r := h.do(smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_UNSET)); !smIsCond(r.Err, metaerr.ErrInvalidArgument) {
		t.Fatalf("unset versioning: %v", r.Err)
	}
	vs := smVersions(t, h.s, "b")
	markerID := strings.TrimSuffix(strings.TrimPrefix(vs[0], "k@"), "(m)*")
	tag := func(id string) error {
		return h.do(&pb.Command{Op: &pb.Command_SetObjectTags{SetObjectTags: &pb.SetObjectTagsRequest{
			Bucket: "b", Key: "k", VersionId: id, Tags: map[string]string{"a": "b"}}}}).Err
	}
	if err := tag(markerID); !smIsCond(err, metaerr.ErrMethodNotAllowed) {
		t.Fatalf("tagging a marker: %v", err)
	}
	if err := tag("v-k-e1"); err != nil {
		t.Fatalf("tagging a noncurrent version: %v", err)
	}
	if err := tag("v-k-e9"); !smIsCond(err, metaerr.ErrNoSuchVersion) {
		t.Fatalf("tagging a version that does not exist: %v", err)
	}
	r := h.do(&pb.Command{Op: &pb.Command_SetObjectTags{SetObjectTags: &pb.SetObjectTagsRequest{Bucket: "b", Key: "k", VersionId: "v-k-e2"}}})
	if r.Err != nil || r.Resp.(*pb.SetObjectTagsResponse).GetVersionId() != "v-k-e2" {
		t.Fatalf("tagging a version answered %v, %v", r.Resp, r.Err)
	}
	o, err := h.s.GetObject(&pb.GetObjectRequest{Bucket: "b", Key: "k", VersionId: "v-k-e1"})
	if err != nil || o.GetObject().GetTags()["a"] != "b" {
		t.Fatalf("the tagged version: %v, %v", o, err)
	}
	cond := &pb.DeleteObjectRequest{Bucket: "b", Key: "k", VersionId: "v-k-e1", Condition: &pb.Condition{IfVersionId: "v-k-e1"}}
	if r := h.do(&pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: cond}}); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("a conditional delete of a noncurrent version: %v", r.Err)
	}
	smCheckIndexes(t, h.s, "end")
}

// TestListObjectVersionsPages lists a bucket's versions in pages of every
// size, with and without a delimiter, and checks that the pages, joined,
// are the listing in one page.
func TestListObjectVersionsPages(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"), smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_ENABLED))
	seg := uint32(0)
	put := func(key string) {
		seg++
		o := smObj("b", key, "e", smSegN(seg))
		o.VersionId = fmt.Sprintf("v%03d", seg)
		h.must(smCommit(o, nil))
	}
	for _, k := range []string{"a", "a", "a/x", "a/y", "a/y", "b", "c\x00d", "c", "d/e/f", "é"} {
		put(k)
	}
	h.must(smDelete("b", "b", nil), smDelete("b", "c", nil), smDelete("b", "c", nil))
	for _, tc := range []struct{ prefix, delim string }{{"", ""}, {"", "/"}, {"a", "/"}, {"a/", ""}, {"c", ""}, {"d/", "/"}} {
		full, err := h.s.ListObjectVersions(&pb.ListObjectVersionsRequest{Bucket: "b", Prefix: tc.prefix, Delimiter: tc.delim})
		if err != nil || full.GetIsTruncated() {
			t.Fatalf("%+v: %v, %v", tc, full, err)
		}
		want := pageEntries(full)
		if len(want) == 0 {
			t.Fatalf("%+v: nothing listed", tc)
		}
		for size := int32(1); size <= int32(len(want)); size++ {
			var got []string
			req := &pb.ListObjectVersionsRequest{Bucket: "b", Prefix: tc.prefix, Delimiter: tc.delim, MaxKeys: size}
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("%+v size %d: the pages do not end", tc, size)
				}
				resp, err := h.s.ListObjectVersions(req)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, pageEntries(resp)...)
				if !resp.GetIsTruncated() {
					break
				}
				req.KeyMarker, req.VersionIdMarker = resp.GetNextKeyMarker(), resp.GetNextVersionIdMarker()
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%+v in pages of %d:\n%q\nwant\n%q", tc, size, got, want)
			}
		}
	}
	want := []string{"a@v002*", "a@v001", "a/x@v003*", "a/y@v005*", "a/y@v004", "b@?(m)*", "b@v006",
		"c@?(m)*", "c@?(m)", "c@v008", "c\x00d@v007*", "d/e/f@v009*", "é@v010*"}
	if all := smVersions(t, h.s, "b"); !smVersionsMatch(all, want) {
		t.Fatalf("versions %q, want %q", all, want)
	}
}

// smVersionsMatch compares smVersions' output with want, where an id "?"
// matches any (a delete marker's, which the state machine chose).
func smVersionsMatch(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		w := want[i]
		if strings.Contains(w, "@?") {
			key, rest, _ := strings.Cut(w, "@?")
			gk, grest, _ := strings.Cut(got[i], "@")
			j := strings.IndexByte(grest, '(')
			if j < 0 || gk != key || grest[j:] != rest {
				return false
			}
			continue
		}
		if got[i] != w {
			return false
		}
	}
	return true
}

// pageEntries is a page's versions and common prefixes, in order (common
// prefixes after the versions they follow cannot be told apart, so each
// is marked and sorted in by key).
func pageEntries(r *pb.ListObjectVersionsResponse) []string {
	var out []string
	for _, v := range r.GetVersions() {
		out = append(out, fmt.Sprintf("%s@%s latest=%v", v.GetKey(), S3VersionID(v), v.GetIsLatest()))
	}
	for _, cp := range r.GetCommonPrefixes() {
		out = append(out, cp+" (prefix)")
	}
	slices.SortStableFunc(out, func(a, b string) int {
		ka, _, _ := strings.Cut(a, "@")
		kb, _, _ := strings.Cut(b, "@")
		return strings.Compare(strings.TrimSuffix(ka, " (prefix)"), strings.TrimSuffix(kb, " (prefix)"))
	})
	return out
}

// TestVersioningQuota: noncurrent versions count against a bucket's bytes
// quota, so an overwrite that would keep too much is refused; a delete,
// which only moves bytes from the current object to a noncurrent
// version, never is, even over the quota.
func TestVersioningQuota(t *testing.T) {
	h := smNew(t)
	h.must(&pb.Command{Op: &pb.Command_SetMemberAddress{SetMemberAddress: &pb.SetMemberAddress{Id: "m1", GrpcAddress: "a:1", FeatureLevel: FeatureLevel}}},
		smCreateBucket("b"), smSetVersioning("b", pb.VersioningStatus_VERSIONING_STATUS_ENABLED),
		smPut("b", "k", "e1", smSeg(1)), smPut("b", "k", "e2", smSeg(2)))
	quota := func(max int64) *pb.Command {
		return &pb.Command{Op: &pb.Command_SetBucketQuota{SetBucketQuota: &pb.SetBucketQuotaRequest{Name: "b", Quota: &pb.BucketQuota{MaxBytes: max}}}}
	}
	// 10 bytes current, 10 noncurrent.
	h.must(quota(25))
	if r := h.do(smPut("b", "k", "e3", smSeg(3))); !smIsCond(r.Err, metaerr.ErrQuotaExceeded) {
		t.Fatalf("an overwrite keeping 30 bytes under a quota of 25: %v", r.Err)
	}
	h.must(quota(15))
	if r := h.do(smDelete("b", "k", nil)); r.Err != nil {
		t.Fatalf("a delete in a bucket over its quota: %v", r.Err)
	}
	if u := smGetUsage(t, h.s, "b"); u.GetObjects() != 0 || u.GetNoncurrentVersions() != 3 || u.GetNoncurrentBytes() != 20 {
		t.Fatalf("usage after the delete: %v", u)
	}
	smCheckIndexes(t, h.s, "end")
}
