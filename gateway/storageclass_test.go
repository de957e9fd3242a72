package gateway_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestClusterStorageClassKept: a storage class named on a write labels the
// object (stored alike, reported as given) in HEAD, listings,
// GetObjectAttributes and multipart listings; a copy is STANDARD unless it
// names one, and a copy onto itself may change it.
func TestClusterStorageClassKept(t *testing.T) {
	e := newClusterEnv(t).gateway(t, nil) // through metad's listing too
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "classes")
	put := func(key string, class types.StorageClass) {
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("classes"), Key: aws.String(key), Body: strings.NewReader(key), StorageClass: class}))
	}
	classOf := func(key string) (head, list, attrs types.StorageClass) {
		h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("classes"), Key: aws.String(key)}))
		l := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("classes"), Prefix: aws.String(key)}))
		a := must[*s3.GetObjectAttributesOutput](t)(c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("classes"), Key: aws.String(key), ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesStorageClass}}))
		if len(l.Contents) != 1 {
			t.Fatalf("listing %s: %d entries", key, len(l.Contents))
		}
		return h.StorageClass, types.StorageClass(l.Contents[0].StorageClass), a.StorageClass
	}
	put("ia", types.StorageClassStandardIa)
	put("plain", "")
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("classes"), Key: aws.String("copied"), CopySource: aws.String("classes/ia")}))
	put("self", types.StorageClassStandard)
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("classes"), Key: aws.String("self"), CopySource: aws.String("classes/self"), StorageClass: types.StorageClassGlacierIr}))
	for _, tc := range []struct {
		key               string
		head, list, attrs types.StorageClass
	}{
		{"ia", types.StorageClassStandardIa, types.StorageClassStandardIa, types.StorageClassStandardIa},
		// S3 sends no x-amz-storage-class for STANDARD objects.
		{"plain", "", types.StorageClassStandard, types.StorageClassStandard},
		{"copied", "", types.StorageClassStandard, types.StorageClassStandard},
		{"self", types.StorageClassGlacierIr, types.StorageClassGlacierIr, types.StorageClassGlacierIr},
	} {
		if h, l, a := classOf(tc.key); h != tc.head || l != tc.list || a != tc.attrs {
			t.Errorf("%s: HEAD %q, list %q, attributes %q; want %q %q %q", tc.key, h, l, a, tc.head, tc.list, tc.attrs)
		}
	}
	if got := string(must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("classes"), Key: aws.String("self")})).StorageClass); got != "GLACIER_IR" {
		t.Errorf("GET self: storage class %q", got)
	}

	// Multipart: the upload's class is listed and the object keeps it.
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("classes"), Key: aws.String("mp"), StorageClass: types.StorageClassOnezoneIa}))
	ups := must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("classes")}))
	if len(ups.Uploads) != 1 || ups.Uploads[0].StorageClass != types.StorageClassOnezoneIa {
		t.Fatalf("ListMultipartUploads: %+v", ups.Uploads)
	}
	up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("classes"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("one part"))}))
	parts := must[*s3.ListPartsOutput](t)(c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("classes"), Key: aws.String("mp"), UploadId: cr.UploadId}))
	if parts.StorageClass != types.StorageClassOnezoneIa {
		t.Errorf("ListParts: storage class %q", parts.StorageClass)
	}
	must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("classes"), Key: aws.String("mp"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32}}}}))
	if h, l, a := classOf("mp"); h != types.StorageClassOnezoneIa || l != types.StorageClassOnezoneIa || a != types.StorageClassOnezoneIa {
		t.Errorf("mp: HEAD %q, list %q, attributes %q", h, l, a)
	}
}
