package s3bench

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/cairnstore/cairn/internal/bodyconn"
)

// ClientConfig is what NewClient needs to reach an endpoint.
type ClientConfig struct {
	Endpoint, Region     string
	AccessKey, SecretKey string
	// Concurrency sizes the connection pool: every worker keeps its
	// connection between requests.
	Concurrency int
	// Insecure accepts any TLS certificate (self-signed test endpoints).
	Insecure bool
	// NoChecksum asks the SDK for checksums only where an operation
	// requires them; by default it sends and validates its default CRCs,
	// as an unmodified client would.
	NoChecksum bool
	// Retries is how many times a failed request is retried (0: never, so
	// that every failure shows in the figures).
	Retries int
}

// NewClient returns an S3 client tuned for throughput: path-style
// addressing, region us-east-1 unless set, one shared transport with an idle connection kept per worker,
// no compression, no retries unless asked.
func NewClient(cfg ClientConfig) (*s3.Client, *http.Transport) {
	conns := max(cfg.Concurrency, 1) * 2
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // a benchmark must not go through $HTTP_PROXY
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return bodyconn.Conn{Conn: c}, nil
		},
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// Larger socket buffers than net/http's 4 KiB default: fewer
		// syscalls per 64 MiB body.
		WriteBufferSize:   256 << 10,
		ReadBufferSize:    256 << 10,
		ForceAttemptHTTP2: false,
	}
	if cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure, for self-signed test endpoints
	}
	var retryer aws.Retryer = aws.NopRetryer{}
	if cfg.Retries > 0 {
		retryer = retry.AddWithMaxAttempts(retry.NewStandard(), cfg.Retries+1)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	opts := s3.Options{
		Region:       cfg.Region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "s3bench"}, nil
		}),
		HTTPClient: &http.Client{Transport: tr},
		Retryer:    retryer,
		// The SDK logs a warning for each GET whose response has no
		// checksum to validate; that is not news in a benchmark.
		DisableLogOutputChecksumValidationSkipped: true,
		APIOptions: []func(*middleware.Stack) error{addKnownPayloadHash},
	}
	if cfg.NoChecksum {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	return s3.New(opts), tr
}

// payloadHashKey carries a body's SHA-256, already known, to the signer
// (withPayloadHash).
type payloadHashKey struct{}

// withPayloadHash makes the request sent with ctx sign hexSHA256 as its
// payload hash instead of having the SDK read the body to hash it. The
// request is the same, byte for byte: only the generator's own work of
// hashing a body it has hashed before is saved.
func withPayloadHash(ctx context.Context, hexSHA256 string) context.Context {
	return context.WithValue(ctx, payloadHashKey{}, hexSHA256)
}

// addKnownPayloadHash puts a hash from withPayloadHash where the SDK's
// signer looks for one first (v4.SetPayloadHash: its ComputePayloadSHA256
// step then does nothing, and its request-checksum step computes no
// SHA-256 either).
func addKnownPayloadHash(st *middleware.Stack) error {
	return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("s3bench:KnownPayloadHash",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if h, ok := ctx.Value(payloadHashKey{}).(string); ok && h != "" {
				ctx = v4.SetPayloadHash(ctx, h)
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.Before)
}
