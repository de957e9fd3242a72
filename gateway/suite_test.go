package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
)

// The client suite: every test takes a function starting a gateway, so it
// runs against the in-memory fake (fast, here) and the real in-process
// cluster (cluster_test.go).

type starter func(t testing.TB) *env

func suite(t *testing.T, start starter) {
	t.Run("Buckets", func(t *testing.T) { testBuckets(t, start(t)) })
	t.Run("PutGetHeadDelete", func(t *testing.T) { testPutGet(t, start(t)) })
	t.Run("RangesAndConditions", func(t *testing.T) { testRanges(t, start(t)) })
	t.Run("Listing", func(t *testing.T) { testListing(t, start(t)) })
	t.Run("Multipart", func(t *testing.T) { testMultipart(t, start(t)) })
	t.Run("Copy", func(t *testing.T) { testCopy(t, start(t)) })
	t.Run("DeleteObjects", func(t *testing.T) { testDeleteObjects(t, start(t)) })
	t.Run("Presigned", func(t *testing.T) { testPresigned(t, start(t)) })
	t.Run("Minio", func(t *testing.T) { testMinio(t, start(t)) })
	t.Run("Negative", func(t *testing.T) { testNegative(t, start(t)) })
	t.Run("ObjectVersions", func(t *testing.T) { testListObjectVersions(t, start(t)) })
	t.Run("ConfigurationReads", func(t *testing.T) { testConfigurationReads(t, start(t)) })
	t.Run("AnonymousReadsByPolicy", func(t *testing.T) { testAnonymousReadsByPolicy(t, start(t)) })
	t.Run("LifecycleConfiguration", func(t *testing.T) { testLifecycleConfiguration(t, start(t)) })
	t.Run("ExpirationHeaders", func(t *testing.T) { testExpirationHeaders(t, start(t)) })
	t.Run("ObjectTagging", func(t *testing.T) { testObjectTagging(t, start(t)) })
}

func TestFakeSuite(t *testing.T) { suite(t, startFakeGateway) }

func testBuckets(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	must[*s3.CreateBucketOutput](t)(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")}))
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")})
	wantCode(t, err, "InvalidBucketName")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("192.168.1.1")})
	wantCode(t, err, "InvalidBucketName")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("beta"), CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"}})
	wantCode(t, err, "InvalidLocationConstraint")

	must[*s3.HeadBucketOutput](t)(c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")}))
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")})
	if err == nil {
		t.Fatal("HeadBucket of a missing bucket succeeded")
	}
	loc := must[*s3.GetBucketLocationOutput](t)(c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")}))
	if loc.LocationConstraint != "" {
		t.Errorf("location %q, want empty for us-east-1", loc.LocationConstraint)
	}
	lb := must[*s3.ListBucketsOutput](t)(c.ListBuckets(ctx, &s3.ListBucketsInput{}))
	if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "alpha" {
		t.Fatalf("ListBuckets = %+v", lb.Buckets)
	}
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")}))
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketNotEmpty")
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")}))
	must[*s3.DeleteBucketOutput](t)(c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}))
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NoSuchBucket")
	// A bucket named like the reserved health path stays usable.
	must[*s3.CreateBucketOutput](t)(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("healthz")}))
	must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("healthz")}))
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("x-amz-request-id") == "" {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
}

func mkBucket(t testing.TB, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func getBytes(t testing.TB, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>11)
	}
	return b
}

