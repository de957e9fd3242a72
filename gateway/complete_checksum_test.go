package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cespare/xxhash/v2"
	"github.com/minio/crc64nvme"
	"github.com/zeebo/xxh3"
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

// TestDefaultObjectChecksum: an object whose PUT or copy names no
// checksum gets a CRC64NVME one, as on S3, which a GET with checksum mode
// returns (and the SDK then checks); a multipart upload that names none
// gets a FULL_OBJECT CRC64NVME made of its parts' CRC64NVMEs.
func TestDefaultObjectChecksum(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "dflt")
	data := pattern(200000, 9)
	h := crc64nvme.New()
	h.Write(data)
	want := base64.StdEncoding.EncodeToString(h.Sum(nil))

	req, err := http.NewRequest(http.MethodPut, e.url+"/dflt/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := e.signedDo(t, req, data)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("x-amz-checksum-crc64nvme") != want {
		t.Fatalf("PUT: status %d, x-amz-checksum-crc64nvme %q, want %q", resp.StatusCode, resp.Header.Get("x-amz-checksum-crc64nvme"), want)
	}
	head := func(key string) *s3.HeadObjectOutput {
		return must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("dflt"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}))
	}
	if got := head("plain"); aws.ToString(got.ChecksumCRC64NVME) != want || got.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("HEAD: CRC64NVME %q type %q, want %q FULL_OBJECT", aws.ToString(got.ChecksumCRC64NVME), got.ChecksumType, want)
	}

	// A multipart upload naming no checksum gets the default one too: its
	// parts each a CRC64NVME, the object the parts' CRCs combined, as a
	// FULL_OBJECT checksum of its bytes.
	first := pattern(5<<20, 4)
	whole := append(append([]byte(nil), first...), data...)
	h = crc64nvme.New()
	h.Write(whole)
	wantMP := base64.StdEncoding.EncodeToString(h.Sum(nil))
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("dflt"), Key: aws.String("mp")}))
	var etags []string
	for i, body := range [][]byte{first, data} {
		part, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/dflt/mp?partNumber=%d&uploadId=%s", e.url, i+1, aws.ToString(cr.UploadId)), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp = e.signedDo(t, part, body)
		resp.Body.Close()
		ph := crc64nvme.New()
		ph.Write(body)
		if want := base64.StdEncoding.EncodeToString(ph.Sum(nil)); resp.StatusCode != http.StatusOK || resp.Header.Get("x-amz-checksum-crc64nvme") != want {
			t.Fatalf("UploadPart %d: status %d, x-amz-checksum-crc64nvme %q, want %q", i+1, resp.StatusCode, resp.Header.Get("x-amz-checksum-crc64nvme"), want)
		}
		etags = append(etags, resp.Header.Get("ETag"))
	}
	complete := func(sum string) (*s3.CompleteMultipartUploadOutput, error) {
		in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("dflt"), Key: aws.String("mp"), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(etags[0])}, {PartNumber: aws.Int32(2), ETag: aws.String(etags[1])}}}}
		if sum != "" {
			in.ChecksumCRC64NVME, in.ChecksumType = aws.String(sum), types.ChecksumTypeFullObject
		}
		return c.CompleteMultipartUpload(ctx, in)
	}
	// A client may name the whole object's checksum; a wrong one is refused.
	if _, err := complete(want); apiCode(err) != "BadDigest" {
		t.Fatalf("Complete naming another object's CRC64NVME: %v, want BadDigest", err)
	}
	done := must[*s3.CompleteMultipartUploadOutput](t)(complete(wantMP))
	if aws.ToString(done.ChecksumCRC64NVME) != wantMP || done.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("Complete: CRC64NVME %q type %q, want %q FULL_OBJECT", aws.ToString(done.ChecksumCRC64NVME), done.ChecksumType, wantMP)
	}
	if got := head("mp"); aws.ToString(got.ChecksumCRC64NVME) != wantMP || got.ChecksumType != types.ChecksumTypeFullObject {
		t.Fatalf("multipart object without a checksum algorithm: HEAD says %q %q", aws.ToString(got.ChecksumCRC64NVME), got.ChecksumType)
	}
	mpGet := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dflt"), Key: aws.String("mp"), ChecksumMode: types.ChecksumModeEnabled}))
	if got, err := io.ReadAll(mpGet.Body); err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("GET mp: %d bytes, %v", len(got), err)
	}
	mpGet.Body.Close()
	// A copy of it computes the default over the bytes it copies.
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("dflt"), Key: aws.String("copy"), CopySource: aws.String("dflt/plain")}))
	if got := head("copy"); aws.ToString(got.ChecksumCRC64NVME) != want {
		t.Fatalf("copy: CRC64NVME %q, want %q", aws.ToString(got.ChecksumCRC64NVME), want)
	}
	// The SDK checks what a GET answers against it.
	out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dflt"), Key: aws.String("copy"), ChecksumMode: types.ChecksumModeEnabled}))
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET copy: %d bytes, %v", len(got), err)
	}
}

