package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/metadata"
)

// TestClusterUploadExpiry: an upload its client abandoned is aborted by
// metad's leader once older than --upload-expiry, not before; its part's
// chunks are deleted from the blob nodes, and the upload id is gone for
// the client too.
func TestClusterUploadExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process cluster test; skipped with -short")
	}
	const expiry = 3 * time.Second
	heal := metadata.DefaultHealConfig()
	heal.UploadExpiry, heal.UploadExpiryScan = expiry, 100*time.Millisecond
	heal.GCInterval, heal.GCGrace = 100*time.Millisecond, 0
	ce := &clusterEnv{c: testcluster.New(t, testcluster.Config{Quiet: true, Heal: &heal})}
	e := ce.gateway(t, nil)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "expiry")

	chunks := func() int64 {
		var n int64
		for _, b := range ce.c.Blobs {
			n += b.Server().Store().Usage().Chunks
		}
		return n
	}
	created := time.Now()
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("expiry"), Key: aws.String("abandoned")}))
	must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("expiry"), Key: aws.String("abandoned"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(pattern(1<<20, 3))}))
	if chunks() == 0 {
		t.Fatal("the part stored no chunks")
	}

	testcluster.WaitFor(t, expiry+testcluster.ReadyTimeout, "the expired upload to be aborted", func() error {
		ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("expiry")})
		if err != nil {
			return err
		}
		if len(ups.Uploads) != 0 {
			return fmt.Errorf("%d uploads listed %v after the first was created", len(ups.Uploads), time.Since(created))
		}
		return nil
	})
	if age := time.Since(created); age < expiry {
		t.Fatalf("upload aborted %v after it was created, before its expiry (%v)", age, expiry)
	}
	_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("expiry"), Key: aws.String("abandoned"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("late"))})
	wantCode(t, err, "NoSuchUpload")
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "the expired part's chunks to be deleted", func() error {
		if n := chunks(); n != 0 {
			return fmt.Errorf("%d chunks stored", n)
		}
		return nil
	})
}
