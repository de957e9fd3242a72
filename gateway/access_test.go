package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// testAccessKeys: access keys stored in metad sign requests through every
// client, and may do exactly what their grants say: a key that may create
// buckets owns the ones it creates and sees only its buckets; a reader
// reads and does nothing else; grants given, taken away and keys deleted
// apply within the gateway's cache time; a bucket's deletion takes its
// grants along.
func testAccessKeys(t *testing.T, e *env) {
	ctx := context.Background()
	const (
		writerID, writerSecret = "APPWRITER1", "writer-secret-key"
		readerID, readerSecret = "APPREADER1", "reader-secret-key"
	)
	for _, k := range []*pb.CreateAccessKeyRequest{
		{Id: writerID, Secret: writerSecret, Name: "writer", CreateBuckets: true},
		{Id: readerID, Secret: readerSecret, Name: "reader"},
	} {
		if _, err := e.meta.CreateAccessKey(ctx, k); err != nil {
			t.Fatalf("create access key %s: %v", k.Id, err)
		}
	}
	root, writer, reader := e.awsClient(t), e.awsClientAs(t, writerID, writerSecret), e.awsClientAs(t, readerID, readerSecret)
	put := func(c *s3.Client, bucket, key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(c *s3.Client, bucket, key string) (string, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}
	buckets := func(c *s3.Client) []string {
		t.Helper()
		out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		return names
	}

	// A key that may create buckets owns what it creates, and nothing else.
	if _, err := writer.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keys-writer")}); err != nil {
		t.Fatalf("writer creates a bucket: %v", err)
	}
	mkBucket(t, root, "keys-root")
	if err := put(writer, "keys-writer", "a", "written by a key"); err != nil {
		t.Fatalf("writer puts into its bucket: %v", err)
	}
	if got, err := get(writer, "keys-writer", "a"); err != nil || got != "written by a key" {
		t.Fatalf("writer reads back: %q, %v", got, err)
	}
	wantCode(t, put(writer, "keys-root", "a", "x"), "AccessDenied")
	_, err := get(writer, "keys-root", "a")
	wantCode(t, err, "AccessDenied")
	if got := buckets(writer); !slices.Equal(got, []string{"keys-writer"}) {
		t.Fatalf("writer lists buckets %v, want only its own", got)
	}
	if got := buckets(root); !slices.Contains(got, "keys-writer") || !slices.Contains(got, "keys-root") {
		t.Fatalf("root lists buckets %v, want both", got)
	}
	_, err = writer.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keys-root")})
	wantCode(t, err, "BucketAlreadyExists")
	_, err = writer.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keys-writer")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	if _, err := writer.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("keys-writer"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}}); err != nil {
		t.Fatalf("owner tags its bucket: %v", err)
	}

	// A key without grants can do nothing; one may read once granted.
	wantCode(t, put(reader, "keys-writer", "b", "x"), "AccessDenied")
	_, err = reader.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keys-reader")})
	wantCode(t, err, "AccessDenied")
	if _, err := e.meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: readerID, Bucket: "keys-writer", Allow: &pb.BucketGrant{Read: true}}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "the read grant to apply", func() error {
		got, err := get(reader, "keys-writer", "a")
		if err == nil && got != "written by a key" {
			return fmt.Errorf("reader got %q", got)
		}
		return err
	})
	if _, err := reader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("keys-writer")}); err != nil {
		t.Fatalf("reader lists: %v", err)
	}
	wantCode(t, put(reader, "keys-writer", "b", "x"), "AccessDenied")
	_, err = reader.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys-writer"), Key: aws.String("a")})
	wantCode(t, err, "AccessDenied")
	_, err = reader.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("keys-writer"), Policy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
	wantCode(t, err, "AccessDenied")
	_, err = reader.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("keys-writer")})
	wantCode(t, err, "AccessDenied")
	// A copy needs read on its source as well as write on its target.
	_, err = writer.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("keys-writer"), Key: aws.String("c"), CopySource: aws.String("keys-root/a")})
	wantCode(t, err, "AccessDenied")
	if got := buckets(reader); !slices.Equal(got, []string{"keys-writer"}) {
		t.Fatalf("reader lists buckets %v", got)
	}

	// Other clients and signature kinds: minio-go, a presigned URL.
	mc, err := minio.New(e.host, &minio.Options{Creds: miniocreds.NewStaticV4(writerID, writerSecret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "keys-writer", "m", bytes.NewReader([]byte("minio")), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("minio-go with an access key: %v", err)
	}
	pre, err := s3.NewPresignClient(reader).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("keys-writer"), Key: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(pre.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "minio" {
		t.Fatalf("presigned GET with the reader's key: %d %q", resp.StatusCode, body)
	}

	// Bad keys and secrets.
	wantCode(t, put(e.awsClientAs(t, "NOSUCHKEY1", "whatever-secret"), "keys-writer", "x", "x"), "InvalidAccessKeyId")
	wantCode(t, put(e.awsClientAs(t, writerID, "wrong-secret-key"), "keys-writer", "x", "x"), "SignatureDoesNotMatch")

	// Taking a grant away and deleting a key apply within the cache time.
	if _, err := e.meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: writerID, Bucket: "keys-writer", Deny: &pb.BucketGrant{Write: true}}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "the write grant to be taken away", func() error {
		if err := put(writer, "keys-writer", "late", "x"); apiCode(err) != "AccessDenied" {
			return fmt.Errorf("writer's put: %v", err)
		}
		return nil
	})
	if _, err := e.meta.DeleteAccessKey(ctx, &pb.DeleteAccessKeyRequest{Id: readerID}); err != nil {
		t.Fatal(err)
	}
	testcluster.WaitFor(t, 15*time.Second, "the deleted key to be refused", func() error {
		if _, err := get(reader, "keys-writer", "a"); apiCode(err) != "InvalidAccessKeyId" {
			return fmt.Errorf("deleted key's get: %v", err)
		}
		return nil
	})

	// The owner deletes its bucket; a new bucket of that name is not its.
	// (the writer's puts that went through before the grant's change
	// applied are there too)
	left, err := root.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("keys-writer")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range left.Contents {
		if _, err := root.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("keys-writer"), Key: o.Key}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := writer.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("keys-writer")}); err != nil {
		t.Fatalf("the owner deletes its bucket: %v", err)
	}
	mkBucket(t, root, "keys-writer")
	k, err := e.meta.GetAccessKey(ctx, &pb.GetAccessKeyRequest{Id: writerID})
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := k.GetKey().GetGrants()["keys-writer"]; ok {
		t.Fatalf("the writer kept a grant on its deleted bucket: %v", g)
	}
	testcluster.WaitFor(t, 15*time.Second, "the writer to lose the recreated bucket", func() error {
		if err := put(writer, "keys-writer", "x", "x"); apiCode(err) != "AccessDenied" {
			return fmt.Errorf("writer's put into the recreated bucket: %v", err)
		}
		return nil
	})
}

