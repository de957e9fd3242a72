package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func crc32cOf(b []byte) string {
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	return base64.StdEncoding.EncodeToString(out[:])
}

// TestCompleteDeclaredChecksum: the x-amz-checksum-* headers of
// CompleteMultipartUpload are the object's checksum (minio-go sends the
// full-object CRC there), checked against what the parts make; they are
// not a checksum of the request's XML body.
func TestCompleteDeclaredChecksum(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "mpsums")
	p1, p2 := pattern(5<<20, 4), pattern(1000, 5)
	whole := append(append([]byte(nil), p1...), p2...)

	// upload starts an upload of p1 and p2 and returns its id and parts.
	upload := func(t *testing.T, key string, alg types.ChecksumAlgorithm, typ types.ChecksumType) (*string, []types.CompletedPart) {
		cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpsums"), Key: aws.String(key), ChecksumAlgorithm: alg, ChecksumType: typ}))
		var parts []types.CompletedPart
		for i, d := range [][]byte{p1, p2} {
			up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpsums"), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(d), ChecksumAlgorithm: alg}))
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32, ChecksumCRC32C: up.ChecksumCRC32C})
		}
		return cr.UploadId, parts
	}
	composite := func() string {
		var sums []byte
		for _, d := range [][]byte{p1, p2} {
			sums = binary.BigEndian.AppendUint32(sums, crc32.ChecksumIEEE(d))
		}
		return crc32Of(sums)
	}()

	for _, tc := range []struct {
		name string
		alg  types.ChecksumAlgorithm
		typ  types.ChecksumType
		in   func(*s3.CompleteMultipartUploadInput)
		code string // "" for success
	}{
		{"full object CRC32C", types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32C, in.ChecksumType, in.MpuObjectSize = aws.String(crc32cOf(whole)), types.ChecksumTypeFullObject, aws.Int64(int64(len(whole)))
		}, ""},
		{"full object CRC32C wrong", types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32C = aws.String(crc32cOf(p1))
		}, "BadDigest"},
		{"composite CRC32", types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32 = aws.String(composite)
		}, ""},
		{"composite CRC32 with part count", types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32 = aws.String(composite + "-2")
		}, ""},
		{"composite CRC32 wrong part count", types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32 = aws.String(composite + "-3")
		}, "BadDigest"},
		{"other algorithm", types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32C = aws.String(crc32cOf(whole))
		}, "InvalidRequest"},
		{"other type", types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumType = types.ChecksumTypeComposite
		}, "InvalidRequest"},
		{"upload without checksum", "", "", func(in *s3.CompleteMultipartUploadInput) {
			in.ChecksumCRC32C = aws.String(crc32cOf(whole))
		}, "InvalidRequest"},
		{"wrong size", types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject, func(in *s3.CompleteMultipartUploadInput) {
			in.MpuObjectSize = aws.Int64(int64(len(whole) - 1))
		}, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "k-" + tc.name
			id, parts := upload(t, key, tc.alg, tc.typ)
			in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpsums"), Key: aws.String(key), UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
			tc.in(in)
			_, err := c.CompleteMultipartUpload(ctx, in)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				headMissing(t, c, "mpsums", key)
				return
			}
			if err != nil {
				t.Fatalf("complete: %v", err)
			}
			if got := getBytes(t, c, "mpsums", key); !bytes.Equal(got, whole) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(whole))
			}
		})
	}
}
