package s3bench

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	tr := &http.Transport{
		Proxy:                 nil, // a benchmark must not go through $HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
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
	}
	if cfg.NoChecksum {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	return s3.New(opts), tr
}
