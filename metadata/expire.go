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
// modification time counts again). As on S3, expiry is a background pass:
// an object may outlive its date by up to ExpiryScan plus the pass.
//
// Every pass runs at the start of a term and then every ExpiryScan; the
// decisions are the leader's, from reads of the replicated state. Reads
// cannot make a decision wrong: an upload's initiation never changes, and
// an object's delete is conditional.

const expiryPage = 1000

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
	rules, err := h.bucketLifecycles()
	if err != nil {
		return err
	}
	return errors.Join(h.expireUploads(ctx, rules), h.expireObjects(ctx, rules))
}

// bucketLifecycles reads every bucket's lifecycle configuration. One that
// does not parse (it was parsed before it was stored) is skipped, loudly.
func (h *healer) bucketLifecycles() (map[string]*lifecycle.Configuration, error) {
	resp, err := h.st.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil {
		return nil, fmt.Errorf("read buckets: %w", err)
	}
	rules := map[string]*lifecycle.Configuration{}
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
	}
	return rules, nil
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
