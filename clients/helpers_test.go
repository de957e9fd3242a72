// Package clients_test runs real S3 client programs — the aws CLI and
// boto3 — with their default settings against Cairn's S3 gateway on an
// in-process cluster, over http and over https (the Python SDKs send
// aws-chunked bodies with trailing checksums only over https), and, with
// scripts/conformance, minio-go's functional test suite as an external
// conformance check.
//
// A missing tool skips its tests with a message naming it. The tools run
// with a clean environment: a temporary HOME, the test credentials, region
// us-east-1, an empty AWS config file and no proxy variables.
package clients_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/httpstatus"
	"github.com/cairnstore/cairn/metadata/metaclient"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sse"
	"github.com/cairnstore/cairn/internal/selfsigned"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// TestClients boots one cluster with an http and an https gateway and runs
// every client's tests against it, the clients side by side (an idle
// in-process cluster under -race costs a third of a core, so the package
// shares one).
func TestClients(t *testing.T) {
	eps := startEndpoints(t)
	t.Run("awscli", func(t *testing.T) {
		t.Parallel()
		testAWSCLI(t, eps)
	})
	t.Run("boto3", func(t *testing.T) {
		t.Parallel()
		testBoto3(t, eps)
	})
	t.Run("minio-go functional", func(t *testing.T) {
		t.Parallel()
		testMinioFunctional(t, eps[1])
	})
}

// commandTimeout bounds one client process: a guard against a hang, not
// a speed check (the boto3 suite took over 2 minutes at load ~27, while
// elections made its clients retry with backoff).
const commandTimeout = 6 * time.Minute

// endpoint is one gateway as the clients see it.
type endpoint struct {
	scheme string // "http" or "https"
	url    string
	caFile string // the certificate to trust over https ("" over http)
	rec    *recorder
	meta   *metaclient.Client // the cluster's metad, for access keys
}

// requireTool skips the test when name is not on PATH.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found on PATH (%v): skipping the %s client tests", name, err, name)
	}
	return p
}

// startEndpoints boots a cluster and two gateways over it, one speaking
// http and one https. Each gateway's handler is served behind a recorder
// of request headers, so tests can see how the clients framed their
// bodies (aws-chunked, trailers), which the gateway's own logs and metrics
// do not say.
func startEndpoints(t *testing.T) []*endpoint {
	t.Helper()
	if testing.Short() {
		t.Skip("client tests boot an in-process cluster; skipped with -short")
	}
	// Room for minio-go's functional tests (scripts/conformance), which
	// write ~7 GB (deleted chunks are collected only after the GC grace).
	c := testcluster.New(t, testcluster.Config{Quiet: true, BlobCapacity: 4 << 30})
	cert, key, err := selfsigned.Write(t.TempDir())
	if err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
	var eps []*endpoint
	for _, scheme := range []string{"http", "https"} {
		// Master keys for SSE-S3; SSE-C over http as behind a TLS proxy.
		masterKeys, err := sse.ParseMasterKeys("clients:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, sse.KeySize)))
		if err != nil {
			t.Fatal(err)
		}
		cfg := gateway.Config{SSEMasterKeys: masterKeys, SSECustomerKeysOverHTTP: true}
		if scheme == "https" {
			cfg.TLSCert, cfg.TLSKey = cert, key
		}
		srv := c.StartGateway(t, cfg)
		if !strings.HasPrefix(srv.URL(), scheme+"://") {
			t.Fatalf("gateway URL %s, want %s", srv.URL(), scheme)
		}
		ep := &endpoint{scheme: scheme, rec: &recorder{}, meta: c.MetaClient(t)}
		if scheme == "https" {
			ep.caFile = cert
		}
		ep.url = serveRecorded(t, srv.Handler(), ep.rec, cfg.TLSCert, cfg.TLSKey)
		eps = append(eps, ep)
	}
	return eps
}

// serveRecorded serves h on a loopback port, recording each request in rec,
// with the gateway's TLS settings when cert is set; it returns the URL.
func serveRecorded(t *testing.T, h http.Handler, rec *recorder, cert, key string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		scheme = "https"
	}
	hs := &http.Server{Handler: rec.wrap(h), ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Logf("shut down recording server: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("recording server: %v", err)
		}
	})
	return scheme + "://" + ln.Addr().String()
}

// request is what the recorder keeps of one request.
type request struct {
	Method, Path, Query string
	// ContentSHA256 is x-amz-content-sha256 (the payload mode).
	ContentSHA256   string
	ContentEncoding string
	Trailer         string // x-amz-trailer
	// ChecksumHeaders are the x-amz-checksum-* headers sent.
	ChecksumHeaders []string
	Status          int
}

// trailerUpload reports whether the body was aws-chunked with a trailer.
func (r request) trailerUpload() bool {
	return strings.HasPrefix(r.ContentSHA256, "STREAMING-") && strings.HasSuffix(r.ContentSHA256, "-TRAILER") &&
		strings.Contains(r.ContentEncoding, "aws-chunked") && r.Trailer != ""
}

// recorder remembers the requests a gateway was sent.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := request{
			Method:          r.Method,
			Path:            r.URL.Path,
			Query:           r.URL.RawQuery,
			ContentSHA256:   r.Header.Get("X-Amz-Content-Sha256"),
			ContentEncoding: r.Header.Get("Content-Encoding"),
			Trailer:         r.Header.Get("X-Amz-Trailer"),
		}
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
				q.ChecksumHeaders = append(q.ChecksumHeaders, strings.ToLower(name))
			}
		}
		sw := &httpstatus.Writer{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		q.Status = sw.Status
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, q)
		rec.mu.Unlock()
	})
}

