package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sigv2"
)

// SigV2 end to end, against the in-process cluster: URLs presigned by the
// aws CLI v1 (whose default for S3 presigning is SigV2), requests signed by
// botocore's HmacV1Auth (s3cmd and old SDKs sign the same way), and by
// package sigv2's own Signer (which runs everywhere).

// errorDoc is the code and message of an S3 error document.
type errorDoc struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// sendRequest sends req and returns the status and body.
func sendRequest(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func getV2(t *testing.T, u string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sendRequest(t, req)
}

// wantErrorDoc checks an error answer's status, code and (if not empty) a
// substring of its message.
func wantErrorDoc(t *testing.T, status int, body []byte, wantStatus int, code, message string) {
	t.Helper()
	var e errorDoc
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("status %d, body %q: not an error document: %v", status, body, err)
	}
	if status != wantStatus || e.Code != code || !strings.Contains(e.Message, message) {
		t.Fatalf("got %d %s %q, want %d %s (message with %q); body %s", status, e.Code, e.Message, wantStatus, code, message, body)
	}
}

func TestClusterSigV2(t *testing.T) {
	ce := newClusterEnv(t)
	e := ce.gateway(t, nil)
	ctx := context.Background()
	c := e.awsClient(t)
	const bucket = "sigv2"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	key := "dir/hello world+café.bin"
	data := make([]byte, 100<<10)
	_, _ = rand.Read(data)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}

	t.Run("aws CLI presign", func(t *testing.T) {
		presign := awsCLIPresigner(t, e.url)
		u := presign(bucket, key, 600)
		status, body := getV2(t, u)
		if status != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("GET %s: %d, %d bytes (want %d): %.200s", u, status, len(body), len(data), body)
		}

		// A tampered signature.
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		q := pu.Query()
		sig := []byte(q.Get("Signature"))
		if sig[0] == 'A' {
			sig[0] = 'B'
		} else {
			sig[0] = 'A'
		}
		q.Set("Signature", string(sig))
		pu.RawQuery = q.Encode()
		status, body = getV2(t, pu.String())
		wantErrorDoc(t, status, body, http.StatusForbidden, "SignatureDoesNotMatch", "")

		// Expired: wait until the server's clock (this process's) is past
		// Expires, by the time, then fetch.
		u = presign(bucket, key, 1)
		pu, err = url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		exp, err := strconv.ParseInt(pu.Query().Get("Expires"), 10, 64)
		if err != nil {
			t.Fatalf("Expires of %s: %v", u, err)
		}
		if exp > time.Now().Add(time.Minute).Unix() {
			t.Fatalf("Expires %d is not about a second away", exp)
		}
		// The condition awaited is the clock itself: sleep until the
		// instant a second past Expires.
		time.Sleep(time.Until(time.Unix(exp+1, 0)))
		if !time.Now().After(time.Unix(exp, 0)) {
			t.Fatalf("clock %v not past %d", time.Now(), exp)
		}
		status, body = getV2(t, u)
		wantErrorDoc(t, status, body, http.StatusForbidden, "AccessDenied", "Request has expired")
	})

	t.Run("botocore HmacV1Auth", func(t *testing.T) {
		needBotocore(t)
		// Path style on the plain gateway, virtual-host style on one with a
		// domain (the Host names the bucket; the connection goes to
		// loopback).
		vh := ce.gateway(t, func(cfg *gateway.Config) { cfg.Domain = "cairn.test" })
		for _, style := range []struct {
			name  string
			base  string // where requests go
			vhost bool
		}{{"path style", e.url, false}, {"virtual host", vh.url, true}} {
			t.Run(style.name, func(t *testing.T) {
				key := "boto/" + style.name + "/a b+c.txt"
				body := []byte("signed by botocore's HmacV1Auth, " + style.name)
				sum := md5.Sum(body)
				goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
				badMD5 := base64.StdEncoding.EncodeToString(make([]byte, 16))
				reqs := botoSignRequests(t, style.base, bucket, style.vhost, []botoReq{
					{Method: "PUT", Key: key, Headers: map[string]string{"Content-Type": "text/x-cairn", "Content-MD5": goodMD5, "x-amz-meta-who": "boto"}},
					{Method: "GET", Key: key},
					{Method: "PUT", Key: key + ".bad", Headers: map[string]string{"Content-MD5": badMD5}},
					{Method: "GET", Key: key, Query: "response-content-type=application%2Fx-override"},
				})
				status, got := sendRequest(t, reqs[0].build(t, body))
				if status != http.StatusOK {
					t.Fatalf("PUT: %d %s", status, got)
				}
				resp, err := http.DefaultClient.Do(reqs[1].build(t, nil))
				if err != nil {
					t.Fatal(err)
				}
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
					t.Fatalf("GET: %d %q", resp.StatusCode, got)
				}
				if ct, who := resp.Header.Get("Content-Type"), resp.Header.Get("x-amz-meta-who"); ct != "text/x-cairn" || who != "boto" {
					t.Errorf("GET: Content-Type %q, x-amz-meta-who %q", ct, who)
				}
				// SigV2 leaves the body unsigned, but Content-MD5 still
				// binds it.
				status, got = sendRequest(t, reqs[2].build(t, body))
				wantErrorDoc(t, status, got, http.StatusBadRequest, "BadDigest", "")
				headMissing(t, c, bucket, key+".bad")
				// A signed sub-resource: the response override.
				resp, err = http.DefaultClient.Do(reqs[3].build(t, nil))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-override" {
					t.Errorf("GET with response-content-type: %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
			})
		}
	})

	t.Run("Signer", func(t *testing.T) {
		signer := sigv2.Signer{AccessKey: testAccess, SecretKey: testSecret}
		key := "signer/k"
		body := []byte("signed by sigv2.Signer")
		req, err := http.NewRequest(http.MethodPut, e.url+"/"+bucket+"/"+key, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-amz-meta-a", "1")
		signer.Sign(req, "", time.Now())
		if status, got := sendRequest(t, req); status != http.StatusOK {
			t.Fatalf("PUT: %d %s", status, got)
		}
		// An aws-chunked body under SigV2 is refused, and nothing stored.
		req, _ = http.NewRequest(http.MethodPut, e.url+"/"+bucket+"/signer/chunked", bytes.NewReader([]byte("5\r\nhello\r\n0\r\n\r\n")))
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("x-amz-decoded-content-length", "5")
		signer.Sign(req, "", time.Now())
		status, got := sendRequest(t, req)
		wantErrorDoc(t, status, got, http.StatusBadRequest, "InvalidRequest", "")
		req, _ = http.NewRequest(http.MethodGet, e.url+"/"+bucket+"/signer/chunked", nil)
		signer.Sign(req, "", time.Now())
		status, got = sendRequest(t, req)
		wantErrorDoc(t, status, got, http.StatusNotFound, "NoSuchKey", "")
		// A header added after signing.
		req, _ = http.NewRequest(http.MethodPut, e.url+"/"+bucket+"/"+key, bytes.NewReader(body))
		signer.Sign(req, "", time.Now())
		req.Header.Set("x-amz-meta-a", "2")
		status, got = sendRequest(t, req)
		wantErrorDoc(t, status, got, http.StatusForbidden, "SignatureDoesNotMatch", "")
		// Skewed.
		req, _ = http.NewRequest(http.MethodGet, e.url+"/"+bucket+"/"+key, nil)
		signer.Sign(req, "", time.Now().Add(-20*time.Minute))
		status, got = sendRequest(t, req)
		wantErrorDoc(t, status, got, http.StatusForbidden, "RequestTimeTooSkewed", "")
		// Presigned.
		req, _ = http.NewRequest(http.MethodGet, e.url+"/"+bucket+"/"+key, nil)
		signer.Presign(req, "", time.Now().Add(time.Minute))
		status, got = getV2(t, req.URL.String())
		if status != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("presigned GET: %d %q", status, got)
		}
		// The presigned GET does not open a DELETE.
		del, _ := http.NewRequest(http.MethodDelete, req.URL.String(), nil)
		status, got = sendRequest(t, del)
		wantErrorDoc(t, status, got, http.StatusForbidden, "SignatureDoesNotMatch", "")
		// Nor the listing of the bucket.
		list, _ := http.NewRequest(http.MethodGet, e.url+"/"+bucket+"/?"+req.URL.RawQuery, nil)
		status, got = sendRequest(t, list)
		wantErrorDoc(t, status, got, http.StatusForbidden, "SignatureDoesNotMatch", "")
		// A wrong secret.
		req, _ = http.NewRequest(http.MethodGet, e.url+"/"+bucket+"/"+key, nil)
		sigv2.Signer{AccessKey: testAccess, SecretKey: "wrong"}.Sign(req, "", time.Now())
		status, got = sendRequest(t, req)
		wantErrorDoc(t, status, got, http.StatusForbidden, "SignatureDoesNotMatch", "")
	})

	// minio-go signs a sub-resource sent as "?uploads=" without the '='
	// (botocore keeps it): a multipart upload and the listing of uploads.
	t.Run("minio-go", func(t *testing.T) {
		mc, err := minio.New(e.host, &minio.Options{Creds: miniocreds.NewStaticV2(testAccess, testSecret, ""), Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		data := pattern(6<<20, 7)
		if _, err := mc.PutObject(ctx, bucket, "minio/multipart", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
			t.Fatalf("multipart PutObject: %v", err)
		}
		core := minio.Core{Client: mc}
		id, err := core.NewMultipartUpload(ctx, bucket, "minio/pending", minio.PutObjectOptions{})
		if err != nil {
			t.Fatalf("NewMultipartUpload: %v", err)
		}
		ups, err := core.ListMultipartUploads(ctx, bucket, "minio/", "", "", "", 10)
		if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != id {
			t.Fatalf("ListMultipartUploads: %+v, %v", ups.Uploads, err)
		}
		if err := core.AbortMultipartUpload(ctx, bucket, "minio/pending", id); err != nil {
			t.Fatalf("AbortMultipartUpload: %v", err)
		}
		obj, err := mc.GetObject(ctx, bucket, "minio/multipart", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes: %v", len(got), err)
		}
	})
}

// awsCLIPresigner returns a function running `aws s3 presign` against the
// gateway at endpoint with the test credentials and nothing else of the
// environment (no config or credentials files), or skips the test when the
// aws CLI is missing. The URL must be SigV2: that is what the aws CLI v1
// does by default.
func awsCLIPresigner(t *testing.T, endpoint string) func(bucket, key string, expiresIn int) string {
	t.Helper()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not found: skipping the aws s3 presign test")
	}
	home := t.TempDir()
	cfg, creds := filepath.Join(home, "config"), filepath.Join(home, "credentials")
	for _, f := range []string{cfg, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + testAccess,
		"AWS_SECRET_ACCESS_KEY=" + testSecret,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + cfg,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_EC2_METADATA_DISABLED=true",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	return func(bucket, key string, expiresIn int) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "aws", "s3", "presign", "s3://"+bucket+"/"+key,
			"--endpoint-url", endpoint, "--expires-in", strconv.Itoa(expiresIn))
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws s3 presign: %v\n%s", err, stderr.String())
		}
		u := strings.TrimSpace(string(out))
		if !strings.Contains(u, "AWSAccessKeyId=") || !strings.Contains(u, "Signature=") || !strings.Contains(u, "Expires=") {
			t.Fatalf("aws s3 presign gave no SigV2 URL: %s", u)
		}
		return u
	}
}

