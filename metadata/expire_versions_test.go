package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Lifecycle expiry of versions: noncurrent versions after NoncurrentDays
// (keeping the NewerNoncurrentVersions newest), expired object delete
// markers, the current-object expiration of a bucket with versioning, and
// DeleteObject's if_noncurrent_version_id, which makes each delete safe
// against what happened after the pass read the versions.

var (
	versioningEnabled   = pb.VersioningStatus_VERSIONING_STATUS_ENABLED
	versioningSuspended = pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED
)

// smDeleteIfNoncurrent is lifecycle expiry's delete of version id of
// bucket/key, the record whose internal version id is internal.
func smDeleteIfNoncurrent(bucket, key, id, internal string) *pb.Command {
	return &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: &pb.DeleteObjectRequest{
		Bucket: bucket, Key: key, VersionId: id, IfNoncurrentVersionId: internal}}}
}

// smVersionOf reads a version (a delete marker too) by its S3 id.
func smVersionOf(t testing.TB, s *State, bucket, key, id string) *pb.Object {
	t.Helper()
	r, err := s.GetObject(&pb.GetObjectRequest{Bucket: bucket, Key: key, VersionId: id})
	if err != nil {
		t.Fatalf("get %s/%s version %q: %v", bucket, key, id, err)
	}
	return r.GetObject()
}

// TestDeleteVersionIfNoncurrent: with if_noncurrent_version_id a version
// goes only while it is the v/ record of that internal id and deleting it
// leaves the key's current object as it is.
func TestDeleteVersionIfNoncurrent(t *testing.T) {
	h := smNew(t)
	s := h.s
	h.must(smCreateBucket("b"), smCreateBucket("s"), smSetVersioning("b", versioningEnabled))
	seg := byte(0)
	put := func(bucket, key, etag string) {
		t.Helper()
		seg++
		o := smObj(bucket, key, etag, smSeg(seg))
		o.VersionId = "id-" + key + "-" + etag
		h.must(smCommit(o, nil))
	}
	markerOf := func(r Result) string {
		t.Helper()
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Resp.(*pb.DeleteObjectResponse).GetVersionId()
	}
	versionsOf := func(bucket, key string) []string {
		t.Helper()
		var out []string
		for _, v := range smVersions(t, s, bucket) {
			if k, _, _ := cutAt(v); k == key {
				out = append(out, v)
			}
		}
		return out
	}

	// A noncurrent version: the wrong internal id keeps it, the right one
	// deletes it and its segments go to GC.
	put("b", "k1", "e1")
	put("b", "k1", "e2")
	if r := h.do(smDeleteIfNoncurrent("b", "k1", "id-k1-e1", "other")); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of a noncurrent version with another internal id: %v, want PreconditionFailed", r.Err)
	}
	if r := h.do(smDeleteIfNoncurrent("b", "k1", "id-k1-e1", "id-k1-e1")); r.Err != nil || !r.Resp.(*pb.DeleteObjectResponse).GetDeleted() {
		t.Fatalf("delete of a noncurrent version: %v %v", r.Resp, r.Err)
	}
	if got := versionsOf("b", "k1"); !slices.Equal(got, []string{"k1@id-k1-e2*"}) {
		t.Fatalf("k1 versions %v", got)
	}
	if gc := smGC(t, s); len(gc) != 1 || gc[0].GetVersionId() != "id-k1-e1" {
		t.Fatalf("GC %v, want the deleted version's segments", gc)
	}

	// The current object is never deleted so.
	if r := h.do(smDeleteIfNoncurrent("b", "k1", "id-k1-e2", "id-k1-e2")); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of the current object: %v, want PreconditionFailed", r.Err)
	}

	// A noncurrent version made current again by deleting the version
	// above it.
	put("b", "k2", "e1")
	put("b", "k2", "e2")
	h.must(smDeleteVersion("b", "k2", "id-k2-e2"))
	if r := h.do(smDeleteIfNoncurrent("b", "k2", "id-k2-e1", "id-k2-e1")); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of a version promoted to current: %v, want PreconditionFailed", r.Err)
	}
	if got := versionsOf("b", "k2"); !slices.Equal(got, []string{"k2@id-k2-e1*"}) {
		t.Fatalf("k2 versions %v", got)
	}

	// The latest marker of a key with older versions: deleting it would
	// make the older one current.
	put("b", "k3", "e1")
	m3 := markerOf(h.do(smDelete("b", "k3", nil)))
	if r := h.do(smDeleteIfNoncurrent("b", "k3", m3, m3)); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of the latest marker above an older version: %v, want PreconditionFailed", r.Err)
	}
	if got := versionsOf("b", "k3"); !smVersionsMatch(got, []string{"k3@?(m)*", "k3@id-k3-e1"}) {
		t.Fatalf("k3 versions %v", got)
	}

	// A marker that is its key's only version, and a noncurrent marker.
	m4 := markerOf(h.do(smDelete("b", "k4", nil)))
	m5 := markerOf(h.do(smDelete("b", "k5", nil)))
	put("b", "k5", "e1")
	for _, c := range []struct{ key, id string }{{"k4", m4}, {"k5", m5}} {
		if r := h.do(smDeleteIfNoncurrent("b", c.key, c.id, c.id)); r.Err != nil || !r.Resp.(*pb.DeleteObjectResponse).GetDeleted() {
			t.Fatalf("delete of marker %s of %s: %v %v", c.id, c.key, r.Resp, r.Err)
		}
	}
	if got := versionsOf("b", "k4"); len(got) != 0 {
		t.Fatalf("k4 versions %v, want none", got)
	}
	if got := versionsOf("b", "k5"); !slices.Equal(got, []string{"k5@id-k5-e1*"}) {
		t.Fatalf("k5 versions %v", got)
	}

	// "null" names another version once a SUSPENDED bucket's write or
	// delete replaced the null version.
	put("s", "x", "e1") // before versioning: the null version
	h.must(smSetVersioning("s", versioningEnabled))
	put("s", "x", "e2")
	h.must(smSetVersioning("s", versioningSuspended))
	put("s", "x", "e3") // replaces the noncurrent null version
	if r := h.do(smDeleteIfNoncurrent("s", "x", "null", "id-x-e1")); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of a replaced null version: %v, want PreconditionFailed", r.Err)
	}
	if got := versionsOf("s", "x"); !slices.Equal(got, []string{"x@null*", "x@id-x-e2"}) {
		t.Fatalf("x versions %v", got)
	}
	h.must(smDelete("s", "y", nil))
	m1 := smVersionOf(t, s, "s", "y", "null").GetVersionId()
	h.must(smDelete("s", "y", nil)) // a new null marker replaces it
	if r := h.do(smDeleteIfNoncurrent("s", "y", "null", m1)); !smIsCond(r.Err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("delete of a replaced null marker: %v, want PreconditionFailed", r.Err)
	}
	if got := versionsOf("s", "y"); len(got) != 1 {
		t.Fatalf("y versions %v, want its one marker", got)
	}

	// A version that does not exist deletes nothing.
	if r := h.do(smDeleteIfNoncurrent("b", "k1", "nope", "nope")); r.Err != nil || r.Resp.(*pb.DeleteObjectResponse).GetDeleted() {
		t.Fatalf("delete of a version that does not exist: %v %v", r.Resp, r.Err)
	}
	smCheckIndexes(t, s, "after the deletes")
}

