package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestGetObjectAttributes: what the SDK asks of an object without its
// data — ETag, checksum (a composite one without its "-N"), the parts of a
// multipart object page by page, storage class and size.
func TestGetObjectAttributes(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "attrs")
	all := []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesStorageClass, types.ObjectAttributesObjectSize}

	parts := [][]byte{pattern(5<<20, 31), pattern(5<<20, 32), pattern(1000, 33)}
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("attrs"), Key: aws.String("mp"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}))
	var done []types.CompletedPart
	var sums []byte
	var size int64
	for i, d := range parts {
		up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("attrs"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(d), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}))
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32})
		sums = binary.BigEndian.AppendUint32(sums, crc32.ChecksumIEEE(d))
		size += int64(len(d))
	}
	complete := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("attrs"), Key: aws.String("mp"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}))

	got := must[*s3.GetObjectAttributesOutput](t)(c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("attrs"), Key: aws.String("mp"), ObjectAttributes: all, MaxParts: aws.Int32(2)}))
	if want := strings.Trim(aws.ToString(complete.ETag), `"`); aws.ToString(got.ETag) != want {
		t.Errorf("ETag %q, want %q", aws.ToString(got.ETag), want)
	}
	if got.Checksum == nil || aws.ToString(got.Checksum.ChecksumCRC32) != crc32Of(sums) || got.Checksum.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("Checksum %+v, want CRC32 %q COMPOSITE", got.Checksum, crc32Of(sums))
	}
	if got.StorageClass != types.StorageClassStandard || aws.ToInt64(got.ObjectSize) != size {
		t.Errorf("StorageClass %q, ObjectSize %d", got.StorageClass, aws.ToInt64(got.ObjectSize))
	}
	op := got.ObjectParts
	if op == nil || aws.ToInt32(op.TotalPartsCount) != 3 || len(op.Parts) != 2 || !aws.ToBool(op.IsTruncated) || aws.ToString(op.NextPartNumberMarker) != "2" {
		t.Fatalf("first page of parts: %+v", op)
	}
	for i, p := range op.Parts {
		if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToInt64(p.Size) != int64(len(parts[i])) || aws.ToString(p.ChecksumCRC32) != crc32Of(parts[i]) {
			t.Errorf("part %d: %d, %d bytes, CRC32 %q", i+1, aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), aws.ToString(p.ChecksumCRC32))
		}
	}
	got = must[*s3.GetObjectAttributesOutput](t)(c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("attrs"), Key: aws.String("mp"), ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesObjectParts}, PartNumberMarker: aws.String("2")}))
	if op := got.ObjectParts; op == nil || len(op.Parts) != 1 || aws.ToInt32(op.Parts[0].PartNumber) != 3 || aws.ToBool(op.IsTruncated) || got.ETag != nil || got.Checksum != nil {
		t.Fatalf("after marker 2: %+v (ETag %v, Checksum %v: not asked for)", op, got.ETag, got.Checksum)
	}

	// A plain object: its default checksum, no parts.
	data := pattern(3000, 34)
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("attrs"), Key: aws.String("plain"), Body: bytes.NewReader(data)}))
	got = must[*s3.GetObjectAttributesOutput](t)(c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("attrs"), Key: aws.String("plain"), ObjectAttributes: all}))
	if got.ObjectParts != nil || got.Checksum == nil || aws.ToString(got.Checksum.ChecksumCRC32) != crc32Of(data) || aws.ToString(got.ETag) != md5hex(data) {
		t.Errorf("plain object: parts %+v, checksum %+v, ETag %q", got.ObjectParts, got.Checksum, aws.ToString(got.ETag))
	}

	_, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("attrs"), Key: aws.String("missing"), ObjectAttributes: all})
	wantCode(t, err, "NoSuchKey")
	for _, header := range []string{"", "ETag,Colour"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/attrs/plain?attributes", nil)
		if header != "" {
			req.Header.Set("x-amz-object-attributes", header)
		}
		resp := e.signedDo(t, req, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantErrorDoc(t, resp.StatusCode, body, http.StatusBadRequest, "InvalidArgument", "")
	}
}
