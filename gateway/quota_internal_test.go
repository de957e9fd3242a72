package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// keyVersions is the object layer's view of one key: its current object
// (nil: none) and its null version when that is noncurrent.
type keyVersions struct {
	Objects
	cur, null *pb.Object
}

func (k keyVersions) Head(context.Context, string, string) (*pb.Object, error) {
	if k.cur == nil {
		return nil, metaerr.ErrNoSuchKey
	}
	return k.cur, nil
}

func (k keyVersions) HeadVersion(_ context.Context, _, _ string, opts object.HeadOptions) (*pb.Object, error) {
	if opts.VersionID == "null" && k.null != nil {
		return k.null, nil
	}
	return nil, metaerr.ErrNoSuchVersion
}

// A write is refused early only when its commit would be: what a bucket
// with versioning keeps of the object it replaces still counts, what it
// deletes does not.
func TestCheckRoomVersions(t *testing.T) {
	const (
		enabled   = pb.VersioningStatus_VERSIONING_STATUS_ENABLED
		suspended = pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED
	)
	// The bucket holds 900 of its 1000 bytes: a 100-byte current object
	// and 800 noncurrent bytes (a 300-byte null version among them).
	usage := &pb.BucketUsage{Objects: 1, Bytes: 100, NoncurrentVersions: 2, NoncurrentBytes: 800}
	versioned := &pb.Object{Size: 100, Versioned: true}
	null := &pb.Object{Size: 100}
	noncurrentNull := &pb.Object{Size: 300}
	for _, tc := range []struct {
		name       string
		versioning pb.VersioningStatus
		objects    keyVersions
		size       int64
		refused    bool
	}{
		{"never versioned: replaces the current", 0, keyVersions{cur: null}, 200, false},
		{"never versioned: too big", 0, keyVersions{cur: null}, 201, true},
		{"enabled: the current is kept", enabled, keyVersions{cur: null}, 101, true},
		{"enabled: fits", enabled, keyVersions{cur: versioned}, 100, false},
		{"suspended: replaces a current null", suspended, keyVersions{cur: null}, 200, false},
		{"suspended: keeps a versioned current, deletes the noncurrent null", suspended, keyVersions{cur: versioned, null: noncurrentNull}, 400, false},
		{"suspended: too big even so", suspended, keyVersions{cur: versioned, null: noncurrentNull}, 401, true},
		{"suspended: no null version", suspended, keyVersions{cur: versioned}, 101, true},
	} {
		d := &routerDeps{
			meta:        bucketReads{bucket: &pb.Bucket{Name: "b", Versioning: tc.versioning, Quota: &pb.BucketQuota{MaxBytes: 1000}, Usage: usage}},
			objects:     tc.objects,
			bucketCache: newTTLCache[bucketSettings](time.Now, 10),
		}
		err := d.checkRoom(context.Background(), "b", "k", tc.size)
		if refused := errors.Is(err, s3err.QuotaExceeded); refused != tc.refused || (err != nil && !refused) {
			t.Errorf("%s: %v, want refused %v", tc.name, err, tc.refused)
		}
	}
}
