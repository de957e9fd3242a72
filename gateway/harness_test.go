package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4signer "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/metadata/metaclient"
)

const (
	testAccess = "AKIDCAIRNTEST"
	testSecret = "cairn-test-secret-key"
)

// env is a running gateway and clients for it.
type env struct {
	url  string
	host string
	srv  *gateway.Server
	// meta is the cluster's metadata client (nil over the fake backend).
	meta *metaclient.Client
	// blobDirs are the blob nodes' data directories (cluster only).
	blobDirs []string
	// restart starts another gateway over the same cluster (cluster only).
	restart func(t testing.TB, cfg gateway.Config) *gateway.Server
}

// backend is what a gateway under test runs on.
type backend struct {
	meta    gateway.Metadata
	objects gateway.Objects
}

// testLogger writes through t.Log.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startGateway(t testing.TB, be backend, mod func(*gateway.Config)) *env {
	t.Helper()
	cfg := gateway.Config{
		Addr:        "127.0.0.1:0",
		Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret},
		Meta:        be.meta,
		Objects:     be.objects,
		Logger:      slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := gateway.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})
	u, _ := url.Parse(srv.URL())
	return &env{url: srv.URL(), host: u.Host, srv: srv}
}

func startFakeGateway(t testing.TB) *env {
	f := newFake()
	return startGateway(t, backend{meta: f, objects: f}, nil)
}

// awsClient is an aws-sdk-go-v2 S3 client with its defaults (checksums
// included), path style.
func (e *env) awsClient(t testing.TB, opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(e.url),
		Region:       "us-east-1",
		Credentials:  awscreds.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		UsePathStyle: true,
		// What config.LoadDefaultConfig resolves when nothing is set: a
		// CRC32 on every upload that supports one (a trailer over https),
		// and checksum validation of GETs. s3.New alone leaves them Unset,
		// which sends no checksums at all.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, opts...)
}

func (e *env) awsClientWith(t testing.TB, secret string) *s3.Client {
	return e.awsClientAs(t, testAccess, secret)
}

// awsClientAs is awsClient signing with another key pair, without retries.
func (e *env) awsClientAs(t testing.TB, access, secret string) *s3.Client {
	return e.awsClient(t, func(o *s3.Options) {
		o.Credentials = awscreds.NewStaticCredentialsProvider(access, secret, "")
		o.RetryMaxAttempts = 1
	})
}

// minioClient is a minio-go client.
func (e *env) minioClient(t testing.TB) *minio.Client {
	c, err := minio.New(e.host, &minio.Options{
		Creds:  miniocreds.NewStaticV4(testAccess, testSecret, ""),
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiCode is the S3 error code of an aws-sdk-go-v2 error ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %s, got success", code)
	}
	if got := apiCode(err); got != code {
		t.Fatalf("want error %s, got %q (%v)", code, got, err)
	}
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// signedDo signs req with the test credentials (payload: the SHA-256 of
// body) and sends it.
func (e *env) signedDo(t testing.TB, req *http.Request, body []byte) *http.Response {
	t.Helper()
	sum := sha256.Sum256(body)
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}.Sign(req, hex.EncodeToString(sum[:]), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type v4Request = v4signer.PresignedHTTPRequest

func wrapPresign(r *v4signer.PresignedHTTPRequest, err error) (*v4Request, error) { return r, err }

// signWithPayload signs req claiming the given payload hash.
func signWithPayload(req *http.Request, payload string) {
	sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}.Sign(req, payload, time.Now())
}
