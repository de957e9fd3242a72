package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/cors"

	"github.com/cairnstore/cairn/gateway/bucketcors"
	"github.com/cairnstore/cairn/gateway/checksum"
	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Browsers' cross-origin requests are answered by the bucket's CORS
// configuration when it has one (PutBucketCors, evaluated as S3 does:
// package bucketcors), and otherwise by the gateway's own setting,
// --cors-allowed-origins (rs/cors). Preflights are answered before
// authentication, as they carry no signature. Every S3 request is still
// signed; no cookie or other ambient credential exists here, so allowing
// an origin only lets its scripts use URLs and keys they already hold.

// corsExposed are the response headers a browser script may read under
// the gateway's own setting: the validators, ranges and locations, the
// request ids, and the checksums.
func corsExposed() []string {
	h := []string{
		"ETag", "Last-Modified", "Content-Length", "Content-Range", "Location",
		"x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-delete-marker",
		"x-amz-checksum-type", "x-amz-mp-parts-count", "x-amz-expiration",
	}
	for _, a := range checksum.Algorithms() {
		h = append(h, a.Header())
	}
	return h
}

// corsMaxAge is how long, in seconds, a browser may cache a preflight's
// answer under the gateway's own setting.
const corsMaxAge = 3600

// corsTTL is how long a gateway answers by a bucket's CORS configuration
// as it read it: a change made through another gateway applies within
// it (through this one, at once).
const corsTTL = 5 * time.Second

// maxCachedCORS bounds the cache of buckets' configurations.
const maxCachedCORS = 10000

// withCORS answers cross-origin requests: by the bucket's configuration,
// else by the gateway's origins (none: no CORS, and preflights fall
// through to the S3 router, which refuses them).
func (d *routerDeps) withCORS(h http.Handler) http.Handler {
	global := h
	if len(d.cors) > 0 {
		global = cors.New(cors.Options{
			AllowedOrigins: d.cors,
			AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete},
			AllowedHeaders: []string{"*"},
			ExposedHeaders: corsExposed(),
			MaxAge:         corsMaxAge,
		}).Handler(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			st.op = "PreflightCORS" // for the access log and metrics
		}
		if origin == "" || st.target.bucket == "" {
			global.ServeHTTP(w, r)
			return
		}
		cfg, err := d.bucketCORS(r.Context(), st.target.bucket)
		switch {
		case err != nil && preflight:
			d.fail(w, r, err)
		case err != nil:
			// The request is answered without CORS headers: its
			// signature decides what it may do, and the browser keeps
			// the answer from the script.
			d.log.Warn("read the bucket's CORS configuration", "bucket", st.target.bucket, "err", err)
			h.ServeHTTP(w, r)
		case cfg == nil:
			global.ServeHTTP(w, r)
		case preflight:
			d.answerPreflight(w, r, cfg, origin)
		default:
			// S3 matches a request that names the method a preflight
			// would (Access-Control-Request-Method) by that method, not
			// its own (minio-go's suite checks it against S3).
			method := r.Method
			if m := r.Header.Get("Access-Control-Request-Method"); m != "" {
				method = m
			}
			if rule := cfg.Request(origin, method); rule != nil {
				setCORSHeaders(w.Header(), rule, origin)
			}
			w.Header().Add("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
			h.ServeHTTP(w, r)
		}
	})
}

// answerPreflight answers a preflight by the bucket's rules: the first
// that allows the origin, method and headers, or 403 AccessForbidden.
func (d *routerDeps) answerPreflight(w http.ResponseWriter, r *http.Request, cfg *bucketcors.Configuration, origin string) {
	var headers []string
	for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			headers = append(headers, h)
		}
	}
	hd := w.Header()
	hd.Add("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
	rule := cfg.Preflight(origin, r.Header.Get("Access-Control-Request-Method"), headers)
	if rule == nil {
		d.fail(w, r, s3err.AccessForbidden)
		return
	}
	setCORSHeaders(hd, rule, origin)
	if len(headers) > 0 {
		// Lower-cased, as S3 answers them (header names are
		// case-insensitive to browsers; minio-go's suite checks S3's form).
		hd.Set("Access-Control-Allow-Headers", strings.ToLower(strings.Join(headers, ", ")))
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// setCORSHeaders are S3's answer headers for a rule that allowed origin.
func setCORSHeaders(hd http.Header, rule *bucketcors.Rule, origin string) {
	allow := rule.AllowOrigin(origin)
	hd.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
	hd.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(rule.ExposeHeaders) > 0 {
		hd.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds != nil {
		hd.Set("Access-Control-Max-Age", strconv.Itoa(*rule.MaxAgeSeconds))
	}
}

// bucketCORS is bucket's CORS configuration as read at most corsTTL ago;
// nil when it has none or does not exist.
func (d *routerDeps) bucketCORS(ctx context.Context, bucket string) (*bucketcors.Configuration, error) {
	fresh := func(_ *bucketcors.Configuration, age time.Duration) bool { return age < corsTTL }
	return d.corsCache.get(ctx, bucket, fresh, func(ctx context.Context) (*bucketcors.Configuration, error) {
		resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
		if isMeta(err, metaerr.ErrNoSuchBucket) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read bucket %s for its CORS configuration: %w", bucket, err)
		}
		doc := resp.GetBucket().GetCors()
		if doc == "" {
			return nil, nil
		}
		cfg, err := bucketcors.Parse([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("bucket %s: stored CORS configuration: %w", bucket, err)
		}
		return cfg, nil
	})
}

// putCors is PutBucketCors.
func (h *configHandlers) putCors(w http.ResponseWriter, r *http.Request) error {
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	c, err := bucketcors.Parse(body)
	switch {
	case errors.Is(err, bucketcors.ErrInvalid):
		return s3err.New(s3err.InvalidRequest, "%v", err)
	case err != nil:
		return &s3err.Error{Code: s3err.MalformedXML, Err: err}
	}
	doc, err := c.Marshal()
	if err != nil {
		return err
	}
	return h.setCors(w, r, string(doc), http.StatusOK)
}

// deleteCors is DeleteBucketCors (a bucket without one is a no-op).
func (h *configHandlers) deleteCors(w http.ResponseWriter, r *http.Request) error {
	return h.setCors(w, r, "", http.StatusNoContent)
}

func (h *configHandlers) setCors(w http.ResponseWriter, r *http.Request, doc string, status int) error {
	bucket := stateOf(r).target.bucket
	if _, err := h.d.meta.SetBucketCors(r.Context(), &pb.SetBucketCorsRequest{Name: bucket, Cors: doc}); err != nil {
		return err
	}
	h.d.corsCache.forget(bucket)
	w.WriteHeader(status)
	return nil
}

// getCors is GetBucketCors: the bucket's configuration, else the
// gateway's own rule, which is what applies to it then.
func (h *configHandlers) getCors(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	doc := resp.GetBucket().GetCors()
	if doc == "" {
		gw, err := corsConfigurationOf(h.d.cors)
		if err != nil {
			return err
		}
		return writeXML(w, gw)
	}
	w.Header().Set("Content-Type", "application/xml")
	_, err = io.WriteString(w, doc)
	return err
}
