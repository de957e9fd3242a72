package awschunked_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

// upload is what the test gateway saw of one PUT.
type upload struct {
	payload  string
	data     []byte
	trailers map[string]string
	headers  http.Header
}

// gateway is the smallest S3 endpoint that authenticates like the real
// gateway will: Verify, then decode aws-chunked bodies or check the
// payload hash, and record what arrived.
type gateway struct {
	v       *sigv4.Verifier
	mu      sync.Mutex
	uploads []upload
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, err := g.v.Verify(r)
	if err != nil {
		s3err.WriteError(w, r, err, s3err.RequestID())
		return
	}
	if r.Method != http.MethodPut {
		w.WriteHeader(http.StatusOK)
		return
	}
	var body io.Reader = r.Body
	var ac *awschunked.Reader
	if mode, ok := awschunked.ModeOf(a.Payload); ok {
		dl := int64(-1)
		if s := r.Header.Get("X-Amz-Decoded-Content-Length"); s != "" {
			if dl, err = strconv.ParseInt(s, 10, 64); err != nil {
				s3err.WriteError(w, r, s3err.InvalidArgument, "")
				return
			}
		}
		ac, err = awschunked.NewReader(r.Body, mode, a.Chain(), awschunked.Options{
			DecodedLength: dl, Trailers: awschunked.ParseTrailerHeader(r.Header.Get("X-Amz-Trailer"))})
		if err != nil {
			s3err.WriteError(w, r, err, "")
			return
		}
		body = ac
	}
	data, err := io.ReadAll(body)
	if err != nil {
		s3err.WriteError(w, r, err, "")
		return
	}
	if want, ok := a.PayloadHash(); ok && sha256.Sum256(data) != want {
		s3err.WriteError(w, r, s3err.XAmzContentSHA256Mismatch, "")
		return
	}
	u := upload{payload: a.Payload, data: data, headers: r.Header.Clone()}
	if ac != nil {
		u.trailers = ac.Trailers()
	}
	g.mu.Lock()
	g.uploads = append(g.uploads, u)
	g.mu.Unlock()
	sum := md5.Sum(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.WriteHeader(http.StatusOK)
}

func (g *gateway) last(t *testing.T) upload {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.uploads) == 0 {
		t.Fatal("no upload arrived")
	}
	return g.uploads[len(g.uploads)-1]
}

const (
	accessKey = "AKIAIOSFODNN7EXAMPLE"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func newGateway(t *testing.T, tls bool) (*gateway, *httptest.Server) {
	t.Helper()
	v, err := sigv4.New(sigv4.Config{Credentials: sigv4.StaticCredentials{AccessKey: accessKey, SecretKey: secretKey}})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{v: v}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(g)
	} else {
		srv = httptest.NewServer(g)
	}
	t.Cleanup(srv.Close)
	return g, srv
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return b
}

func crcB64(tab *crc32.Table, data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, tab))
	return base64.StdEncoding.EncodeToString(b[:])
}

// TestAWSSDKPutObject uploads with aws-sdk-go-v2's S3 client, default
// settings (CRC checksums, aws-chunked trailers over HTTPS).
func TestAWSSDKPutObject(t *testing.T) {
	for _, tls := range []bool{true, false} {
		for _, size := range []int{0, 1, 100_000, 3 << 20} {
			g, srv := newGateway(t, tls)
			client := s3.New(s3.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String(srv.URL),
				UsePathStyle: true,
				HTTPClient:   srv.Client(),
				// What config.LoadDefaultConfig gives every SDK user.
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}, nil
				}),
			})
			data := testData(size)
			key := "dir/key with space+plus%percent=é"
			bodies := []io.Reader{bytes.NewReader(data)}
			if tls { // without TLS the SDK needs a seekable body to hash
				bodies = append(bodies, struct{ io.Reader }{bytes.NewReader(data)})
			}
			for _, body := range bodies {
				_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
					Bucket: aws.String("bucket"), Key: aws.String(key), Body: body,
					ContentLength: aws.Int64(int64(size)),
				})
				if err != nil {
					t.Fatalf("tls=%v size=%d: PutObject: %v", tls, size, err)
				}
				u := g.last(t)
				if !bytes.Equal(u.data, data) {
					t.Fatalf("tls=%v size=%d payload %s: stored %d bytes, want %d", tls, size, u.payload, len(u.data), size)
				}
				if tls && size > 0 && u.payload != sigv4.StreamingUnsignedTrailer {
					t.Errorf("tls=%v size=%d: payload %s, want aws-chunked with trailer", tls, size, u.payload)
				}
				if u.payload == sigv4.StreamingUnsignedTrailer {
					if got, want := u.trailers["x-amz-checksum-crc32"], crcB64(crc32.IEEETable, data); got != want {
						t.Errorf("tls=%v size=%d: trailer crc32 %q, want %q", tls, size, got, want)
					}
				}
				t.Logf("tls=%v size=%d body %T: x-amz-content-sha256 %s, trailers %v, checksum headers %q %q %q",
					tls, size, body, u.payload, u.trailers, u.headers.Get("X-Amz-Sdk-Checksum-Algorithm"),
					u.headers.Get("X-Amz-Checksum-Crc32"), u.headers.Get("X-Amz-Trailer"))
			}
		}
	}
}

