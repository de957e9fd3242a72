package metadata

import (
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Object lock (S3 object lock, feature level 8), kept by the state
// machine so that no gateway, client or operator path can get around it:
//
//   - a bucket gets it at creation (CreateBucket.object_lock_enabled, which
//     enables versioning too) or, with versioning Enabled, from
//     SetBucketObjectLock; it is never turned off, and the bucket's
//     versioning can no longer be suspended, so no write or delete without
//     a version id ever releases a version;
//   - each version may carry a retention (GOVERNANCE or COMPLIANCE, until a
//     date) and a legal hold; a version written without a retention gets
//     the bucket's default one, counted from its commit;
//   - deleting a version by id (the only way a version of such a bucket
//     goes) is refused while its legal hold is on or its retention is in
//     force, unless the retention is GOVERNANCE and the request bypasses
//     governance;
//   - a COMPLIANCE retention in force can only be extended; a GOVERNANCE
//     one can be shortened, removed or replaced only with the bypass.
//
// "In force" is judged on the command's proposed time, the state machine's
// only clock, so every member decides alike.

// objectLockLevel is the feature level of object lock.
const objectLockLevel = 8

// Most days and years a default retention may have (as S3's limits).
const (
	maxRetentionDays  = 36500
	maxRetentionYears = 100
)

func lockEnabled(c *pb.ObjectLockConfiguration) bool { return c.GetEnabled() }

// retentionInForce reports whether r still protects its version at now.
func retentionInForce(r *pb.ObjectRetention, now int64) bool {
	return r.GetMode() != pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED && r.GetRetainUntilUnixNano() > now
}

// checkDeletable refuses deleting version o for good while its legal hold
// is on or its retention is in force (a GOVERNANCE one yields to bypass).
func checkDeletable(o *pb.Object, now int64, bypass bool) error {
	if o.GetLegalHold() {
		return metaerr.Detailed(metaerr.ErrObjectLocked, "%s/%s version %s is under a legal hold", o.GetBucket(), o.GetKey(), S3VersionID(o))
	}
	r := o.GetRetention()
	if !retentionInForce(r, now) {
		return nil
	}
	if r.GetMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE && bypass {
		return nil
	}
	return metaerr.Detailed(metaerr.ErrObjectLocked, "%s/%s version %s is retained (%v) until %s", o.GetBucket(), o.GetKey(), S3VersionID(o),
		r.GetMode(), time.Unix(0, r.GetRetainUntilUnixNano()).UTC().Format(time.RFC3339))
}

// checkRetention refuses a retention that is not a mode and a date.
func checkRetention(r *pb.ObjectRetention) error {
	switch r.GetMode() {
	case pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE, pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE:
	default:
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "retention mode must be GOVERNANCE or COMPLIANCE")
	}
	if r.GetRetainUntilUnixNano() <= 0 {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "retention needs a retain-until date")
	}
	return nil
}

// checkLockConfig refuses a configuration S3 would not take: not enabled,
// or a default retention without exactly one positive period, or a period
// without a mode.
func checkLockConfig(c *pb.ObjectLockConfiguration) error {
	if !c.GetEnabled() {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "object lock configuration: ObjectLockEnabled must be Enabled (object lock cannot be turned off)")
	}
	days, years := c.GetDefaultDays(), c.GetDefaultYears()
	if c.GetDefaultMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED {
		if days != 0 || years != 0 {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "object lock configuration: a default retention period needs a mode")
		}
		return nil
	}
	if err := checkRetention(&pb.ObjectRetention{Mode: c.GetDefaultMode(), RetainUntilUnixNano: 1}); err != nil {
		return err
	}
	switch {
	case (days > 0) == (years > 0) || days < 0 || years < 0:
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "object lock configuration: a default retention has either Days or Years, positive")
	case days > maxRetentionDays || years > maxRetentionYears:
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "object lock configuration: a default retention is at most %d days or %d years", maxRetentionDays, maxRetentionYears)
	}
	return nil
}

// defaultRetention is the retention a version committed at now gets from
// its bucket's configuration (nil: none). A year is 365 days, as S3 counts
// it.
func defaultRetention(c *pb.ObjectLockConfiguration, now int64) *pb.ObjectRetention {
	if !lockEnabled(c) || c.GetDefaultMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED {
		return nil
	}
	days := int64(c.GetDefaultDays()) + 365*int64(c.GetDefaultYears())
	return &pb.ObjectRetention{Mode: c.GetDefaultMode(), RetainUntilUnixNano: now + days*int64(24*time.Hour)}
}

// applyLockOnCommit checks a version about to be committed to a bucket
// with lock configuration c: a retention or legal hold needs object lock
// (refused once every member is at objectLockLevel; before, members that
// do not know the fields would store the version, so it is stored
// without them), a retention's date must be ahead, and a version without
// a retention gets the default.
func (a *applier) applyLockOnCommit(o *pb.Object, c *pb.ObjectLockConfiguration) error {
	now := a.now
	if !lockEnabled(c) {
		if o.GetRetention() == nil && !o.GetLegalHold() && !o.GetLegalHoldSet() {
			return nil
		}
		level, err := a.st.membersLevel()
		if err != nil {
			return err
		}
		if level >= objectLockLevel {
			return metaerr.Detailed(metaerr.ErrObjectLockNotEnabled, "bucket %q has no object lock: a version cannot have a retention or legal hold", o.GetBucket())
		}
		o.Retention, o.LegalHold, o.LegalHoldSet = nil, false, false
		return nil
	}
	if o.GetLegalHold() {
		o.LegalHoldSet = true
	}
	if r := o.GetRetention(); r != nil {
		if err := checkRetention(r); err != nil {
			return err
		}
		if r.GetRetainUntilUnixNano() <= now {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "a retention's retain-until date must be in the future")
		}
		return nil
	}
	o.Retention = defaultRetention(c, now)
	return nil
}

