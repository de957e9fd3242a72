package gateway

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// bucketReads answers GetBucket with a fixed bucket or error.
type bucketReads struct {
	Metadata
	bucket *pb.Bucket
	err    error
}

func (b bucketReads) GetBucket(context.Context, *pb.GetBucketRequest, ...grpc.CallOption) (*pb.GetBucketResponse, error) {
	return &pb.GetBucketResponse{Bucket: b.bucket}, b.err
}

// A write without encryption headers into a bucket whose settings cannot
// be read fails rather than risk storing in the clear what the bucket's
// default would encrypt; a missing bucket is left to fail on its own.
func TestWriteEncryptionFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		meta     bucketReads
		wantMode pb.EncryptionMode
		wantErr  bool
	}{
		{"default AES256", bucketReads{bucket: &pb.Bucket{Name: "b", DefaultEncryption: "AES256"}}, pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3, false},
		{"no default", bucketReads{bucket: &pb.Bucket{Name: "b"}}, 0, false},
		{"no such bucket", bucketReads{err: metaerr.ErrNoSuchBucket}, 0, false},
		{"metad unreachable", bucketReads{err: errors.New("connection refused")}, 0, true},
	} {
		d := &routerDeps{meta: tc.meta, bucketCache: newTTLCache[bucketSettings](time.Now, 10)}
		p, err := d.writeEncryption(httptest.NewRequest("PUT", "/b/k", nil), "b")
		if (err != nil) != tc.wantErr || p.mode != tc.wantMode {
			t.Errorf("%s: mode %v, error %v; want mode %v, error %v", tc.name, p.mode, err, tc.wantMode, tc.wantErr)
		}
	}
}
