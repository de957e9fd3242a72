package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sse"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// testMasterKeys are SSE-S3 master keys derived from their ids, so that
// gateways started with the same ids share them; the first is current.
func testMasterKeys(t testing.TB, ids ...string) *sse.MasterKeys {
	t.Helper()
	var lines []string
	for _, id := range ids {
		k := sha256.Sum256([]byte("cairn test master key " + id))
		lines = append(lines, id+":"+base64.StdEncoding.EncodeToString(k[:]))
	}
	keys, err := sse.ParseMasterKeys(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// clientKey is an SSE-C key as aws-sdk-go-v2 sends it: base64, with its
// base64 MD5.
type clientKey struct{ raw, b64, md5 string }

func newClientKey(t testing.TB) clientKey {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	sum := md5.Sum(k)
	return clientKey{raw: string(k), b64: base64.StdEncoding.EncodeToString(k), md5: base64.StdEncoding.EncodeToString(sum[:])}
}

// markedData is n random bytes with a recognizable marker every 4 KiB,
// for finding plaintext in the blob nodes' files.
func markedData(marker string, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	for off := 0; off+len(marker) <= n; off += 4 << 10 {
		copy(b[off:], marker)
	}
	return b
}

// filesContaining counts the files under dirs whose bytes contain s.
func filesContaining(t testing.TB, dirs []string, s string) int {
	t.Helper()
	found := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) { // a temporary file went away
					return nil
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte(s)) {
				found++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// getObject is getBytes for any GetObject request.
func getObject(t testing.TB, c *s3.Client, in *s3.GetObjectInput) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("GetObject %s range %q: %v", aws.ToString(in.Key), aws.ToString(in.Range), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s range %q: read: %v", aws.ToString(in.Key), aws.ToString(in.Range), err)
	}
	return b
}

// testEncryption: objects written with SSE-S3, SSE-C or a bucket's
// default encryption read back whole and in any range, through single
// PUTs, multipart uploads and copies, and are stored as ciphertext only;
// a wrong or missing key reads nothing; a gateway holding the old master
// key as a second key still opens objects sealed under it.
func testEncryption(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "enc")
	const secretMarker, controlMarker = "CAIRN-SECRET-PLAINTEXT-7f3a", "CAIRN-CONTROL-PLAINTEXT-91c2"

	// SSE-S3, an object of segments (larger than inline) and a small one.
	big := markedData(secretMarker, 3<<20+12345)
	small := []byte("small and " + secretMarker)
	for key, body := range map[string][]byte{"s3/big": big, "s3/small": small} {
		out := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key),
			Body: bytes.NewReader(body), ServerSideEncryption: types.ServerSideEncryptionAes256}))
		if out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
			t.Errorf("PUT %s: x-amz-server-side-encryption %q", key, out.ServerSideEncryption)
		}
		if got := strings.Trim(aws.ToString(out.ETag), `"`); got != md5hex(body) {
			t.Errorf("PUT %s: ETag %s, want the plaintext's MD5 %s", key, got, md5hex(body))
		}
		head := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)}))
		if head.ServerSideEncryption != types.ServerSideEncryptionAes256 || aws.ToInt64(head.ContentLength) != int64(len(body)) {
			t.Errorf("HEAD %s: encryption %q, length %d; want AES256, %d", key, head.ServerSideEncryption, aws.ToInt64(head.ContentLength), len(body))
		}
		if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String(key)}); !bytes.Equal(got, body) {
			t.Errorf("GET %s: %d bytes differ from the %d written", key, len(got), len(body))
		}
	}
	// An encrypted object as small as the inline limit stays inline (its
	// 32 bytes of encryption overhead are allowed for).
	inl := markedData(secretMarker, object.DefaultInlineMax)
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/inline"), Body: bytes.NewReader(inl), ServerSideEncryption: types.ServerSideEncryptionAes256}))
	rec := must[*pb.GetObjectResponse](t)(e.meta.GetObject(ctx, &pb.GetObjectRequest{Bucket: "enc", Key: "s3/inline"})).GetObject()
	if len(rec.GetSegments()) != 0 || int64(len(rec.GetInline())) != sse.EncryptedSize(int64(len(inl))) || rec.GetEncryption() == nil {
		t.Errorf("a %d-byte SSE-S3 object: %d segments, %d inline bytes, encryption %v; want inline ciphertext of %d bytes", len(inl), len(rec.GetSegments()), len(rec.GetInline()), rec.GetEncryption(), sse.EncryptedSize(int64(len(inl))))
	}
	if bytes.Contains(rec.GetInline(), []byte(secretMarker)) {
		t.Error("an inline SSE-S3 object's record in metad holds its plaintext")
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/inline")}); !bytes.Equal(got, inl) {
		t.Error("GET of an inline SSE-S3 object: wrong bytes")
	}
	n := int64(len(big))
	for _, rg := range [][2]int64{{0, 1}, {65535, 2}, {65536, 65536}, {3*65536 - 5, 70000}, {n - 1, 1}, {1 << 20, 1 << 20}} {
		got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/big"), Range: aws.String(fmt.Sprintf("bytes=%d-%d", rg[0], rg[0]+rg[1]-1))})
		if !bytes.Equal(got, big[rg[0]:rg[0]+rg[1]]) {
			t.Errorf("GET s3/big bytes %d+%d: wrong bytes", rg[0], rg[1])
		}
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/big"), Range: aws.String("bytes=-100")}); !bytes.Equal(got, big[n-100:]) {
		t.Error("GET s3/big last 100 bytes: wrong bytes")
	}
	list := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("enc"), Prefix: aws.String("s3/big")}))
	if len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != n {
		t.Errorf("listing shows %+v, want s3/big of %d bytes", list.Contents, n)
	}

	// What the blob nodes hold is ciphertext; the same check finds an
	// unencrypted object's plaintext (so it can fail).
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("control"), Body: bytes.NewReader(markedData(controlMarker, 3<<20))}))
	if filesContaining(t, e.blobDirs, controlMarker) == 0 {
		t.Fatal("the unencrypted control object's plaintext is in no blob node file: the at-rest check cannot see plaintext")
	}
	if n := filesContaining(t, e.blobDirs, secretMarker); n != 0 {
		t.Errorf("%d blob node files hold an encrypted object's plaintext", n)
	}

	// SSE-C: the key is needed for every read, and only that key works.
	k1, k2 := newClientKey(t), newClientKey(t)
	withKey := func(k clientKey) (alg, key, sum *string) {
		return aws.String("AES256"), aws.String(k.b64), aws.String(k.md5)
	}
	alg, key, sum := withKey(k1)
	cdata := markedData(secretMarker, 200<<10+7)
	pc := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), Body: bytes.NewReader(cdata),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}))
	if aws.ToString(pc.SSECustomerKeyMD5) != k1.md5 {
		t.Errorf("PUT SSE-C: key MD5 %q echoed, want %q", aws.ToString(pc.SSECustomerKeyMD5), k1.md5)
	}
	if strings.Trim(aws.ToString(pc.ETag), `"`) == md5hex(cdata) {
		t.Error("an SSE-C object's ETag is its plaintext's MD5, which anyone listing the bucket sees")
	}
	_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj")})
	wantCode(t, err, "InvalidRequest")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj")})
	if err == nil {
		t.Error("HEAD of an SSE-C object without its key succeeded")
	}
	a2, key2, sum2 := withKey(k2)
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), SSECustomerAlgorithm: a2, SSECustomerKey: key2, SSECustomerKeyMD5: sum2})
	wantCode(t, err, "AccessDenied")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum2})
	wantCode(t, err, "InvalidArgument") // the MD5 is not the key's
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/small"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum})
	wantCode(t, err, "InvalidRequest") // not an SSE-C object
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}); !bytes.Equal(got, cdata) {
		t.Error("GET SSE-C with its key: wrong bytes")
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), Range: aws.String("bytes=100000-150000"),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}); !bytes.Equal(got, cdata[100000:150001]) {
		t.Error("ranged GET SSE-C: wrong bytes")
	}

	// Copies: SSE-C to SSE-S3, as asked.
	cp := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/c-to-s3"), CopySource: aws.String("enc/c/obj"),
		CopySourceSSECustomerAlgorithm: alg, CopySourceSSECustomerKey: key, CopySourceSSECustomerKeyMD5: sum, ServerSideEncryption: types.ServerSideEncryptionAes256}))
	if cp.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("copy to SSE-S3 answered encryption %q", cp.ServerSideEncryption)
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/nokey"), CopySource: aws.String("enc/c/obj")})
	wantCode(t, err, "InvalidRequest")

	// Multipart, SSE-S3 through minio-go (11 MiB in 5 MiB parts), and an
	// SSE-C upload with a part copied from an SSE-S3 object.
	mc := e.minioClient(t)
	mp := markedData(secretMarker, 11<<20)
	if _, err := mc.PutObject(ctx, "enc", "mp/s3", bytes.NewReader(mp), int64(len(mp)), minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE(), PartSize: 5 << 20}); err != nil {
		t.Fatalf("multipart SSE-S3 upload: %v", err)
	}
	head := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("mp/s3")}))
	if head.ServerSideEncryption != types.ServerSideEncryptionAes256 || aws.ToInt32(head.PartsCount) != 3 || aws.ToInt64(head.ContentLength) != int64(len(mp)) {
		t.Errorf("multipart SSE-S3 object: encryption %q, %d parts, %d bytes", head.ServerSideEncryption, aws.ToInt32(head.PartsCount), aws.ToInt64(head.ContentLength))
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("mp/s3")}); !bytes.Equal(got, mp) {
		t.Error("multipart SSE-S3 GET: wrong bytes")
	}
	across := int64(5<<20 - 1000)
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("mp/s3"), Range: aws.String(fmt.Sprintf("bytes=%d-%d", across, across+5<<20+1999))}); !bytes.Equal(got, mp[across:across+5<<20+2000]) {
		t.Error("ranged GET across three parts: wrong bytes")
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("mp/s3"), PartNumber: aws.Int32(2)}); !bytes.Equal(got, mp[5<<20:10<<20]) {
		t.Error("GET partNumber=2: wrong bytes")
	}
	up := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}))
	part1 := markedData(secretMarker, 5<<20)
	// A small body: the refusal comes before the body is read, and a
	// large one could still be in flight when the connection closes.
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	wantCode(t, err, "InvalidRequest") // a part of an SSE-C upload needs the key
	p1 := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}))
	p2 := must[*s3.UploadPartCopyOutput](t)(c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"), UploadId: up.UploadId, PartNumber: aws.Int32(2),
		CopySource: aws.String("enc/s3/big"), CopySourceRange: aws.String("bytes=10-200009"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}))
	must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}, {PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag}}}}))
	want := append(bytes.Clone(part1), big[10:200010]...)
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("mp/c"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}); !bytes.Equal(got, want) {
		t.Error("SSE-C multipart with a copied part: wrong bytes")
	}
	if n := filesContaining(t, e.blobDirs, secretMarker); n != 0 {
		t.Errorf("%d blob node files hold an encrypted object's plaintext", n)
	}

	// A copy onto itself with a new client key (key rotation) is legal.
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), CopySource: aws.String("enc/c/obj"),
		CopySourceSSECustomerAlgorithm: alg, CopySourceSSECustomerKey: key, CopySourceSSECustomerKeyMD5: sum, SSECustomerAlgorithm: a2, SSECustomerKey: key2, SSECustomerKeyMD5: sum2}))
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), SSECustomerAlgorithm: a2, SSECustomerKey: key2, SSECustomerKeyMD5: sum2}); !bytes.Equal(got, cdata) {
		t.Error("after rotating its SSE-C key: wrong bytes")
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("c/obj"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum})
	wantCode(t, err, "AccessDenied")

	// Decrypted into an unencrypted copy (its plaintext is on disk from now).
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/s3-to-plain"), CopySource: aws.String("enc/s3/big")}))
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/c-to-s3")}); !bytes.Equal(got, cdata) {
		t.Error("SSE-C to SSE-S3 copy: wrong bytes")
	}
	head = must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/s3-to-plain")}))
	if head.ServerSideEncryption != "" {
		t.Errorf("a copy asking for no encryption into a bucket without a default is %q", head.ServerSideEncryption)
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("copy/s3-to-plain")}); !bytes.Equal(got, big) {
		t.Error("SSE-S3 to plain copy: wrong bytes")
	}

	// A bucket's default encryption applies to writes without headers.
	_, err = c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("enc")})
	wantCode(t, err, "ServerSideEncryptionConfigurationNotFoundError")
	must[*s3.PutBucketEncryptionOutput](t)(c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("enc"), ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}}}}}))
	_, err = c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("enc"), ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}})
	wantCode(t, err, "NotImplemented")
	gbe := must[*s3.GetBucketEncryptionOutput](t)(c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("enc")}))
	if r := gbe.ServerSideEncryptionConfiguration.Rules; len(r) != 1 || r[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != types.ServerSideEncryptionAes256 {
		t.Errorf("GetBucketEncryption = %+v", r)
	}
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("by-default"), Body: strings.NewReader("defaulted")}))
	head = must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("by-default")}))
	if head.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("a PUT into a bucket with default encryption is %q", head.ServerSideEncryption)
	}
	must[*s3.DeleteBucketEncryptionOutput](t)(c.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String("enc")}))
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("after-default"), Body: strings.NewReader("plain")}))
	head = must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("after-default")}))
	if head.ServerSideEncryption != "" {
		t.Errorf("after DeleteBucketEncryption a PUT is %q", head.ServerSideEncryption)
	}

	// A new master key: a gateway holding the old one second still opens
	// objects sealed under it; one without it cannot.
	rotated := e.restart(t, gateway.Config{Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret}, SSEMasterKeys: testMasterKeys(t, "test-2", "test-1")})
	rc := (&env{url: rotated.URL()}).awsClient(t)
	if got := getObject(t, rc, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("s3/big")}); !bytes.Equal(got, big) {
		t.Error("after rotating the master key: wrong bytes")
	}
	must[*s3.PutObjectOutput](t)(rc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("rotated"), Body: strings.NewReader("new key"), ServerSideEncryption: types.ServerSideEncryptionAes256}))
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("rotated")})
	wantCode(t, err, "InternalError") // the first gateway lacks test-2
	if u, _ := url.Parse(rotated.URL()); u.Host == e.host {
		t.Fatal("the rotated gateway is the first one")
	}
}
