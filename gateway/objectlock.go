package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnstore/cairn/gateway/objectlock"
	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// S3 object lock. metad keeps the rules (metadata/objectlock.go: which
// version may be deleted, which retention may be changed, a bucket's
// default retention applied to each version it commits); package
// gateway/objectlock reads and writes the wire forms. Here the gateway
// takes a write's x-amz-object-lock-* headers into the version it
// commits, answers them on GET and HEAD, serves the bucket's
// configuration (Put/GetObjectLockConfiguration) and each version's
// retention and legal hold (Put/GetObjectRetention, Put/GetObjectLegalHold),
// and passes x-amz-bypass-governance-retention to the deletes and
// retention changes metad judges.
//
// Getting past a GOVERNANCE retention takes S3's
// s3:BypassGovernanceRetention, which here is the bucket owner's: a
// request asking for it needs the owner permission (authorizeBypass).

// missingLock is S3's answer to a lock asked of a bucket without object
// lock.
var missingLock = s3err.New(s3err.InvalidRequest, "Bucket is missing Object Lock Configuration")

// versionLock is the lock a write's headers ask for.
type versionLock struct {
	retention *pb.ObjectRetention // nil: none (metad applies the bucket's default)
	legalHold bool
	// holdSet: the headers set the legal hold, ON or OFF.
	holdSet bool
}

// apply sets the lock on the version about to be committed.
func (l versionLock) apply(o *pb.Object) {
	o.Retention, o.LegalHold, o.LegalHoldSet = l.retention, l.legalHold, l.holdSet
}

// writeLock reads the lock a write to bucket asks for in h (a request's
// headers, or a POST form's fields standing for them): none without
// x-amz-object-lock-* headers; InvalidRequest in a bucket without object
// lock; InvalidArgument for headers S3 would refuse (a mode without a
// date or the other way round, an unknown mode, a date not in the
// future, a legal hold other than ON or OFF).
func (d *routerDeps) writeLock(ctx context.Context, bucket string, h http.Header) (versionLock, error) {
	if !objectlock.AnyHeader(h) {
		return versionLock{}, nil
	}
	on, err := d.lockEnabled(ctx, bucket)
	if err != nil {
		return versionLock{}, err
	}
	if !on {
		return versionLock{}, missingLock
	}
	r, hold, err := objectlock.FromHeaders(h, d.now())
	if err != nil {
		return versionLock{}, lockDocError(err)
	}
	return versionLock{retention: r, legalHold: hold, holdSet: h.Get(objectlock.HeaderLegalHold) != ""}, nil
}

// lockEnabled reports whether bucket has object lock. Object lock is
// never turned off, so a cached yes is trusted for as long as it is
// cached (a bucket deleted and made again without lock meanwhile: metad
// refuses the lock at the commit); a cached no is read again, since
// another gateway may have just enabled it.
func (d *routerDeps) lockEnabled(ctx context.Context, bucket string) (bool, error) {
	s, err := d.readBucketSettings(ctx, bucket, func(s bucketSettings, _ time.Duration) bool { return s.lock })
	return s.lock, err
}

// lockDocError answers an objectlock parse error with S3's code.
func lockDocError(err error) error {
	code := s3err.InvalidArgument
	if errors.Is(err, objectlock.ErrMalformed) {
		code = s3err.MalformedXML
	}
	return &s3err.Error{Code: code, Message: err.Error(), Err: err}
}

// setLockHeaders answers o's lock on a GET or HEAD, as S3 does to a
// requester who may read it: not to an anonymous one, whom a bucket
// policy lets read only the object (S3's s3:GetObjectRetention and
// s3:GetObjectLegalHold are separate permissions).
func setLockHeaders(r *http.Request, h http.Header, o *pb.Object) {
	if stateOf(r).auth == nil {
		return
	}
	objectlock.SetHeaders(h, o.GetRetention(), o.GetLegalHold(), o.GetLegalHoldSet())
}

// authorizeBypass checks that a request asking to get past GOVERNANCE
// retentions (x-amz-bypass-governance-retention: true) of key comes from
// the bucket's owner or one its policy allows
// s3:BypassGovernanceRetention, and reports whether it asks.
func (d *routerDeps) authorizeBypass(r *http.Request, bucket, key string) (bool, error) {
	if !objectlock.Bypass(r.Header) {
		return false, nil
	}
	if err := d.authorize(r, access{need: needOwner, action: "s3:BypassGovernanceRetention", bucket: bucket, key: key}); err != nil {
		return false, err
	}
	return true, nil
}

// writeXMLBytes answers an XML document already rendered.
func writeXMLBytes(w http.ResponseWriter, doc []byte) error {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
	return nil
}

