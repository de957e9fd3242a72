package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/sigv4"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// Tests of request bodies against the in-process cluster: checksums,
// aws-chunked (unsigned trailer over TLS as the SDK sends it by default,
// signed chunks, tampered chunks), bodies cut short, large multipart
// uploads, listing thousands of keys and read-after-write across gateways.

type clusterEnv struct {
	c *testcluster.Cluster
}

func newClusterEnv(t *testing.T) *clusterEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("in-process cluster test; skipped with -short")
	}
	return &clusterEnv{c: testcluster.New(t, testcluster.Config{Meta: 3, Blob: 6, Zones: 3, Quiet: true})}
}

func (ce *clusterEnv) gateway(t testing.TB, mod func(*gateway.Config)) *env {
	cfg := gateway.Config{Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret}}
	if mod != nil {
		mod(&cfg)
	}
	srv := ce.c.StartGateway(t, cfg)
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL(), "https://"), "http://")
	return &env{url: srv.URL(), host: host, srv: srv}
}

func crc32Of(b []byte) string {
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(s[:])
}

func headMissing(t testing.TB, c *s3.Client, bucket, key string) {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		t.Fatalf("%s/%s exists; a rejected upload must store nothing", bucket, key)
	}
}

func TestClusterChecksums(t *testing.T) {
	ce := newClusterEnv(t)
	e := ce.gateway(t, nil)
	ctx := context.Background()
	c := e.awsClient(t)
	mkBucket(t, c, "sums")
	data := pattern(300000, 1)
	// The SDK's default: a CRC32 it computes and sends.
	put := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("k"), Body: bytes.NewReader(data)}))
	if aws.ToString(put.ChecksumCRC32) != crc32Of(data) {
		t.Errorf("PUT answered CRC32 %q, want %q", aws.ToString(put.ChecksumCRC32), crc32Of(data))
	}
	h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled}))
	if aws.ToString(h.ChecksumCRC32) != crc32Of(data) || h.ChecksumType != types.ChecksumTypeFullObject {
		t.Errorf("HEAD checksum %q type %q", aws.ToString(h.ChecksumCRC32), h.ChecksumType)
	}
	// Other algorithms, named by the client.
	for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha512} {
		key := "alg-" + string(alg)
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg}))
		out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}))
		got, err := io.ReadAll(out.Body) // the SDK validates the checksum as it reads
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	// A wrong checksum: BadDigest, nothing stored.
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("bad"), Body: bytes.NewReader(data), ChecksumCRC32: aws.String(crc32Of([]byte("other")))})
	wantCode(t, err, "BadDigest")
	headMissing(t, c, "sums", "bad")

	// Multipart, composite CRC32 and full-object CRC64NVME.
	p1, p2 := pattern(5<<20, 2), pattern(777, 3)
	for _, tc := range []struct {
		alg types.ChecksumAlgorithm
		typ types.ChecksumType
	}{
		{types.ChecksumAlgorithmCrc32, types.ChecksumTypeComposite},
		{types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject},
		{types.ChecksumAlgorithmCrc32c, types.ChecksumTypeFullObject},
	} {
		key := "mp-" + string(tc.alg) + string(tc.typ)
		cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumAlgorithm: tc.alg, ChecksumType: tc.typ}))
		var parts []types.CompletedPart
		for i, d := range [][]byte{p1, p2} {
			up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("sums"), Key: aws.String(key), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(d), ChecksumAlgorithm: tc.alg}))
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32, ChecksumCRC32C: up.ChecksumCRC32C, ChecksumCRC64NVME: up.ChecksumCRC64NVME})
		}
		done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("sums"), Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, ChecksumType: tc.typ})
		if err != nil {
			t.Fatalf("%s %s complete: %v", tc.alg, tc.typ, err)
		}
		if done.ChecksumType != tc.typ {
			t.Errorf("%s: checksum type %q, want %q", key, done.ChecksumType, tc.typ)
		}
		out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}))
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || len(got) != len(p1)+len(p2) {
			t.Fatalf("%s: read back: %v (%d bytes)", key, err, len(got))
		}
	}
}

// recorder remembers the x-amz-content-sha256 of every request.
type recorder struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	modes []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.modes = append(r.modes, req.Header.Get("X-Amz-Content-Sha256"))
	r.mu.Unlock()
	return r.rt.RoundTrip(req)
}