// cutAt splits a smVersions entry at its "@".
func cutAt(v string) (key, rest string, ok bool) {
	for i := range len(v) {
		if v[i] == '@' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}

// versionRig is a balanceRig with a versioned bucket and helpers to run
// expiry passes at given times.
type versionRig struct {
	*balanceRig
	t   *testing.T
	seg uint32
}

func newVersionRig(t *testing.T, lifecycle string) *versionRig {
	r := &versionRig{balanceRig: newBalanceRig(t, rigLayout{}, func(c *HealConfig) { c.UploadExpiry = 0 }), t: t}
	r.must(smSetVersioning("bk", versioningEnabled))
	r.must(smSetLifecycle("bk", lifecycle))
	return r
}

// put commits a version of bucket/key with one segment (10 bytes) and
// version id id-<key>-<etag>.
func (r *versionRig) put(bucket, key, etag string, tags map[string]string) {
	r.t.Helper()
	r.seg++
	o := smObj(bucket, key, etag, smSegN(r.seg))
	o.VersionId = "id-" + key + "-" + etag
	o.Tags = tags
	r.must(smCommit(o, nil))
}

// at sets the clock to the given time of January 1970, UTC (the rig's
// clock starts on the 24th at 03:33:20).
func (r *versionRig) at(day, hour, min, sec int) {
	r.t.Helper()
	want := time.Date(1970, 1, day, hour, min, sec, 0, time.UTC)
	now := r.clock.now()
	if want.Before(now) {
		r.t.Fatalf("the clock cannot go back from %v to %v", now.UTC(), want)
	}
	r.clock.add(want.Sub(now))
}

func (r *versionRig) pass() {
	r.t.Helper()
	if err := r.h.expiryPass(context.Background()); err != nil {
		r.t.Fatalf("expiry pass: %v", err)
	}
}

func (r *versionRig) versions(bucket string) []string {
	r.t.Helper()
	return smVersions(r.t, r.st, bucket)
}

func (r *versionRig) wantVersions(step, bucket string, want ...string) {
	r.t.Helper()
	if got := r.versions(bucket); !smVersionsMatch(got, want) {
		r.t.Fatalf("%s: versions of %s\n got %v\nwant %v", step, bucket, got, want)
	}
	smCheckIndexes(r.t, r.st, step)
}

// wantUsage checks bucket's counts: current objects and their bytes,
// noncurrent versions (markers included) and their bytes.
func (r *versionRig) wantUsage(step, bucket string, objects, bytes, noncurrent, noncurrentBytes int64) {
	r.t.Helper()
	u := smGetUsage(r.t, r.st, bucket)
	got := [4]int64{u.GetObjects(), u.GetBytes(), u.GetNoncurrentVersions(), u.GetNoncurrentBytes()}
	if want := [4]int64{objects, bytes, noncurrent, noncurrentBytes}; got != want {
		r.t.Fatalf("%s: usage of %s (objects, bytes, noncurrent versions, noncurrent bytes) = %v, want %v", step, bucket, got, want)
	}
}

// TestLifecycleNoncurrentVersionExpiry: a noncurrent version expires at
// the first midnight UTC after its successor was made plus NoncurrentDays
// (a delete marker too, however long before it was made), the
// NewerNoncurrentVersions newest are kept, versions a rule's filter does
// not match are kept, and the bucket's counts follow.
func TestLifecycleNoncurrentVersionExpiry(t *testing.T) {
	r := newVersionRig(t, `<LifecycleConfiguration>
<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>db</ID><Filter><Prefix>db/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>
<Rule><ID>temp</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
</LifecycleConfiguration>`)
	// The 24th, 03:33:20.
	r.put("bk", "logs/a", "e1", nil)
	r.put("bk", "logs/a", "e2", nil)
	r.put("bk", "logs/c", "e1", nil)
	r.must(smDelete("bk", "logs/c", nil))
	r.put("bk", "logs/c", "e2", nil)
	r.put("bk", "logs/d", "e1", nil)
	r.must(smDelete("bk", "logs/d", nil))
	for _, e := range []string{"e1", "e2", "e3", "e4", "e5"} {
		r.put("bk", "db/x", e, nil)
	}
	r.put("bk", "keep/x", "e1", nil)
	r.put("bk", "keep/x", "e2", nil)
	r.put("bk", "t/x", "e1", map[string]string{"temp": "yes"})
	r.put("bk", "t/x", "e2", nil)
	r.put("bk", "t/y", "e1", nil)
	r.put("bk", "t/y", "e2", map[string]string{"temp": "yes"})
	// logs/d's marker becomes noncurrent a day after it was made: its
	// days count from then.
	r.at(25, 3, 33, 20)
	r.put("bk", "logs/d", "e2", nil)
	all := []string{
		"db/x@id-db/x-e5*", "db/x@id-db/x-e4", "db/x@id-db/x-e3", "db/x@id-db/x-e2", "db/x@id-db/x-e1",
		"keep/x@id-keep/x-e2*", "keep/x@id-keep/x-e1",
		"logs/a@id-logs/a-e2*", "logs/a@id-logs/a-e1",
		"logs/c@id-logs/c-e2*", "logs/c@?(m)", "logs/c@id-logs/c-e1",
		"logs/d@id-logs/d-e2*", "logs/d@?(m)", "logs/d@id-logs/d-e1",
		"t/x@id-t/x-e2*", "t/x@id-t/x-e1",
		"t/y@id-t/y-e2*", "t/y@id-t/y-e1",
	}
	r.wantVersions("setup", "bk", all...)
	r.wantUsage("setup", "bk", 7, 70, 12, 100)

	// The 24th 03:33:20 plus a day is due at the midnight after.
	r.at(25, 23, 59, 59)
	r.pass()
	r.wantVersions("a second before the first midnight", "bk", all...)

	// db/x keeps its two newest noncurrent versions; t/x's tagged one goes,
	// t/y's (tagged only in its current version) stays.
	r.at(26, 0, 0, 0)
	r.pass()
	r.wantVersions("the first midnight", "bk",
		"db/x@id-db/x-e5*", "db/x@id-db/x-e4", "db/x@id-db/x-e3",
		"keep/x@id-keep/x-e2*", "keep/x@id-keep/x-e1",
		"logs/a@id-logs/a-e2*", "logs/a@id-logs/a-e1",
		"logs/c@id-logs/c-e2*", "logs/c@?(m)", "logs/c@id-logs/c-e1",
		"logs/d@id-logs/d-e2*", "logs/d@?(m)", "logs/d@id-logs/d-e1",
		"t/x@id-t/x-e2*",
		"t/y@id-t/y-e2*", "t/y@id-t/y-e1",
	)
	r.wantUsage("the first midnight", "bk", 7, 70, 9, 70)
	if got := counterValue(t, r.h.m.versionsExpired); got != 3 {
		t.Fatalf("cairn_lifecycle_versions_expired_total = %v, want 3", got)
	}

	r.at(27, 23, 59, 59)
	r.pass()
	if got := len(r.versions("bk")); got != 16 {
		t.Fatalf("a second before the third midnight, %d versions, want 16: %v", got, r.versions("bk"))
	}
	r.at(28, 0, 0, 0)
	r.pass()
	r.wantVersions("the third midnight", "bk",
		"db/x@id-db/x-e5*", "db/x@id-db/x-e4", "db/x@id-db/x-e3",
		"keep/x@id-keep/x-e2*", "keep/x@id-keep/x-e1",
		"logs/a@id-logs/a-e2*",
		"logs/c@id-logs/c-e2*",
		"logs/d@id-logs/d-e2*", "logs/d@?(m)",
		"t/x@id-t/x-e2*",
		"t/y@id-t/y-e2*", "t/y@id-t/y-e1",
	)
	r.at(28, 23, 59, 59)
	r.pass()
	if got := len(r.versions("bk")); got != 12 {
		t.Fatalf("before the marker's midnight, %d versions, want 12: %v", got, r.versions("bk"))
	}
	r.at(29, 0, 0, 0)
	r.pass()
	r.wantVersions("the marker's midnight", "bk",
		"db/x@id-db/x-e5*", "db/x@id-db/x-e4", "db/x@id-db/x-e3",
		"keep/x@id-keep/x-e2*", "keep/x@id-keep/x-e1",
		"logs/a@id-logs/a-e2*",
		"logs/c@id-logs/c-e2*",
		"logs/d@id-logs/d-e2*",
		"t/x@id-t/x-e2*",
		"t/y@id-t/y-e2*", "t/y@id-t/y-e1",
	)
	r.wantUsage("the end", "bk", 7, 70, 4, 40)
	// Every expired version's segment went to GC, none other.
	var gone []string
	for _, e := range smGC(t, r.st) {
		gone = append(gone, e.GetVersionId())
	}
	slices.Sort(gone)
	if want := []string{"id-db/x-e1", "id-db/x-e2", "id-logs/a-e1", "id-logs/c-e1", "id-logs/d-e1", "id-t/x-e1"}; !slices.Equal(gone, want) {
		t.Fatalf("GC holds versions %v, want %v", gone, want)
	}
}

// TestLifecycleExpiredDeleteMarkers: a delete marker that is its key's
// only version goes at once under ExpiredObjectDeleteMarker and once old
// enough under Expiration Days; a marker above older versions stays (it
// is the key's current version) until they are gone.
func TestLifecycleExpiredDeleteMarkers(t *testing.T) {
	r := newVersionRig(t, `<LifecycleConfiguration>
<Rule><ID>eodm</ID><Filter><Prefix>m/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>n-versions</ID><Filter><Prefix>n/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>n-markers</ID><Filter><Prefix>n/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>days</ID><Filter><Prefix>d/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>
</LifecycleConfiguration>`)
	r.put("bk", "m/only", "e1", nil)
	r.must(smDelete("bk", "m/only", nil))
	r.must(smDeleteVersion("bk", "m/only", "id-m/only-e1")) // the marker is left alone
	r.put("bk", "m/hidden", "e1", nil)
	r.must(smDelete("bk", "m/hidden", nil))
	r.put("bk", "n/x", "e1", nil)
	r.must(smDelete("bk", "n/x", nil))
	r.must(smDelete("bk", "d/x", nil))
	r.wantVersions("setup", "bk",
		"d/x@?(m)*",
		"m/hidden@?(m)*", "m/hidden@id-m/hidden-e1",
		"m/only@?(m)*",
		"n/x@?(m)*", "n/x@id-n/x-e1")
	r.wantUsage("setup", "bk", 0, 0, 6, 20)

	r.pass()
	r.wantVersions("at once", "bk",
		"d/x@?(m)*",
		"m/hidden@?(m)*", "m/hidden@id-m/hidden-e1",
		"n/x@?(m)*", "n/x@id-n/x-e1")

	// n/x's noncurrent version goes at the midnight after a day; its
	// marker, read above it, stays for the next pass.
	r.at(25, 23, 59, 59)
	r.pass()
	if got := len(r.versions("bk")); got != 5 {
		t.Fatalf("before the first midnight, versions %v, want 5", r.versions("bk"))
	}
	r.at(26, 0, 0, 0)
	r.pass()
	r.wantVersions("the first midnight", "bk",
		"d/x@?(m)*",
		"m/hidden@?(m)*", "m/hidden@id-m/hidden-e1",
		"n/x@?(m)*")
	r.pass()
	r.wantVersions("the next pass", "bk",
		"d/x@?(m)*",
		"m/hidden@?(m)*", "m/hidden@id-m/hidden-e1")

	// d/x's marker is as old as an object the Days rule expires at the
	// midnight after it was made plus two days.
	r.at(26, 23, 59, 59)
	r.pass()
	if got := len(r.versions("bk")); got != 3 {
		t.Fatalf("before the second midnight, versions %v, want 3", r.versions("bk"))
	}
	r.at(27, 0, 0, 0)
	r.pass()
	r.wantVersions("the second midnight", "bk", "m/hidden@?(m)*", "m/hidden@id-m/hidden-e1")
	r.wantUsage("the end", "bk", 0, 0, 2, 10)
	if got := counterValue(t, r.h.m.versionsExpired); got != 4 {
		t.Fatalf("cairn_lifecycle_versions_expired_total = %v, want 4", got)
	}
}

// TestLifecycleExpiryVersionedBucket: the current-object expiration in a
// bucket with versioning ENABLED adds a delete marker and keeps the data
// as a noncurrent version, once (a key whose latest version is a marker
// has no current object to expire); in a SUSPENDED bucket the null
// version it replaces goes to GC.
func TestLifecycleExpiryVersionedBucket(t *testing.T) {
	r := newVersionRig(t, `<LifecycleConfiguration>
<Rule><ID>x</ID><Filter><Prefix>x/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>
</LifecycleConfiguration>`)
	r.put("bk", "x/a", "e1", nil)
	r.put("bk", "y/a", "e1", nil)
	r.wantUsage("setup", "bk", 2, 20, 0, 0)

	r.at(25, 23, 59, 59)
	r.pass()
	r.wantVersions("before", "bk", "x/a@id-x/a-e1*", "y/a@id-y/a-e1*")
	r.at(26, 0, 0, 0)
	r.pass()
	r.wantVersions("expired", "bk", "x/a@?(m)*", "x/a@id-x/a-e1", "y/a@id-y/a-e1*")
	r.wantUsage("expired", "bk", 1, 10, 2, 10)
	if gc := smGC(t, r.st); len(gc) != 0 {
		t.Fatalf("the expired object's data went to GC: %v", gc)
	}
	if _, err := r.st.GetObject(&pb.GetObjectRequest{Bucket: "bk", Key: "x/a"}); !smIsCond(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("GET of the expired object: %v, want NoSuchKey", err)
	}
	if got := counterValue(t, r.h.m.objectsExpired); got != 1 {
		t.Fatalf("cairn_lifecycle_objects_expired_total = %v, want 1", got)
	}

	// Later passes add no marker, and the marker hides a version: it stays.
	r.at(30, 0, 0, 0)
	r.pass()
	r.wantVersions("five days on", "bk", "x/a@?(m)*", "x/a@id-x/a-e1", "y/a@id-y/a-e1*")

	r.must(smSetVersioning("bk", versioningSuspended))
	r.put("bk", "x/b", "e1", nil) // a null version
	r.at(32, 0, 0, 0)
	r.pass()
	r.wantVersions("suspended", "bk", "x/a@?(m)*", "x/a@id-x/a-e1", "x/b@null(m)*", "y/a@id-y/a-e1*")
	r.wantUsage("suspended", "bk", 1, 10, 3, 10)
	if gc := smGC(t, r.st); len(gc) != 1 || gc[0].GetVersionId() != "id-x/b-e1" {
		t.Fatalf("GC %v, want the replaced null version's", gc)
	}
}

// staleVersions answers Versions with pages read earlier, one per bucket.
type staleVersions struct {
	*hookedState
	pages map[string][]VersionInfo
}

func (s staleVersions) Versions(bucket string, _ *VersionCursor, _ int) ([]VersionInfo, *VersionCursor, error) {
	return s.pages[bucket], nil, nil
}

// TestLifecycleVersionExpiryRaces: what changed between the pass's read
// and its deletes. A noncurrent version made current again, and a "null"
// id naming a newer version, are kept; a marker that was the key's only
// version and has a newer version above it by the delete goes, which
// hides nothing.
func TestLifecycleVersionExpiryRaces(t *testing.T) {
	const rules = `<LifecycleConfiguration>
<Rule><ID>all</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>markers</ID><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
</LifecycleConfiguration>`
	r := newVersionRig(t, rules)
	r.must(smCreateBucket("sus"))
	r.must(smSetLifecycle("sus", rules))
	r.put("bk", "promoted", "e1", nil)
	r.put("bk", "promoted", "e2", nil)
	r.must(smDelete("bk", "overwritten", nil))
	r.put("sus", "null", "e1", nil) // the null version
	r.must(smSetVersioning("sus", versioningEnabled))
	r.put("sus", "null", "e2", nil)

	pages := map[string][]VersionInfo{}
	for _, b := range []string{"bk", "sus"} {
		vs, next, err := r.st.Versions(b, nil, 0)
		if err != nil || next != nil {
			t.Fatalf("read versions of %s: %v, cursor %v", b, err, next)
		}
		pages[b] = vs
	}

	r.must(smDeleteVersion("bk", "promoted", "id-promoted-e2")) // e1 is current again
	r.put("bk", "overwritten", "e1", nil)                       // the marker is noncurrent
	r.must(smSetVersioning("sus", versioningSuspended))
	r.put("sus", "null", "e3", nil) // replaces the null version

	h := newHealer(r.h.cfg, r.h.log, staleVersions{r.view, pages}, r.propose, r.h.m)
	h.now = r.clock.now
	r.at(26, 0, 0, 0)
	if err := h.expiryPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.wantVersions("bk after the stale pass", "bk", "overwritten@id-overwritten-e1*", "promoted@id-promoted-e1*")
	r.wantVersions("sus after the stale pass", "sus", "null@null*", "null@id-null-e2")
	if got := counterValue(t, r.h.m.versionsExpired); got != 1 {
		t.Fatalf("cairn_lifecycle_versions_expired_total = %v, want 1 (the marker)", got)
	}
}

// TestVersionsPages: reading a bucket's versions in pages of any size
// gives what one read does, with each record's place in its key: the
// latest marker, whether it is the only version, how many noncurrent
// versions are newer, and when its successor was made.
func TestVersionsPages(t *testing.T) {
	h := smNew(t)
	s := h.s
	h.must(smCreateBucket("b"), smCreateBucket("c"), smSetVersioning("b", versioningEnabled))
	seg := byte(0)
	put := func(key, etag string) {
		t.Helper()
		seg++
		o := smObj("b", key, etag, smSeg(seg))
		o.VersionId = "id-" + key + "-" + etag
		h.must(smCommit(o, nil))
	}
	for _, e := range []string{"e1", "e2", "e3", "e4"} {
		put("a", e) // current e4, three noncurrent
	}
	h.must(smDelete("b", "b", nil)) // only a marker
	put("c", "e1")
	put("c", "e2")
	h.must(smDelete("b", "c", nil)) // a marker above two versions
	put("d", "e1")
	put("d", "e2")
	h.must(smPut("c", "other", "e1")) // another bucket, no versions

	modified := func(key, id string) int64 { return smVersionOf(t, s, "b", key, id).GetModifiedUnixNano() }
	describe := func(vs []VersionInfo) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s@%s latest=%v only=%v newer=%d successor=%d", v.Version.GetKey(), S3VersionID(v.Version),
				v.Latest, v.Only, v.Newer, v.SuccessorUnixNano))
			if len(v.Version.GetSegments()) != 0 {
				t.Errorf("%s@%s read with its segments", v.Version.GetKey(), S3VersionID(v.Version))
			}
		}
		return out
	}
	all, next, err := s.Versions("b", nil, 0)
	if err != nil || next != nil {
		t.Fatalf("one read: %v, cursor %v", err, next)
	}
	got := describe(all)
	bMarker, cMarker := S3VersionID(all[3].Version), S3VersionID(all[4].Version)
	want := []string{
		fmt.Sprintf("a@id-a-e3 latest=false only=false newer=0 successor=%d", modified("a", "id-a-e4")),
		fmt.Sprintf("a@id-a-e2 latest=false only=false newer=1 successor=%d", modified("a", "id-a-e3")),
		fmt.Sprintf("a@id-a-e1 latest=false only=false newer=2 successor=%d", modified("a", "id-a-e2")),
		fmt.Sprintf("b@%s latest=true only=true newer=0 successor=0", bMarker),
		fmt.Sprintf("c@%s latest=true only=false newer=0 successor=0", cMarker),
		fmt.Sprintf("c@id-c-e2 latest=false only=false newer=0 successor=%d", modified("c", cMarker)),
		fmt.Sprintf("c@id-c-e1 latest=false only=false newer=1 successor=%d", modified("c", "id-c-e2")),
		fmt.Sprintf("d@id-d-e1 latest=false only=false newer=0 successor=%d", modified("d", "id-d-e2")),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("one read:\n got %q\nwant %q", got, want)
	}
	for limit := 1; limit <= len(all); limit++ {
		var paged []VersionInfo
		var after *VersionCursor
		for reads := 1; ; reads++ {
			vs, next, err := s.Versions("b", after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(vs))
			}
			paged = append(paged, vs...)
			if next == nil {
				break
			}
			if reads > len(all) {
				t.Fatalf("limit %d: the cursor does not end", limit)
			}
			after = next
		}
		if got := describe(paged); !slices.Equal(got, want) {
			t.Fatalf("pages of %d:\n got %q\nwant %q", limit, got, want)
		}
	}
	if vs, next, err := s.Versions("c", nil, 0); err != nil || len(vs) != 0 || next != nil {
		t.Fatalf("versions of an unversioned bucket: %v %v %v", vs, next, err)
	}
	if vs, _, err := s.Versions("gone", nil, 0); err != nil || len(vs) != 0 {
		t.Fatalf("versions of a bucket that does not exist: %v %v", vs, err)
	}
}

