package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
	heal.UploadExpiry, heal.ExpiryScan = expiry, 100*time.Millisecond
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

// TestClusterLifecycleExpiry: a lifecycle rule whose Date has passed makes
// metad's leader delete the objects it selects (by prefix and size) and
// free their chunks; objects it does not select stay.
func TestClusterLifecycleExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process cluster test; skipped with -short")
	}
	heal := metadata.DefaultHealConfig()
	heal.ExpiryScan = 100 * time.Millisecond
	heal.GCInterval, heal.GCGrace = 100*time.Millisecond, 0
	ce := &clusterEnv{c: testcluster.New(t, testcluster.Config{Quiet: true, Heal: &heal})}
	e := ce.gateway(t, nil)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "lifecy")
	put := func(key string, size int) {
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lifecy"), Key: aws.String(key), Body: bytes.NewReader(pattern(size, 5))}))
	}
	put("logs/big", 1<<20) // erasure-coded: its chunks must go too
	put("logs/small", 100)
	put("logs/tiny", 10)
	put("keep/big", 1<<20)
	chunks := func() int64 {
		var n int64
		for _, b := range ce.c.Blobs {
			n += b.Server().Store().Usage().Chunks
		}
		return n
	}
	before := chunks()

	must[*s3.PutBucketLifecycleConfigurationOutput](t)(c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("lifecy"),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID: aws.String("old-logs"), Status: types.ExpirationStatusEnabled,
			Filter:     &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{Prefix: aws.String("logs/"), ObjectSizeGreaterThan: aws.Int64(50)}},
			Expiration: &types.LifecycleExpiration{Date: aws.Time(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))},
		}}}}))

	testcluster.WaitFor(t, testcluster.ReadyTimeout, "the lifecycle rule to expire its objects", func() error {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lifecy")})
		if err != nil {
			return err
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if strings.Join(keys, ",") != "keep/big,logs/tiny" {
			return fmt.Errorf("objects %v", keys)
		}
		return nil
	})
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "the expired object's chunks to be deleted", func() error {
		if n := chunks(); n >= before {
			return fmt.Errorf("%d chunks stored, %d before", n, before)
		}
		return nil
	})
}