// watchedBody is a request body that records whether it was read.
type watchedBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

// testBucketQuota: a PUT, copy, uploaded part or multipart completion
// that would take a bucket over its quota is refused with 403
// QuotaExceeded and leaves nothing visible (a PUT or a part that cannot
// fit, before its body is sent); the parts of uploads in progress count
// until their upload ends, so deletes and aborts make room again, and a
// completion moves its parts' bytes into the object.
func testBucketQuota(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "quota")
	if _, err := e.meta.SetBucketQuota(ctx, &pb.SetBucketQuotaRequest{Name: "quota", Quota: &pb.BucketQuota{MaxBytes: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, n int) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("quota"), Key: aws.String(key), Body: bytes.NewReader(pattern(n, 7))})
		return err
	}
	// expectContinue sends n bytes to path with Expect: 100-continue and
	// checks that the write is refused before its body is read.
	expectContinue := func(what, path string, n int) {
		t.Helper()
		body := &watchedBody{r: bytes.NewReader(pattern(n, 9))}
		req, _ := http.NewRequest(http.MethodPut, e.url+path, body)
		req.ContentLength = int64(n)
		req.Header.Set("Expect", "100-continue")
		signWithPayload(req, "UNSIGNED-PAYLOAD")
		resp, err := (&http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(msg), "<Code>QuotaExceeded</Code>") || body.read.Load() {
			t.Fatalf("%s over the quota with Expect: 100-continue: %d %s; body read: %v", what, resp.StatusCode, msg, body.read.Load())
		}
	}
	usage := func(objects, size, uploads int64) {
		t.Helper()
		b, err := e.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: "quota"})
		u := b.GetBucket().GetUsage()
		if err != nil || u.GetObjects() != objects || u.GetBytes() != size || u.GetUploadBytes() != uploads {
			t.Fatalf("usage %v, %v; want %d objects of %d bytes, %d bytes of parts", u, err, objects, size, uploads)
		}
	}
	if err := put("a", 600<<10); err != nil {
		t.Fatalf("a put within the quota: %v", err)
	}
	wantCode(t, put("b", 600<<10), "QuotaExceeded")
	_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("quota"), Key: aws.String("b")})
	wantCode(t, err, "NotFound")
	// A PUT that cannot fit is refused before its body is sent (the
	// client waits for 100 Continue); one replacing a larger object fits.
	expectContinue("a PUT", "/quota/b", 600<<10)
	if err := put("a", 900<<10); err != nil {
		t.Fatalf("replacing the bucket's object with a larger one that fits: %v", err)
	}
	if err := put("a", 600<<10); err != nil {
		t.Fatal(err)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("quota"), Key: aws.String("a2"), CopySource: aws.String("quota/a")})
	wantCode(t, err, "QuotaExceeded")

	// A multipart upload's parts count from their upload: one that
	// cannot fit is refused (before its body is sent), one replacing a
	// part of its number counts the difference, and a PUT has only the
	// room the parts leave.
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	uploadPart := func(id *string, n int32, size int) (*s3.UploadPartOutput, error) {
		return c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: id,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(pattern(size, byte(n)))})
	}
	_, err = uploadPart(up.UploadId, 1, 600<<10)
	wantCode(t, err, "QuotaExceeded")
	expectContinue("a part", "/quota/mp?partNumber=1&uploadId="+url.QueryEscape(*up.UploadId), 600<<10)
	if _, err := uploadPart(up.UploadId, 1, 300<<10); err != nil {
		t.Fatalf("a part that fits: %v", err)
	}
	_, err = uploadPart(up.UploadId, 2, 300<<10)
	wantCode(t, err, "QuotaExceeded")
	usage(1, 600<<10, 300<<10)
	if _, err := uploadPart(up.UploadId, 1, 400<<10); err != nil {
		t.Fatalf("a part replacing a smaller one, with room for the difference: %v", err)
	}
	usage(1, 600<<10, 400<<10)
	wantCode(t, put("c", 100<<10), "QuotaExceeded")
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String("quota/a")})
	wantCode(t, err, "QuotaExceeded")

	// Aborting the upload frees its room: a new upload's part fits, and
	// completing it moves its bytes into the object, growing nothing.
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: up.UploadId}); err != nil {
		t.Fatal(err)
	}
	usage(1, 600<<10, 0)
	up, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := uploadPart(up.UploadId, 1, 424<<10)
	if err != nil {
		t.Fatalf("a part filling the room the abort made: %v", err)
	}
	usage(1, 600<<10, 424<<10)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("quota"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32}}}})
	if err != nil {
		t.Fatalf("completing an upload whose parts fit: %v", err)
	}
	usage(2, 1<<20, 0)
	wantCode(t, put("c", 1), "QuotaExceeded")
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("quota"), Key: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if err := put("c", 100<<10); err != nil {
		t.Fatalf("a put once a delete made room: %v", err)
	}
	usage(2, 524<<10, 0)
}