func testPutGet(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "bkt")
	for _, size := range []int{0, 1, 4096, 4097, 1 << 20, 3<<20 + 17} {
		key := fmt.Sprintf("dir/obj-%d", size)
		data := pattern(size, byte(size))
		put, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bkt"), Key: aws.String(key), Body: bytes.NewReader(data),
			ContentType: aws.String("text/x-cairn"), Metadata: map[string]string{"Color": "blue"},
			CacheControl: aws.String("max-age=60"), ContentDisposition: aws.String("inline"),
		})
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if aws.ToString(put.ETag) != `"`+md5hex(data)+`"` {
			t.Errorf("put ETag %s, want quoted md5 %s", aws.ToString(put.ETag), md5hex(data))
		}
		if got := getBytes(t, c, "bkt", key); !bytes.Equal(got, data) {
			t.Fatalf("get %d bytes: got %d different bytes", size, len(got))
		}
		h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String(key)}))
		if aws.ToInt64(h.ContentLength) != int64(size) || aws.ToString(h.ContentType) != "text/x-cairn" ||
			h.Metadata["color"] != "blue" || aws.ToString(h.CacheControl) != "max-age=60" || aws.ToString(h.ContentDisposition) != "inline" {
			t.Errorf("head %d: %+v", size, h)
		}
		if h.LastModified == nil || time.Since(*h.LastModified) > time.Minute {
			t.Errorf("head %d: Last-Modified %v", size, h.LastModified)
		}
	}
	// Checksums the SDK sends by default (CRC32) come back on request.
	h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-4096"), ChecksumMode: types.ChecksumModeEnabled}))
	t.Logf("checksum CRC32 %v", aws.ToString(h.ChecksumCRC32))

	// Overwrite, then delete; a missing key is NoSuchKey, deleting it again 204.
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-1"), Body: strings.NewReader("new")}))
	if got := getBytes(t, c, "bkt", "dir/obj-1"); string(got) != "new" {
		t.Fatalf("after overwrite got %q", got)
	}
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-1")}))
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-1")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-1")})
	if err == nil {
		t.Fatal("head of deleted key succeeded")
	}
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-1")}))
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")

	// Conditional writes.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/obj-0"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")})
	wantCode(t, err, "PreconditionFailed")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("fresh"), Body: strings.NewReader("x"), IfNoneMatch: aws.String("*")}))
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("fresh"), Body: strings.NewReader("y"), IfMatch: aws.String(`"0123"`)})
	wantCode(t, err, "PreconditionFailed")
	// If-Match on a key with no object: 404, as S3 answers.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("never-written"), Body: strings.NewReader("y"), IfMatch: aws.String(`"0123"`)})
	wantCode(t, err, "NoSuchKey")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("fresh"), Body: strings.NewReader("y"), IfMatch: aws.String(`"` + md5hex([]byte("x")) + `"`)}))
	if got := getBytes(t, c, "bkt", "fresh"); string(got) != "y" {
		t.Fatalf("after If-Match put got %q", got)
	}
	// Keys with characters that need encoding.
	for _, key := range []string{"a b+c", "ü/é?x=1&y", "x//y/../z", "%41", "tab\there"} {
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String(key), Body: strings.NewReader(key)}))
		if got := getBytes(t, c, "bkt", key); string(got) != key {
			t.Errorf("key %q: got %q", key, got)
		}
	}
}

func testRanges(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "rng")
	data := pattern(100000, 3)
	put := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rng"), Key: aws.String("k"), Body: bytes.NewReader(data)}))
	for _, tc := range []struct {
		rng        string
		start, end int // end exclusive; -1: whole object, 200
	}{
		{"bytes=0-0", 0, 1},
		{"bytes=10-19", 10, 20},
		{"bytes=99990-", 99990, 100000},
		{"bytes=-5", 99995, 100000},
		{"bytes=99000-200000", 99000, 100000},
		{"bytes=-200000", 0, 100000},
		{"bytes=5-1", 0, -1},
		{"bytes=a-b", 0, -1},
		{"bytes=0-1,5-6", 0, -1},
		{"items=0-1", 0, -1},
	} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rng"), Key: aws.String("k"), Range: aws.String(tc.rng)})
		if err != nil {
			t.Fatalf("%s: %v", tc.rng, err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		want := data
		if tc.end >= 0 {
			want = data[tc.start:tc.end]
			if cr := aws.ToString(out.ContentRange); cr != fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end-1, len(data)) {
				t.Errorf("%s: Content-Range %q", tc.rng, cr)
			}
		} else if out.ContentRange != nil {
			t.Errorf("%s: unexpected Content-Range %q", tc.rng, *out.ContentRange)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes, want %d", tc.rng, len(got), len(want))
		}
	}
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rng"), Key: aws.String("k"), Range: aws.String("bytes=100000-")})
	wantCode(t, err, "InvalidRange")
	req, _ := http.NewRequest(http.MethodGet, e.url+"/rng/k", nil)
	req.Header.Set("Range", "bytes=100000-")
	resp := e.signedDo(t, req, nil)
	resp.Body.Close()
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */100000" {
		t.Errorf("range past the end: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}

	etag := aws.ToString(put.ETag)
	h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rng"), Key: aws.String("k")}))
	mod := *h.LastModified
	status := func(hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/rng/k", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp := e.signedDo(t, req, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("x-amz-request-id") == "" {
			t.Errorf("%v: no x-amz-request-id", hdr)
		}
		return resp.StatusCode
	}
	past, future := mod.Add(-time.Hour).Format(http.TimeFormat), mod.Add(time.Hour).Format(http.TimeFormat)
	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"If-Match": etag}, 200},
		{map[string]string{"If-Match": `"nope"`}, 412},
		{map[string]string{"If-Match": "*"}, 200},
		{map[string]string{"If-None-Match": etag}, 304},
		{map[string]string{"If-None-Match": `"nope"`}, 200},
		{map[string]string{"If-Modified-Since": future}, 304},
		{map[string]string{"If-Modified-Since": past}, 200},
		{map[string]string{"If-Unmodified-Since": past}, 412},
		{map[string]string{"If-Unmodified-Since": future}, 200},
		// If-Match true wins over If-Unmodified-Since false.
		{map[string]string{"If-Match": etag, "If-Unmodified-Since": past}, 200},
		// If-None-Match false (matches) gives 304 whatever If-Modified-Since says.
		{map[string]string{"If-None-Match": etag, "If-Modified-Since": past}, 304},
		{map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": future}, 200},
	} {
		if got := status(tc.hdr); got != tc.want {
			t.Errorf("%v: status %d, want %d", tc.hdr, got, tc.want)
		}
	}
	// response-* overrides.
	out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rng"), Key: aws.String("k"),
		ResponseContentType: aws.String("application/x-test"), ResponseContentDisposition: aws.String("attachment; filename=x")}))
	out.Body.Close()
	if aws.ToString(out.ContentType) != "application/x-test" || aws.ToString(out.ContentDisposition) != "attachment; filename=x" {
		t.Errorf("overrides: %q %q", aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition))
	}
}

