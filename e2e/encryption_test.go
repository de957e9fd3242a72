package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Markers stamped into the encrypted objects and into an unencrypted
// control object, to look for plaintext in the blob nodes' files. Neither
// is used in a key name or anywhere else that could reach a data
// directory.
const (
	secretMarker  = "CAIRN-E2E-SSE-PLAINTEXT-5d81c0"
	controlMarker = "CAIRN-E2E-CONTROL-PLAINTEXT-e47b"
)

// sseGatewayArgs writes a fresh SSE-S3 master key file under dir and
// returns the gatewayd flags that use it, with SSE-C accepted over the
// harness's plain http.
func sseGatewayArgs(t *testing.T, dir string) []string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	path := filepath.Join(dir, "sse-master-keys")
	if err := os.WriteFile(path, []byte("e2e-1:"+base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--sse-master-key-file", path, "--sse-c-over-http"}
}

// markedBody is makeBody with marker written every 4 KiB, so that any
// stretch of a few KiB of the plaintext holds it.
func markedBody(key, marker string, size int) []byte {
	b := makeBody(key, 0, size)
	for off := 0; off+len(marker) <= size; off += 4 << 10 {
		copy(b[off:], marker)
	}
	return b
}

// encrypted is a set of objects written with server-side encryption, and
// an unencrypted control object, in a bucket of their own (the SSE-C
// object cannot be read without its key, so it stays out of the ledger's
// bucket).
type encrypted struct {
	bucket string
	// s3Key, s3Body: written with SSE-S3, spanning segments.
	s3Key  string
	s3Body []byte
	// cKey, cBody: written with SSE-C under clientKey.
	cKey      string
	cBody     []byte
	clientKey []byte
	// controlKey, controlBody: written unencrypted.
	controlKey  string
	controlBody []byte
}

// writeEncrypted creates bucket and writes into it an SSE-S3 object of
// segSize+1 MiB (two segments), an SSE-C object of 1 MiB and an
// unencrypted 3 MiB control object, the first two stamped with
// secretMarker, the control with controlMarker. None is inline in metad.
func writeEncrypted(ctx context.Context, t *testing.T, c *s3.Client, bucket string, segSize int64) *encrypted {
	t.Helper()
	e := &encrypted{
		bucket:      bucket,
		s3Key:       "sse-s3",
		cKey:        "sse-c",
		controlKey:  "control",
		clientKey:   make([]byte, 32),
		controlBody: markedBody("control", controlMarker, 3<<20),
	}
	e.s3Body = markedBody(e.s3Key, secretMarker, int(segSize)+1<<20+12345)
	e.cBody = markedBody(e.cKey, secretMarker, 1<<20+7)
	rand.Read(e.clientKey)
	createBucket(t, c, bucket)

	out, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(e.s3Key), Body: bytes.NewReader(e.s3Body),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	})
	if err != nil {
		t.Fatalf("PUT %s with SSE-S3: %v", e.s3Key, err)
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Fatalf("PUT %s with SSE-S3: answered x-amz-server-side-encryption %q", e.s3Key, out.ServerSideEncryption)
	}
	if got := strings.Trim(aws.ToString(out.ETag), `"`); got != md5hex(e.s3Body) {
		t.Fatalf("PUT %s with SSE-S3: ETag %s, want the plaintext's MD5 %s", e.s3Key, got, md5hex(e.s3Body))
	}
	alg, key, sum := e.customerKey()
	cout, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(e.cKey), Body: bytes.NewReader(e.cBody),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum,
	})
	if err != nil {
		t.Fatalf("PUT %s with SSE-C: %v", e.cKey, err)
	}
	if aws.ToString(cout.SSECustomerKeyMD5) != aws.ToString(sum) {
		t.Fatalf("PUT %s with SSE-C: key MD5 %q echoed, want %q", e.cKey, aws.ToString(cout.SSECustomerKeyMD5), aws.ToString(sum))
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(e.controlKey), Body: bytes.NewReader(e.controlBody),
	}); err != nil {
		t.Fatalf("PUT %s: %v", e.controlKey, err)
	}
	return e
}

