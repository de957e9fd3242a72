package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

func fieldValue(err error, name string) string {
	var e *s3err.Error
	if !errors.As(err, &e) {
		return ""
	}
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestVerifyErrors(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := exampleVerifier(t, now)
	good := Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	signed := func(s Signer, at time.Time, edit func(*http.Request)) *http.Request {
		r := httptest.NewRequest("PUT", "http://s3.local/bucket/key?x=1", nil)
		r.Header.Set("X-Amz-Meta-A", "1")
		s.Sign(r, UnsignedPayload, at)
		if edit != nil {
			edit(r)
		}
		return r
	}
	presigned := func(at time.Time, expires time.Duration, edit func(*http.Request)) *http.Request {
		r := httptest.NewRequest("GET", "http://s3.local/bucket/key", nil)
		good.Presign(r, expires, at)
		r.RequestURI = r.URL.RequestURI()
		if edit != nil {
			edit(r)
		}
		return r
	}
	setQuery := func(name, value string) func(*http.Request) {
		return func(r *http.Request) {
			q := r.URL.Query()
			q.Set(name, value)
			r.URL.RawQuery = q.Encode()
		}
	}
	tests := []struct {
		name    string
		req     *http.Request
		want    s3err.Code
		message string // substring of the message
		field   [2]string
	}{
		{"no auth", httptest.NewRequest("GET", "/b/k", nil), s3err.AccessDenied, "Anonymous", [2]string{}},
		{"wrong secret", signed(Signer{AccessKey: exampleAccessKey, SecretKey: "nope"}, now, nil), s3err.SignatureDoesNotMatch, "", [2]string{"AWSAccessKeyId", exampleAccessKey}},
		{"unknown key", signed(Signer{AccessKey: "NOPE", SecretKey: exampleSecret}, now, nil), s3err.InvalidAccessKeyID, "", [2]string{"AWSAccessKeyId", "NOPE"}},
		{"wrong region", signed(Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret, Region: "eu-west-1"}, now, nil), s3err.AuthorizationHeaderMalformed, "expecting 'us-east-1'", [2]string{"Region", "us-east-1"}},
		{"skew past", signed(good, now.Add(-16*time.Minute), nil), s3err.RequestTimeTooSkewed, "", [2]string{"MaxAllowedSkewMilliseconds", "900000"}},
		{"skew future", signed(good, now.Add(16*time.Minute), nil), s3err.RequestTimeTooSkewed, "", [2]string{}},
		{"tampered header", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "2") }), s3err.SignatureDoesNotMatch, "", [2]string{}},
		{"tampered query", signed(good, now, func(r *http.Request) { r.URL.RawQuery = "x=2" }), s3err.SignatureDoesNotMatch, "", [2]string{}},
		{"tampered payload mode", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", EmptySHA256) }), s3err.SignatureDoesNotMatch, "", [2]string{}},
		{"unsigned x-amz header", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Copy-Source", "/b/secret") }), s3err.AccessDenied, "not signed", [2]string{"HeadersNotSigned", "x-amz-copy-source"}},
		{"missing content sha", signed(good, now, func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }), s3err.InvalidRequest, "x-amz-content-sha256", [2]string{}},
		{"bad content sha", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "STREAMING-NONSENSE") }), s3err.InvalidArgument, "", [2]string{}},
		{"bad date", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Date", "yesterday") }), s3err.AccessDenied, "Date", [2]string{}},
		{"credential date mismatch", signed(good, now, func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260302T000000Z") }), s3err.AuthorizationHeaderMalformed, "credential date", [2]string{}},
		{"signature v2", signed(good, now, func(r *http.Request) { r.Header.Set("Authorization", "AWS AKID:c2lnbmF0dXJl") }), s3err.InvalidRequest, "AWS4-HMAC-SHA256", [2]string{}},
		{"sigv4a", signed(good, now, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}), s3err.InvalidRequest, "", [2]string{}},
		{"missing signature", signed(good, now, func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}), s3err.AuthorizationHeaderMalformed, "", [2]string{}},
		{"host not signed", signed(good, now, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
		}), s3err.AuthorizationHeaderMalformed, "host", [2]string{}},
		{"wrong service", signed(good, now, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/ec2/", 1))
		}), s3err.AuthorizationHeaderMalformed, "service", [2]string{}},
		{"two mechanisms", signed(good, now, func(r *http.Request) { r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256" }), s3err.InvalidArgument, "Only one auth mechanism", [2]string{}},

		{"presigned expired", presigned(now.Add(-2*time.Hour), time.Hour, nil), s3err.AccessDenied, "Request has expired", [2]string{"X-Amz-Expires", "3600"}},
		{"presigned not yet valid", presigned(now.Add(time.Hour), time.Hour, nil), s3err.AccessDenied, "not valid yet", [2]string{}},
		{"presigned too long", presigned(now, 7*24*time.Hour+time.Second, nil), s3err.AuthorizationQueryParametersError, "604800", [2]string{}},
		{"presigned negative", presigned(now, time.Hour, setQuery("X-Amz-Expires", "-1")), s3err.AuthorizationQueryParametersError, "non-negative", [2]string{}},
		{"presigned missing date", presigned(now, time.Hour, func(r *http.Request) {
			q := r.URL.Query()
			q.Del("X-Amz-Date")
			r.URL.RawQuery = q.Encode()
		}), s3err.AuthorizationQueryParametersError, "requires", [2]string{}},
		{"presigned bad algorithm", presigned(now, time.Hour, setQuery("X-Amz-Algorithm", "HMAC")), s3err.AuthorizationQueryParametersError, "only supports", [2]string{}},
		{"presigned wrong region", presigned(now, time.Hour, setQuery("X-Amz-Credential", exampleAccessKey+"/"+now.Format(dateFormat)+"/eu-west-1/s3/aws4_request")), s3err.AuthorizationQueryParametersError, "expecting 'us-east-1'", [2]string{"Region", "us-east-1"}},
		{"presigned tampered", presigned(now, time.Hour, func(r *http.Request) { r.URL.Path = "/bucket/other"; r.URL.RawPath = ""; r.RequestURI = "" }), s3err.SignatureDoesNotMatch, "", [2]string{}},
		{"presigned extended", presigned(now, time.Hour, setQuery("X-Amz-Expires", "7200")), s3err.SignatureDoesNotMatch, "", [2]string{}},
		{"presigned unsigned header", presigned(now, time.Hour, func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }), s3err.AccessDenied, "not signed", [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := v.Verify(tt.req)
			if err == nil {
				t.Fatalf("Verify accepted: %+v", a)
			}
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *s3err.Error", err)
			}
			if e.Code != tt.want {
				t.Fatalf("code %s (%v), want %s", e.Code.Name, err, tt.want.Name)
			}
			if !strings.Contains(e.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", e.Error(), tt.message)
			}
			if tt.field[0] != "" && fieldValue(err, tt.field[0]) != tt.field[1] {
				t.Errorf("field %s = %q, want %q", tt.field[0], fieldValue(err, tt.field[0]), tt.field[1])
			}
		})
	}
	if _, err := v.Verify(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned request: %v, want ErrUnsigned", err)
	}
}