func testListing(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "lst")
	var keys []string
	for _, d := range []string{"a", "b", "c"} {
		for i := range 7 {
			keys = append(keys, fmt.Sprintf("%s/%02d", d, i))
		}
	}
	keys = append(keys, "top1", "top2", "a b", "é")
	for _, k := range keys {
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lst"), Key: aws.String(k), Body: strings.NewReader(k)}))
	}
	// Paginate everything 4 at a time.
	var got []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), MaxKeys: aws.Int32(4)})
	pages := 0
	for p.HasMorePages() {
		page := must[*s3.ListObjectsV2Output](t)(p.NextPage(ctx))
		pages++
		if int(aws.ToInt32(page.KeyCount)) != len(page.Contents)+len(page.CommonPrefixes) {
			t.Errorf("KeyCount %d for %d entries", aws.ToInt32(page.KeyCount), len(page.Contents))
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if len(got) != len(keys) || pages != (len(keys)+3)/4 {
		t.Fatalf("paginated %d keys in %d pages: %q", len(got), pages, got)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("not in byte order: %q then %q", got[i-1], got[i])
		}
	}
	// Delimiter: common prefixes count once toward max-keys.
	var prefixes, top []string
	p = s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*s3.ListObjectsV2Output](t)(p.NextPage(ctx))
		for _, cp := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
		for _, o := range page.Contents {
			top = append(top, aws.ToString(o.Key))
		}
	}
	if strings.Join(prefixes, ",") != "a/,b/,c/" || strings.Join(top, ",") != "a b,top1,top2,é" {
		t.Errorf("delimiter listing: prefixes %q keys %q", prefixes, top)
	}
	// Prefix + start-after + url encoding.
	out := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), Prefix: aws.String("b/"), StartAfter: aws.String("b/03"), EncodingType: types.EncodingTypeUrl, FetchOwner: aws.Bool(true)}))
	if len(out.Contents) != 3 || aws.ToString(out.Contents[0].Key) != "b/04" || out.Contents[0].Owner == nil {
		t.Errorf("prefix+start-after: %+v", out.Contents)
	}
	// V1 with marker and delimiter.
	v1 := must[*s3.ListObjectsOutput](t)(c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("lst"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)}))
	if !aws.ToBool(v1.IsTruncated) || aws.ToString(v1.NextMarker) != "a/" {
		t.Errorf("V1: truncated %v NextMarker %q", aws.ToBool(v1.IsTruncated), aws.ToString(v1.NextMarker))
	}
	v1 = must[*s3.ListObjectsOutput](t)(c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("lst"), Marker: aws.String("c/05"), MaxKeys: aws.Int32(3)}))
	if len(v1.Contents) != 3 || aws.ToString(v1.Contents[0].Key) != "c/06" || v1.NextMarker != nil {
		t.Errorf("V1 marker: %d entries, NextMarker %v", len(v1.Contents), v1.NextMarker)
	}
	_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("lst"), ContinuationToken: aws.String("!!!")})
	wantCode(t, err, "InvalidArgument")
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	wantCode(t, err, "NoSuchBucket")
}

// TestVirtualHost: with a domain configured, bucket.domain addresses the
// bucket and path style still works.
func TestVirtualHost(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) { c.Domain = "s3.cairn.test" })
	c := e.awsClient(t)
	mkBucket(t, c, "vhb")
	req, _ := http.NewRequest(http.MethodPut, e.url+"/dir/key", nil)
	req.Host = "vhb.s3.cairn.test"
	resp := e.signedDo(t, req, []byte("virtual"))
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("virtual-host PUT: %d", resp.StatusCode)
	}
	if got := getBytes(t, c, "vhb", "dir/key"); string(got) != "virtual" {
		t.Fatalf("path-style GET of a virtual-host PUT: %q", got)
	}
	req, _ = http.NewRequest(http.MethodGet, e.url+"/?list-type=2", nil)
	req.Host = "vhb.s3.cairn.test:" + strings.Split(e.host, ":")[1]
	resp = e.signedDo(t, req, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<Key>dir/key</Key>") {
		t.Fatalf("virtual-host list: %d %s", resp.StatusCode, b)
	}
}
