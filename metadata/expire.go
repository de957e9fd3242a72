package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/lifecycle"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Expiry on the leader: multipart uploads that have been left unfinished
// too long, and objects the buckets' lifecycle rules expire.
//
// Uploads. A client that dies in the middle of an upload leaves its
// parts' chunks stored, and nothing but an AbortMultipartUpload would ever
// free them. An upload is aborted once it is older than
// HealConfig.UploadExpiry (7 days by default, 0: never; MinIO aborts after
// 24 hours) or than an AbortIncompleteMultipartUpload rule of its bucket
// allows, like a client's abort, one Raft entry each, and its parts'
// chunks go to GC. Ages count from initiation, as S3's rule counts them.
//
// Objects. A bucket whose lifecycle configuration expires objects
// (lifecycle.Configuration.ObjectExpiry: Days after the last modification,
// rounded up to midnight UTC, or a Date) has its objects read in pages of
// expiryPage, and each one due is deleted with a condition on its version
// id, so an object overwritten since the read is left alone (its own
// modification time counts again). In a bucket with versioning the delete
// adds a delete marker and keeps the object as a noncurrent version (in a
// SUSPENDED bucket a null version goes), as S3's expiration does. As on
// S3, expiry is a background pass: an object may outlive its date by up
// to ExpiryScan plus the pass.
//
// Versions. A bucket with versioning (ENABLED or SUSPENDED) whose rules
// expire noncurrent versions or expired object delete markers
// (lifecycle.Configuration.ExpiresVersions) has its v/ records read in
// pages of expiryPage (State.Versions), key by key, newest first. A
// noncurrent version (a noncurrent delete marker too) is due
// NoncurrentDays after it became noncurrent, which is when the next newer
// version of its key was made (S3's rule; a marker's record says only when
// it was made), unless it is among the NewerNoncurrentVersions newest; a
// delete marker that is its key's only version is due as
// lifecycle.Configuration.DeleteMarkerExpiry says. Each due version is
// deleted for good with DeleteObject{version_id}, one Raft entry each,
// conditioned by if_noncurrent_version_id on the record's internal version
// id and on leaving the key's current object as it is: a version id names
// one version only while it is not "null" (a SUSPENDED bucket's write
// replaces the null version), and a noncurrent version becomes current
// again when the versions above it are deleted; such a delete fails and
// the version stays until a pass finds it due again. A marker that was
// the only version and has newer versions above it by the delete is a
// noncurrent marker, whose removal changes no current object, so it goes.
//
// Every pass runs at the start of a term and then every ExpiryScan; the
// decisions are the leader's, from reads of the replicated state. Reads
// cannot make a decision wrong where it matters: an upload's initiation
// never changes, an object's delete is conditional, and so is a
// version's. What a read can have missed is that a noncurrent version
// read as old enough has since been left among the NewerNoncurrentVersions
// newest by deletes of newer ones (or by a page boundary: a key whose
// versions span pages is read in two snapshots); it is deleted as it was
// due when read, as a pass a moment earlier would have.

const expiryPage = 1000

// versionExpiryLevel is the feature level (members.go) of DeleteObject's
// if_noncurrent_version_id: a member below it would ignore the condition.
const versionExpiryLevel = 8

