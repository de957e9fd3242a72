package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv2"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/internal/httpstatus"
	"github.com/cairnstore/cairn/internal/watchdog"
)

// reqState is what the middleware learns about a request and the handlers
// and the access log share. It lives in the request context.
type reqState struct {
	id     string
	op     string
	target target
	auth   *sigv4.Auth
	// client is who sent it (clientaddr.go).
	client client
	// err is the error the response carried, for the access log.
	err error
	// afterHandler runs once the handler has returned (panicked
	// included): what must not run while it may still use the request,
	// which the request's context does not promise (it also ends when
	// the client goes away).
	afterHandler []func()
}

type stateKey struct{}

func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	// Outside the middleware (a handler's helper called directly): the
	// connection is all there is to go by.
	return &reqState{id: "0000000000000000", client: trustedProxies(nil).clientOf(r)}
}

// countingBody counts the request body bytes read.
type countingBody struct {
	rc interface {
		Read([]byte) (int, error)
		Close() error
	}
	n int64
	// dog, when set, gives up on a client that stops sending the body
	// (routerDeps.bodyIdle): it ends the pending read with a deadline.
	dog *watchdog.Watchdog
}

func (c *countingBody) Read(p []byte) (int, error) {
	if c.dog == nil {
		n, err := c.rc.Read(p)
		c.n += int64(n)
		return n, err
	}
	c.dog.Arm()
	n, err := c.rc.Read(p)
	c.dog.Disarm()
	c.n += int64(n)
	if err != nil && c.dog.Fired() {
		err = fmt.Errorf("%w: no byte of the body for %v: %w", errClientIdle, c.dog.Budget(), err)
	}
	return n, err
}

func (c *countingBody) Close() error { return c.rc.Close() }

// instrument gives every request an id (x-amz-request-id on every
// response), its target, one access log line and its metrics.
func (d *routerDeps) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: s3err.RequestID(), op: "Unknown", target: parseTarget(r, d.domain), client: d.proxies.clientOf(r)}
		w.Header().Set("x-amz-request-id", st.id)
		w.Header().Set("x-amz-id-2", st.id)
		w.Header().Set("Server", "Cairn")
		sw := &httpstatus.Writer{ResponseWriter: w}
		// Body is replaced on the copy WithContext makes, never on
		// net/http's own *Request: net/http must still see its
		// "Expect: 100-continue" reader there, or a request answered
		// before its body is read (an error) is not answered at once —
		// the server first tries to read and discard a body it never
		// asked the client for, and both sides wait.
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		body := &countingBody{rc: r.Body}
		if d.bodyIdle > 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			body.dog = watchdog.New(d.bodyIdle, func() { _ = rc.SetReadDeadline(time.Now()) })
			defer body.dog.Stop()
		}
		r.Body = body
		defer func() {
			// Logged and counted even when the handler cut the
			// connection mid-body (panic(http.ErrAbortHandler)); the
			// panic then goes on to net/http, which closes it.
			p := recover()
			for _, f := range st.afterHandler {
				f()
			}
			if p == http.ErrAbortHandler && st.err == nil {
				st.err = errors.New("response aborted mid-body")
			}
			d.logRequest(r, st, sw, body, start)
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// logRequest writes the access-log line and the request metrics.
func (d *routerDeps) logRequest(r *http.Request, st *reqState, sw *httpstatus.Writer, body *countingBody, start time.Time) {
	status := sw.Code()
	elapsed := time.Since(start)
	d.metrics.observe(st.op, status, elapsed, body.n, sw.Bytes)
	attrs := []slog.Attr{
		slog.String("id", st.id),
		slog.String("op", st.op),
		slog.String("method", r.Method),
		slog.String("bucket", st.target.bucket),
		slog.String("key", st.target.key),
		slog.Int("status", status),
		slog.Int64("in", body.n),
		slog.Int64("out", sw.Bytes),
		slog.Duration("took", elapsed),
		slog.String("remote", r.RemoteAddr),
	}
	if st.client.forwarded {
		attrs = append(attrs, slog.String("client", st.client.ip.String()), slog.Bool("client_tls", st.client.secure))
	}
	// Who signed it ("" for an anonymous request), so that with several
	// access keys the log says whose requests these were.
	if st.auth != nil {
		attrs = append(attrs, slog.String("access_key", st.auth.AccessKey))
	}
	level := slog.LevelInfo
	if st.err != nil {
		attrs = append(attrs, slog.String("err", st.err.Error()))
		if status >= 500 || status < 300 { // < 300 with an error: cut mid-body
			level = slog.LevelWarn
		}
	}
	d.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// authenticate verifies the SigV4 (or, for older clients, SigV2) signature
// of every S3 request. An unsigned one goes on without an identity
// (reqState.auth nil): its operation's bucket policy decides it
// (authorize).
func (d *routerDeps) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		var auth *sigv4.Auth
		var err error
		if sigv2.Applies(r) {
			auth, err = d.verifyV2(r, st.target)
		} else {
			auth, err = d.verifier.Verify(r)
		}
		if errors.Is(err, sigv4.ErrUnsigned) {
			next.ServeHTTP(w, r) // anonymous
			return
		}
		if err != nil {
			d.fail(w, r, err)
			return
		}
		st.auth = auth
		next.ServeHTTP(w, r)
	})
}

// verifyV2 checks a SigV2 request. SigV2 never signs the body, so it is
// handled as SigV4's UNSIGNED-PAYLOAD: no payload hash, no aws-chunked
// decoding; Content-MD5, when sent, is still checked (openBody).
func (d *routerDeps) verifyV2(r *http.Request, t target) (*sigv4.Auth, error) {
	vhostBucket := ""
	if t.vhost {
		vhostBucket = t.bucket
	}
	a, err := d.v2.Verify(r, vhostBucket)
	if err != nil {
		return nil, err
	}
	// aws-chunked framing exists only with SigV4 (its chunk signatures
	// chain from the SigV4 seed); under SigV2 the framing would be stored
	// as object bytes.
	if strings.HasPrefix(r.Header.Get("x-amz-content-sha256"), "STREAMING-") || strings.Contains(strings.ToLower(r.Header.Get("Content-Encoding")), "aws-chunked") {
		return nil, s3err.New(s3err.InvalidRequest, "aws-chunked uploads require AWS Signature Version 4.")
	}
	return &sigv4.Auth{AccessKey: a.AccessKey, Presigned: a.Presigned, Payload: sigv4.UnsignedPayload, Time: a.Time}, nil
}

// fail answers err as an S3 error document (translated by the errors
// table) and records it for the access log.
func (d *routerDeps) fail(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	st.err = err
	s3err.WriteError(w, r, toS3(err, st.target), st.id)
}
