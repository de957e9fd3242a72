package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// testObjectTagging: tags given on PUT, multipart and copy are kept and
// counted on HEAD; Put/Get/DeleteObjectTagging change them without
// touching the ETag or Last-Modified; bad tags are refused with S3's
// codes and change nothing. Part of the suite.
func testObjectTagging(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "tagged")
	b := aws.String("tagged")
	getTags := func(key string) map[string]string {
		t.Helper()
		out := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String(key)}))
		m := map[string]string{}
		for _, tg := range out.TagSet {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	same := func(got, want map[string]string) bool {
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}

	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("v"), Tagging: aws.String("team=storage&env=prod%20eu")}))
	if got := getTags("k"); !same(got, map[string]string{"team": "storage", "env": "prod eu"}) {
		t.Fatalf("tags after PUT: %v", got)
	}
	head := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")}))
	if aws.ToInt32(head.TagCount) != 2 {
		t.Errorf("HEAD tag count %d, want 2", aws.ToInt32(head.TagCount))
	}

	pt := must[*s3.PutObjectTaggingOutput](t)(c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("stage"), Value: aws.String("archived")}}}}))
	if pt.VersionId != nil {
		t.Errorf("PutObjectTagging in a bucket never versioned answered version id %q", aws.ToString(pt.VersionId))
	}
	if got := getTags("k"); !same(got, map[string]string{"stage": "archived"}) {
		t.Fatalf("tags after PutObjectTagging: %v", got)
	}
	after := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("k")}))
	if aws.ToString(after.ETag) != aws.ToString(head.ETag) || !aws.ToTime(after.LastModified).Equal(aws.ToTime(head.LastModified)) {
		t.Errorf("tagging changed the object: ETag %s → %s, Last-Modified %v → %v", aws.ToString(head.ETag), aws.ToString(after.ETag), head.LastModified, after.LastModified)
	}

	// Copies keep the source's tags unless told to replace them.
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("tagged/k")}))
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy2"), CopySource: aws.String("tagged/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("new=1")}))
	if a, b := getTags("copy"), getTags("copy2"); !same(a, map[string]string{"stage": "archived"}) || !same(b, map[string]string{"new": "1"}) {
		t.Errorf("copy tags %v, replaced %v", a, b)
	}

	// Multipart: the upload's tags go to the object.
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"), Tagging: aws.String("mp=yes")}))
	part := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")}))
	must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}))
	if got := getTags("mp"); !same(got, map[string]string{"mp": "yes"}) {
		t.Errorf("multipart tags %v", got)
	}

	// Refused: too many, bad characters, duplicates, a reserved prefix,
	// a missing key; the stored tags stay.
	eleven := make([]types.Tag, 11)
	for i := range eleven {
		eleven[i] = types.Tag{Key: aws.String(strings.Repeat("k", i+1)), Value: aws.String("v")}
	}
	for _, tc := range []struct {
		name string
		set  []types.Tag
		key  string
		code string
	}{
		{"eleven tags", eleven, "k", "BadRequest"},
		{"bad character", []types.Tag{{Key: aws.String("a*b"), Value: aws.String("v")}}, "k", "InvalidTag"},
		{"duplicate keys", []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}, "k", "InvalidTag"},
		{"aws prefix", []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("1")}}, "k", "InvalidTag"},
		{"value too long", []types.Tag{{Key: aws.String("a"), Value: aws.String(strings.Repeat("v", 257))}}, "k", "InvalidTag"},
		{"missing key", []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}, "nope", "NoSuchKey"},
	} {
		_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String(tc.key), Tagging: &types.Tagging{TagSet: tc.set}})
		if apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if got := getTags("k"); !same(got, map[string]string{"stage": "archived"}) {
		t.Errorf("tags after refused puts: %v", got)
	}

	must[*s3.DeleteObjectTaggingOutput](t)(c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("k")}))
	if got := getTags("k"); len(got) != 0 {
		t.Errorf("tags after DeleteObjectTagging: %v", got)
	}
	req, _ := http.NewRequest(http.MethodHead, e.url+"/tagged/k", nil)
	resp := e.signedDo(t, req, nil)
	resp.Body.Close()
	if v := resp.Header.Get("x-amz-tagging-count"); v != "" {
		t.Errorf("x-amz-tagging-count %q on an untagged object", v)
	}

	// Bucket tags: none is NoSuchTagSet; at most 50; put, read, delete.
	_, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b})
	wantCode(t, err, "NoSuchTagSet")
	fiftyOne := make([]types.Tag, 51)
	for i := range fiftyOne {
		fiftyOne[i] = types.Tag{Key: aws.String("k" + strings.Repeat("x", i)), Value: aws.String("v")}
	}
	_, err = c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: fiftyOne}})
	wantCode(t, err, "InvalidTag")
	must[*s3.PutBucketTaggingOutput](t)(c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: fiftyOne[:50]}}))
	if got := must[*s3.GetBucketTaggingOutput](t)(c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b})).TagSet; len(got) != 50 {
		t.Errorf("GetBucketTagging: %d tags, want 50", len(got))
	}
	must[*s3.DeleteBucketTaggingOutput](t)(c.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: b}))
	_, err = c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b})
	wantCode(t, err, "NoSuchTagSet")
	_, err = c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("nope"), Tagging: &types.Tagging{TagSet: fiftyOne[:1]}})
	wantCode(t, err, "NoSuchBucket")

	// minio-go reads and writes them too.
	mc := e.minioClient(t)
	var got *tags.Tags
	tg, err := tags.NewTags(map[string]string{"via": "minio"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.PutObjectTagging(ctx, "tagged", "k", tg, minio.PutObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err = mc.GetObjectTagging(ctx, "tagged", "k", minio.GetObjectTaggingOptions{})
	if err != nil || got.ToMap()["via"] != "minio" {
		t.Fatalf("minio-go GetObjectTagging: %v %v", got, err)
	}
}