// expiryLoop runs the expiry passes.
func (h *healer) expiryLoop(ctx context.Context) {
	tick := time.NewTicker(h.cfg.ExpiryScan)
	defer tick.Stop()
	for {
		if err := h.expiryPass(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("expiry pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// expiryPass aborts the uploads and deletes the objects that are due.
func (h *healer) expiryPass(ctx context.Context) error {
	rules, versioned, err := h.bucketLifecycles()
	if err != nil {
		return err
	}
	// Objects before versions: an expired object's noncurrent version is
	// not due in the pass that made it noncurrent anyway.
	return errors.Join(h.expireUploads(ctx, rules), h.expireObjects(ctx, rules), h.expireVersions(ctx, rules, versioned))
}

// bucketLifecycles reads every bucket's lifecycle configuration, and
// which of those buckets have versioning (ENABLED or SUSPENDED: only they
// can have noncurrent versions). A configuration that does not parse (it
// was parsed before it was stored) is skipped, loudly.
func (h *healer) bucketLifecycles() (rules map[string]*lifecycle.Configuration, versioned map[string]bool, err error) {
	resp, err := h.st.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("read buckets: %w", err)
	}
	rules, versioned = map[string]*lifecycle.Configuration{}, map[string]bool{}
	for _, b := range resp.GetBuckets() {
		if b.GetLifecycle() == "" {
			continue
		}
		c, err := lifecycle.Parse([]byte(b.GetLifecycle()))
		if err != nil {
			h.log.Error("a stored lifecycle configuration does not parse; its rules are not carried out", "bucket", b.GetName(), "err", err)
			continue
		}
		rules[b.GetName()] = c
		if b.GetVersioning() != pb.VersioningStatus_VERSIONING_STATUS_UNSET {
			versioned[b.GetName()] = true
		}
	}
	return rules, versioned, nil
}

// expireUploads aborts every upload past UploadExpiry or its bucket's
// AbortIncompleteMultipartUpload rules.
func (h *healer) expireUploads(ctx context.Context, rules map[string]*lifecycle.Configuration) error {
	if h.cfg.UploadExpiry <= 0 && len(rules) == 0 {
		return nil
	}
	now := h.now()
	var after []byte
	for {
		ups, next, err := h.st.Uploads(after, expiryPage)
		if err != nil {
			return err
		}
		for _, u := range ups {
			initiated := time.Unix(0, u.GetInitiatedUnixNano())
			why := ""
			if h.cfg.UploadExpiry > 0 && initiated.Before(now.Add(-h.cfg.UploadExpiry)) {
				why = "older than --upload-expiry"
			} else if c := rules[u.GetBucket()]; c != nil {
				if at, ok := c.UploadExpiry(u.GetKey(), initiated); ok && !now.Before(at) {
					why = "its bucket's lifecycle rule"
				}
			}
			if why == "" {
				continue
			}
			_, err := h.propose(ctx, &pb.Command{Op: &pb.Command_AbortMultipart{AbortMultipart: &pb.AbortMultipartRequest{
				Bucket: u.GetBucket(), Key: u.GetKey(), UploadId: u.GetUploadId(),
			}}})
			if errors.Is(err, metaerr.ErrNoSuchUpload) {
				continue // completed or aborted since the read
			}
			if err != nil {
				return fmt.Errorf("abort expired upload %q of %s/%s: %w", u.GetUploadId(), u.GetBucket(), u.GetKey(), err)
			}
			h.m.uploadsExpired.Inc()
			h.log.Info("aborted an expired multipart upload", "bucket", u.GetBucket(), "key", u.GetKey(),
				"upload_id", u.GetUploadId(), "initiated", initiated.UTC(), "why", why)
		}
		if next == nil {
			return nil
		}
		after = next
	}
}

// expireObjects deletes the objects the lifecycle rules have made due.
// Its deletes are conditioned on a version id, which a member older than
// feature level 1 would ignore: none is proposed until every member has
// it.
func (h *healer) expireObjects(ctx context.Context, rules map[string]*lifecycle.Configuration) error {
	if len(rules) == 0 {
		return nil
	}
	if h.requireFeature != nil {
		if err := h.requireFeature(ctx, 1, "lifecycle expiry of objects"); err != nil {
			return err
		}
	}
	var errs []error
	for bucket, c := range rules {
		if !c.ExpiresObjects() {
			continue
		}
		n, err := h.expireBucketObjects(ctx, bucket, c)
		if n > 0 {
			h.log.Info("lifecycle rules expired objects", "bucket", bucket, "deleted", n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("expire objects of %s: %w", bucket, err))
		}
	}
	return errors.Join(errs...)
}

func (h *healer) expireBucketObjects(ctx context.Context, bucket string, c *lifecycle.Configuration) (int, error) {
	now := h.now()
	deleted := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		resp, err := h.st.ListObjects(&pb.ListObjectsRequest{Bucket: bucket, StartAfter: after, MaxKeys: expiryPage})
		if errors.Is(err, metaerr.ErrNoSuchBucket) {
			return deleted, nil // deleted since the configurations were read
		}
		if err != nil {
			return deleted, err
		}
		for _, o := range resp.GetObjects() {
			at, ok := c.ObjectExpiry(o.GetKey(), o.GetSize(), o.GetTags(), time.Unix(0, o.GetModifiedUnixNano()))
			if !ok || now.Before(at) || o.GetVersionId() == "" {
				continue
			}
			_, err := h.propose(ctx, &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: &pb.DeleteObjectRequest{
				Bucket: bucket, Key: o.GetKey(), Condition: &pb.Condition{IfVersionId: o.GetVersionId()},
			}}})
			if errors.Is(err, metaerr.ErrPreconditionFailed) || errors.Is(err, metaerr.ErrNoSuchKey) {
				continue // overwritten or deleted since the read
			}
			if err != nil {
				return deleted, fmt.Errorf("delete expired %s: %w", o.GetKey(), err)
			}
			deleted++
			h.m.objectsExpired.Inc()
		}
		if !resp.GetIsTruncated() {
			return deleted, nil
		}
		after = resp.GetNextStartAfter()
	}
}