// TestLifecycleVersionExpiryRefusal: the state machine refusing one
// version's delete (as a lock would) keeps that version and not the
// others; losing leadership stops the pass with an error.
func TestLifecycleVersionExpiryRefusal(t *testing.T) {
	r := newVersionRig(t, `<LifecycleConfiguration>
<Rule><ID>all</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
</LifecycleConfiguration>`)
	for _, k := range []string{"a", "b", "c"} {
		r.put("bk", k, "e1", nil)
		r.put("bk", k, "e2", nil)
	}
	var refuse error
	propose := func(ctx context.Context, cmd *pb.Command) (proto.Message, error) {
		if d := cmd.GetDeleteObject(); d != nil && d.GetKey() == "b" && refuse != nil {
			return nil, refuse
		}
		return r.propose(ctx, cmd)
	}
	h := newHealer(r.h.cfg, r.h.log, r.view, propose, r.h.m)
	h.now = r.clock.now
	r.at(26, 0, 0, 0)

	refuse = &metaerr.NotLeaderError{}
	if err := h.expiryPass(context.Background()); !errors.Is(err, metaerr.ErrNotLeader) {
		t.Fatalf("a pass that lost leadership: %v, want NotLeader", err)
	}
	refuse = metaerr.Detailed(metaerr.ErrMethodNotAllowed, "b is locked")
	if err := h.expiryPass(context.Background()); err != nil {
		t.Fatalf("a pass with one version refused: %v", err)
	}
	r.wantVersions("after the pass", "bk", "a@id-a-e2*", "b@id-b-e2*", "b@id-b-e1", "c@id-c-e2*")
}

