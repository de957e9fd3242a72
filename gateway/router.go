package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnstore/cairn/gateway/bucketcors"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv2"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/gateway/sse"
)

// routerDeps is what the handlers share. Handlers are plain functions of
// their concern (bucket.go, object.go...) taking what they need from here.
type routerDeps struct {
	meta     Metadata
	objects  Objects
	verifier *sigv4.Verifier
	v2       *sigv2.Verifier
	domain   string
	region   string
	log      *slog.Logger
	metrics  *metrics
	registry *prometheus.Registry
	now      func() time.Time
	bodyIdle time.Duration // 0: no limit
	cors     []string      // origins allowed cross-origin requests (withCORS)
	keys     *keyring      // who signed a request, and what it may do
	// corsCache holds buckets' CORS configurations (nil: none) for
	// withCORS.
	corsCache *ttlCache[*bucketcors.Configuration]
	// bucketCache holds buckets' quotas and default encryption for
	// every write (bucketSettings).
	bucketCache *ttlCache[bucketSettings]
	// policyCache holds buckets' parsed policies for the requests of
	// access keys and anonymous clients (policyOf).
	policyCache *ttlCache[cachedPolicy]
	// masterKeys seal SSE-S3 objects' data keys; nil: SSE-S3 refused.
	masterKeys *sse.MasterKeys
	// sseCOverHTTP accepts SSE-C keys over plain http.
	sseCOverHTTP bool
	// proxies are the trusted proxies (Config.TrustedProxies).
	proxies trustedProxies
}

// handlerFunc is an S3 operation: it writes a successful answer itself
// and returns any failure for the caller to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// level is what a request addresses.
type level int

const (
	service level = iota
	bucketLevel
	objectLevel
)

func levelOf(r *http.Request) level {
	t := stateOf(r).target
	switch {
	case t.bucket == "":
		return service
	case t.key == "":
		return bucketLevel
	}
	return objectLevel
}

func at(l level) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool { return levelOf(r) == l }
}

func hasQuery(names ...string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		q := r.URL.Query()
		for _, n := range names {
			if _, ok := q[n]; !ok {
				return false
			}
		}
		return true
	}
}

func hasHeader(name string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool { return r.Header.Get(name) != "" }
}

// unsupported lists the S3 subresources this gateway does not implement:
// a request naming one gets NotImplemented rather than a silently wrong
// answer (a GET ?acl must not list the bucket).
var unsupported = []string{
	"accelerate", "acl", "analytics", "cors", "encryption",
	"intelligent-tiering", "inventory", "lifecycle", "logging",
	"metadataConfiguration", "metadataTable", "metrics", "notification",
	"ownershipControls", "policy", "policyStatus",
	"publicAccessBlock", "replication", "requestPayment", "restore",
	"select", "session", "tagging", "torrent",
	// GET ?versions (ListObjectVersions) is routed before this list.
	"versions", "website", "renameObject",
}

// answered lists the subresources the router answers for some methods
// and levels only (the routes naming them): a request naming one
// anywhere else is MethodNotAllowed, never the plain operation of its
// method and path (a DELETE ?object-lock must not delete the bucket, a
// PUT ?attributes must not overwrite the object).
//
// A versionId parameter is not a subresource: the operations that take
// one read it (versioning.go), and route refuses it on the others.
var answered = []string{
	"attributes", "delete", "legal-hold", "location", "object-lock",
	"retention", "uploads", "versioning",
}

// namesAny matches a request naming any of the query parameters names.
func namesAny(names []string) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		q := r.URL.Query()
		for _, n := range names {
			if _, ok := q[n]; ok {
				return true
			}
		}
		return false
	}
}

