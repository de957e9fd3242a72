package sigv2

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var exampleSigner = Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}

// signed returns a request for target signed at t, after mod (if any) has
// adjusted it; after (if any) then changes it as an attacker or a broken
// client would.
func signed(method, target string, t time.Time, mod, after func(*http.Request)) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if mod != nil {
		mod(r)
	}
	exampleSigner.Sign(r, "", t)
	if after != nil {
		after(r)
	}
	return r
}

func presigned(method, target string, expires time.Time, mod func(*http.Request), rawQuery func(string) string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if mod != nil {
		mod(r)
	}
	exampleSigner.Presign(r, "", expires)
	q := r.URL.RawQuery
	if rawQuery != nil {
		q = rawQuery(q)
	}
	// What the server sees: the presigned URL as the request line.
	out := httptest.NewRequest(method, r.URL.EscapedPath()+"?"+q, nil)
	out.Header = r.Header
	return out
}

func TestVerify(t *testing.T) {
	setHeader := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	tests := []struct {
		name    string
		r       *http.Request
		code    s3err.Code // zero: accepted
		message string     // substring of the message, when set
	}{
		{name: "header", r: signed("GET", "/b/k", testNow, nil, nil)},
		{name: "header with sub-resources and metadata", r: signed("PUT", "/b/k?partNumber=1&uploadId=u", testNow, func(r *http.Request) {
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")
			r.Header.Add("X-Amz-Meta-A", "1")
			r.Header.Add("X-Amz-Meta-A", "2")
		}, nil)},
		{name: "unsigned query parameter added", r: signed("GET", "/b/", testNow, nil, func(r *http.Request) {
			r.URL.RawQuery = "prefix=p"
			r.RequestURI = "/b/?prefix=p"
		})},
		{name: "x-amz-date signed the documented way", r: signed("GET", "/b/k", testNow, setHeader("X-Amz-Date", testNow.Format(http.TimeFormat)), nil)},
		{name: "skew within 15 minutes", r: signed("GET", "/b/k", testNow.Add(-14*time.Minute), nil, nil)},
		{name: "skew", r: signed("GET", "/b/k", testNow.Add(-16*time.Minute), nil, nil), code: s3err.RequestTimeTooSkewed},
		{name: "skew ahead", r: signed("GET", "/b/k", testNow.Add(16*time.Minute), nil, nil), code: s3err.RequestTimeTooSkewed},
		{name: "skew of x-amz-date", r: signed("GET", "/b/k", testNow, setHeader("X-Amz-Date", testNow.Add(time.Hour).Format(http.TimeFormat)), nil), code: s3err.RequestTimeTooSkewed},
		{name: "no date", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) { r.Header.Del("Date") }), code: s3err.AccessDenied, message: "valid Date"},
		{name: "bad date", r: signed("GET", "/b/k", testNow, nil, setHeader("Date", "yesterday")), code: s3err.AccessDenied, message: "valid Date"},
		{name: "unknown key", r: signed("GET", "/b/k", testNow, nil, setHeader("Authorization", "AWS AKIDNOBODY:c2WLPFtWHVgbEmeEG93a4cG37dM=")), code: s3err.InvalidAccessKeyID},
		{name: "malformed header", r: signed("GET", "/b/k", testNow, nil, setHeader("Authorization", "AWS AKIAIOSFODNN7EXAMPLE")), code: s3err.InvalidArgument},
		{name: "empty signature", r: signed("GET", "/b/k", testNow, nil, setHeader("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:")), code: s3err.InvalidArgument},
		{name: "wrong signature", r: signed("GET", "/b/k", testNow, nil, setHeader("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=")), code: s3err.SignatureDoesNotMatch},
		{name: "other path", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) {
			r.URL.Path, r.RequestURI = "/b/other", "/b/other"
		}), code: s3err.SignatureDoesNotMatch},
		{name: "other method", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) { r.Method = "DELETE" }), code: s3err.SignatureDoesNotMatch},
		{name: "x-amz header added", r: signed("PUT", "/b/k", testNow, nil, setHeader("X-Amz-Copy-Source", "/b/secret")), code: s3err.SignatureDoesNotMatch},
		{name: "content-type changed", r: signed("PUT", "/b/k", testNow, setHeader("Content-Type", "a/b"), setHeader("Content-Type", "c/d")), code: s3err.SignatureDoesNotMatch},
		{name: "sub-resource added", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) {
			r.URL.RawQuery, r.RequestURI = "acl", "/b/k?acl"
		}), code: s3err.SignatureDoesNotMatch},
		{name: "both header and query", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) {
			r.URL.RawQuery = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=x"
		}), code: s3err.InvalidArgument, message: "Only one auth mechanism"},
		{name: "v2 header and v4 query", r: signed("GET", "/b/k", testNow, nil, func(r *http.Request) {
			r.URL.RawQuery = "X-Amz-Signature=x"
		}), code: s3err.InvalidArgument, message: "Only one auth mechanism"},

		{name: "presigned", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, nil)},
		{name: "presigned with sub-resources", r: presigned("GET", "/b/k?versionId=v1&response-content-disposition=attachment%3B%20filename%3D%22a%20b%22", testNow.Add(time.Minute), nil, nil)},
		{name: "presigned signature with a raw '+'", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, func(q string) string {
			return strings.ReplaceAll(q, "%2B", "+")
		})},
		{name: "presigned expired", r: presigned("GET", "/b/k", testNow.Add(-time.Second), nil, nil), code: s3err.AccessDenied, message: "Request has expired"},
		{name: "presigned expiry moved", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, func(q string) string {
			return strings.Replace(q, "Expires=", "Expires=9", 1)
		}), code: s3err.SignatureDoesNotMatch},
		{name: "presigned expires not a number", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, func(q string) string {
			return strings.Replace(q, "Expires=", "Expires=x", 1)
		}), code: s3err.AccessDenied, message: "seconds since epoch"},
		{name: "presigned without Expires", r: httptest.NewRequest("GET", "/b/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=abc", nil), code: s3err.AccessDenied, message: "requires the Signature, Expires and AWSAccessKeyId"},
		{name: "presigned unknown key", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, func(q string) string {
			return strings.Replace(q, "AWSAccessKeyId=", "AWSAccessKeyId=X", 1)
		}), code: s3err.InvalidAccessKeyID},
		{name: "presigned other method", r: func() *http.Request {
			r := presigned("GET", "/b/k", testNow.Add(time.Minute), nil, nil)
			r.Method = "PUT"
			return r
		}(), code: s3err.SignatureDoesNotMatch},
		{name: "presigned x-amz header sent but not signed", r: func() *http.Request {
			r := presigned("PUT", "/b/k", testNow.Add(time.Minute), nil, nil)
			r.Header.Set("X-Amz-Copy-Source", "/b/secret")
			return r
		}(), code: s3err.SignatureDoesNotMatch},
		{name: "presigned and v4 query", r: presigned("GET", "/b/k", testNow.Add(time.Minute), nil, func(q string) string {
			return q + "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
		}), code: s3err.InvalidArgument, message: "Only one auth mechanism"},
	}
	v := exampleVerifier(t, testNow)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := v.Verify(tt.r, "")
			if tt.code == (s3err.Code{}) {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if a.AccessKey != exampleAccessKey {
					t.Errorf("AccessKey = %q", a.AccessKey)
				}
				return
			}
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("want %s, got %v", tt.code.Name, err)
			}
			if e.Code != tt.code {
				t.Fatalf("want %s, got %v", tt.code.Name, err)
			}
			if tt.message != "" && !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.message)
			}
		})
	}
}

