package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
	miniosigner "github.com/minio/minio-go/v7/pkg/signer"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// keys exercise the canonical URI: characters S3 clients encode, '+' and
// '%' that must not be decoded twice, unicode, and paths S3 does not
// normalise.
var keys = []string{
	"plain.txt",
	"with space",
	"a+b",
	"100%",
	"100%25",
	"x=y;z",
	"~tilde_-.",
	"ключ/日本語/ü",
	"dir//double/./dot/../x",
	"!$&'()*,:@[]",
	"a%2Fb",
	"question?mark#hash",
}

// queries exercise the canonical query: spaces, '+', empty values,
// repeated names, reserved characters.
var queries = []url.Values{
	nil,
	{"acl": {""}},
	{"list-type": {"2"}, "prefix": {"a b+c/ü"}, "delimiter": {"/"}},
	{"uploads": {""}, "prefix": {"x"}},
	{"marker": {"a/b", "a-b"}},
	{"response-content-disposition": {`attachment; filename="x y.txt"`}},
}

// verifyServer answers 200 when Verify accepts the request and the S3
// error otherwise. The body of a 200 is the payload mode.
func verifyServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := v.Verify(r)
		if err != nil {
			s3err.WriteError(w, r, err, "TEST")
			return
		}
		_, _ = io.WriteString(w, a.Payload)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sdkURL(base, key string, q url.Values) string {
	u := base + "/bucket/" + httpbinding.EscapePath(key, false)
	if len(q) > 0 {
		u += "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	return u
}

// TestSDKSignHTTP signs requests with aws-sdk-go-v2's signer, configured
// as its S3 client configures it, and sends them over HTTP.
func TestSDKSignHTTP(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := exampleVerifier(t, now)
	srv := verifyServer(t, v)
	creds := aws.Credentials{AccessKeyID: exampleAccessKey, SecretAccessKey: exampleSecret}
	signer := awsv4.NewSigner(func(o *awsv4.SignerOptions) { o.DisableURIPathEscaping = true })
	body := "hello, world"
	bodyHash := sha256.Sum256([]byte(body))
	for _, key := range keys {
		for _, q := range queries {
			for _, payload := range []string{hex.EncodeToString(bodyHash[:]), UnsignedPayload} {
				req, err := http.NewRequest("PUT", sdkURL(srv.URL, key, q), strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-Amz-Content-Sha256", payload)
				req.Header.Set("X-Amz-Meta-Note", "  two  spaces   inside  ")
				req.Header.Set("Content-Type", "text/plain")
				req.Header.Add("X-Amz-Meta-Multi", "a")
				req.Header.Add("X-Amz-Meta-Multi", "b")
				if err := signer.SignHTTP(context.Background(), creds, req, payload, "s3", "us-east-1", now); err != nil {
					t.Fatal(err)
				}
				if code, msg := do(t, req); code != 200 || msg != payload {
					t.Errorf("key %q query %v payload %s: %d %s", key, q, payload, code, msg)
				}
			}
		}
	}
}

// TestSDKPresignHTTP presigns URLs with aws-sdk-go-v2 and fetches them.
func TestSDKPresignHTTP(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := exampleVerifier(t, now.Add(30*time.Minute))
	srv := verifyServer(t, v)
	creds := aws.Credentials{AccessKeyID: exampleAccessKey, SecretAccessKey: exampleSecret}
	signer := awsv4.NewSigner(func(o *awsv4.SignerOptions) { o.DisableURIPathEscaping = true })
	for _, key := range keys {
		for _, q := range queries {
			for _, method := range []string{"GET", "PUT"} {
				qq := url.Values{}
				for k, vs := range q {
					qq[k] = vs
				}
				qq.Set("X-Amz-Expires", "3600")
				req, err := http.NewRequest(method, sdkURL(srv.URL, key, qq), nil)
				if err != nil {
					t.Fatal(err)
				}
				if method == "PUT" {
					req.Header.Set("X-Amz-Meta-Owner", "me")
				}
				signed, hdr, err := signer.PresignHTTP(context.Background(), creds, req, UnsignedPayload, "s3", "us-east-1", now)
				if err != nil {
					t.Fatal(err)
				}
				preq, err := http.NewRequest(method, signed, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, vs := range hdr {
					if k != "Host" {
						preq.Header[k] = vs
					}
				}
				if code, msg := do(t, preq); code != 200 || msg != UnsignedPayload {
					t.Errorf("%s key %q query %v: %d %s", method, key, q, code, msg)
				}
			}
		}
	}
}

// TestMinioSigner signs with minio-go's signer, which re-encodes the path
// itself from the decoded key.
func TestMinioSigner(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := exampleVerifier(t, now)
	srv := verifyServer(t, v)
	for _, key := range keys {
		for _, q := range queries {
			req, err := http.NewRequest("GET", sdkURL(srv.URL, key, q), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			signed := miniosigner.SignV4(*req, exampleAccessKey, exampleSecret, "", "us-east-1")
			if code, msg := do(t, signed); code != 200 {
				t.Errorf("SignV4 key %q query %v: %d %s", key, q, code, msg)
			}
			req, _ = http.NewRequest("GET", sdkURL(srv.URL, key, q), nil)
			pre := miniosigner.PreSignV4(*req, exampleAccessKey, exampleSecret, "", "us-east-1", 600)
			if code, msg := do(t, pre); code != 200 {
				t.Errorf("PreSignV4 key %q query %v: %d %s", key, q, code, msg)
			}
		}
	}
}

// TestOwnSigner checks the test Signer round-trips with the verifier
// through a real server, for headers and presigned URLs.
func TestOwnSigner(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := exampleVerifier(t, now)
	srv := verifyServer(t, v)
	s := Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	for _, key := range keys {
		for _, q := range queries {
			u, _ := url.Parse(srv.URL + "/bucket/")
			u.Path += key
			u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			req, _ := http.NewRequest("GET", u.String(), nil)
			req.URL.Path = "/bucket/" + key
			s.Sign(req, EmptySHA256, now)
			if code, msg := do(t, req); code != 200 {
				t.Errorf("Sign key %q query %v: %d %s", key, q, code, msg)
			}
			req, _ = http.NewRequest("GET", u.String(), nil)
			req.URL.Path = "/bucket/" + key
			s.Presign(req, time.Hour, now)
			if code, msg := do(t, req); code != 200 {
				t.Errorf("Presign key %q query %v: %d %s", key, q, code, msg)
			}
		}
	}
}

// TestRawPathVariants sends the same key encoded differently in the
// request line and signs the line as sent: S3 accepts what the client
// signed, without decoding it twice.
func TestRawPathVariants(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	v := exampleVerifier(t, now)
	key := SigningKey(exampleSecret, now.Format(dateFormat), "us-east-1")
	for _, raw := range []string{"/b/a+b", "/b/a%2Bb", "/b/a%2bb", "/b/x=y;z", "/b/x%3Dy%3Bz", "/b/sp%20ace", "/b/a%2Fb", "/b/%E2%82%AC", "/b/a//b/../c"} {
		r := httptest.NewRequest("GET", raw, nil)
		r.Host = "s3.local"
		amzDate := now.Format(TimeFormat)
		r.Header.Set("X-Amz-Date", amzDate)
		r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
		signed := []string{"host", "x-amz-content-sha256", "x-amz-date"}
		scope := now.Format(dateFormat) + "/us-east-1/s3/aws4_request"
		creq := canonicalRequest("GET", raw, "", canonicalHeaders(r, signed), signed, UnsignedPayload)
		sig := hex.EncodeToString(hmacSHA256(key, stringToSign(amzDate, scope, creq)))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+exampleAccessKey+"/"+scope+", SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+sig)
		if _, err := v.Verify(r); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
}
