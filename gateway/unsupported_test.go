package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestUnsupportedFeatureHeadersRefused: a header asking for something
// Cairn does not do (KMS encryption, SSE-S3 on a gateway without a master
// key, object lock in a bucket without it or over a metad without it,
// malformed tags, public ACLs, an unknown storage class) is refused with
// S3's error and stores nothing; the values Cairn does honour are
// accepted.
func TestUnsupportedFeatureHeadersRefused(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "feat")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("feat"), Key: aws.String("src"), Body: strings.NewReader("source")}))

	const (
		put    = "PUT /feat/k"
		copy   = "PUT /feat/k copy"
		create = "POST /feat/k?uploads"
		get    = "GET /feat/src"
		bucket = "PUT /newbucket"
	)
	for _, tc := range []struct {
		op, header, value string
		status            int
		code              string // "" when accepted
	}{
		{put, "x-amz-server-side-encryption", "AES256", 501, "NotImplemented"},
		{put, "x-amz-server-side-encryption-customer-algorithm", "AES256", 400, "InvalidArgument"}, // without its key
		{put, "x-amz-server-side-encryption", "aws:kms", 501, "NotImplemented"},
		{put, "x-amz-server-side-encryption", "DES", 400, "InvalidArgument"},
		{copy, "x-amz-server-side-encryption", "aws:kms", 501, "NotImplemented"},
		{copy, "x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256", 400, "InvalidArgument"},
		{create, "x-amz-server-side-encryption", "AES256", 501, "NotImplemented"},
		{get, "x-amz-server-side-encryption-customer-algorithm", "AES256", 400, "InvalidArgument"},
		{get, "x-amz-server-side-encryption", "AES256", 400, "InvalidArgument"},
		// The fake's buckets have no object lock.
		{put, "x-amz-object-lock-mode", "GOVERNANCE", 400, "InvalidRequest"},
		{put, "x-amz-object-lock-legal-hold", "ON", 400, "InvalidRequest"},
		{copy, "x-amz-object-lock-legal-hold", "ON", 400, "InvalidRequest"},
		{create, "x-amz-object-lock-legal-hold", "ON", 400, "InvalidRequest"},
		{put, "x-amz-tagging", "a=b&a=c", 400, "InvalidArgument"},
		{create, "x-amz-tagging", "aws:x=1", 400, "InvalidTag"},
		{put, "x-amz-website-redirect-location", "/other", 501, "NotImplemented"},
		{put, "x-amz-storage-class", "NO_SUCH_CLASS", 400, "InvalidStorageClass"},
		{put, "x-amz-acl", "public-read", 400, "AccessControlListNotSupported"},
		{put, "x-amz-grant-read", "uri=http://acs.amazonaws.com/groups/global/AllUsers", 400, "AccessControlListNotSupported"},
		// The fake ignores object_lock_enabled, as a metad from before
		// object lock would: the bucket made without it goes again.
		{bucket, "x-amz-bucket-object-lock-enabled", "true", 501, "NotImplemented"},
		{bucket, "x-amz-acl", "public-read-write", 400, "AccessControlListNotSupported"},
		{bucket, "x-amz-object-ownership", "ObjectWriter", 501, "NotImplemented"},
		// Accepted: what every object and bucket here already is.
		{put, "x-amz-acl", "private", 200, ""},
		{put, "x-amz-acl", "bucket-owner-full-control", 200, ""},
		{put, "x-amz-storage-class", "STANDARD_IA", 200, ""},
		{copy, "x-amz-storage-class", "STANDARD", 200, ""},
		{create, "x-amz-storage-class", "STANDARD", 200, ""},
		{put, "x-amz-tagging", "a=b", 200, ""},
		{bucket, "x-amz-object-ownership", "BucketOwnerEnforced", 200, ""},
		{bucket, "x-amz-bucket-object-lock-enabled", "false", 200, ""},
	} {
		t.Run(tc.op+" "+tc.header+": "+tc.value, func(t *testing.T) {
			method, rest, _ := strings.Cut(tc.op, " ")
			path, extra, _ := strings.Cut(rest, " ")
			var body []byte
			if method == http.MethodPut && !strings.HasPrefix(path, "/newbucket") && extra == "" {
				body = []byte("data")
			}
			req, err := http.NewRequest(method, e.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if extra == "copy" {
				req.Header.Set("x-amz-copy-source", "/feat/src")
			}
			req.Header.Set(tc.header, tc.value)
			resp := e.signedDo(t, req, body)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.code == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, body %s", resp.StatusCode, got)
				}
				return
			}
			wantErrorDoc(t, resp.StatusCode, got, tc.status, tc.code, "")
			switch {
			case strings.HasPrefix(path, "/newbucket"):
				_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("newbucket")})
				if err == nil {
					t.Fatal("the refused CreateBucket made the bucket")
				}
			case method == http.MethodPut:
				headMissing(t, c, "feat", "k")
			case method == http.MethodPost:
				ups := must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("feat")}))
				if len(ups.Uploads) != 0 {
					t.Fatalf("the refused CreateMultipartUpload left %d uploads", len(ups.Uploads))
				}
			}
		})
		// Accepted writes are undone so the next case starts clean.
		_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("feat"), Key: aws.String("k")})
		_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("newbucket")})
		ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("feat")})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups.Uploads {
			_, _ = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("feat"), Key: u.Key, UploadId: u.UploadId})
		}
	}
}

// TestSubresourceElsewhere: a subresource the router answers for some
// methods and levels only is MethodNotAllowed anywhere else, and changes
// nothing: a DELETE ?object-lock does not delete the bucket, a DELETE
// ?retention not the object, a PUT ?attributes does not overwrite it.
func TestSubresourceElsewhere(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "sub")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sub"), Key: aws.String("k"), Body: strings.NewReader("data")}))
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/sub?object-lock"},
		{http.MethodPost, "/sub?object-lock"},
		{http.MethodDelete, "/sub?versioning"},
		{http.MethodDelete, "/sub?uploads"},
		{http.MethodDelete, "/sub?location"},
		{http.MethodPut, "/sub?location"},
		{http.MethodGet, "/sub?retention"},
		{http.MethodDelete, "/sub/k?retention"},
		{http.MethodDelete, "/sub/k?legal-hold"},
		{http.MethodHead, "/sub/k?legal-hold"},
		{http.MethodPut, "/sub/k?attributes"},
		{http.MethodPut, "/sub/k?uploads"},
		{http.MethodGet, "/sub/k?object-lock"},
		{http.MethodGet, "/sub/k?versioning"},
	} {
		req, err := http.NewRequest(tc.method, e.url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if tc.method == http.MethodPut {
			body = []byte("overwritten")
		}
		resp := e.signedDo(t, req, body)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.method == http.MethodHead {
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s: status %d, want 405", tc.method, tc.path, resp.StatusCode)
			}
		} else {
			wantErrorDoc(t, resp.StatusCode, got, http.StatusMethodNotAllowed, "MethodNotAllowed", "")
		}
		if b := getBytes(t, c, "sub", "k"); string(b) != "data" {
			t.Fatalf("after %s %s the object holds %q", tc.method, tc.path, b)
		}
	}
}
