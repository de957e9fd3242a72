package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cairnstore/cairn/chunk"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// unreadable is the fake whose object bytes cannot be read: Open succeeds
// (it is lazy, like the real object layer) and the first Read fails as a
// segment with too few healthy chunks does.
type unreadable struct{ *fake }

func (u unreadable) Open(context.Context, *pb.Object, int64, int64) (io.ReadCloser, error) {
	return io.NopCloser(errReader{fmt.Errorf("segment 0: %w", chunk.ErrUnrecoverable)}), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestGetUnreadableAnswersCleanly: when the first bytes of a GET cannot be
// read, the client gets an S3 error (503 ServiceUnavailable), not a
// connection cut before any response.
func TestGetUnreadableAnswersCleanly(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: unreadable{f}}, nil)
	c := e.awsClient(t, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("GET of unreadable bytes: %v, want a ServiceUnavailable S3 error", err)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", re.HTTPStatusCode())
	}
}
