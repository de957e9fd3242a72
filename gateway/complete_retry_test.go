package gateway_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestCompleteRetried: a CompleteMultipartUpload repeated after it
// succeeded — a client retrying because it lost the first answer — is
// answered with the same success, not NoSuchUpload; a Complete of other
// parts, or of an upload that never was, is still NoSuchUpload.
//
// Found by clients/awscli_test.go on a loaded machine: metad lost its
// leader while committing a Complete, the gateway answered 500 ("commit
// outcome unknown"), the commit had in fact happened, and the aws CLI's
// retry failed the whole `aws s3 cp` with NoSuchUpload.
func TestCompleteRetried(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "retry")
	id := aws.ToString(must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("retry"), Key: aws.String("k")})).UploadId)
	var parts []types.CompletedPart
	for i, data := range [][]byte{pattern(5<<20, 1), []byte("last part")} {
		n := int32(i + 1)
		up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("retry"), Key: aws.String("k"), UploadId: aws.String(id), PartNumber: aws.Int32(n), Body: bytes.NewReader(data)}))
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag})
	}
	complete := func(id string, parts []types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("retry"), Key: aws.String("k"), UploadId: aws.String(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}
	first := must[*s3.CompleteMultipartUploadOutput](t)(complete(id, parts))
	again, err := complete(id, parts)
	if err != nil {
		t.Fatalf("Complete repeated after success: %v", err)
	}
	if aws.ToString(again.ETag) != aws.ToString(first.ETag) || aws.ToString(again.ChecksumCRC32) != aws.ToString(first.ChecksumCRC32) {
		t.Errorf("repeated Complete: ETag %s CRC32 %s, first %s %s", aws.ToString(again.ETag), aws.ToString(again.ChecksumCRC32), aws.ToString(first.ETag), aws.ToString(first.ChecksumCRC32))
	}
	_, err = complete(id, parts[:1])
	wantCode(t, err, "NoSuchUpload")
	_, err = complete(id, []types.CompletedPart{parts[0], {PartNumber: aws.Int32(2), ETag: aws.String(`"0123456789abcdef0123456789abcdef"`)}})
	wantCode(t, err, "NoSuchUpload")
}