// needBotocore skips the test when python3 or botocore is missing.
func needBotocore(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found: skipping the botocore HmacV1Auth test")
	}
	if out, err := exec.Command("python3", "-c", "import botocore.auth").CombinedOutput(); err != nil {
		t.Skipf("botocore not importable by python3 (%v: %s): skipping the botocore HmacV1Auth test", err, bytes.TrimSpace(out))
	}
}

// botoReq is a request for botocore to sign.
type botoReq struct {
	Method  string            `json:"method"`
	Key     string            `json:"key"`
	Query   string            `json:"query"`
	Headers map[string]string `json:"headers"`
}

// botoSigned is a request botocore signed.
type botoSigned struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Host    string      `json:"host"`
	Headers [][2]string `json:"headers"`
}

// build makes the signed request with body, sent to the URL's address with
// the signed Host.
func (b botoSigned) build(t *testing.T, body []byte) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(b.Method, b.URL, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = b.Host
	for _, h := range b.Headers {
		req.Header.Add(h[0], h[1])
	}
	return req
}

// botoSignScript signs requests with botocore's HmacV1Auth as boto3 would
// build them (keys quoted the botocore way; auth_path for virtual hosts),
// and reports the URL to send each to (base: the gateway's address) with
// the Host to send.
const botoSignScript = `
import json, sys
from urllib.parse import quote, urlsplit
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
auth = HmacV1Auth(Credentials(spec["access"], spec["secret"]))
base = urlsplit(spec["base"])
out = []
for r in spec["requests"]:
    key = quote(r["key"], safe="/~")
    if spec["vhost"]:
        host = spec["bucket"] + ".cairn.test"
        path, auth_path = "/" + key, "/" + spec["bucket"] + "/" + key
    else:
        host = base.netloc
        path, auth_path = "/" + spec["bucket"] + "/" + key, None
    url = "%s://%s%s" % (base.scheme, host, path)
    if r["query"]:
        url += "?" + r["query"]
    req = AWSRequest(method=r["method"], url=url, headers=r["headers"] or {}, auth_path=auth_path)
    auth.add_auth(req)
    send = "%s://%s%s" % (base.scheme, base.netloc, req.url.split(host, 1)[1])
    out.append({"method": r["method"], "url": send, "host": host,
                "headers": [[k, v] for k, v in req.headers.items()]})
json.dump(out, sys.stdout)
`

func botoSignRequests(t *testing.T, base, bucket string, vhost bool, reqs []botoReq) []botoSigned {
	t.Helper()
	in, err := json.Marshal(map[string]any{"access": testAccess, "secret": testSecret, "base": base,
		"bucket": bucket, "vhost": vhost, "requests": reqs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", botoSignScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore signer: %v\n%s", err, stderr.String())
	}
	var signed []botoSigned
	if err := json.Unmarshal(out, &signed); err != nil || len(signed) != len(reqs) {
		t.Fatalf("botocore signer output %q: %v", out, err)
	}
	return signed
}
