package gateway

import (
	"net/http"

	"github.com/rs/cors"

	"github.com/cairnstore/cairn/gateway/checksum"
)

// corsExposed are the response headers a browser script may read: the
// validators, ranges and locations, the request ids, and the checksums.
func corsExposed() []string {
	h := []string{
		"ETag", "Last-Modified", "Content-Length", "Content-Range", "Location",
		"x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-delete-marker",
		"x-amz-checksum-type", "x-amz-mp-parts-count",
	}
	for _, a := range checksum.Algorithms() {
		h = append(h, a.Header())
	}
	return h
}

// corsMaxAge is how long, in seconds, a browser may cache a preflight's
// answer.
const corsMaxAge = 3600

// withCORS answers browsers' cross-origin requests for the allowed
// origins (rs/cors: preflight OPTIONS requests answered before
// authentication, Access-Control-* headers added to the others). Every
// S3 request is still signed; no cookie or other ambient credential
// exists here, so allowing an origin only lets its scripts use URLs and
// keys they already hold. No origins: no CORS, and preflights fall
// through to the S3 router, which refuses them.
func withCORS(h http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return h
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"*"},
		ExposedHeaders: corsExposed(),
		MaxAge:         corsMaxAge,
	}).Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			stateOf(r).op = "PreflightCORS" // for the access log and metrics
		}
		c.ServeHTTP(w, r)
	})
}