// customerKey is the SSE-C key as aws-sdk-go-v2 sends it: the algorithm,
// the key in base64 and the base64 of its MD5 (the SDK computes neither).
func (e *encrypted) customerKey() (alg, key, sum *string) {
	s := md5.Sum(e.clientKey)
	return aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(e.clientKey)), aws.String(base64.StdEncoding.EncodeToString(s[:]))
}

// check reads every object back byte for byte (the SSE-C one with its
// key), checks that HEAD reports the encryption, and that a GET of the
// SSE-C object without its key fails with 400 InvalidRequest.
func (e *encrypted) check(ctx context.Context, t *testing.T, c *s3.Client, when string) {
	t.Helper()
	alg, key, sum := e.customerKey()
	for _, o := range []struct {
		key  string
		body []byte
		in   *s3.GetObjectInput
	}{
		{e.s3Key, e.s3Body, &s3.GetObjectInput{}},
		{e.cKey, e.cBody, &s3.GetObjectInput{SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum}},
		{e.controlKey, e.controlBody, &s3.GetObjectInput{}},
	} {
		o.in.Bucket, o.in.Key = aws.String(e.bucket), aws.String(o.key)
		got, err := getAll(ctx, c, o.in)
		if err != nil {
			t.Errorf("%s: GET %s: %v", when, o.key, err)
		} else if !bytes.Equal(got, o.body) {
			t.Errorf("%s: GET %s: %d bytes (MD5 %s), want the %d written (MD5 %s)", when, o.key, len(got), md5hex(got), len(o.body), md5hex(o.body))
		}
	}

	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(e.s3Key)})
	switch {
	case err != nil:
		t.Errorf("%s: HEAD %s: %v", when, e.s3Key, err)
	case head.ServerSideEncryption != types.ServerSideEncryptionAes256 || aws.ToInt64(head.ContentLength) != int64(len(e.s3Body)):
		t.Errorf("%s: HEAD %s: encryption %q, length %d; want AES256, %d", when, e.s3Key, head.ServerSideEncryption, aws.ToInt64(head.ContentLength), len(e.s3Body))
	}
	chead, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(e.cKey), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: sum})
	switch {
	case err != nil:
		t.Errorf("%s: HEAD %s with its key: %v", when, e.cKey, err)
	case aws.ToString(chead.SSECustomerAlgorithm) != "AES256" || aws.ToString(chead.SSECustomerKeyMD5) != aws.ToString(sum):
		t.Errorf("%s: HEAD %s with its key: customer algorithm %q, key MD5 %q; want AES256, %q", when, e.cKey,
			aws.ToString(chead.SSECustomerAlgorithm), aws.ToString(chead.SSECustomerKeyMD5), aws.ToString(sum))
	}

	_, err = getAll(ctx, c, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(e.cKey)})
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidRequest" || !errors.As(err, &respErr) || respErr.HTTPStatusCode() != 400 {
		t.Errorf("%s: GET %s without its key: %v; want 400 InvalidRequest", when, e.cKey, err)
	}
}

// checkAtRest scans every file under the blob nodes' data directories:
// the control object's plaintext must be found (else the scan could not
// see plaintext at all), the encrypted objects' must not.
func (e *encrypted) checkAtRest(t *testing.T, dirs []string) {
	t.Helper()
	found := filesContaining(t, dirs, controlMarker, secretMarker)
	if found[controlMarker] == 0 {
		t.Errorf("the unencrypted control object's plaintext is in no blob node file: the at-rest check cannot see plaintext")
	}
	if n := found[secretMarker]; n != 0 {
		t.Errorf("%d blob node files hold an encrypted object's plaintext", n)
	}
}

// filesContaining counts, for each marker, the files under dirs whose
// bytes contain it. The processes writing there must be stopped.
func filesContaining(t *testing.T, dirs []string, markers ...string) map[string]int {
	t.Helper()
	found := make(map[string]int)
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range markers {
				if bytes.Contains(b, []byte(m)) {
					found[m]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", dir, err)
		}
	}
	return found
}

// getAll GETs an object and reads its whole body.
func getAll(ctx context.Context, c *s3.Client, in *s3.GetObjectInput) ([]byte, error) {
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return b, fmt.Errorf("read body after %d bytes: %w", len(b), err)
	}
	return b, nil
}