// expireVersions deletes the noncurrent versions and expired object
// delete markers the lifecycle rules of buckets with versioning have made
// due. Its deletes carry if_noncurrent_version_id, which a member below
// versionExpiryLevel would ignore: none is proposed until every member
// has it.
func (h *healer) expireVersions(ctx context.Context, rules map[string]*lifecycle.Configuration, versioned map[string]bool) error {
	due := map[string]*lifecycle.Configuration{}
	for bucket, c := range rules {
		if versioned[bucket] && c.ExpiresVersions() {
			due[bucket] = c
		}
	}
	if len(due) == 0 {
		return nil
	}
	if h.requireFeature != nil {
		if err := h.requireFeature(ctx, versionExpiryLevel, "lifecycle expiry of noncurrent versions"); err != nil {
			return err
		}
	}
	var errs []error
	for bucket, c := range due {
		n, err := h.expireBucketVersions(ctx, bucket, c)
		if n > 0 {
			h.log.Info("lifecycle rules expired versions", "bucket", bucket, "deleted", n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("expire versions of %s: %w", bucket, err))
		}
	}
	return errors.Join(errs...)
}

func (h *healer) expireBucketVersions(ctx context.Context, bucket string, c *lifecycle.Configuration) (int, error) {
	now := h.now()
	deleted, refused := 0, 0
	var lastRefusal error
	defer func() {
		if refused > 0 {
			h.log.Warn("the state machine refused to delete versions lifecycle rules expire; they stay", "bucket", bucket,
				"refused", refused, "last", lastRefusal)
		}
	}()
	var after *VersionCursor
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		vs, next, err := h.st.Versions(bucket, after, expiryPage)
		if err != nil {
			return deleted, err
		}
		for _, v := range vs {
			if !versionDue(c, v, now) {
				continue
			}
			o := v.Version
			resp, err := h.propose(ctx, &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: &pb.DeleteObjectRequest{
				Bucket: bucket, Key: o.GetKey(), VersionId: S3VersionID(o), IfNoncurrentVersionId: o.GetVersionId(),
			}}})
			if errors.Is(err, metaerr.ErrPreconditionFailed) || errors.Is(err, metaerr.ErrNoSuchBucket) {
				continue // current again, another version of its id, or the bucket deleted since the read
			}
			if versionRefused(err) {
				// This version's delete, not the pass: the others go on.
				refused, lastRefusal = refused+1, err
				continue
			}
			if err != nil {
				return deleted, fmt.Errorf("delete expired version %q of %s: %w", S3VersionID(o), o.GetKey(), err)
			}
			if r, ok := resp.(*pb.DeleteObjectResponse); !ok || !r.GetDeleted() {
				continue // deleted since the read
			}
			deleted++
			h.m.versionsExpired.Inc()
		}
		if next == nil {
			return deleted, nil
		}
		after = next
	}
}

// versionRefused tells whether err is the state machine refusing one
// version's delete (a condition of the metadata service, like a lock
// that keeps the version), rather than the leader failing to commit it
// (leadership lost, a member too old), which stops the pass.
func versionRefused(err error) bool {
	var me *metaerr.Error
	return errors.As(err, &me) && !errors.Is(err, metaerr.ErrNotLeader) && !errors.Is(err, metaerr.ErrUpgradeRequired)
}

// versionDue tells whether c's rules have made v due at now. A version
// object lock keeps is not. A record without an internal version id (an object written by a metad older than
// version ids) is never due: the delete could not be conditioned on it.
func versionDue(c *lifecycle.Configuration, v VersionInfo, now time.Time) bool {
	o := v.Version
	if o.GetVersionId() == "" {
		return false
	}
	if checkDeletable(o, now.UnixNano(), false) != nil {
		// Held or retained (object lock): lifecycle rules never remove
		// such a version, as on S3; it is looked at again once free.
		return false
	}
	var at time.Time
	var ok bool
	switch {
	case v.Only:
		at, ok = c.DeleteMarkerExpiry(o.GetKey(), time.Unix(0, o.GetModifiedUnixNano()))
	case v.Latest:
		return false // a delete marker hiding older versions: the key's current version, to S3
	default:
		since := max(v.SuccessorUnixNano, o.GetNoncurrentSinceUnixNano())
		at, ok = c.NoncurrentExpiry(o.GetKey(), o.GetSize(), o.GetTags(), time.Unix(0, since), v.Newer)
	}
	return ok && !now.Before(at)
}

// VersionInfo is a v/ record as lifecycle expiry reads it (Versions).
type VersionInfo struct {
	// Version is the record, with its key set, without segments, inline
	// data and part boundaries.
	Version *pb.Object
	// Latest: the key's latest version, a delete marker (the key has no
	// current object).
	Latest bool
	// Only: Latest, and the key has no other version.
	Only bool
	// Newer counts the key's noncurrent versions newer than this one (a
	// latest delete marker is not one).
	Newer int
	// SuccessorUnixNano is when the next newer version of the key (the
	// current object for the newest noncurrent one) was made, which is
	// when this one became noncurrent; 0 when Latest.
	SuccessorUnixNano int64
}

