// Package gateway is Cairn's S3 endpoint: an HTTP server (gorilla/mux) that
// authenticates requests with SigV4 (SigV2 for older clients), speaks the
// S3 REST API for buckets, objects, listing and multipart uploads, and
// turns each request into calls on the metadata service and the object
// layer. It keeps no state of its own: several gateways may serve one
// cluster.
//
// Files by concern: server.go (Config, lifecycle), router.go (which
// handler serves which request), middleware.go (request id, access log,
// metrics, authentication), target.go (bucket and key from host and path),
// bucket.go, object.go, copy.go, list.go, multipart.go, deleteobjects.go
// (the operations), body.go (request bodies: payload hash, Content-MD5,
// checksums), headers.go, ranges.go, conditions.go, names.go, xml.go, and
// errors.go (the one table from internal errors to S3 errors).
//
// Reserved paths: /_cairn/healthz and /_cairn/metrics are served outside the
// S3 namespace ("_" is never valid in a bucket name). The plain /healthz and
// /metrics are served too, but only to unsigned GET requests: a bucket may
// be named "healthz" or "metrics", and every S3 request to it is signed
// (this gateway allows no anonymous access), so the two never meet.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/gateway/bucketcors"
	"github.com/cairnstore/cairn/gateway/sigv2"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/gateway/sse"
)

// DefaultRegion is the region a gateway answers for when Config.Region is
// empty.
const DefaultRegion = "us-east-1"

// Credentials are the root key pair, which may do everything; access keys
// stored in metad may do what their grants say (keyring.go, access.go).
type Credentials struct {
	AccessKey string
	SecretKey string
}

// Config configures a Server.
type Config struct {
	// Addr is the listen address (host:port; port 0 picks one).
	Addr string
	// Domain enables virtual-host-style addressing: a request to
	// bucket.Domain addresses bucket. Path style is always accepted.
	Domain string
	// Region is the one region this gateway serves (DefaultRegion if empty).
	Region      string
	Credentials Credentials
	Meta        Metadata
	Objects     Objects
	Logger      *slog.Logger
	// Registry receives request metrics and is served on /_cairn/metrics;
	// nil means a private registry.
	Registry *prometheus.Registry
	// TLSCert and TLSKey, both set, make the server speak https.
	TLSCert, TLSKey string
	// Now is the clock (time.Now when nil), for signatures and times.
	Now func() time.Time
	// BodyIdleTimeout ends a request whose client sends no byte of its
	// body for this long, with 400 RequestTimeout, as S3 does: a client
	// that stops mid-upload would otherwise hold its PUT, with its
	// stripe buffers and chunk uploads, for as long as it keeps the
	// connection. 0 selects DefaultBodyIdleTimeout; negative, no limit.
	BodyIdleTimeout time.Duration
	// AccessKeyTTL is how long the gateway answers by what it read of an
	// access key (metad's): a key deleted, or a grant taken away, stops
	// working within it; shorter costs metad more reads. 0 selects
	// DefaultAccessKeyTTL.
	AccessKeyTTL time.Duration
	// CORSAllowedOrigins are the origins whose browser scripts may call
	// the gateway: "*" for any, or origins such as https://app.example.com
	// (one * wildcard each, as in https://*.example.com). None: no CORS.
	CORSAllowedOrigins []string
	// SSEMasterKeys seal the data keys of objects written with
	// x-amz-server-side-encryption: AES256 (SSE-S3); nil refuses such
	// writes. Every gateway of a cluster needs the same keys.
	SSEMasterKeys *sse.MasterKeys
	// SSECustomerKeysOverHTTP accepts SSE-C requests (which carry the
	// client's key) over plain http, which S3 refuses: for a gateway
	// behind a TLS-terminating proxy, or tests.
	SSECustomerKeysOverHTTP bool
	// TrustedProxies are the load balancers and reverse proxies in front
	// of the gateway: a request from one of them is taken as coming from
	// the client its X-Forwarded-For names, over TLS if its
	// X-Forwarded-Proto says https (clientaddr.go). Empty: every request
	// is taken as its connection says.
	TrustedProxies []netip.Prefix
}

// DefaultBodyIdleTimeout is Config.BodyIdleTimeout's default.
const DefaultBodyIdleTimeout = 30 * time.Second

// Validate reports what is missing or wrong in cfg.
func (c *Config) Validate() error {
	switch {
	case c.Credentials.AccessKey == "" || c.Credentials.SecretKey == "":
		return errors.New("gateway: access key and secret key are required")
	case c.Meta == nil:
		return errors.New("gateway: Meta is required")
	case c.Objects == nil:
		return errors.New("gateway: Objects is required")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("gateway: TLS needs both a certificate and a key")
	}
	return nil
}

// Server is one S3 gateway.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	http    *http.Server

	mu sync.Mutex
	ln net.Listener
}

