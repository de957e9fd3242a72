package metadata

import (
	"strings"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

func smRetention(bucket, key, id string, mode pb.ObjectLockMode, until int64, bypass bool) *pb.Command {
	var r *pb.ObjectRetention
	if mode != pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED {
		r = &pb.ObjectRetention{Mode: mode, RetainUntilUnixNano: until}
	}
	return &pb.Command{Op: &pb.Command_SetObjectRetention{SetObjectRetention: &pb.SetObjectRetentionRequest{
		Bucket: bucket, Key: key, VersionId: id, Retention: r, BypassGovernance: bypass}}}
}

func smLegalHold(bucket, key, id string, on bool) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetObjectLegalHold{SetObjectLegalHold: &pb.SetObjectLegalHoldRequest{
		Bucket: bucket, Key: key, VersionId: id, LegalHold: on}}}
}

func smBucketLock(bucket string, c *pb.ObjectLockConfiguration) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetBucketObjectLock{SetBucketObjectLock: &pb.SetBucketObjectLockRequest{Name: bucket, Config: c}}}
}

func smDeleteVersionBypass(bucket, key, id string) *pb.Command {
	c := smDeleteVersion(bucket, key, id)
	c.GetDeleteObject().BypassGovernance = true
	return c
}

// TestObjectLock: the state machine keeps locked versions whatever asks
// to delete them, each rule judged on the commands' own clock.
func TestObjectLock(t *testing.T) {
	h := smNew(t)
	const (
		gov  = pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE
		comp = pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE
		none = pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED
	)
	// The harness's commands are proposed at index*1000 ns: a date a
	// million ns ahead is in force for a thousand entries.
	future := int64(1) << 50
	h.must(&pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: &pb.CreateBucketRequest{Name: "locked", ObjectLockEnabled: true}}},
		smCreateBucket("plain"))
	b, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "locked"})
	if err != nil || b.GetBucket().GetVersioning() != pb.VersioningStatus_VERSIONING_STATUS_ENABLED || !b.GetBucket().GetObjectLock().GetEnabled() {
		t.Fatalf("a bucket created with object lock: %v, %v", b, err)
	}

	seg := uint32(0)
	put := func(bucket, key, id string, r *pb.ObjectRetention, hold bool) Result {
		seg++
		o := smObj(bucket, key, "e", smSegN(seg))
		o.VersionId, o.Retention, o.LegalHold = id, r, hold
		return h.do(smCommit(o, nil))
	}
	// Below objectLockLevel a member would store the fields it does not
	// know: the version is stored without them.
	if r := put("plain", "k", "p0", &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: future}, true); r.Err != nil ||
		r.Resp.(*pb.CommitObjectResponse).GetObject().GetRetention() != nil || r.Resp.(*pb.CommitObjectResponse).GetObject().GetLegalHold() {
		t.Fatalf("a retention in a bucket without object lock, below level %d: %v", objectLockLevel, r)
	}
	h.must(&pb.Command{Op: &pb.Command_SetMemberAddress{SetMemberAddress: &pb.SetMemberAddress{Id: "m1", GrpcAddress: "a:1", FeatureLevel: FeatureLevel}}})
	if r := put("plain", "k", "p1", &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: future}, false); !smIsCond(r.Err, metaerr.ErrObjectLockNotEnabled) {
		t.Fatalf("a retention in a bucket without object lock: %v", r.Err)
	}
	if r := put("locked", "k", "past", &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: 5}, false); !smIsCond(r.Err, metaerr.ErrInvalidArgument) {
		t.Fatalf("a retention already over: %v", r.Err)
	}
	if r := h.do(smRetention("plain", "k", "", gov, future, false)); !smIsCond(r.Err, metaerr.ErrObjectLockNotEnabled) {
		t.Fatalf("PutObjectRetention in a bucket without object lock: %v", r.Err)
	}
	if r := h.do(smBucketLock("plain", &pb.ObjectLockConfiguration{Enabled: true})); !smIsCond(r.Err, metaerr.ErrInvalidBucketState) {
		t.Fatalf("object lock without versioning: %v", r.Err)
	}

	for _, c := range []struct {
		id   string
		r    *pb.ObjectRetention
		hold bool
	}{
		{"gov", &pb.ObjectRetention{Mode: gov, RetainUntilUnixNano: future}, false},
		{"comp", &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: future}, false},
		{"held", nil, true},
		// In force when written (the 10th command from here), over a few
		// commands later.
		{"past", &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: int64(h.next+12) * 1000}, false},
		{"free", nil, false},
	} {
		if r := put("locked", c.id, c.id, c.r, c.hold); r.Err != nil {
			t.Fatalf("put %s: %v", c.id, r.Err)
		}
		// Each overwritten once: the locked version is noncurrent now,
		// and a delete without a version id adds a marker.
		if r := put("locked", c.id, c.id+"-2", nil, false); r.Err != nil {
			t.Fatalf("overwrite %s: %v", c.id, r.Err)
		}
		h.must(smDelete("locked", c.id, nil))
	}
	if r := h.do(smSetVersioning("locked", pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED)); !smIsCond(r.Err, metaerr.ErrInvalidBucketState) {
		t.Fatalf("suspending versioning under object lock: %v", r.Err)
	}

	for _, c := range []struct {
		name string
		cmd  *pb.Command
		want error
	}{
		{"delete a GOVERNANCE version", smDeleteVersion("locked", "gov", "gov"), metaerr.ErrObjectLocked},
		{"delete a COMPLIANCE version", smDeleteVersion("locked", "comp", "comp"), metaerr.ErrObjectLocked},
		{"delete a COMPLIANCE version, bypassing", smDeleteVersionBypass("locked", "comp", "comp"), metaerr.ErrObjectLocked},
		{"delete a held version", smDeleteVersion("locked", "held", "held"), metaerr.ErrObjectLocked},
		{"delete a held version, bypassing", smDeleteVersionBypass("locked", "held", "held"), metaerr.ErrObjectLocked},
		{"shorten a COMPLIANCE retention", smRetention("locked", "comp", "comp", comp, future-1, true), metaerr.ErrObjectLocked},
		{"weaken COMPLIANCE to GOVERNANCE", smRetention("locked", "comp", "comp", gov, future+1, true), metaerr.ErrObjectLocked},
		{"remove a COMPLIANCE retention", smRetention("locked", "comp", "comp", none, 0, true), metaerr.ErrObjectLocked},
		{"extend a COMPLIANCE retention", smRetention("locked", "comp", "comp", comp, future+1, false), nil},
		{"shorten a GOVERNANCE retention", smRetention("locked", "gov", "gov", gov, future-1, false), metaerr.ErrObjectLocked},
		{"shorten a GOVERNANCE retention, bypassing", smRetention("locked", "gov", "gov", gov, future-1, true), nil},
		{"retention of a marker", smRetention("locked", "free", "", comp, future, false), metaerr.ErrNoSuchKey},
		{"retention of a missing version", smRetention("locked", "free", "nope", comp, future, false), metaerr.ErrNoSuchVersion},
		{"retention without a mode's date", smRetention("locked", "free", "free", comp, 0, false), metaerr.ErrInvalidArgument},
		{"delete an expired retention's version", smDeleteVersion("locked", "past", "past"), nil},
		{"delete an unlocked version", smDeleteVersion("locked", "free", "free"), nil},
		{"delete a GOVERNANCE version, bypassing", smDeleteVersionBypass("locked", "gov", "gov"), nil},
		{"retention already over", smRetention("locked", "free", "free-2", gov, 5, false), metaerr.ErrInvalidArgument},
		{"lift the hold", smLegalHold("locked", "held", "held", false), nil},
		{"delete the version no longer held", smDeleteVersion("locked", "held", "held"), nil},
		{"hold the current version of a key", smLegalHold("locked", "gov", "", true), metaerr.ErrNoSuchKey},
		{"hold a noncurrent version", smLegalHold("locked", "gov", "gov-2", true), nil},
		{"delete it", smDeleteVersionBypass("locked", "gov", "gov-2"), metaerr.ErrObjectLocked},
	} {
		if r := h.do(c.cmd); !smIsCond(r.Err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, r.Err, c.want)
		}
	}
	if o, err := h.s.GetObject(&pb.GetObjectRequest{Bucket: "locked", Key: "comp", VersionId: "comp"}); err != nil || o.GetObject().GetRetention().GetRetainUntilUnixNano() != future+1 {
		t.Fatalf("the extended retention: %v, %v", o, err)
	}
	// A hold set and lifted is told from one never set.
	for id, want := range map[string][2]bool{"gov-2": {true, true}, "comp-2": {false, false}} {
		o, err := h.s.GetObject(&pb.GetObjectRequest{Bucket: "locked", Key: strings.TrimSuffix(id, "-2"), VersionId: id})
		if err != nil || [2]bool{o.GetObject().GetLegalHold(), o.GetObject().GetLegalHoldSet()} != want {
			t.Fatalf("legal hold of %s: %v, %v; want (hold, set) %v", id, o, err, want)
		}
	}
	smCheckIndexes(t, h.s, "end")

	// A default retention: versions written without one get it, counted
	// from their commit; one of their own wins.
	h.must(smBucketLock("locked", &pb.ObjectLockConfiguration{Enabled: true, DefaultMode: gov, DefaultDays: 2}))
	r := put("locked", "dflt", "d1", nil, false)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	got := r.Resp.(*pb.CommitObjectResponse).GetObject().GetRetention()
	if want := (int64(h.next-1) * 1000) + int64(48*time.Hour); got.GetMode() != gov || got.GetRetainUntilUnixNano() != want {
		t.Fatalf("default retention %v, want GOVERNANCE until %d", got, want)
	}
	if r := put("locked", "own", "o1", &pb.ObjectRetention{Mode: comp, RetainUntilUnixNano: future}, false); r.Err != nil ||
		r.Resp.(*pb.CommitObjectResponse).GetObject().GetRetention().GetMode() != comp {
		t.Fatalf("a version's own retention under a default: %v", r)
	}
	for _, c := range []*pb.ObjectLockConfiguration{
		{Enabled: false},
		{Enabled: true, DefaultMode: gov},
		{Enabled: true, DefaultDays: 1},
		{Enabled: true, DefaultMode: gov, DefaultDays: 1, DefaultYears: 1},
		{Enabled: true, DefaultMode: comp, DefaultYears: 101},
	} {
		if r := h.do(smBucketLock("locked", c)); !smIsCond(r.Err, metaerr.ErrInvalidArgument) {
			t.Errorf("lock configuration %v: %v", c, r.Err)
		}
	}
}
