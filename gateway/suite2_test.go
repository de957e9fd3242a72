package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

func testMultipart(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "mpu")
	create := func(key string) string {
		out := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key), ContentType: aws.String("video/x-test"), Metadata: map[string]string{"k": "v"}}))
		return aws.ToString(out.UploadId)
	}
	upload := func(key, id string, n int32, data []byte) string {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: aws.String(id), PartNumber: aws.Int32(n), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		return aws.ToString(out.ETag)
	}
	p1, p2, p3 := pattern(5<<20, 1), pattern(5<<20+3, 2), pattern(1234, 3)
	id := create("big")
	var etags [5]string
	var wg sync.WaitGroup
	for i, d := range [][]byte{p1, p2, p3} {
		wg.Add(1)
		go func() { defer wg.Done(); etags[i+1] = upload("big", id, int32(i+1), d) }()
	}
	wg.Wait()
	// A part uploaded again replaces the first.
	etags[3] = upload("big", id, 3, p3)

	lp := must[*s3.ListPartsOutput](t)(c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id)}))
	if len(lp.Parts) != 3 || aws.ToInt64(lp.Parts[1].Size) != int64(len(p2)) {
		t.Fatalf("ListParts: %+v", lp.Parts)
	}
	lu := must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")}))
	if len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != id {
		t.Fatalf("ListMultipartUploads: %+v", lu.Uploads)
	}
	// A key's uploads are listed in the order they began, as on S3.
	var begun []string
	for range 6 {
		begun = append(begun, create("several"))
	}
	lu = must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu"), Prefix: aws.String("several")}))
	var listed []string
	for _, u := range lu.Uploads {
		listed = append(listed, aws.ToString(u.UploadId))
	}
	if !slices.Equal(listed, begun) {
		t.Fatalf("ListMultipartUploads of one key: %v, want the order they began: %v", listed, begun)
	}
	for _, u := range begun {
		must[*s3.AbortMultipartUploadOutput](t)(c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("several"), UploadId: aws.String(u)}))
	}
	parts := func(nums ...int32) *types.CompletedMultipartUpload {
		var ps []types.CompletedPart
		for _, n := range nums {
			ps = append(ps, types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etags[n])})
		}
		return &types.CompletedMultipartUpload{Parts: ps}
	}
	_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id), MultipartUpload: parts(2, 1, 3)})
	wantCode(t, err, "InvalidPartOrder")
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"00000000000000000000000000000000"`)}}}})
	wantCode(t, err, "InvalidPart")
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id), MultipartUpload: parts(3, 4)})
	wantCode(t, err, "InvalidPart")
	done := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id), MultipartUpload: parts(1, 2, 3)}))
	h := md5.New()
	for _, d := range [][]byte{p1, p2, p3} {
		s := md5.Sum(d)
		h.Write(s[:])
	}
	wantETag := `"` + hex.EncodeToString(h.Sum(nil)) + `-3"`
	if aws.ToString(done.ETag) != wantETag {
		t.Errorf("multipart ETag %s, want %s", aws.ToString(done.ETag), wantETag)
	}
	all := append(append(append([]byte{}, p1...), p2...), p3...)
	if got := getBytes(t, c, "mpu", "big"); !bytes.Equal(got, all) {
		t.Fatalf("multipart object: %d bytes, want %d", len(got), len(all))
	}
	head := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big")}))
	if aws.ToString(head.ContentType) != "video/x-test" || head.Metadata["k"] != "v" || aws.ToString(head.ETag) != wantETag {
		t.Errorf("multipart head: %+v", head)
	}
	// GET ?partNumber=2 is the second part.
	out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big"), PartNumber: aws.Int32(2)}))
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, p2) || aws.ToInt32(out.PartsCount) != 3 {
		t.Errorf("partNumber=2: %d bytes, parts count %d", len(got), aws.ToInt32(out.PartsCount))
	}
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	wantCode(t, err, "NoSuchUpload")

	// A small part that is not the last: EntityTooSmall at Complete.
	id = create("small")
	etags[1] = upload("small", id, 1, []byte("tiny"))
	etags[2] = upload("small", id, 2, []byte("end"))
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: aws.String(id), MultipartUpload: parts(1, 2)})
	wantCode(t, err, "EntityTooSmall")
	// Part numbers outside 1..10000.
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: aws.String(id), PartNumber: aws.Int32(10001), Body: strings.NewReader("x")})
	wantCode(t, err, "InvalidArgument")
	// UploadPartCopy of a range of "big".
	cp := must[*s3.UploadPartCopyOutput](t)(c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: aws.String(id), PartNumber: aws.Int32(1),
		CopySource: aws.String("mpu/big"), CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", 5<<20-1))}))
	etags[1] = aws.ToString(cp.CopyPartResult.ETag)
	must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("small"), UploadId: aws.String(id), MultipartUpload: parts(1, 2)}))
	if got := getBytes(t, c, "mpu", "small"); !bytes.Equal(got, append(append([]byte{}, p1...), "end"...)) {
		t.Errorf("part copy object: %d bytes", len(got))
	}
	// Abort.
	id = create("gone")
	upload("gone", id, 1, []byte("x"))
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("gone"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("gone"), UploadId: aws.String(id)})
	wantCode(t, err, "NoSuchUpload")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("gone")})
	if err == nil {
		t.Error("aborted upload left an object")
	}
	// Malformed XML in Complete.
	id = create("bad")
	req, _ := http.NewRequest(http.MethodPost, e.url+"/mpu/bad?uploadId="+id, nil)
	resp := e.signedDo(t, req, []byte("<CompleteMultipartUpload><Part>"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>MalformedXML</Code>") {
		t.Errorf("malformed complete: %d %s", resp.StatusCode, b)
	}
}

func testCopy(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "cpy")
	mkBucket(t, c, "cpy2")
	data := pattern(300000, 9)
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cpy"), Key: aws.String("src key"), Body: bytes.NewReader(data), ContentType: aws.String("a/b"), Metadata: map[string]string{"m": "1"}}))
	out := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("dst"), CopySource: aws.String("cpy/src%20key")}))
	if aws.ToString(out.CopyObjectResult.ETag) != `"`+md5hex(data)+`"` {
		t.Errorf("copy ETag %s", aws.ToString(out.CopyObjectResult.ETag))
	}
	if got := getBytes(t, c, "cpy2", "dst"); !bytes.Equal(got, data) {
		t.Fatal("copy differs")
	}
	h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("dst")}))
	if aws.ToString(h.ContentType) != "a/b" || h.Metadata["m"] != "1" {
		t.Errorf("COPY directive lost metadata: %+v", h)
	}
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("dst"), CopySource: aws.String("cpy2/dst"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("x/y"), Metadata: map[string]string{"n": "2"}}))
	h = must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("dst")}))
	if aws.ToString(h.ContentType) != "x/y" || h.Metadata["n"] != "2" || h.Metadata["m"] != "" {
		t.Errorf("REPLACE directive: %+v", h)
	}
	_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("dst"), CopySource: aws.String("cpy2/dst")})
	wantCode(t, err, "InvalidRequest")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("x"), CopySource: aws.String("cpy/missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("x"), CopySource: aws.String("cpy/src%20key"), CopySourceIfMatch: aws.String(`"nope"`)})
	wantCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("cpy2"), Key: aws.String("x"), CopySource: aws.String("cpy/src%20key"), CopySourceIfNoneMatch: aws.String(`"` + md5hex(data) + `"`)})
	wantCode(t, err, "PreconditionFailed")
}

func testDeleteObjects(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "del")
	var ids []types.ObjectIdentifier
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		if i%3 != 0 {
			must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("del"), Key: aws.String(k), Body: strings.NewReader(k)}))
		}
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	out := must[*s3.DeleteObjectsOutput](t)(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[:20]}}))
	if len(out.Deleted) != 20 || len(out.Errors) != 0 {
		t.Errorf("DeleteObjects: %d deleted, %d errors", len(out.Deleted), len(out.Errors))
	}
	out = must[*s3.DeleteObjectsOutput](t)(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: ids[20:], Quiet: aws.Bool(true)}}))
	if len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Errorf("quiet DeleteObjects: %d deleted, %d errors", len(out.Deleted), len(out.Errors))
	}
	l := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("del")}))
	if len(l.Contents) != 0 {
		t.Errorf("%d objects left", len(l.Contents))
	}
	var many []types.ObjectIdentifier
	for i := range 1001 {
		many = append(many, types.ObjectIdentifier{Key: aws.String(fmt.Sprint(i))})
	}
	_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{Objects: many}})
	wantCode(t, err, "MalformedXML")
}

func testPresigned(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "pre")
	ps := s3.NewPresignClient(c)
	put := must[*v4Request](t)(wrapPresign(ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pre"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))))
	req, _ := http.NewRequest(http.MethodPut, put.URL, strings.NewReader("presigned body"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}
	get := must[*v4Request](t)(wrapPresign(ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pre"), Key: aws.String("k")}, s3.WithPresignExpires(time.Minute))))
	resp, err = http.Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "presigned body" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
	}
	// An expired URL is AccessDenied.
	old := must[*v4Request](t)(wrapPresign(ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pre"), Key: aws.String("k")}, func(o *s3.PresignOptions) {
		o.Expires = time.Second
		o.ClientOptions = append(o.ClientOptions, func(o *s3.Options) {})
	})))
	expired := strings.Replace(old.URL, "X-Amz-Date=", "X-Amz-Date=", 1)
	_ = expired
	// Tampering with the URL breaks the signature.
	resp, err = http.Get(strings.Replace(get.URL, "/pre/k", "/pre/K", 1))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "SignatureDoesNotMatch") {
		t.Errorf("tampered presigned GET: %d %s", resp.StatusCode, b)
	}
}

func testMinio(t *testing.T, e *env) {
	ctx := context.Background()
	mc := e.minioClient(t)
	if err := mc.MakeBucket(ctx, "mio", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 100, 1 << 20} {
		data := pattern(size, 5)
		key := fmt.Sprintf("o%d", size)
		if _, err := mc.PutObject(ctx, "mio", key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{ContentType: "x/y", UserMetadata: map[string]string{"a": "b"}}); err != nil {
			t.Fatalf("minio put %d: %v", size, err)
		}
		o, err := mc.GetObject(ctx, "mio", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("minio get %d: %v (%d bytes)", size, err, len(got))
		}
		st, err := mc.StatObject(ctx, "mio", key, minio.StatObjectOptions{})
		if err != nil || st.Size != int64(size) || st.ContentType != "x/y" || st.UserMetadata["A"] != "b" {
			t.Errorf("minio stat: %v %+v", err, st)
		}
	}
	// Unknown size: minio-go uploads in parts (16 MiB).
	data := pattern(17<<20, 6)
	if _, err := mc.PutObject(ctx, "mio", "streamed", bytes.NewReader(data), -1, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("minio unknown-size put: %v", err)
	}
	o, err := mc.GetObject(ctx, "mio", "streamed", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(o)
	o.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("minio multipart: %d bytes back", len(got))
	}
	var n int
	for obj := range mc.ListObjects(ctx, "mio", minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
	}
	if n != 4 {
		t.Errorf("minio list: %d objects", n)
	}
	if err := mc.RemoveObject(ctx, "mio", "o0", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := mc.PresignedGetObject(ctx, "mio", "o100", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, pattern(100, 5)) {
		t.Errorf("minio presigned GET: %d", resp.StatusCode)
	}
}

func testNegative(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "neg")
	_, err := e.awsClientWith(t, "wrong").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("neg"), Key: aws.String("k"), Body: strings.NewReader("x")})
	wantCode(t, err, "SignatureDoesNotMatch")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("neg"), Key: aws.String(strings.Repeat("k", 1025)), Body: strings.NewReader("x")})
	wantCode(t, err, "KeyTooLongError")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("neg"), Key: aws.String("meta"), Body: strings.NewReader("x"), Metadata: map[string]string{"big": strings.Repeat("v", 2100)}})
	wantCode(t, err, "MetadataTooLarge")
	// Content-MD5 that does not match: BadDigest, nothing stored.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("neg"), Key: aws.String("md5"), Body: strings.NewReader("x"), ContentMD5: aws.String("1B2M2Y8AsgTpgAmY7PhCfg==")})
	wantCode(t, err, "BadDigest")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("neg"), Key: aws.String("md5"), Body: strings.NewReader("x"), ContentMD5: aws.String("nope")})
	wantCode(t, err, "InvalidDigest")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("neg"), Key: aws.String("md5")})
	if err == nil {
		t.Error("a PUT with a bad Content-MD5 stored an object")
	}
	// A payload hash that does not match the body.
	req, _ := http.NewRequest(http.MethodPut, e.url+"/neg/sha", nil)
	req.Body = io.NopCloser(strings.NewReader("actual body"))
	req.ContentLength = int64(len("actual body"))
	signWithPayload(req, strings.Repeat("ab", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "XAmzContentSHA256Mismatch") {
		t.Errorf("payload hash mismatch: %d %s", resp.StatusCode, b)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("neg"), Key: aws.String("sha")})
	if err == nil {
		t.Error("a PUT with a wrong payload hash stored an object")
	}
	// Unsigned request: AccessDenied; unknown subresource: NotImplemented.
	resp, err = http.Get(e.url + "/n/k")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "AccessDenied") {
		t.Errorf("anonymous GET: %d %s", resp.StatusCode, b)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url+"/neg?inventory", nil)
	resp = e.signedDo(t, req, nil)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 501 || !strings.Contains(string(b), "NotImplemented") {
		t.Errorf("GET ?inventory: %d %s", resp.StatusCode, b)
	}
	// HEAD errors carry no body.
	req, _ = http.NewRequest(http.MethodHead, e.url+"/neg/missing", nil)
	resp = e.signedDo(t, req, nil)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || len(b) != 0 {
		t.Errorf("HEAD missing: %d with %d body bytes", resp.StatusCode, len(b))
	}
}

var _ = sync.Mutex{}