// TestLifecycleVersionExpiryNeedsLevel8: while a member is below
// versionExpiryLevel no version is deleted (an older member would ignore
// the condition), and buckets without versioning are not held up by it.
func TestLifecycleVersionExpiryNeedsLevel8(t *testing.T) {
	const rules = `<LifecycleConfiguration>
<Rule><ID>all</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration><Expiration><Days>1</Days></Expiration></Rule>
</LifecycleConfiguration>`
	r := newVersionRig(t, rules)
	r.must(smCreateBucket("plain"))
	r.must(smSetLifecycle("plain", rules))
	r.put("bk", "a", "e1", nil)
	r.put("bk", "a", "e2", nil)
	r.put("plain", "a", "e1", nil)
	r.put("plain", "b", "e1", nil)
	level := uint32(7)
	r.h.requireFeature = func(_ context.Context, want uint32, what string) error {
		if want > level {
			return metaerr.Detailed(metaerr.ErrUpgradeRequired, "%s needs level %d", what, want)
		}
		return nil
	}
	r.at(26, 0, 0, 0)
	if err := r.h.expiryPass(context.Background()); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("a pass with a member at level 7: %v, want UpgradeRequired", err)
	}
	// The current objects expired (level 1); the noncurrent version stays.
	r.wantVersions("at level 7", "bk", "a@?(m)*", "a@id-a-e2", "a@id-a-e1")
	r.wantVersions("at level 7", "plain")

	// Only a bucket without versioning has rules: nothing needs level 8.
	r.must(smSetLifecycle("bk", ""))
	r.put("plain", "c", "e1", nil)
	r.at(28, 0, 0, 0)
	if err := r.h.expiryPass(context.Background()); err != nil {
		t.Fatalf("a pass with rules only for a bucket without versioning, a member at level 7: %v", err)
	}
	r.wantVersions("plain at level 7", "plain")

	r.must(smSetLifecycle("bk", rules))
	level = versionExpiryLevel
	r.pass()
	r.wantVersions("at level 8", "bk", "a@?(m)*")
	r.pass() // the marker, now the only version, is as old as the Days rule's objects
	r.wantVersions("at level 8, the next pass", "bk")
}

