package sigv2

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

// botocoreSign signs each case with botocore's HmacV1Auth (header) or
// HmacV1QueryAuth (presigned URL), the signers of the aws CLI v1 and
// boto3, and returns the signed URLs and headers. The key is quoted the way
// botocore quotes keys in URLs; virtual-host cases set auth_path as
// botocore does.
const botocoreScript = `
import json, sys
from urllib.parse import quote
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
creds = Credentials(spec["access"], spec["secret"])
out = []
for c in spec["cases"]:
    key = quote(c["key"], safe="/~")
    if c["vhost"]:
        url = "http://%s.s3.cairn.test/%s" % (c["bucket"], key)
        auth_path = "/%s/%s" % (c["bucket"], key)
    else:
        url = "http://s3.cairn.test/%s/%s" % (c["bucket"], key)
        auth_path = None
    if c["query"]:
        url += "?" + c["query"]
    req = AWSRequest(method=c["method"], url=url, headers=c["headers"], auth_path=auth_path)
    if c["presign"]:
        HmacV1QueryAuth(creds, expires=600).add_auth(req)
    else:
        HmacV1Auth(creds).add_auth(req)
    out.append({"url": req.url, "headers": [[k, v] for k, v in req.headers.items()]})
json.dump(out, sys.stdout)
`

type botoCase struct {
	Method  string            `json:"method"`
	Bucket  string            `json:"bucket"`
	Key     string            `json:"key"`
	Query   string            `json:"query"`
	Headers map[string]string `json:"headers"`
	VHost   bool              `json:"vhost"`
	Presign bool              `json:"presign"`
}

type botoSigned struct {
	URL     string      `json:"url"`
	Headers [][2]string `json:"headers"`
}

// needBotocore skips the test when python3 or botocore is missing.
func needBotocore(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found: skipping the botocore cross-check")
	}
	if out, err := exec.Command("python3", "-c", "import botocore.auth").CombinedOutput(); err != nil {
		t.Skipf("botocore not importable by python3 (%v: %s): skipping the botocore cross-check", err, bytes.TrimSpace(out))
	}
}

func botocoreSign(t *testing.T, cases []botoCase) []botoSigned {
	t.Helper()
	in, err := json.Marshal(map[string]any{"access": exampleAccessKey, "secret": exampleSecret, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", botocoreScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore signer: %v\n%s", err, stderr.String())
	}
	var signed []botoSigned
	if err := json.Unmarshal(out, &signed); err != nil {
		t.Fatalf("botocore output %q: %v", out, err)
	}
	if len(signed) != len(cases) {
		t.Fatalf("botocore signed %d of %d cases", len(signed), len(cases))
	}
	return signed
}

// serverRequest is what a server receives for a signed URL and headers.
func serverRequest(t *testing.T, method, rawURL string, headers [][2]string) (*http.Request, string) {
	t.Helper()
	rest, ok := strings.CutPrefix(rawURL, "http://")
	if !ok {
		t.Fatalf("url %q", rawURL)
	}
	host, target, _ := strings.Cut(rest, "/")
	r := httptest.NewRequest(method, "/"+target, nil)
	r.Host = host
	for _, h := range headers {
		r.Header.Add(h[0], h[1])
	}
	vhost := ""
	if b, ok := strings.CutSuffix(host, ".s3.cairn.test"); ok {
		vhost = b
	}
	return r, vhost
}