// newRouter builds the gateway's handler: reserved paths first, then the
// S3 namespace behind the request id/log/metrics and authentication
// middleware, dispatched by level, method, subresource and headers.
func newRouter(d routerDeps) http.Handler {
	root := mux.NewRouter().SkipClean(true)
	root.UseEncodedPath()

	health := http.HandlerFunc(d.healthz)
	metricsH := promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{})
	root.Path("/_cairn/healthz").Methods(http.MethodGet, http.MethodHead).Handler(health)
	root.Path("/_cairn/metrics").Methods(http.MethodGet).Handler(metricsH)
	// Plain /healthz and /metrics only for unsigned GETs: signed requests
	// there address buckets named healthz or metrics.
	unsigned := func(r *http.Request, _ *mux.RouteMatch) bool {
		return r.Header.Get("Authorization") == "" && r.URL.Query().Get("X-Amz-Signature") == "" && !sigv2.Applies(r)
	}
	root.Path("/healthz").Methods(http.MethodGet, http.MethodHead).MatcherFunc(unsigned).Handler(health)
	root.Path("/metrics").Methods(http.MethodGet).MatcherFunc(unsigned).Handler(metricsH)

	s3 := mux.NewRouter().SkipClean(true)
	s3.UseEncodedPath()
	route := func(op string, h handlerFunc) http.Handler {
		need, action := permissionOf(op), actionOf(op)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := stateOf(r)
			st.op = op
			a := access{need: need, bucket: st.target.bucket, key: st.target.key}
			switch {
			case st.auth != nil && d.keys.isRoot(st.auth.AccessKey):
				// Never subject to a policy: not even its action is
				// worked out (the benchmarks' requests).
			case st.auth != nil || !signedOnly[op]:
				a.action = action.of(r)
			}
			if err := d.authorize(r, a); err != nil {
				d.fail(w, r, err)
				return
			}
			if versionIDUnsupported(op, r) {
				d.fail(w, r, s3err.New(s3err.NotImplemented, "%s of a version (versionId) is not implemented.", op))
				return
			}
			if err := h(w, r); err != nil {
				d.fail(w, r, err)
			}
		})
	}
	notImpl := route("NotImplemented", func(w http.ResponseWriter, r *http.Request) error {
		return s3err.NotImplemented
	})
	methodNotAllowed := route("MethodNotAllowed", func(w http.ResponseWriter, r *http.Request) error {
		return s3err.MethodNotAllowed
	})
	b := &bucketHandlers{d: &d}
	o := &objectHandlers{d: &d}
	l := &listHandlers{d: &d}
	m := &multipartHandlers{d: &d}

	// A browser-based upload authenticates with its form's signed policy,
	// not a signed request: it is routed before authentication.
	root.MatcherFunc(at(bucketLevel)).MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return isPostForm(r) }).
		Handler(route("PostObject", o.postObject))

	// Configuration reads come before the unsupported subresources they
	// share names with (bucketconfig.go).
	cfg := &configHandlers{d: &d}
	bucketAt, objectAt := s3.MatcherFunc(at(bucketLevel)).Subrouter(), s3.MatcherFunc(at(objectLevel)).Subrouter()
	for _, c := range bucketConfigReads {
		bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery(c.sub)).Handler(route(c.op, cfg.read(c)))
	}
	for _, c := range bucketConfigDeletes {
		bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery(c.sub)).Handler(route(c.op, cfg.deleteNothing))
	}
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("acl")).Handler(route("PutBucketAcl", cfg.putACL))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("policy")).Handler(route("PutBucketPolicy", cfg.putPolicy))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("policy")).Handler(route("GetBucketPolicy", cfg.getPolicy))
	bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("policy")).Handler(route("DeleteBucketPolicy", cfg.deletePolicy))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("policyStatus")).Handler(route("GetBucketPolicyStatus", cfg.policyStatus))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("tagging")).Handler(route("GetBucketTagging", cfg.getBucketTagging))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("tagging")).Handler(route("PutBucketTagging", cfg.putBucketTagging))
	bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("tagging")).Handler(route("DeleteBucketTagging", cfg.deleteBucketTagging))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("cors")).Handler(route("PutBucketCors", cfg.putCors))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("cors")).Handler(route("GetBucketCors", cfg.getCors))
	bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("cors")).Handler(route("DeleteBucketCors", cfg.deleteCors))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("encryption")).Handler(route("PutBucketEncryption", cfg.putEncryption))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("encryption")).Handler(route("GetBucketEncryption", cfg.getEncryption))
	bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("encryption")).Handler(route("DeleteBucketEncryption", cfg.deleteEncryption))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("lifecycle")).Handler(route("PutBucketLifecycleConfiguration", cfg.putLifecycle))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("lifecycle")).Handler(route("GetBucketLifecycleConfiguration", cfg.getLifecycle))
	bucketAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("lifecycle")).Handler(route("DeleteBucketLifecycle", cfg.deleteLifecycle))
	bucketAt.Methods(http.MethodPut).MatcherFunc(hasQuery("object-lock")).Handler(route("PutObjectLockConfiguration", cfg.putObjectLockConfig))
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("object-lock")).Handler(route("GetObjectLockConfiguration", cfg.getObjectLockConfig))
	// ?versions stays unsupported for every other method.
	bucketAt.Methods(http.MethodGet).MatcherFunc(hasQuery("versions")).Handler(route("ListObjectVersions", l.listVersions))
	objectAt.Methods(http.MethodGet).MatcherFunc(hasQuery("acl")).Handler(route("GetObjectAcl", cfg.objectACL))
	objectAt.Methods(http.MethodPut).MatcherFunc(hasQuery("acl")).Handler(route("PutObjectAcl", cfg.putACL))
	objectAt.Methods(http.MethodGet).MatcherFunc(hasQuery("tagging")).Handler(route("GetObjectTagging", cfg.getObjectTagging))
	objectAt.Methods(http.MethodPut).MatcherFunc(hasQuery("tagging")).Handler(route("PutObjectTagging", cfg.putObjectTagging))
	objectAt.Methods(http.MethodDelete).MatcherFunc(hasQuery("tagging")).Handler(route("DeleteObjectTagging", cfg.deleteObjectTagging))
	objectAt.Methods(http.MethodGet).MatcherFunc(hasQuery("retention")).Handler(route("GetObjectRetention", cfg.getObjectRetention))
	objectAt.Methods(http.MethodPut).MatcherFunc(hasQuery("retention")).Handler(route("PutObjectRetention", cfg.putObjectRetention))
	objectAt.Methods(http.MethodGet).MatcherFunc(hasQuery("legal-hold")).Handler(route("GetObjectLegalHold", cfg.getObjectLegalHold))
	objectAt.Methods(http.MethodPut).MatcherFunc(hasQuery("legal-hold")).Handler(route("PutObjectLegalHold", cfg.putObjectLegalHold))

	s3.MatcherFunc(namesAny(unsupported)).Handler(notImpl)

	svc := s3.MatcherFunc(at(service)).Subrouter()
	svc.Methods(http.MethodGet).Handler(route("ListBuckets", b.list))

	bk := s3.MatcherFunc(at(bucketLevel)).Subrouter()
	bk.Methods(http.MethodGet).MatcherFunc(hasQuery("location")).Handler(route("GetBucketLocation", b.location))
	bk.Methods(http.MethodGet).MatcherFunc(hasQuery("versioning")).Handler(route("GetBucketVersioning", b.getVersioning))
	bk.Methods(http.MethodGet).MatcherFunc(hasQuery("uploads")).Handler(route("ListMultipartUploads", m.listUploads))
	bk.Methods(http.MethodGet).Queries("list-type", "2").Handler(route("ListObjectsV2", l.listV2))
	bk.Methods(http.MethodGet).MatcherFunc(hasQuery("list-type")).Handler(route("ListObjects", func(w http.ResponseWriter, r *http.Request) error {
		return s3err.New(s3err.InvalidArgument, "Invalid List Type specified.")
	}))
	bk.Methods(http.MethodPut).MatcherFunc(hasQuery("versioning")).Handler(route("PutBucketVersioning", b.putVersioning))
	bk.Methods(http.MethodPost).MatcherFunc(hasQuery("delete")).Handler(route("DeleteObjects", o.deleteMany))
	bk.MatcherFunc(namesAny(answered)).Handler(methodNotAllowed)
	bk.Methods(http.MethodGet).Handler(route("ListObjects", l.listV1))
	bk.Methods(http.MethodHead).Handler(route("HeadBucket", b.head))
	bk.Methods(http.MethodPut).Handler(route("CreateBucket", b.create))
	bk.Methods(http.MethodDelete).Handler(route("DeleteBucket", b.delete))

	ob := s3.MatcherFunc(at(objectLevel)).Subrouter()
	ob.Methods(http.MethodPut).MatcherFunc(hasQuery("partNumber", "uploadId")).MatcherFunc(hasHeader("x-amz-copy-source")).Handler(route("UploadPartCopy", m.uploadPartCopy))
	ob.Methods(http.MethodPut).MatcherFunc(hasQuery("partNumber", "uploadId")).Handler(route("UploadPart", m.uploadPart))
	ob.Methods(http.MethodGet).MatcherFunc(hasQuery("uploadId")).Handler(route("ListParts", m.listParts))
	ob.Methods(http.MethodGet).MatcherFunc(hasQuery("attributes")).Handler(route("GetObjectAttributes", o.attributes))
	ob.Methods(http.MethodPost).MatcherFunc(hasQuery("uploads")).Handler(route("CreateMultipartUpload", m.create))
	ob.Methods(http.MethodPost).MatcherFunc(hasQuery("uploadId")).Handler(route("CompleteMultipartUpload", m.complete))
	ob.Methods(http.MethodDelete).MatcherFunc(hasQuery("uploadId")).Handler(route("AbortMultipartUpload", m.abort))
	ob.MatcherFunc(namesAny(answered)).Handler(methodNotAllowed)
	ob.Methods(http.MethodPut).MatcherFunc(hasHeader("x-amz-copy-source")).Handler(route("CopyObject", o.copy))
	ob.Methods(http.MethodPut).Handler(route("PutObject", o.put))
	ob.Methods(http.MethodGet).Handler(route("GetObject", o.get))
	ob.Methods(http.MethodHead).Handler(route("HeadObject", o.get))
	ob.Methods(http.MethodDelete).Handler(route("DeleteObject", o.delete))

	s3.NotFoundHandler = notImpl
	s3.MethodNotAllowedHandler = methodNotAllowed
	for _, sub := range []*mux.Router{svc, bk, ob} {
		sub.NotFoundHandler = s3.NotFoundHandler
		sub.MethodNotAllowedHandler = s3.MethodNotAllowedHandler
	}

	root.NotFoundHandler = d.authenticate(s3)
	root.MethodNotAllowedHandler = root.NotFoundHandler
	// CORS inside instrument, so preflights are logged and counted too.
	return d.instrument(d.withCORS(root))
}