// TestNewerChecksums: S3's newer MD5, SHA512 and XXHASH checksums, given
// by the client, are verified, stored and returned, for objects and as
// COMPOSITE multipart checksums.
func TestNewerChecksums(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "newsums")
	data := pattern(70000, 11)
	b64 := func(b []byte) *string { return aws.String(base64.StdEncoding.EncodeToString(b)) }
	md5Of := func(b []byte) []byte { s := md5.Sum(b); return s[:] }
	sha512Of := func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }

	put := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("newsums"), Key: aws.String("md5"), Body: bytes.NewReader(data), ChecksumMD5: b64(md5Of(data))}))
	if aws.ToString(put.ChecksumMD5) != aws.ToString(b64(md5Of(data))) {
		t.Errorf("PUT answered MD5 checksum %q", aws.ToString(put.ChecksumMD5))
	}
	h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("newsums"), Key: aws.String("md5"), ChecksumMode: types.ChecksumModeEnabled}))
	if aws.ToString(h.ChecksumMD5) != aws.ToString(b64(md5Of(data))) || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("HEAD: MD5 checksum %q type %q", aws.ToString(h.ChecksumMD5), h.ChecksumType)
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("newsums"), Key: aws.String("bad"), Body: bytes.NewReader(data), ChecksumSHA512: b64(sha512Of([]byte("other")))})
	wantCode(t, err, "BadDigest")
	headMissing(t, c, "newsums", "bad")

	// The XXHASHes, as minio-go computes them.
	for _, tc := range []struct {
		header string
		h      hash.Hash
	}{
		{"x-amz-checksum-xxhash64", xxhash.New()},
		{"x-amz-checksum-xxhash3", xxh3.New()},
		{"x-amz-checksum-xxhash128", xxh3.New128()},
	} {
		tc.h.Write(data)
		sum := base64.StdEncoding.EncodeToString(tc.h.Sum(nil))
		for _, value := range []string{base64.StdEncoding.EncodeToString(make([]byte, tc.h.Size())), sum} {
			req, err := http.NewRequest(http.MethodPut, e.url+"/newsums/"+tc.header, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(tc.header, value)
			resp := e.signedDo(t, req, data)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if value != sum {
				wantErrorDoc(t, resp.StatusCode, body, http.StatusBadRequest, "BadDigest", "")
				headMissing(t, c, "newsums", tc.header)
				continue
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get(tc.header) != sum {
				t.Fatalf("PUT with %s: %d %s, answered %q", tc.header, resp.StatusCode, body, resp.Header.Get(tc.header))
			}
		}
	}

	// Multipart: COMPOSITE only, the checksum of the part checksums.
	p1, p2 := pattern(5<<20, 12), pattern(333, 13)
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), ChecksumAlgorithm: types.ChecksumAlgorithmSha512, ChecksumType: types.ChecksumTypeFullObject})
	wantCode(t, err, "InvalidRequest")
	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), ChecksumAlgorithm: types.ChecksumAlgorithmSha512}))
	var parts []types.CompletedPart
	var sums []byte
	for i, d := range [][]byte{p1, p2} {
		up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(d), ChecksumSHA512: b64(sha512Of(d))}))
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumSHA512: up.ChecksumSHA512})
		sums = append(sums, sha512Of(d)...)
	}
	want := aws.ToString(b64(sha512Of(sums))) + "-2"
	done := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}))
	if aws.ToString(done.ChecksumSHA512) != want || done.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("Complete: SHA512 %q type %q, want %q COMPOSITE", aws.ToString(done.ChecksumSHA512), done.ChecksumType, want)
	}
	// A part read by number comes with that part's checksum (which the
	// SDK checks the body against); a range, with none.
	out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), PartNumber: aws.Int32(2), ChecksumMode: types.ChecksumModeEnabled}))
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, p2) || aws.ToString(out.ChecksumSHA512) != aws.ToString(b64(sha512Of(p2))) {
		t.Errorf("GET part 2: %d bytes, %v, SHA512 %q", len(got), err, aws.ToString(out.ChecksumSHA512))
	}
	out = must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("newsums"), Key: aws.String("mp"), Range: aws.String("bytes=0-99"), ChecksumMode: types.ChecksumModeEnabled}))
	out.Body.Close()
	if out.ChecksumSHA512 != nil {
		t.Errorf("GET of a range answered a checksum %q", aws.ToString(out.ChecksumSHA512))
	}
}
