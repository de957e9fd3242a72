package gateway

import (
	"context"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Bucket quotas are enforced by metad's state machine when a write
// commits. A PUT that cannot fit would still have its whole body sent,
// stored and discarded first, so the gateway checks before reading the
// body (a client sending Expect: 100-continue then sends nothing): with
// the bucket's current usage and the size of the object the PUT would
// replace, a write that would take the bucket over its quota is refused
// at once. The check only ever refuses what the commit would refuse, as
// things stand at that moment; when it cannot tell (metad unreachable),
// it lets the write through to the commit.

// quotaTTL is how long a gateway trusts that a bucket has, or has no,
// quota, so that buckets without one cost no metad read per PUT. A quota
// set through another gateway is checked early from then on; the commit
// enforces it at once either way.
const quotaTTL = 5 * time.Second

// maxCachedQuotas bounds the cache of buckets' quotas.
const maxCachedQuotas = 10000

// checkRoom answers QuotaExceeded when a write of size bytes (-1:
// unknown) to bucket/key would take the bucket over its quota.
func (d *routerDeps) checkRoom(ctx context.Context, bucket, key string, size int64) error {
	if size < 0 {
		return nil
	}
	fresh := func(_ *pb.BucketQuota, age time.Duration) bool { return age < quotaTTL }
	q, err := d.quotaCache.get(ctx, bucket, fresh, func(ctx context.Context) (*pb.BucketQuota, error) {
		resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
		if err != nil {
			return nil, err
		}
		return resp.GetBucket().GetQuota(), nil
	})
	if err != nil || q == nil {
		return nil
	}
	// The bucket has a quota: its usage now, not as cached.
	resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
	if err != nil {
		return nil
	}
	q, u := resp.GetBucket().GetQuota(), resp.GetBucket().GetUsage()
	var old int64
	exists := false
	switch o, err := d.objects.Head(ctx, bucket, key); {
	case err == nil:
		old, exists = o.GetSize(), true
	case !isMeta(err, metaerr.ErrNoSuchKey):
		return nil
	}
	if max := q.GetMaxBytes(); max > 0 && u.GetBytes()-old+size > max {
		return s3err.New(s3err.QuotaExceeded, "Bucket %s holds %d of its %d bytes; this write of %d bytes would go over.", bucket, u.GetBytes(), max, size)
	}
	if max := q.GetMaxObjects(); max > 0 && !exists && u.GetObjects()+1 > max {
		return s3err.New(s3err.QuotaExceeded, "Bucket %s holds %d objects, its quota.", bucket, u.GetObjects())
	}
	return nil
}