// TestLifecycleVersionExpiryObjectLock: versions object lock keeps (a
// legal hold, a retention in force) are not expired, without even a
// refused delete; once free they are.
func TestLifecycleVersionExpiryObjectLock(t *testing.T) {
	r := newVersionRig(t, `<LifecycleConfiguration>
<Rule><ID>all</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
</LifecycleConfiguration>`)
	r.must(smBucketLock("bk", &pb.ObjectLockConfiguration{Enabled: true}))
	lockedPut := func(key, etag string, ret *pb.ObjectRetention, hold bool) {
		r.seg++
		o := smObj("bk", key, etag, smSegN(r.seg))
		o.VersionId, o.Retention, o.LegalHold = "id-"+key+"-"+etag, ret, hold
		r.must(smCommit(o, nil))
	}
	until := time.Date(1970, 1, 28, 0, 0, 0, 0, time.UTC).UnixNano()
	lockedPut("held", "e1", nil, true)
	lockedPut("retained", "e1", &pb.ObjectRetention{Mode: pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE, RetainUntilUnixNano: until}, false)
	lockedPut("free", "e1", nil, false)
	for _, k := range []string{"held", "retained", "free"} {
		lockedPut(k, "e2", nil, false)
	}
	proposed := 0
	h := newHealer(r.h.cfg, r.h.log, r.view, func(ctx context.Context, cmd *pb.Command) (proto.Message, error) {
		if cmd.GetDeleteObject() != nil {
			proposed++
		}
		return r.propose(ctx, cmd)
	}, r.h.m)
	h.now = r.clock.now
	r.at(26, 0, 0, 0)
	if err := h.expiryPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.wantVersions("while locked", "bk", "free@id-free-e2*", "held@id-held-e2*", "held@id-held-e1", "retained@id-retained-e2*", "retained@id-retained-e1")
	if proposed != 1 {
		t.Fatalf("%d deletes proposed, want 1 (the free version's)", proposed)
	}
	r.must(smLegalHold("bk", "held", "id-held-e1", false))
	r.at(28, 0, 0, 0)
	if err := h.expiryPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.wantVersions("once free", "bk", "free@id-free-e2*", "held@id-held-e2*", "retained@id-retained-e2*")
}
