package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
)

// testListObjectVersions: an unversioned bucket lists each object as its
// one version, "null" and latest, with no delete markers; pages continue
// from key-marker (and version-id-marker "null"), with and without a
// delimiter, through aws-sdk-go-v2's paginator and minio-go. Part of the
// suite.
func testListObjectVersions(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "vers")
	var keys []string
	for i := range 7 {
		k := fmt.Sprintf("k%d", i)
		if i >= 4 {
			k = fmt.Sprintf("dir/k%d", i)
		}
		keys = append(keys, k)
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vers"), Key: aws.String(k), Body: strings.NewReader(k)}))
	}

	slices.Sort(keys) // the listing's order: dir/k4 before k0
	var got []string
	pages := 0
	pg := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), MaxKeys: aws.Int32(3)})
	for pg.HasMorePages() {
		out := must[*s3.ListObjectVersionsOutput](t)(pg.NextPage(ctx))
		pages++
		if len(out.DeleteMarkers) != 0 {
			t.Fatalf("delete markers in an unversioned bucket: %+v", out.DeleteMarkers)
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) != "null" || !aws.ToBool(v.IsLatest) || aws.ToInt64(v.Size) != int64(len(aws.ToString(v.Key))) || aws.ToString(v.ETag) == "" {
				t.Fatalf("version %+v", v)
			}
			got = append(got, aws.ToString(v.Key))
		}
		if aws.ToBool(out.IsTruncated) && aws.ToString(out.NextVersionIdMarker) != "null" {
			t.Fatalf("page %d: next version id marker %q", pages, aws.ToString(out.NextVersionIdMarker))
		}
		if pages > 5 {
			t.Fatal("the paginator does not end")
		}
	}
	if !slices.Equal(got, keys) || pages != 3 {
		t.Fatalf("versions %v in %d pages, want %v in 3", got, pages, keys)
	}

	// With a delimiter the directory is one common prefix, and a page
	// ending with it continues after all of it.
	out := must[*s3.ListObjectVersionsOutput](t)(c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)}))
	if len(out.Versions) != 0 || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "dir/" || !aws.ToBool(out.IsTruncated) ||
		aws.ToString(out.NextKeyMarker) != "dir/" || out.NextVersionIdMarker != nil {
		t.Fatalf("first page with delimiter: %d versions, prefixes %d, truncated %v, next %q %q", len(out.Versions), len(out.CommonPrefixes),
			aws.ToBool(out.IsTruncated), aws.ToString(out.NextKeyMarker), aws.ToString(out.NextVersionIdMarker))
	}
	out = must[*s3.ListObjectVersionsOutput](t)(c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), Delimiter: aws.String("/"), KeyMarker: aws.String("dir/"), MaxKeys: aws.Int32(1)}))
	if len(out.Versions) != 1 || aws.ToString(out.Versions[0].Key) != "k0" || aws.ToString(out.NextVersionIdMarker) != "null" {
		t.Fatalf("after dir/: %d versions, next version id marker %q", len(out.Versions), aws.ToString(out.NextVersionIdMarker))
	}
	out = must[*s3.ListObjectVersionsOutput](t)(c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), KeyMarker: aws.String("k0"), VersionIdMarker: aws.String("null")}))
	if len(out.Versions) != 3 || aws.ToBool(out.IsTruncated) {
		t.Fatalf("after k0's null version: %d versions, truncated %v", len(out.Versions), aws.ToBool(out.IsTruncated))
	}

	_, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("vers"), VersionIdMarker: aws.String("null")})
	wantCode(t, err, "InvalidArgument")
	_, err = c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("nope")})
	wantCode(t, err, "NoSuchBucket")

	// minio-go lists versions the same way.
	var mgot []string
	for o := range e.minioClient(t).ListObjects(ctx, "vers", minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.VersionID != "null" || !o.IsLatest {
			t.Fatalf("minio-go: %s version %q latest %v", o.Key, o.VersionID, o.IsLatest)
		}
		mgot = append(mgot, o.Key)
	}
	if !slices.Equal(mgot, keys) {
		t.Fatalf("minio-go versions %v, want %v", mgot, keys)
	}
}