// find returns the recorded requests with this method whose path is path.
func (rec *recorder) find(method, path string) []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []request
	for _, q := range rec.reqs {
		if q.Method == method && q.Path == path {
			out = append(out, q)
		}
	}
	return out
}

// describe lists the requests found, for failure messages.
func describe(reqs []request) string {
	var b strings.Builder
	for _, q := range reqs {
		fmt.Fprintf(&b, "\n  %s %s?%s -> %d (x-amz-content-sha256 %s, Content-Encoding %q, x-amz-trailer %q, checksum headers %q)",
			q.Method, q.Path, q.Query, q.Status, q.ContentSHA256, q.ContentEncoding, q.Trailer, q.ChecksumHeaders)
	}
	return b.String()
}

// checkUploadFraming checks how the object uploads (PUTs) to path were
// framed: over https every one must be aws-chunked with a checksum
// trailer (the Python SDKs' default over TLS); over http each must carry
// its checksum in a header instead. Each distinct upload (a part number)
// must have succeeded in the end; an attempt answered 5xx and retried by
// the client is logged, not failed (a busy 2-core machine can cost metad
// its leader, and "commit outcome unknown" is an honest 500). It fails when
// there was no upload.
func checkUploadFraming(t *testing.T, ep *endpoint, path string) {
	t.Helper()
	puts := ep.rec.find(http.MethodPut, path)
	if len(puts) == 0 {
		t.Fatalf("the gateway saw no PUT of %s", path)
	}
	defer func() {
		if t.Failed() {
			t.Logf("PUTs of %s:%s", path, describe(puts))
		}
	}()
	last := map[string]request{}
	for _, q := range puts {
		last[q.Query] = q
		switch {
		case ep.scheme == "https" && !q.trailerUpload():
			t.Errorf("over https PUT %s?%s was not an aws-chunked trailer upload: x-amz-content-sha256 %q, Content-Encoding %q, x-amz-trailer %q",
				q.Path, q.Query, q.ContentSHA256, q.ContentEncoding, q.Trailer)
		case ep.scheme == "https" && !strings.HasPrefix(q.Trailer, "x-amz-checksum-"):
			t.Errorf("over https PUT %s?%s trailer %q is not a checksum", q.Path, q.Query, q.Trailer)
		case ep.scheme == "http" && q.trailerUpload():
			t.Errorf("over http PUT %s?%s used a trailer (%s); the http path went untested", q.Path, q.Query, q.ContentSHA256)
		case ep.scheme == "http" && len(q.ChecksumHeaders) == 0:
			t.Errorf("over http PUT %s?%s carried no x-amz-checksum-* header", q.Path, q.Query)
		}
	}
	if len(last) != len(puts) {
		t.Logf("some PUTs of %s were retried:%s", path, describe(puts))
	}
	for _, q := range last {
		if q.Status != http.StatusOK {
			t.Errorf("PUT %s?%s answered %d (last attempt)", q.Path, q.Query, q.Status)
		}
	}
}

// uploads is how many distinct uploads (part numbers) went to path.
func (rec *recorder) uploads(path string) int {
	distinct := map[string]bool{}
	for _, q := range rec.find(http.MethodPut, path) {
		distinct[q.Query] = true
	}
	return len(distinct)
}

// clientEnv is the whole environment of a client process: nothing of the
// test process's leaks in but PATH (to find the tools and their
// interpreter). The config and credentials files are empty files in home;
// extra entries come last, so they override.
func (ep *endpoint) clientEnv(t *testing.T, home string, extra ...string) []string {
	t.Helper()
	cfgFile, credFile := filepath.Join(home, "aws-config"), filepath.Join(home, "aws-credentials")
	for _, f := range []string{cfgFile, credFile} {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			writeFile(t, f, nil)
		}
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + testcluster.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + testcluster.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + cfgFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + credFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	if ep.caFile != "" {
		env = append(env, "AWS_CA_BUNDLE="+ep.caFile)
	}
	return append(env, extra...)
}

// result is how a client process ended.
type result struct {
	stdout, stderr string
	err            error
	took           time.Duration
	cpu            time.Duration // user + system time of the process
}

// run runs one client process in dir with exactly env, under a deadline.
func run(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	res := result{stdout: stdout.String(), stderr: stderr.String(), err: err, took: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		res.cpu = ps.UserTime() + ps.SystemTime()
	}
	return res
}

// ---- test data ----

// pattern is n deterministic pseudo-random bytes for seed.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 'c', 'a', 'i', 'r', 'n'})
	_, _ = r.Read(b)
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// crc32Base64 is S3's x-amz-checksum-crc32 of b.
func crc32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

// compositeCRC32 is S3's COMPOSITE checksum of an upload of b in parts of
// partSize: the CRC32 of the parts' CRC32s, with "-<parts>".
func compositeCRC32(b []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(b); off += partSize {
		sums = binary.BigEndian.AppendUint32(sums, crc32.ChecksumIEEE(b[off:min(off+partSize, len(b))]))
		n++
	}
	return crc32Base64(sums) + "-" + strconv.Itoa(n)
}

// httpClient trusts the endpoint's certificate.
func (ep *endpoint) httpClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	if ep.caFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(readFile(t, ep.caFile)) {
			t.Fatalf("no certificate in %s", ep.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}
