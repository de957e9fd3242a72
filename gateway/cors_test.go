package gateway_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cairnstore/cairn/gateway"
)

// TestCORS: a browser's preflight from an allowed origin is answered
// before authentication, and signed answers carry the headers a script
// needs; other origins, and a gateway without CORS, get none.
func TestCORS(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) {
		c.CORSAllowedOrigins = []string{"https://app.example.com", "https://*.example.org"}
	})
	plain := startFakeGateway(t)
	mkBucket(t, e.awsClient(t), "web")

	preflight := func(e *env, origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.url+"/web/photo.jpg", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-amz-date,authorization,x-amz-content-sha256")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, origin := range []string{"https://app.example.com", "https://cdn.example.org"} {
		resp := preflight(e, origin)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			resp.Header.Get("Access-Control-Allow-Methods") != "PUT" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
	}
	if resp := preflight(e, "https://evil.example.net"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", resp.Header)
	}
	if resp := preflight(plain, "https://app.example.com"); resp.StatusCode < 400 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("gateway without CORS answered a preflight %d %v", resp.StatusCode, resp.Header)
	}

	// A signed request from the page: the answer names the origin and
	// lets the script read the ETag.
	req, _ := http.NewRequest(http.MethodPut, e.url+"/web/photo.jpg", nil)
	req.Header.Set("Origin", "https://app.example.com")
	resp := e.signedDo(t, req, []byte("jpeg"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Etag") {
		t.Errorf("signed PUT with an Origin: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestBucketCORS: a bucket's own CORS configuration (PutBucketCors) takes
// the place of the gateway's for that bucket, evaluated as S3 does: the
// first rule allowing the origin, method and headers answers; none is 403
// AccessForbidden for a preflight and no CORS headers otherwise. Deleting
// it brings back the gateway's; bad configurations are refused.
func TestBucketCORS(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) {
		c.CORSAllowedOrigins = []string{"*"}
	})
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "site")
	mkBucket(t, c, "other")
	if _, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String("site"), CORSConfiguration: &types.CORSConfiguration{
		CORSRules: []types.CORSRule{
			{ID: aws.String("app"), AllowedOrigins: []string{"https://app.example.com"}, AllowedMethods: []string{"GET", "PUT"},
				AllowedHeaders: []string{"content-type", "x-amz-*"}, ExposeHeaders: []string{"ETag"}, MaxAgeSeconds: aws.Int32(600)},
			{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}},
		},
	}}); err != nil {
		t.Fatalf("PutBucketCors: %v", err)
	}
	got, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("site")})
	if err != nil || len(got.CORSRules) != 2 || aws.ToString(got.CORSRules[0].ID) != "app" || aws.ToInt32(got.CORSRules[0].MaxAgeSeconds) != 600 ||
		!slices.Equal(got.CORSRules[1].AllowedMethods, []string{"GET"}) {
		t.Fatalf("GetBucketCors: %+v, %v", got, err)
	}

	preflight := func(bucket, origin, method, headers string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.url+"/"+bucket+"/index.html", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name, bucket, origin, method, headers string
		status                                int
		allowOrigin, allowMethods, maxAge     string
	}{
		{"the first rule", "site", "https://app.example.com", "PUT", "Content-Type, X-Amz-Date", 200, "https://app.example.com", "GET, PUT", "600"},
		{"a header no rule allows", "site", "https://app.example.com", "PUT", "authorization", 403, "", "", ""},
		{"the second rule", "site", "https://elsewhere.example", "GET", "", 200, "*", "GET", ""},
		{"a method no rule allows", "site", "https://elsewhere.example", "PUT", "", 403, "", "", ""},
		{"a bucket without rules: the gateway's", "other", "https://elsewhere.example", "PUT", "", 204, "*", "PUT", "3600"},
	} {
		resp := preflight(tc.bucket, tc.origin, tc.method, tc.headers)
		h := resp.Header
		if resp.StatusCode != tc.status || h.Get("Access-Control-Allow-Origin") != tc.allowOrigin ||
			h.Get("Access-Control-Allow-Methods") != tc.allowMethods || h.Get("Access-Control-Max-Age") != tc.maxAge {
			t.Errorf("%s: %d %v; want %d, origin %q, methods %q, max age %q", tc.name, resp.StatusCode, h, tc.status, tc.allowOrigin, tc.allowMethods, tc.maxAge)
		}
		if want := strings.ToLower(tc.headers); tc.status == 200 && tc.headers != "" && h.Get("Access-Control-Allow-Headers") != want {
			t.Errorf("%s: allowed headers %q, want the requested, lower-cased as S3 answers them: %q", tc.name, h.Get("Access-Control-Allow-Headers"), want)
		}
	}

	// Signed requests from a page: the matching rule's headers, or none.
	put := func(origin string, requestMethod ...string) http.Header {
		req, _ := http.NewRequest(http.MethodPut, e.url+"/site/index.html", nil)
		req.Header.Set("Origin", origin)
		for _, m := range requestMethod {
			req.Header.Set("Access-Control-Request-Method", m)
		}
		resp := e.signedDo(t, req, []byte("<html>"))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("signed PUT from %s: %d", origin, resp.StatusCode)
		}
		return resp.Header
	}
	if h := put("https://app.example.com"); h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Expose-Headers") != "ETag" {
		t.Errorf("signed PUT from the app's origin: %v", h)
	}
	if h := put("https://elsewhere.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("signed PUT from an origin allowed only GET got CORS headers: %v", h)
	}
	// A request naming the method a preflight would is matched by that
	// method, as S3 does.
	if h := put("https://elsewhere.example", "GET"); h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("signed PUT naming Access-Control-Request-Method GET, from an origin allowed GET: %v", h)
	}

	// Refused configurations leave the stored one.
	for _, tc := range []struct {
		body, code string
	}{
		{`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>`, "InvalidRequest"},
		{`<CORSConfiguration><CORSRule>`, "MalformedXML"},
	} {
		req, _ := http.NewRequest(http.MethodPut, e.url+"/site?cors", nil)
		resp := e.signedDo(t, req, []byte(tc.body))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") {
			t.Errorf("PutBucketCors %.40q: %d %s, want 400 %s", tc.body, resp.StatusCode, b, tc.code)
		}
	}
	if got, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("site")}); err != nil || len(got.CORSRules) != 2 {
		t.Fatalf("after refused puts: %+v, %v", got, err)
	}

	// Deleted: the gateway's setting applies again, and is what
	// GetBucketCors reports.
	if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	if resp := preflight("site", "https://elsewhere.example", "PUT", ""); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight after DeleteBucketCors: %d %v", resp.StatusCode, resp.Header)
	}
	got, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("site")})
	if err != nil || len(got.CORSRules) != 1 || !slices.Equal(got.CORSRules[0].AllowedOrigins, []string{"*"}) {
		t.Fatalf("GetBucketCors after delete: %+v, %v", got, err)
	}
}