func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestClusterTLSTrailers: over https the SDK's default PutObject and
// UploadPart send STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies with a CRC32
// trailer; they must store exactly the data.
func TestClusterTLSTrailers(t *testing.T) {
	ce := newClusterEnv(t)
	cert, key := writeSelfSigned(t)
	e := ce.gateway(t, func(c *gateway.Config) { c.TLSCert, c.TLSKey = cert, key })
	rec := &recorder{rt: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	c := e.awsClient(t, func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: rec} })
	ctx := context.Background()
	mkBucket(t, c, "tls")
	for _, size := range []int{0, 10, 100000, 3 << 20} {
		data := pattern(size, 4)
		key := fmt.Sprint("k", size)
		// An io.Reader that cannot seek: the SDK must stream it.
		put := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tls"), Key: aws.String(key), Body: io.NopCloser(bytes.NewReader(data)), ContentLength: aws.Int64(int64(size))}))
		if aws.ToString(put.ChecksumCRC32) != crc32Of(data) {
			t.Errorf("%d bytes: CRC32 %q, want %q", size, aws.ToString(put.ChecksumCRC32), crc32Of(data))
		}
		if got := getBytes(t, c, "tls", key); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d different bytes", size, len(got))
		}
	}
	rec.mu.Lock()
	modes := strings.Join(rec.modes, ",")
	rec.mu.Unlock()
	if !strings.Contains(modes, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
		t.Errorf("the SDK sent no trailer upload over TLS (modes %s); the trailer path went untested", modes)
	}
	// A trailer with a wrong checksum: BadDigest, nothing stored.
	body := &bytes.Buffer{}
	data := []byte("some data for a bad trailer")
	if err := awschunked.Encode(body, data, 8, awschunked.UnsignedTrailer, nil, []awschunked.Trailer{{Name: "x-amz-checksum-crc32", Value: crc32Of([]byte("else"))}}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/tls/badtrailer", bytes.NewReader(body.Bytes()))
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("x-amz-decoded-content-length", strconv.Itoa(len(data)))
	req.Header.Set("x-amz-trailer", "x-amz-checksum-crc32")
	sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}.Sign(req, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", time.Now())
	resp, err := (&http.Client{Transport: rec.rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "BadDigest") {
		t.Errorf("bad trailer checksum: %d %s", resp.StatusCode, b)
	}
	headMissing(t, c, "tls", "badtrailer")
}

// signedStreamingPut sends data as STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
// optionally flipping one byte of the framed body after signing.
func signedStreamingPut(t *testing.T, e *env, key string, data []byte, tamper bool) (int, string) {
	t.Helper()
	signer := sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/strm/"+key, nil)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("x-amz-decoded-content-length", strconv.Itoa(len(data)))
	now := time.Now()
	// Content-Length is signed by SDKs; compute the framed size first.
	var framed bytes.Buffer
	probe := signer.Chain(strings.Repeat("0", 64), now)
	if err := awschunked.Encode(&framed, data, 64<<10, awschunked.Signed, probe, nil); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(framed.Len())
	seed := signer.Sign(req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now)
	framed.Reset()
	if err := awschunked.Encode(&framed, data, 64<<10, awschunked.Signed, signer.Chain(seed, now), nil); err != nil {
		t.Fatal(err)
	}
	body := framed.Bytes()
	if tamper {
		body[len(body)/2] ^= 1
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestClusterSignedStreaming(t *testing.T) {
	ce := newClusterEnv(t)
	e := ce.gateway(t, nil)
	c := e.awsClient(t)
	mkBucket(t, c, "strm")
	data := pattern(300000, 7)
	if code, body := signedStreamingPut(t, e, "good", data, false); code != 200 {
		t.Fatalf("signed streaming PUT: %d %s", code, body)
	}
	if got := getBytes(t, c, "strm", "good"); !bytes.Equal(got, data) {
		t.Fatalf("signed streaming: read back %d different bytes", len(got))
	}
	code, body := signedStreamingPut(t, e, "tampered", data, true)
	if code != 403 || !strings.Contains(body, "SignatureDoesNotMatch") {
		t.Errorf("tampered chunk: %d %s", code, body)
	}
	headMissing(t, c, "strm", "tampered")
}

// TestClusterCutMidBody: a client that disconnects halfway through a body
// leaves no object.
func TestClusterCutMidBody(t *testing.T) {
	ce := newClusterEnv(t)
	e := ce.gateway(t, nil)
	c := e.awsClient(t)
	mkBucket(t, c, "cut")
	for _, size := range []int{2000, 3 << 20} {
		key := fmt.Sprint("cut", size)
		req, _ := http.NewRequest(http.MethodPut, e.url+"/cut/"+key, nil)
		req.ContentLength = int64(size)
		sigv4.Signer{AccessKey: testAccess, SecretKey: testSecret}.Sign(req, "UNSIGNED-PAYLOAD", time.Now())
		conn, err := net.Dial("tcp", e.host)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(conn)
		fmt.Fprintf(w, "PUT /cut/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", key, e.host, size)
		for name, vs := range req.Header {
			fmt.Fprintf(w, "%s: %s\r\n", name, vs[0])
		}
		w.WriteString("\r\n")
		w.Write(pattern(size/2, 1))
		w.Flush()
		conn.Close()
		// Wait until the gateway has answered that request, then check.
		testcluster.WaitFor(t, 20*time.Second, "the cut PUT to be handled", func() error {
			n := putCount(t, e)
			if n < 1 {
				return fmt.Errorf("no PutObject finished yet")
			}
			return nil
		})
		headMissing(t, c, "cut", key)
		resetPutCount(e)
	}
}

var putBaseline sync.Map

func putCount(t *testing.T, e *env) int {
	resp, err := http.Get(e.url + "/_cairn/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `cairn_gateway_requests_total{op="PutObject"`) {
			f := strings.Fields(line)
			n, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += int(n)
		}
	}
	base, _ := putBaseline.Load(e.url)
	b0, _ := base.(int)
	return total - b0
}

func resetPutCount(e *env) {
	resp, err := http.Get(e.url + "/_cairn/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `cairn_gateway_requests_total{op="PutObject"`) {
			f := strings.Fields(line)
			n, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += int(n)
		}
	}
	putBaseline.Store(e.url, total)
}

// TestClusterBigMultipart uploads more than 100 MiB in 5 MiB parts, four
// at a time, and reads it back through another gateway.
func TestClusterBigMultipart(t *testing.T) {
	ce := newClusterEnv(t)
	e1, e2 := ce.gateway(t, nil), ce.gateway(t, nil)
	ctx := context.Background()
	c1, c2 := e1.awsClient(t), e2.awsClient(t)
	mkBucket(t, c1, "big")
	const parts, partSize = 21, 5 << 20
	cr := must[*s3.CreateMultipartUploadOutput](t)(c1.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("obj")}))
	done := make([]types.CompletedPart, parts)
	whole := md5.New()
	etags := md5.New()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make(chan error, parts)
	for i := range parts {
		d := pattern(partSize, byte(i))
		whole.Write(d)
		s := md5.Sum(d)
		etags.Write(s[:])
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := c1.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("obj"), UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(d)})
			if err != nil {
				errs <- err
				return
			}
			done[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := must[*s3.CompleteMultipartUploadOutput](t)(c1.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("obj"), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}))
	want := fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(etags.Sum(nil)), parts)
	if aws.ToString(out.ETag) != want {
		t.Errorf("ETag %s, want %s", aws.ToString(out.ETag), want)
	}
	get := must[*s3.GetObjectOutput](t)(c2.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("obj")}))
	h := md5.New()
	n, err := io.Copy(h, get.Body)
	get.Body.Close()
	if err != nil || n != parts*partSize || !bytes.Equal(h.Sum(nil), whole.Sum(nil)) {
		t.Fatalf("read back %d bytes (%v), md5 match %v", n, err, bytes.Equal(h.Sum(nil), whole.Sum(nil)))
	}
}