// NewServer builds a gateway; Run starts serving.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AccessKeyTTL <= 0 {
		cfg.AccessKeyTTL = DefaultAccessKeyTTL
	}
	keys := newKeyring(cfg.Credentials, cfg.Meta, cfg.AccessKeyTTL, cfg.Now)
	verifier, err := sigv4.New(sigv4.Config{
		Credentials: keys,
		Region:      cfg.Region,
		Now:         cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	v2, err := sigv2.New(sigv2.Config{
		Credentials: keys,
		Now:         cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "gateway")}
	bodyIdle := cfg.BodyIdleTimeout
	switch {
	case bodyIdle == 0:
		bodyIdle = DefaultBodyIdleTimeout
	case bodyIdle < 0:
		bodyIdle = 0
	}
	s.handler = newRouter(routerDeps{
		meta:         cfg.Meta,
		objects:      cfg.Objects,
		verifier:     verifier,
		v2:           v2,
		domain:       cfg.Domain,
		region:       cfg.Region,
		log:          s.log,
		metrics:      m,
		registry:     cfg.Registry,
		now:          cfg.Now,
		bodyIdle:     bodyIdle,
		cors:         cfg.CORSAllowedOrigins,
		keys:         keys,
		corsCache:    newTTLCache[*bucketcors.Configuration](cfg.Now, maxCachedCORS),
		bucketCache:  newTTLCache[bucketSettings](cfg.Now, maxCachedBuckets),
		policyCache:  newTTLCache[cachedPolicy](cfg.Now, maxCachedPolicies),
		masterKeys:   cfg.SSEMasterKeys,
		sseCOverHTTP: cfg.SSECustomerKeysOverHTTP,
		proxies:      cfg.TrustedProxies,
	})
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler is the gateway's HTTP handler (tests may serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address, so Addr is known before Run. Run calls
// it if it was not called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: load TLS key pair: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	}
	s.ln = ln
	return nil
}

// Addr is the address the server listens on ("" before Listen or Run).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the endpoint clients use: http(s)://Addr.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.Addr()
}

// Run serves until ctx ends or Close is called, then shuts down,
// letting requests in flight finish for a few seconds.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("serving S3", "addr", ln.Addr().String(), "tls", s.cfg.TLSCert != "", "region", s.cfg.Region, "domain", s.cfg.Domain)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(sctx); err != nil {
			s.http.Close()
		}
		<-errc
		return nil
	}
}

// Close stops the server at once, cutting requests in flight.
func (s *Server) Close() error {
	return s.http.Close()
}

// RegisterFlags defines the gateway's command-line flags on fs, writing
// into c. Credentials are not flags: they come from the environment.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:9000", "listen address `HOST:PORT` for S3")
	fs.StringVar(&c.Domain, "domain", "", "`DOMAIN` for virtual-host-style requests (bucket.DOMAIN); path style is always served")
	fs.StringVar(&c.Region, "region", DefaultRegion, "the `REGION` this endpoint serves (signatures must name it)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `FILE`; with --tls-key, serve https")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `FILE` for --tls-cert")
	fs.DurationVar(&c.BodyIdleTimeout, "body-idle-timeout", DefaultBodyIdleTimeout, "answer 400 RequestTimeout to a client that sends no byte of its request body for this long (-1ns: never)")
	fs.DurationVar(&c.AccessKeyTTL, "access-key-ttl", DefaultAccessKeyTTL, "how long to answer by what was read of an access key: a deleted key or a revoked grant stops working within it")
	c.CORSAllowedOrigins = DefaultCORSAllowedOrigins
	fs.Var(masterKeysFlag{&c.SSEMasterKeys}, "sse-master-key-file", "`FILE` of master keys for SSE-S3 (x-amz-server-side-encryption: AES256), one \"id:base64 of 32 bytes\" per line, the first sealing new objects; every gateway needs the same (none: SSE-S3 refused)")
	fs.BoolVar(&c.SSECustomerKeysOverHTTP, "sse-c-over-http", false, "accept SSE-C requests, which carry the client's key, over plain http (behind a TLS-terminating proxy)")
	fs.Var(proxyList{&c.TrustedProxies}, "trusted-proxies", "comma-separated `ADDRESSES` and CIDR prefixes of the load balancers in front of the gateway, whose X-Forwarded-For and X-Forwarded-Proto name the client and its scheme (for policies' aws:SourceIp and aws:SecureTransport, SSE-C, locations, the access log)")
	fs.Var((*originList)(&c.CORSAllowedOrigins), "cors-allowed-origins", "comma-separated `ORIGINS` whose browser scripts may call S3 here (\"*\": any; https://*.example.com: one wildcard; empty: no CORS). Requests are signed either way")
}

// DefaultCORSAllowedOrigins is --cors-allowed-origins' default: any
// origin, as MinIO does. Every request is signed with keys a script must
// already hold (there are no cookies), so this opens nothing; it lets web
// apps upload and download with presigned URLs and POST forms.
var DefaultCORSAllowedOrigins = []string{"*"}

// masterKeysFlag loads --sse-master-key-file when it is parsed.
type masterKeysFlag struct{ p **sse.MasterKeys }

func (f masterKeysFlag) String() string { return "" }

func (f masterKeysFlag) Set(path string) error {
	keys, err := sse.LoadMasterKeys(path)
	if err != nil {
		return err
	}
	*f.p = keys
	return nil
}

// originList is a comma-separated list flag.
type originList []string

func (o *originList) String() string { return strings.Join(*o, ",") }

func (o *originList) Set(v string) error {
	*o = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*o = append(*o, s)
		}
	}
	return nil
}
