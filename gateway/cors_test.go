package gateway_test

import (
	"net/http"
	"strings"
	"testing"

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
