package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// versioned is a key's history in a bucket with versioning: versions
// overwritten (one spanning two segments, one inline in metad) and a
// delete marker on top, then a second key deleted for good by version id.
type versioned struct {
	bucket, key string
	// ids and bodies, oldest first; the key's latest version is a delete
	// marker with id marker.
	ids    []string
	bodies [][]byte
	marker string
	// gone is a key whose only version was deleted by id.
	gone string
}

// createVersionedBucket creates bucket with versioning enabled.
func createVersionedBucket(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	createBucket(t, c, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatalf("enable versioning on %s: %v", bucket, err)
	}
}

// writeVersioned creates bucket with versioning enabled and writes the
// history versioned describes.
func writeVersioned(ctx context.Context, t *testing.T, c *s3.Client, bucket string, segSize int64) *versioned {
	t.Helper()
	createVersionedBucket(t, c, bucket)
	v := &versioned{bucket: bucket, key: "history", gone: "gone"}
	for i, size := range []int{int(segSize) + 1<<20 + 7, 100, 3 << 20} {
		body := makeBody(v.key, 100+i, size)
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.key), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("PUT %s version %d: %v", v.key, i, err)
		}
		id := aws.ToString(out.VersionId)
		if id == "" || id == "null" {
			t.Fatalf("PUT %s version %d: version id %q", v.key, i, id)
		}
		v.ids, v.bodies = append(v.ids, id), append(v.bodies, body)
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.key)})
	if err != nil || !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) == "" {
		t.Fatalf("DELETE %s: %+v, %v; want a delete marker", v.key, del, err)
	}
	v.marker = aws.ToString(del.VersionId)
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.gone), Body: bytes.NewReader(makeBody(v.gone, 0, 2<<20))})
	if err != nil {
		t.Fatalf("PUT %s: %v", v.gone, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(v.gone), VersionId: out.VersionId}); err != nil {
		t.Fatalf("DELETE %s version %s: %v", v.gone, aws.ToString(out.VersionId), err)
	}
	return v
}

// check lists the bucket's versions (the marker latest, then the
// versions newest first, nothing of the key deleted for good), reads
// each version by id byte for byte, and expects 404 for the key itself.
func (v *versioned) check(ctx context.Context, t *testing.T, c *s3.Client, when string) {
	t.Helper()
	list, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(v.bucket)})
	if err != nil {
		t.Errorf("%s: list versions of %s: %v", when, v.bucket, err)
		return
	}
	var got []string
	for _, m := range list.DeleteMarkers {
		got = append(got, fmt.Sprintf("%s marker %s latest=%v", aws.ToString(m.Key), aws.ToString(m.VersionId), aws.ToBool(m.IsLatest)))
	}
	for _, o := range list.Versions {
		got = append(got, fmt.Sprintf("%s %s latest=%v", aws.ToString(o.Key), aws.ToString(o.VersionId), aws.ToBool(o.IsLatest)))
	}
	want := []string{fmt.Sprintf("%s marker %s latest=true", v.key, v.marker)}
	for i := len(v.ids) - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("%s %s latest=false", v.key, v.ids[i]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: versions %q, want %q", when, got, want)
	}
	for i, id := range v.ids {
		body, err := getAll(ctx, c, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(v.key), VersionId: aws.String(id)})
		if err != nil {
			t.Errorf("%s: GET %s version %s: %v", when, v.key, id, err)
		} else if !bytes.Equal(body, v.bodies[i]) {
			t.Errorf("%s: GET %s version %s: %d bytes (MD5 %s), want the %d written (MD5 %s)", when, v.key, id, len(body), md5hex(body), len(v.bodies[i]), md5hex(v.bodies[i]))
		}
	}
	_, err = getAll(ctx, c, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(v.key)})
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != 404 {
		t.Errorf("%s: GET %s under its delete marker: %v; want 404", when, v.key, err)
	}
}