func TestVerifyAccepts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := exampleVerifier(t, now)
	s := Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	for _, at := range []time.Time{now, now.Add(-14 * time.Minute), now.Add(14 * time.Minute)} {
		r := httptest.NewRequest("PUT", "/b/k", nil)
		seed := s.Sign(r, StreamingUnsignedTrailer, at)
		a, err := v.Verify(r)
		if err != nil {
			t.Fatalf("at %v: %v", at, err)
		}
		if !a.Streaming() || a.Signature != seed || !a.Signed("x-amz-date") || a.Presigned {
			t.Errorf("Auth %+v", a)
		}
		if _, ok := a.PayloadHash(); ok {
			t.Error("PayloadHash ok for a streaming payload")
		}
	}
	// Uppercase hex payload hash is accepted and reported lower-cased.
	r := httptest.NewRequest("PUT", "/b/k", nil)
	s.Sign(r, strings.ToUpper(EmptySHA256), now)
	a, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if sum, ok := a.PayloadHash(); !ok || a.Payload != EmptySHA256 || sum[0] != 0xe3 {
		t.Errorf("Payload %q", a.Payload)
	}
	// The 7-day maximum itself is fine.
	r = httptest.NewRequest("GET", "/b/k", nil)
	s.Presign(r, 7*24*time.Hour, now.Add(-6*24*time.Hour))
	r.RequestURI = r.URL.RequestURI()
	if a, err := v.Verify(r); err != nil || !a.Presigned || a.Payload != UnsignedPayload {
		t.Errorf("7-day presigned URL: %v %+v", err, a)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"acl", "acl="},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1&a=10", "a=1&a=10&a=2"},
		{"prefix=a+b", "prefix=a%20b"},
		{"prefix=a%2Bb", "prefix=a%2Bb"},
		{"p=%7e%2f", "p=~%2F"},
		{"x=a/b&x=a-b", "x=a%2Fb&x=a-b"}, // sorted after encoding
		{"k=v;w&&z", "k=v%3Bw&z="},
		{"bad=%zz", "bad=%25zz"},
		{"u=%C3%BC", "u=%C3%BC"},
	}
	for _, tt := range tests {
		if got := canonicalQuery(parseQuery(tt.raw), ""); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCanonicalHeaders(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "h.example:9000"
	r.Header.Set("X-Amz-Meta-A", "  a   b  c ")
	r.Header.Add("X-Amz-Meta-B", "1")
	r.Header.Add("X-Amz-Meta-B", " 2 ")
	r.Header["x-raw"] = []string{"v"}
	r.TransferEncoding = []string{"chunked"}
	got := canonicalHeaders(r, []string{"host", "transfer-encoding", "x-amz-meta-a", "x-amz-meta-b", "x-missing", "x-raw"})
	want := "host:h.example:9000\ntransfer-encoding:chunked\nx-amz-meta-a:a b c\nx-amz-meta-b:1,2\nx-missing:\nx-raw:v\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestKeyCache(t *testing.T) {
	var c keyCache
	k1 := c.get("s", "20260101", "r")
	if string(c.get("s", "20260101", "r")) != string(k1) || len(c.m) != 1 {
		t.Fatal("cache miss on the same key")
	}
	if string(c.get("t", "20260101", "r")) == string(k1) {
		t.Fatal("different secrets share a key")
	}
	for i := range maxCachedKeys + 10 {
		c.get("s", "2026", string(rune(i)))
	}
	if len(c.m) > maxCachedKeys {
		t.Fatalf("cache grew to %d", len(c.m))
	}
}
