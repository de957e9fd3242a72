package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// FuzzAuthorizationHeader feeds arbitrary Authorization headers: Verify
// must not panic, must answer with an *s3err.Error, and must never accept
// a header that does not carry the right signature.
func FuzzAuthorizationHeader(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := httptest.NewRequest("GET", "/b/k", nil)
	Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}.Sign(r, UnsignedPayload, now)
	f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), UnsignedPayload)
	f.Add(authHeader("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), "20130524T000000Z", EmptySHA256)
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=", "", "")
	f.Add("AWS AK:sig", "20260301T120000Z", StreamingSigned)
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/s3/aws4_request,,,", "x", "y")
	v := exampleVerifier(f, now)
	f.Fuzz(func(t *testing.T, authz, date, payload string) {
		r := httptest.NewRequest("GET", "/b/k", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Date", date)
		r.Header.Set("X-Amz-Content-Sha256", payload)
		a, err := v.Verify(r)
		if err == nil {
			// Only a genuine signature of this exact request may pass.
			if !strings.Contains(authz, a.Signature) || a.AccessKey != exampleAccessKey {
				t.Fatalf("accepted %q as %+v", authz, a)
			}
			return
		}
		var e *s3err.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *s3err.Error", err)
		}
		_, _ = parseAuthorization(authz)
	})
}

// FuzzPresignedQuery feeds arbitrary query strings to a presigned request.
func FuzzPresignedQuery(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := httptest.NewRequest("GET", "/b/k?prefix=a+b&acl", nil)
	Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}.Presign(r, time.Hour, now)
	f.Add(r.URL.RawQuery)
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
	f.Add("X-Amz-Signature=&X-Amz-Expires=99999999999999999999&%zz;&=&&")
	v := exampleVerifier(f, now)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{Method: "GET", Host: "example.com", Header: http.Header{},
			URL: &url.URL{Path: "/b/k", RawQuery: rawQuery}}
		_, err := v.Verify(r)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *s3err.Error", err)
			}
		}
		// The canonical query is a function of the decoded parameters only.
		params := parseQuery(rawQuery)
		c := canonicalQuery(params, "")
		if again := canonicalQuery(parseQuery(c), ""); again != c {
			t.Fatalf("canonical query not stable: %q -> %q -> %q", rawQuery, c, again)
		}
	})
}

func BenchmarkVerifyHeader(b *testing.B) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := exampleVerifier(b, now)
	r := httptest.NewRequest("PUT", "http://bucket.s3.local/some/key/with%20space.txt?partNumber=3&uploadId=abc", nil)
	r.Header.Set("Content-Type", "application/octet-stream")
	r.Header.Set("X-Amz-Meta-Owner", "bench")
	r.Header.Set("Content-Length", "1048576")
	Signer{AccessKey: exampleAccessKey, SecretKey: exampleSecret}.Sign(r, StreamingUnsignedTrailer, now)
	if _, err := v.Verify(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
