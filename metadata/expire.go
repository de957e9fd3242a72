package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Expiry of abandoned multipart uploads, on the leader. A client that
// dies in the middle of an upload leaves its parts' chunks stored, and
// nothing but an AbortMultipartUpload would ever free them; S3 leaves that
// to a lifecycle rule (AbortIncompleteMultipartUpload), MinIO aborts
// uploads older than 24 hours. Here an upload initiated more than
// HealConfig.UploadExpiry ago (7 days by default, 0: never) is aborted
// like a client's abort, one Raft entry each, and its parts' chunks go
// to GC. The age is counted from initiation, as S3's rule counts it, so
// the expiry must exceed the longest upload a user runs.
//
// Each pass reads the uploads in pages of uploadExpiryPage (the
// decision is the leader's: an upload's initiation time never changes, so
// a stale read cannot abort one too young). An upload completed or
// aborted between the read and the abort is skipped.

const uploadExpiryPage = 1000

// uploadExpiryLoop runs a pass at the start of the term and then every
// UploadExpiryScan.
func (h *healer) uploadExpiryLoop(ctx context.Context) {
	if h.cfg.UploadExpiry <= 0 {
		return
	}
	tick := time.NewTicker(h.cfg.UploadExpiryScan)
	defer tick.Stop()
	for {
		if err := h.expireUploads(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("multipart upload expiry pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// expireUploads aborts every upload initiated before now - UploadExpiry.
func (h *healer) expireUploads(ctx context.Context) error {
	cutoff := h.now().Add(-h.cfg.UploadExpiry)
	var after []byte
	for {
		stale, next, err := h.st.StaleUploads(cutoff, after, uploadExpiryPage)
		if err != nil {
			return err
		}
		for _, u := range stale {
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
				"upload_id", u.GetUploadId(), "initiated", time.Unix(0, u.GetInitiatedUnixNano()).UTC())
		}
		if next == nil {
			return nil
		}
		after = next
	}
}

// StaleUploads reads up to limit uploads, in key order after the upload
// key after (nil: from the first), and returns those of them initiated
// before cutoff, with bucket, key and upload id set, and the key to read
// on from (nil once every upload has been read).
func (s *State) StaleUploads(cutoff time.Time, after []byte, limit int) ([]*pb.MultipartUpload, []byte, error) {
	limit = limitOrDefault(limit)
	var stale []*pb.MultipartUpload
	var next []byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixUpload, PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		start := prefixUpload
		if after != nil {
			start = append(bytes.Clone(after), 0)
		}
		n := 0
		for it.Seek(start); it.ValidForPrefix(prefixUpload); it.Next() {
			if n == limit {
				return nil
			}
			n++
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
			next = item.KeyCopy(next[:0])
			u := &pb.MultipartUpload{}
			if err := item.Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, u) }); err != nil {
				return fmt.Errorf("read upload %q: %w", k, err)
			}
			if u.GetInitiatedUnixNano() >= cutoff.UnixNano() {
				continue
			}
			u.Bucket, u.Key, u.UploadId = string(rest[:i]), key, id
			stale = append(stale, u)
		}
		next = nil // every upload read
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan multipart uploads: %w", err)
	}
	return stale, next, nil
}
