package gateway_test

import (
	"bytes"
	"context"
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

	deadline := time.Now().Add(expiry + testcluster.ReadyTimeout)
	for {
		ups := must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("expiry")}))
		if len(ups.Uploads) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload still listed %v after it was created", time.Since(created))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if age := time.Since(created); age < expiry {
		t.Fatalf("upload aborted %v after it was created, before its expiry (%v)", age, expiry)
	}
	_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("expiry"), Key: aws.String("abandoned"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("late"))})
	wantCode(t, err, "NoSuchUpload")
	for n := chunks(); n != 0; n = chunks() {
		if time.Now().After(deadline) {
			t.Fatalf("%d chunks still stored after the upload expired", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