// testAccessKeyExpiry: a key works until its expiry, is refused with
// InvalidAccessKeyId (saying it expired) from then on, and works again
// once its expiry is taken away; through a gateway that did not make the
// change, within its key TTL. Part of the cluster suite.
func testAccessKeyExpiry(t *testing.T, e *env) {
	ctx := context.Background()
	const id, secret = "APPEXPIRES1", "expiring-secret-key"
	if _, err := e.meta.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: id, Secret: secret, CreateBuckets: true,
		ExpiresUnixNano: time.Now().Add(time.Hour).UnixNano()}); err != nil {
		t.Fatal(err)
	}
	c := e.awsClientAs(t, id, secret)
	list := func() error {
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	}
	if err := list(); err != nil {
		t.Fatalf("a key an hour from its expiry: %v", err)
	}
	expire := func(at int64) {
		t.Helper()
		if _, err := e.meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: id, ExpiresUnixNano: proto.Int64(at)}); err != nil {
			t.Fatal(err)
		}
	}
	expire(time.Now().Add(time.Second).UnixNano())
	testcluster.WaitFor(t, 10*time.Second, "the expired key to be refused", func() error {
		err := list()
		if err == nil {
			return errors.New("still taken")
		}
		if apiCode(err) != "InvalidAccessKeyId" || !strings.Contains(err.Error(), "expired at") {
			t.Fatalf("an expired key: %v, want InvalidAccessKeyId saying it expired", err)
		}
		return nil
	})
	expire(0)
	testcluster.WaitFor(t, 10*time.Second, "the key to work again without an expiry", list)
}