// setBucketObjectLock enables object lock on a bucket whose versioning is
// Enabled and sets its default retention.
func (a *applier) setBucketObjectLock(req *pb.SetBucketObjectLockRequest) (proto.Message, error) {
	c := req.GetConfig()
	if err := checkLockConfig(c); err != nil {
		return nil, err
	}
	var refused error
	b, err := a.updateBucket(req.GetName(), func(b *pb.Bucket) {
		if !lockEnabled(b.GetObjectLock()) && b.GetVersioning() != pb.VersioningStatus_VERSIONING_STATUS_ENABLED {
			refused = metaerr.Detailed(metaerr.ErrInvalidBucketState, "bucket %q: enable versioning before object lock", b.GetName())
			return
		}
		b.ObjectLock = proto.CloneOf(c)
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	return &pb.SetBucketObjectLockResponse{Bucket: b}, nil
}

// lockedVersion reads the version a retention or legal hold command
// names, in a bucket that must have object lock.
func (a *applier) lockedVersion(bucket, key, id string) (*pb.Object, []byte, error) {
	if err := a.requireBucket(bucket); err != nil {
		return nil, nil, err
	}
	set, err := a.st.bucketSettings(bucket)
	if err != nil {
		return nil, nil, err
	}
	if !lockEnabled(set.lock) {
		return nil, nil, metaerr.Detailed(metaerr.ErrObjectLockNotEnabled, "bucket %q has no object lock", bucket)
	}
	if len(key) > maxObjectKey || len(id) > maxVersionID {
		return nil, nil, metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
	}
	var o *pb.Object
	objKey := objectKey(bucket, key)
	if id == "" {
		o, err = a.readObjectAt(objKey)
	} else {
		o, objKey, err = a.findVersion(bucket, key, id)
	}
	switch {
	case err != nil:
		return nil, nil, err
	case o == nil && id != "":
		return nil, nil, metaerr.Detailed(metaerr.ErrNoSuchVersion, "%s/%s version %q", bucket, key, id)
	case o == nil:
		return nil, nil, metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
	case o.GetDeleteMarker():
		return nil, nil, metaerr.Detailed(metaerr.ErrMethodNotAllowed, "%s/%s version %q is a delete marker", bucket, key, id)
	}
	return o, objKey, nil
}

// setObjectRetention sets or removes a version's retention, as far as the
// retention it has allows.
func (a *applier) setObjectRetention(req *pb.SetObjectRetentionRequest) (proto.Message, error) {
	next := req.GetRetention()
	if next != nil {
		if err := checkRetention(next); err != nil {
			return nil, err
		}
	}
	if next != nil && next.GetRetainUntilUnixNano() <= a.now {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "a retention's retain-until date must be in the future")
	}
	o, at, err := a.lockedVersion(req.GetBucket(), req.GetKey(), req.GetVersionId())
	if err != nil {
		return nil, err
	}
	if cur := o.GetRetention(); retentionInForce(cur, a.now) {
		weaker := next == nil || next.GetRetainUntilUnixNano() < cur.GetRetainUntilUnixNano() ||
			(cur.GetMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE && next.GetMode() != cur.GetMode())
		switch {
		case !weaker:
		case cur.GetMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE && req.GetBypassGovernance():
		default:
			return nil, metaerr.Detailed(metaerr.ErrObjectLocked, "%s/%s version %s: its %v retention until %s can only be extended", o.GetBucket(), o.GetKey(), S3VersionID(o),
				cur.GetMode(), time.Unix(0, cur.GetRetainUntilUnixNano()).UTC().Format(time.RFC3339))
		}
	}
	o.Retention = proto.CloneOf(next)
	if err := a.st.put(at, o); err != nil {
		return nil, err
	}
	return &pb.SetObjectRetentionResponse{Object: lockAnswer(o)}, nil
}

// setObjectLegalHold sets or lifts a version's legal hold.
func (a *applier) setObjectLegalHold(req *pb.SetObjectLegalHoldRequest) (proto.Message, error) {
	o, at, err := a.lockedVersion(req.GetBucket(), req.GetKey(), req.GetVersionId())
	if err != nil {
		return nil, err
	}
	o.LegalHold, o.LegalHoldSet = req.GetLegalHold(), true
	if err := a.st.put(at, o); err != nil {
		return nil, err
	}
	return &pb.SetObjectLegalHoldResponse{Object: lockAnswer(o)}, nil
}

// lockAnswer is what a lock command answers of the version: everything
// but its data's whereabouts.
func lockAnswer(o *pb.Object) *pb.Object {
	c := proto.CloneOf(o)
	c.Segments, c.Inline = nil, nil
	return c
}