// TestVerifyAuth checks what a successful verification reports.
func TestVerifyAuth(t *testing.T) {
	v := exampleVerifier(t, testNow)
	a, err := v.Verify(signed("GET", "/b/k", testNow.Add(-time.Minute), nil, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Presigned || !a.Time.Equal(testNow.Add(-time.Minute)) || !a.Expires.IsZero() {
		t.Errorf("header auth = %+v", a)
	}
	exp := testNow.Add(time.Hour)
	a, err = v.Verify(presigned("GET", "/b/k", exp, nil, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Presigned || !a.Expires.Equal(exp) || !a.Time.IsZero() {
		t.Errorf("presigned auth = %+v", a)
	}
}

// TestVirtualHost checks that the Host's bucket is signed: a signature for
// one bucket does not open another.
func TestVirtualHost(t *testing.T) {
	v := exampleVerifier(t, testNow)
	r := httptest.NewRequest("GET", "/k", nil)
	r.Host = "b1.s3.example"
	exampleSigner.Sign(r, "b1", testNow)
	if _, err := v.Verify(r, "b1"); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	r.Host = "b2.s3.example"
	if _, err := v.Verify(r, "b2"); !errors.Is(err, s3err.SignatureDoesNotMatch) {
		t.Fatalf("another bucket: want SignatureDoesNotMatch, got %v", err)
	}
}

// TestSignatureDoesNotMatchDetails checks the fields clients use to debug a
// mismatch.
func TestSignatureDoesNotMatchDetails(t *testing.T) {
	v := exampleVerifier(t, testNow)
	r := signed("GET", "/b/k", testNow, nil, func(r *http.Request) {
		r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=")
	})
	_, err := v.Verify(r, "")
	var e *s3err.Error
	if !errors.As(err, &e) || e.Code != s3err.SignatureDoesNotMatch {
		t.Fatalf("want SignatureDoesNotMatch, got %v", err)
	}
	fields := map[string]string{}
	for _, f := range e.Fields {
		fields[f.Name] = f.Value
	}
	want := "GET\n\n\n" + testNow.Format(http.TimeFormat) + "\n/b/k"
	if fields["StringToSign"] != want || fields["AWSAccessKeyId"] != exampleAccessKey || fields["SignatureProvided"] != "c2WLPFtWHVgbEmeEG93a4cG37dM=" {
		t.Errorf("fields = %q", fields)
	}
}

func TestApplies(t *testing.T) {
	tests := []struct {
		target string
		authz  string
		want   bool
	}{
		{"/b/k", "AWS AK:sig", true},
		{"/b/k", "  AWS AK:sig", true},
		{"/b/k?AWSAccessKeyId=a&Expires=1&Signature=s", "", true},
		{"/b/k?Signature=s", "", true},
		{"/b/k?AWSAccessKeyId", "", true},
		{"/b/k", "AWS4-HMAC-SHA256 Credential=a/b/c/s3/aws4_request", false},
		{"/b/k?X-Amz-Signature=s", "", false},
		{"/b/k?Expires=1&signature=s", "", false},
		{"/b/k", "", false},
		{"/b/k", "AWSX AK:sig", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		if tt.authz != "" {
			r.Header.Set("Authorization", tt.authz)
		}
		if got := Applies(r); got != tt.want {
			t.Errorf("Applies(%s, %q) = %v, want %v", tt.target, tt.authz, got, tt.want)
		}
	}
}

func TestNewRequiresCredentials(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without credentials succeeded")
	}
}

func TestUnsigned(t *testing.T) {
	_, err := exampleVerifier(t, testNow).Verify(httptest.NewRequest("GET", "/b/k", nil), "")
	if !errors.Is(err, sigv4.ErrUnsigned) {
		t.Fatalf("want ErrUnsigned, got %v", err)
	}
}