// VersionCursor is where a Versions scan goes on from.
type VersionCursor struct {
	last      []byte // the last v/ key read
	key       string // its object key
	newer     int    // Newer of the key's next record
	successor int64  // the last record's modification time
}

// Versions reads up to limit v/ records of bucket, key by key (in the
// order of the escaped keys) and newest first within a key, from after
// (nil: the first), and returns the cursor to read on from (nil once every
// record has been read). A page is one consistent read; a key whose
// records span pages carries its counts over from the earlier page's
// read.
func (s *State) Versions(bucket string, after *VersionCursor, limit int) ([]VersionInfo, *VersionCursor, error) {
	limit = limitOrDefault(limit)
	base := versionBase(bucket)
	var out []VersionInfo
	var next *VersionCursor
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: base, PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		start := base
		var at VersionCursor
		if after != nil {
			start = append(bytes.Clone(after.last), 0)
			at = *after
		}
		var scratch []byte
		for it.Seek(start); it.ValidForPrefix(base); it.Next() {
			item := it.Item()
			k := item.Key()
			key, _, ok := decodeVersionKey(k[len(base):])
			if !ok {
				return fmt.Errorf("corrupt version key %q", k)
			}
			sameKey := at.last != nil && key == at.key
			if sameKey && len(out) > 0 && out[len(out)-1].Latest {
				out[len(out)-1].Only = false
			}
			if len(out) == limit {
				next = &at
				return nil
			}
			info := VersionInfo{}
			if !sameKey {
				// The key's newest record: newer than every other, and
				// older than the current object if there is one.
				cur, err := currentModified(txn, bucket, key, &scratch)
				if err != nil {
					return err
				}
				at = VersionCursor{key: key, successor: cur}
				info.Latest, info.Only = cur == 0, cur == 0
			}
			o := &pb.Object{}
			if err := item.Value(func(v []byte) error {
				var err error
				scratch, err = unmarshalForListing(v, scratch, o)
				return err
			}); err != nil {
				return fmt.Errorf("read version %q: %w", k, err)
			}
			o.Key = key
			info.Version = o
			if !info.Latest {
				info.Newer, info.SuccessorUnixNano = at.newer, at.successor
				at.newer++
			}
			out = append(out, info)
			at.last, at.successor = item.KeyCopy(at.last[:0:0]), o.GetModifiedUnixNano()
		}
		return nil // every record read
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan versions of %q: %w", bucket, err)
	}
	return out, next, nil
}

// currentModified is the modification time of bucket/key's current
// object, 0 when it has none.
func currentModified(txn *badger.Txn, bucket, key string, scratch *[]byte) (int64, error) {
	item, err := txn.Get(objectKey(bucket, key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	o := &pb.Object{}
	if err := item.Value(func(v []byte) error {
		var err error
		*scratch, err = unmarshalForListing(v, *scratch, o)
		return err
	}); err != nil {
		return 0, fmt.Errorf("read object %s/%s: %w", bucket, key, err)
	}
	return max(o.GetModifiedUnixNano(), 1), nil
}

// Uploads reads up to limit multipart uploads of every bucket, in key
// order after the upload key after (nil: from the first), with bucket,
// key and upload id set, and returns the key to read on from (nil once
// every upload has been read).
func (s *State) Uploads(after []byte, limit int) ([]*pb.MultipartUpload, []byte, error) {
	limit = limitOrDefault(limit)
	var out []*pb.MultipartUpload
	var next []byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixUpload, PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		start := prefixUpload
		if after != nil {
			start = append(bytes.Clone(after), 0)
		}
		for it.Seek(start); it.ValidForPrefix(prefixUpload); it.Next() {
			if len(out) == limit {
				return nil
			}
			item := it.Item()
			k := item.Key()
			rest := k[len(prefixUpload):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("corrupt upload key %q", k)
			}
			key, id, ok := decodeUploadKey(rest[i+1:])
			if !ok {
				return fmt.Errorf("corrupt upload key %q", k)
			}
			u := &pb.MultipartUpload{}
			if err := item.Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, u) }); err != nil {
				return fmt.Errorf("read upload %q: %w", k, err)
			}
			u.Bucket, u.Key, u.UploadId = string(rest[:i]), key, id
			out = append(out, u)
			next = item.KeyCopy(next[:0])
		}
		next = nil // every upload read
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan multipart uploads: %w", err)
	}
	return out, next, nil
}