// TestBotocore verifies requests and presigned URLs signed by botocore,
// and checks that each stops verifying once tampered with.
func TestBotocore(t *testing.T) {
	needBotocore(t)
	base := []botoCase{
		{Method: "GET", Bucket: "bucket", Key: "photos/puppy.jpg"},
		{Method: "GET", Bucket: "bucket", Key: "a key/with spaces+plus=eq;semi/café ☃ ~!*'()"},
		{Method: "HEAD", Bucket: "bucket", Key: "k"},
		{Method: "PUT", Bucket: "bucket", Key: "up/load.txt", Headers: map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==",
			"x-amz-meta-Owner": "  fred ", "x-amz-storage-class": "STANDARD",
		}},
		{Method: "PUT", Bucket: "bucket", Key: "dated", Headers: map[string]string{"x-amz-date": time.Now().UTC().Format(http.TimeFormat)}},
		{Method: "DELETE", Bucket: "bucket", Key: "k", Query: "versionId=3%2Fx"},
		{Method: "GET", Bucket: "bucket", Key: "k", Query: "response-content-type=text%2Fplain&response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22"},
		{Method: "GET", Bucket: "bucket", Key: "", Query: "acl"},
		{Method: "GET", Bucket: "bucket", Key: "", Query: "prefix=a%2Fb&delimiter=%2F&max-keys=10"},
		{Method: "POST", Bucket: "bucket", Key: "mp", Query: "uploads"},
		{Method: "PUT", Bucket: "bucket", Key: "mp", Query: "partNumber=2&uploadId=abc-123"},
		{Method: "POST", Bucket: "bucket", Key: "", Query: "delete", Headers: map[string]string{"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}},
	}
	var cases []botoCase
	for _, vhost := range []bool{false, true} {
		for _, presign := range []bool{false, true} {
			for _, c := range base {
				if presign && c.Headers["x-amz-date"] != "" {
					continue
				}
				c.VHost, c.Presign = vhost, presign
				cases = append(cases, c)
			}
		}
	}
	signerCase := botoCase{Method: "GET", Bucket: "bucket", Key: "a b/c", Query: "versionId=v1", Presign: true}
	signed := botocoreSign(t, append(cases, signerCase))
	t.Run("Signer matches botocore", func(t *testing.T) { checkSignerMatches(t, signerCase, signed[len(cases)]) })
	v, err := New(Config{Credentials: sigv4.StaticCredentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		s := signed[i]
		name := c.Method + " /" + c.Bucket + "/" + c.Key + "?" + c.Query
		if c.VHost {
			name += " vhost"
		}
		if c.Presign {
			name += " presigned"
		}
		t.Run(name, func(t *testing.T) {
			r, vhost := serverRequest(t, c.Method, s.URL, s.Headers)
			if _, err := v.Verify(r, vhost); err != nil {
				t.Fatalf("Verify %s %s %q: %v", c.Method, s.URL, s.Headers, err)
			}
			if c.Presign {
				// A browser sends none of the signed headers: botocore put
				// them in the query.
				bare, vhost := serverRequest(t, c.Method, s.URL, nil)
				if _, err := v.Verify(bare, vhost); err != nil {
					t.Fatalf("Verify %s %s without headers: %v", c.Method, s.URL, err)
				}
			}
			// Tampering: another key, another method.
			other, vhost := serverRequest(t, c.Method, strings.Replace(s.URL, ".test/", ".test/x", 1), s.Headers)
			if _, err := v.Verify(other, vhost); !errors.Is(err, s3err.SignatureDoesNotMatch) {
				t.Errorf("another path: want SignatureDoesNotMatch, got %v", err)
			}
			method := "GET"
			if c.Method == "GET" {
				method = "DELETE"
			}
			other, vhost = serverRequest(t, method, s.URL, s.Headers)
			if _, err := v.Verify(other, vhost); !errors.Is(err, s3err.SignatureDoesNotMatch) {
				t.Errorf("another method: want SignatureDoesNotMatch, got %v", err)
			}
		})
	}
}

// checkSignerMatches checks that Signer computes what botocore does for
// the same presigned request (whose only time input is Expires).
func checkSignerMatches(t *testing.T, c botoCase, s botoSigned) {
	r, _ := serverRequest(t, c.Method, s.URL, nil)
	params := parseQuery(r.URL.RawQuery)
	exp, _ := param(params, "Expires")
	sig, _ := param(params, "Signature")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		t.Fatalf("botocore Expires %q: %v", exp, err)
	}
	mine := httptest.NewRequest(c.Method, "http://s3.cairn.test/"+c.Bucket+"/"+sigv4.EncodePath(c.Key)+"?"+c.Query, nil)
	exampleSigner.Presign(mine, "", time.Unix(secs, 0))
	if got, _ := param(parseQuery(mine.URL.RawQuery), "Signature"); got != sig {
		t.Fatalf("Signer: %s, botocore: %s (url %s)", got, sig, s.URL)
	}
}