// ---------------------------------------------------------------- bucket

// putObjectLockConfig is PutObjectLockConfiguration: it enables object
// lock on a bucket whose versioning is Enabled (InvalidBucketState
// otherwise) and sets or clears its default retention. Object lock cannot
// be turned off.
func (h *configHandlers) putObjectLockConfig(w http.ResponseWriter, r *http.Request) error {
	bucket := stateOf(r).target.bucket
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	c, err := objectlock.ParseConfiguration(body)
	if err != nil {
		return lockDocError(err)
	}
	if _, err := h.d.meta.SetBucketObjectLock(r.Context(), &pb.SetBucketObjectLockRequest{Name: bucket, Config: c}); err != nil {
		if isMeta(err, metaerr.ErrInvalidBucketState) {
			return &s3err.Error{Code: s3err.InvalidBucketState, Message: "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration", BucketName: bucket, Err: err}
		}
		return err
	}
	h.d.bucketCache.forget(bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// getObjectLockConfig is GetObjectLockConfiguration:
// ObjectLockConfigurationNotFoundError for a bucket without object lock.
func (h *configHandlers) getObjectLockConfig(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	c := resp.GetBucket().GetObjectLock()
	if !c.GetEnabled() {
		return s3err.ObjectLockConfigurationNotFound
	}
	return writeXMLBytes(w, objectlock.MarshalConfiguration(c))
}

// ---------------------------------------------------------------- versions

// lockedVersion reads the version a retention or legal hold read names,
// in a bucket that must have object lock (InvalidRequest otherwise).
func (h *configHandlers) lockedVersion(r *http.Request) (*pb.Object, error) {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return nil, err
	}
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: t.bucket})
	if err != nil {
		return nil, err
	}
	if !resp.GetBucket().GetObjectLock().GetEnabled() {
		return nil, missingLock
	}
	// S3 answers these reads without the version headers of a GET.
	return h.d.readVersion(r, http.Header{}, t, versionID)
}

// noLockOf is S3's answer for a version without the retention or legal
// hold asked for.
var noLockOf = s3err.New(s3err.NoSuchObjectLockConfiguration, "The specified object does not have a ObjectLock configuration")

// getObjectRetention is GetObjectRetention.
func (h *configHandlers) getObjectRetention(w http.ResponseWriter, r *http.Request) error {
	o, err := h.lockedVersion(r)
	if err != nil {
		return err
	}
	if o.GetRetention().GetMode() == pb.ObjectLockMode_OBJECT_LOCK_MODE_UNSPECIFIED {
		return noLockOf
	}
	return writeXMLBytes(w, objectlock.MarshalRetention(o.GetRetention()))
}

// getObjectLegalHold is GetObjectLegalHold: ON or OFF for a version
// whose hold was ever set, none for one never set, as S3 answers.
func (h *configHandlers) getObjectLegalHold(w http.ResponseWriter, r *http.Request) error {
	o, err := h.lockedVersion(r)
	if err != nil {
		return err
	}
	if !o.GetLegalHold() && !o.GetLegalHoldSet() {
		return noLockOf
	}
	return writeXMLBytes(w, objectlock.MarshalLegalHold(o.GetLegalHold()))
}

// putObjectRetention is PutObjectRetention: it sets a version's retention
// or, with an empty Retention, removes it, as far as the one it has
// allows (metad: a COMPLIANCE retention in force can only be extended, a
// GOVERNANCE one shortened or removed only with
// x-amz-bypass-governance-retention; refused: AccessDenied).
func (h *configHandlers) putObjectRetention(w http.ResponseWriter, r *http.Request) error {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return err
	}
	bypass, err := h.d.authorizeBypass(r, t.bucket, t.key)
	if err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	ret, err := objectlock.ParseRetention(body, h.d.now())
	if err != nil {
		return lockDocError(err)
	}
	if _, err := h.d.meta.SetObjectRetention(r.Context(), &pb.SetObjectRetentionRequest{
		Bucket: t.bucket, Key: t.key, VersionId: versionID, Retention: ret, BypassGovernance: bypass,
	}); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// putObjectLegalHold is PutObjectLegalHold: Status ON holds the version
// until a Status OFF lifts it.
func (h *configHandlers) putObjectLegalHold(w http.ResponseWriter, r *http.Request) error {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	on, err := objectlock.ParseLegalHold(body)
	if err != nil {
		return lockDocError(err)
	}
	if _, err := h.d.meta.SetObjectLegalHold(r.Context(), &pb.SetObjectLegalHoldRequest{
		Bucket: t.bucket, Key: t.key, VersionId: versionID, LegalHold: on,
	}); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}