// TestMinioPutObject uploads with minio-go: signed aws-chunked over HTTP,
// with and without signed trailers, and unsigned trailers over HTTPS.
func TestMinioPutObject(t *testing.T) {
	for _, tc := range []struct {
		tls, trailing bool
		wantPayload   string
	}{
		{false, false, sigv4.StreamingSigned},
		{false, true, sigv4.StreamingSignedTrailer},
		{true, true, sigv4.StreamingUnsignedTrailer},
		{true, false, ""},
	} {
		for _, size := range []int{0, 1, 100_000, 3 << 20} {
			g, srv := newGateway(t, tc.tls)
			client, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://"), &minio.Options{
				Creds:           miniocreds.NewStaticV4(accessKey, secretKey, ""),
				Secure:          tc.tls,
				Transport:       srv.Client().Transport,
				Region:          "us-east-1",
				TrailingHeaders: tc.trailing,
			})
			if err != nil {
				t.Fatal(err)
			}
			data := testData(size)
			opts := minio.PutObjectOptions{}
			if tc.trailing {
				opts.Checksum = minio.ChecksumCRC32C
			}
			_, err = client.PutObject(context.Background(), "bucket", "key/ü ~+=", bytes.NewReader(data), int64(size), opts)
			if err != nil {
				t.Fatalf("%+v size=%d: PutObject: %v", tc, size, err)
			}
			u := g.last(t)
			if !bytes.Equal(u.data, data) {
				t.Fatalf("%+v size=%d: stored %d bytes, want %d", tc, size, len(u.data), size)
			}
			if tc.wantPayload != "" && size > 0 && u.payload != tc.wantPayload {
				t.Errorf("%+v size=%d: payload %s", tc, size, u.payload)
			}
			if tc.trailing && size > 0 { // minio-go sends no trailer for an empty body
				if got, want := u.trailers["x-amz-checksum-crc32c"], crcB64(crc32.MakeTable(crc32.Castagnoli), data); got != want {
					t.Errorf("%+v size=%d: trailer crc32c %q, want %q", tc, size, got, want)
				}
			}
			t.Logf("%+v size=%d: x-amz-content-sha256 %s, trailers %v", tc, size, u.payload, u.trailers)
		}
	}
}

// TestTamperedUpload corrupts a signed minio-go upload on the wire: the
// gateway must refuse it.
func TestTamperedUpload(t *testing.T) {
	g, srv := newGateway(t, false)
	flip := &flipTransport{base: srv.Client().Transport, at: 50_000}
	client, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{
		Creds: miniocreds.NewStaticV4(accessKey, secretKey, ""), Transport: flip, Region: "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	client.SetAppInfo("", "")
	_, err = client.PutObject(context.Background(), "bucket", "k", bytes.NewReader(testData(100_000)), 100_000,
		minio.PutObjectOptions{DisableMultipart: true})
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || resp.Code != "SignatureDoesNotMatch" {
		t.Fatalf("tampered upload: %v", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.uploads) != 0 {
		t.Fatal("tampered upload was stored")
	}
}

// flipTransport flips one body byte of PUT requests.
type flipTransport struct {
	base http.RoundTripper
	at   int
}

func (f *flipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		if len(b) > f.at {
			b[f.at] ^= 1
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return f.base.RoundTrip(r)
}