// TestClusterListingAndConsistency writes a few thousand keys through one
// gateway and lists them through another, with prefix, delimiter and
// pages; a delete through one is invisible at once through the other.
func TestClusterListingAndConsistency(t *testing.T) {
	ce := newClusterEnv(t)
	e1, e2 := ce.gateway(t, nil), ce.gateway(t, nil)
	ctx := context.Background()
	c1, c2 := e1.awsClient(t), e2.awsClient(t)
	mkBucket(t, c1, "many")
	const dirs, perDir = 5, 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, dirs*perDir)
	for d := range dirs {
		for i := range perDir {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				key := fmt.Sprintf("d%d/f%04d", d, i)
				if _, err := c1.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("many"), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	count, pages := 0, 0
	p := s3.NewListObjectsV2Paginator(c2, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Prefix: aws.String("d3/")})
	last := ""
	for p.HasMorePages() {
		page := must[*s3.ListObjectsV2Output](t)(p.NextPage(ctx))
		pages++
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); k <= last {
				t.Fatalf("out of order: %q after %q", k, last)
			} else {
				last = k
			}
			count++
		}
	}
	if count != perDir || pages != 1 {
		t.Errorf("prefix listing: %d keys in %d pages", count, pages)
	}
	count, pages = 0, 0
	p = s3.NewListObjectsV2Paginator(c2, &s3.ListObjectsV2Input{Bucket: aws.String("many"), MaxKeys: aws.Int32(700)})
	for p.HasMorePages() {
		page := must[*s3.ListObjectsV2Output](t)(p.NextPage(ctx))
		pages++
		count += len(page.Contents)
	}
	if count != dirs*perDir || pages != (dirs*perDir+699)/700 {
		t.Errorf("full listing: %d keys in %d pages", count, pages)
	}
	dl := must[*s3.ListObjectsV2Output](t)(c2.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("many"), Delimiter: aws.String("/")}))
	if len(dl.CommonPrefixes) != dirs || len(dl.Contents) != 0 {
		t.Errorf("delimiter listing: %d prefixes, %d keys", len(dl.CommonPrefixes), len(dl.Contents))
	}
	// Read-after-write and read-after-delete across gateways.
	for i := range 20 {
		key := fmt.Sprint("raw", i)
		val := fmt.Sprint("v", i)
		must[*s3.PutObjectOutput](t)(c1.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("many"), Key: aws.String(key), Body: strings.NewReader(val)}))
		if got := getBytes(t, c2, "many", key); string(got) != val {
			t.Fatalf("gateway 2 read %q after gateway 1 wrote %q", got, val)
		}
		must[*s3.DeleteObjectOutput](t)(c2.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("many"), Key: aws.String(key)}))
		headMissing(t, c1, "many", key)
	}
}

var _ = sha256.New
