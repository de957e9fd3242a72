package gateway

import (
	"context"
	"time"

	"github.com/cairnstore/cairn/lifecycle"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Bucket quotas are enforced by metad's state machine when a write
// commits. A PUT that cannot fit would still have its whole body sent,
// stored and discarded first, so the gateway checks before reading the
// body (a client sending Expect: 100-continue then sends nothing): with
// the bucket's current usage (its objects' bytes and its uploads' parts')
// and the size of the object the PUT would replace, a write that would
// take the bucket over its quota is refused at once. An uploaded part is
// checked the same way, against the part of its number it would replace.
// The check only ever refuses what the commit would refuse, as things
// stand at that moment, once every metad member is at feature level 6
// (before, metad counts no parts: a gateway may then refuse a write that
// would fit, until the upgrade ends); when it cannot tell (metad
// unreachable), it lets the write through to the commit.

// bucketSettingsTTL is how long a gateway trusts what it read of a
// bucket's quota, default encryption and versioning, so that a PUT to a
// bucket costs no metad read for them. A quota set through another
// gateway is checked early from then on (the commit enforces it at once
// either way); a default encryption set through another gateway applies
// to the writes this gateway starts from then on; versioning set through
// another gateway is answered in x-amz-version-id from then on (the
// versions themselves are metad's, at once).
const bucketSettingsTTL = 5 * time.Second

// maxCachedBuckets bounds the cache of buckets' settings.
const maxCachedBuckets = 10000

// maxHeldLifecycleRules bounds the lifecycle configuration a bucket's
// cached settings hold for the expiry headers (expiration.go): S3 allows
// 1,000 rules, ~380 KiB parsed with a prefix and a tag each, which
// maxCachedBuckets times over would be gigabytes; 50 is ~19 KiB. A bucket
// with more rules than this is answered without the headers.
const maxHeldLifecycleRules = 50

// bucketSettings is what the gateway keeps of a bucket for every write
// (and for the version ids of reads).
type bucketSettings struct {
	quota      *pb.BucketQuota // nil: none
	encryption string          // the default encryption, "" for none
	// versioning decides which version id writes and reads of current
	// objects answer (answeredVersionID).
	versioning pb.VersioningStatus
	// lock: the bucket has object lock (never turned off; writeLock).
	lock bool
	// lifecycle is the bucket's lifecycle configuration, nil for none (or
	// one this version cannot read), for the headers that tell clients
	// when an object expires (expiration.go).
	lifecycle *lifecycle.Configuration
}

// bucketSettings reads the settings of bucket, as read within
// bucketSettingsTTL.
func (d *routerDeps) bucketSettings(ctx context.Context, bucket string) (bucketSettings, error) {
	return d.readBucketSettings(ctx, bucket, func(_ bucketSettings, age time.Duration) bool { return age < bucketSettingsTTL })
}

// readBucketSettings reads the settings of bucket, as cached while fresh
// says they are.
func (d *routerDeps) readBucketSettings(ctx context.Context, bucket string, fresh func(bucketSettings, time.Duration) bool) (bucketSettings, error) {
	return d.bucketCache.get(ctx, bucket, fresh, func(ctx context.Context) (bucketSettings, error) {
		resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
		if err != nil {
			return bucketSettings{}, err
		}
		b := resp.GetBucket()
		s := bucketSettings{quota: b.GetQuota(), encryption: b.GetDefaultEncryption(), versioning: b.GetVersioning(), lock: b.GetObjectLock().GetEnabled()}
		if doc := b.GetLifecycle(); doc != "" {
			// Stored as a gateway parsed it; a document that no longer
			// parses goes without the headers (metad decides expiry),
			// and so does one too long to hold for every cached bucket.
			if c, err := lifecycle.Parse([]byte(doc)); err == nil && len(c.Rules) <= maxHeldLifecycleRules {
				s.lifecycle = c
			}
		}
		return s, nil
	})
}

// checkRoom answers QuotaExceeded when a write of size bytes (-1:
// unknown) to bucket/key would take the bucket over its quota.
func (d *routerDeps) checkRoom(ctx context.Context, bucket, key string, size int64) error {
	if size < 0 {
		return nil
	}
	s, err := d.bucketSettings(ctx, bucket)
	if err != nil || s.quota == nil {
		return nil
	}
	// The bucket has a quota: its usage now, not as cached.
	resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
	if err != nil {
		return nil
	}
	q, u := resp.GetBucket().GetQuota(), resp.GetBucket().GetUsage()
	versioning := resp.GetBucket().GetVersioning()
	var old int64
	exists, nullCurrent := false, false
	switch o, err := d.objects.Head(ctx, bucket, key); {
	case err == nil:
		exists = true
		// A version kept as noncurrent still counts: only an
		// unversioned (null) object replaced outside an Enabled bucket
		// frees its bytes (metadata's retireCurrent).
		if nullCurrent = !o.GetVersioned(); nullCurrent && versioning != pb.VersioningStatus_VERSIONING_STATUS_ENABLED {
			old = o.GetSize()
		}
	case !isMeta(err, metaerr.ErrNoSuchKey):
		return nil
	}
	if max := q.GetMaxBytes(); max > 0 && held(u)-old+size > max {
		// A write to a Suspended bucket also deletes the key's
		// noncurrent null version, if any: asked for only now, on the
		// way to a refusal.
		if versioning == pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED && !nullCurrent {
			if nv, err := d.objects.HeadVersion(ctx, bucket, key, object.HeadOptions{VersionID: "null"}); err == nil {
				old = nv.GetSize()
			}
		}
		if held(u)-old+size > max {
			return s3err.New(s3err.QuotaExceeded, "Bucket %s holds %d of its %d bytes; this write of %d bytes would go over.", bucket, held(u), max, size)
		}
	}
	if max := q.GetMaxObjects(); max > 0 && !exists && u.GetObjects()+1 > max {
		return s3err.New(s3err.QuotaExceeded, "Bucket %s holds %d objects, its quota.", bucket, u.GetObjects())
	}
	return nil
}

// held is what a bucket's quota of bytes counts: its objects' bytes, its
// uploads' parts' and its noncurrent versions'.
func held(u *pb.BucketUsage) int64 {
	return u.GetBytes() + u.GetUploadBytes() + u.GetNoncurrentBytes()
}

// checkPartRoom answers QuotaExceeded when part number of an upload to
// bucket/key, of size bytes (-1: unknown), would take the bucket over its
// quota of bytes, counting the part of that number it would replace.
func (d *routerDeps) checkPartRoom(ctx context.Context, bucket, key, uploadID string, number int32, size int64) error {
	if size < 0 {
		return nil
	}
	s, err := d.bucketSettings(ctx, bucket)
	if err != nil || s.quota.GetMaxBytes() <= 0 {
		return nil
	}
	resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
	if err != nil {
		return nil
	}
	max, have := resp.GetBucket().GetQuota().GetMaxBytes(), held(resp.GetBucket().GetUsage())
	if max <= 0 || have+size <= max {
		return nil // fits without counting what it replaces
	}
	parts, err := d.meta.ListParts(ctx, &pb.ListPartsRequest{Bucket: bucket, Key: key, UploadId: uploadID, PartNumberMarker: number - 1, MaxParts: 1})
	if err != nil {
		return nil
	}
	var old int64
	if ps := parts.GetParts(); len(ps) > 0 && ps[0].GetNumber() == number {
		old = ps[0].GetSize()
	}
	if have-old+size > max {
		return s3err.New(s3err.QuotaExceeded, "Bucket %s holds %d of its %d bytes, uploads' parts included; this part of %d bytes would go over.", bucket, have, max, size)
	}
	return nil
}
