package awschunked_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

const (
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleScope  = "20130524/us-east-1/s3/aws4_request"
	exampleDate   = "20130524T000000Z"
)

func exampleChain(seed string) *sigv4.Chain {
	return sigv4.NewChain(sigv4.SigningKey(exampleSecret, "20130524", "us-east-1"), exampleDate, exampleScope, seed)
}

// The bodies of the S3 API reference's streaming examples (sigv4-streaming,
// sigv4-streaming-trailers): 65536 and 1024 bytes of 'a'.
func exampleSignedBody() string {
	return "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" +
		strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
		strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
}

func exampleTrailerBody() string {
	return "10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n" +
		strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n" +
		strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n" +
		"x-amz-checksum-crc32c:sOO8/Q==\r\n" +
		"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
}

const (
	exampleSeed        = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	exampleTrailerSeed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
)

// readers wrap a body in ways that split reads at every possible place.
var readers = map[string]func(io.Reader) io.Reader{
	"whole":    func(r io.Reader) io.Reader { return r },
	"one-byte": iotest.OneByteReader,
	"half":     iotest.HalfReader,
	"data-err": iotest.DataErrReader,
}

// readAll reads with a small buffer so Read is called many times.
func readAll(r io.Reader, bufSize int) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, bufSize)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func TestAWSExamples(t *testing.T) {
	tests := []struct {
		name     string
		mode     awschunked.Mode
		seed     string
		body     string
		trailers []string
	}{
		{"signed", awschunked.Signed, exampleSeed, exampleSignedBody(), nil},
		{"signed trailer", awschunked.SignedTrailer, exampleTrailerSeed, exampleTrailerBody(), []string{"x-amz-checksum-crc32c"}},
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			for _, bufSize := range []int{1, 100, 65536, 1 << 20} {
				t.Run(fmt.Sprintf("%s/%s/%d", tt.name, rname, bufSize), func(t *testing.T) {
					r, err := awschunked.NewReader(wrap(strings.NewReader(tt.body)), tt.mode, exampleChain(tt.seed),
						awschunked.Options{DecodedLength: 66560, Trailers: tt.trailers})
					if err != nil {
						t.Fatal(err)
					}
					got, err := readAll(r, bufSize)
					if err != nil {
						t.Fatalf("read: %v", err)
					}
					if string(got) != strings.Repeat("a", 66560) {
						t.Fatalf("decoded %d bytes", len(got))
					}
					if tt.trailers != nil {
						if tr := r.Trailers(); tr["x-amz-checksum-crc32c"] != "sOO8/Q==" || len(tr) != 1 {
							t.Errorf("Trailers() = %v", tr)
						}
					}
				})
			}
		}
	}
}

// TestAWSExampleTampered flips each kind of byte of the published bodies.
func TestAWSExampleTampered(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		want s3err.Code
	}{
		{"data byte", func(s string) string { return strings.Replace(s, "aaaa", "aaab", 1) }, s3err.SignatureDoesNotMatch},
		{"last chunk data", func(s string) string {
			i := strings.Index(s, "400;")
			return s[:i+90] + "b" + s[i+91:]
		}, s3err.SignatureDoesNotMatch},
		{"final signature", func(s string) string {
			return strings.Replace(s, "0;chunk-signature=2ca2", "0;chunk-signature=3ca2", 1)
		}, s3err.SignatureDoesNotMatch},
		{"trailer value", func(s string) string { return strings.Replace(s, "sOO8/Q==", "sOO8/R==", 1) }, s3err.SignatureDoesNotMatch},
		{"trailer signature", func(s string) string { return strings.Replace(s, "signature:d81f", "signature:e81f", 1) }, s3err.SignatureDoesNotMatch},
		{"truncated", func(s string) string { return s[:66000] }, s3err.IncompleteBody},
		{"no final chunk", func(s string) string { return s[:strings.Index(s, "0;chunk-signature=2ca2")] }, s3err.IncompleteBody},
		{"trailer dropped", func(s string) string { return strings.Replace(s, "x-amz-checksum-crc32c:sOO8/Q==\r\n", "", 1) }, s3err.SignatureDoesNotMatch},
		{"trailer signature dropped", func(s string) string { return s[:strings.Index(s, "x-amz-trailer-signature")] + "\r\n" }, s3err.IncompleteBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := awschunked.NewReader(strings.NewReader(tc.edit(exampleTrailerBody())), awschunked.SignedTrailer,
				exampleChain(exampleTrailerSeed), awschunked.Options{DecodedLength: 66560, Trailers: []string{"x-amz-checksum-crc32c"}})
			_, err := io.ReadAll(r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want.Name)
			}
			if r.Trailers() != nil {
				t.Error("Trailers() after a failure")
			}
			if _, again := r.Read(make([]byte, 10)); again != err {
				t.Errorf("error not sticky: %v", again)
			}
		})
	}
}

// fixed signs with a sigv4.Signer at a fixed time.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testChain() (*sigv4.Chain, *sigv4.Chain) {
	s := sigv4.Signer{AccessKey: "AK", SecretKey: "SK"}
	seed := strings.Repeat("ab", 32)
	return s.Chain(seed, testTime), s.Chain(seed, testTime)
}

func TestRoundTrip(t *testing.T) {
	data := make([]byte, 200_001)
	for i := range data {
		data[i] = byte(i * 7)
	}
	trailers := []awschunked.Trailer{{"x-amz-checksum-crc32", "AAAAAA=="}, {"x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}
	names := []string{"x-amz-checksum-crc32", "x-amz-checksum-sha256"}
	for _, mode := range []awschunked.Mode{awschunked.Signed, awschunked.SignedTrailer, awschunked.UnsignedTrailer} {
		for _, size := range []int{0, 1, 8191, 65536, 200_001} {
			for _, chunkSize := range []int{1, 8192, 65536, 1 << 20} {
				if size/chunkSize > 10000 {
					continue
				}
				name := fmt.Sprintf("mode%d/%d/%d", mode, size, chunkSize)
				signer, verifier := testChain()
				var tr []awschunked.Trailer
				var declared []string
				if mode != awschunked.Signed {
					tr, declared = trailers, names
				}
				var body bytes.Buffer
				if err := awschunked.Encode(&body, data[:size], chunkSize, mode, signer, tr); err != nil {
					t.Fatal(err)
				}
				r, err := awschunked.NewReader(iotest.HalfReader(&body), mode, verifier,
					awschunked.Options{DecodedLength: int64(size), Trailers: declared})
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(r, 4096)
				if err != nil || !bytes.Equal(got, data[:size]) {
					t.Fatalf("%s: %d bytes, %v", name, len(got), err)
				}
				if mode != awschunked.Signed && len(r.Trailers()) != 2 {
					t.Fatalf("%s: trailers %v", name, r.Trailers())
				}
			}
		}
	}
}

// acceptAll is a ChainVerifier for framing tests.
type acceptAll struct{}

func (acceptAll) VerifyChunk(_, _ []byte) bool   { return true }
func (acceptAll) VerifyTrailer(_, _ []byte) bool { return true }

var sig = strings.Repeat("0", 64)

// TestFraming covers the quirks accepted and the malformed bodies refused.
func TestFraming(t *testing.T) {
	crc := []string{"x-amz-checksum-crc32"}
	tests := []struct {
		name     string
		mode     awschunked.Mode
		body     string
		decoded  int64
		trailers []string
		want     string // decoded data, when no error
		err      error
	}{
		// What aws-sdk-go-v2 and boto3 send for STREAMING-UNSIGNED-PAYLOAD-TRAILER.
		{"sdk unsigned trailer", awschunked.UnsignedTrailer, "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n", 5, crc, "hello", nil},
		{"sdk unsigned empty", awschunked.UnsignedTrailer, "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", 0, crc, "", nil},
		{"sdk no trailers", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\n\r\n", 3, nil, "abc", nil},
		// minio-go: "name:value\n" then "\r\n\r\n".
		{"minio unsigned trailer", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\n\r\n\r\n", 3, crc, "abc", nil},
		{"minio signed trailer", awschunked.SignedTrailer, "3;chunk-signature=" + sig + "\r\nabc\r\n0;chunk-signature=" + sig + "\r\nx-amz-checksum-crc32:NhCmhg==\n\r\nx-amz-trailer-signature:" + sig + "\r\n\r\n", 3, crc, "abc", nil},
		{"missing final CRLF signed", awschunked.Signed, "3;chunk-signature=" + sig + "\r\nabc\r\n0;chunk-signature=" + sig + "\r\n", 3, nil, "abc", nil},
		{"missing final CRLF trailer", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n", 3, crc, "abc", nil},
		{"missing final CRLF and newline", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NhCmhg==", 3, crc, "abc", nil},
		{"bare LF lines", awschunked.UnsignedTrailer, "3\nabc\n0\nx-amz-checksum-crc32:NhCmhg==\n\n", 3, crc, "abc", nil},
		{"extensions ignored", awschunked.Signed, "3;foo=bar;chunk-signature=" + sig + ";x\r\nabc\r\n0;chunk-signature=" + sig + "\r\n\r\n", 3, nil, "abc", nil},
		{"upper-case hex size", awschunked.UnsignedTrailer, "A\r\n0123456789\r\n0\r\n\r\n", 10, nil, "0123456789", nil},
		{"unknown decoded length", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\n\r\n", -1, nil, "abc", nil},
		{"bytes after the end are not read", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\n\r\nGARBAGE", 3, nil, "abc", nil},
		{"trailer name case", awschunked.UnsignedTrailer, "0\r\nX-Amz-Checksum-CRC32 : AAAAAA==\r\n\r\n", 0, crc, "", nil},

		{"decoded length short", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\n\r\n", 4, nil, "", s3err.IncompleteBody},
		{"decoded length exceeded", awschunked.UnsignedTrailer, "3\r\nabc\r\n0\r\n\r\n", 2, nil, "", s3err.IncompleteBody},
		{"data longer than size", awschunked.UnsignedTrailer, "3\r\nabcd\r\n0\r\n\r\n", 3, nil, "", s3err.InvalidRequest},
		{"data shorter than size", awschunked.UnsignedTrailer, "5\r\nabc\r\n0\r\n\r\n", 5, nil, "", s3err.InvalidRequest},
		{"size not hex", awschunked.UnsignedTrailer, "zz\r\nabc\r\n", 3, nil, "", s3err.InvalidRequest},
		{"size empty", awschunked.UnsignedTrailer, ";x\r\nabc\r\n", 3, nil, "", s3err.InvalidRequest},
		{"size too long", awschunked.UnsignedTrailer, "00000000000000001\r\na\r\n", -1, nil, "", s3err.InvalidRequest},
		{"size huge", awschunked.UnsignedTrailer, "ffffffffffffffff\r\na\r\n", -1, nil, "", s3err.InvalidRequest},
		{"header line too long", awschunked.UnsignedTrailer, "1;" + strings.Repeat("x", 5000) + "\r\na\r\n", -1, nil, "", s3err.InvalidRequest},
		{"header line without end", awschunked.UnsignedTrailer, strings.Repeat("1", 70000), -1, nil, "", s3err.InvalidRequest},
		{"missing chunk signature", awschunked.Signed, "3\r\nabc\r\n0\r\n\r\n", 3, nil, "", s3err.InvalidRequest},
		{"short chunk signature", awschunked.Signed, "3;chunk-signature=abc\r\nabc\r\n", 3, nil, "", s3err.InvalidRequest},
		{"empty body", awschunked.UnsignedTrailer, "", 0, nil, "", s3err.IncompleteBody},
		{"data after final chunk", awschunked.Signed, "0;chunk-signature=" + sig + "\r\nxyz\r\n", 0, nil, "", s3err.InvalidRequest},
		{"undeclared trailer", awschunked.UnsignedTrailer, "0\r\nx-amz-checksum-sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", 0, crc, "", s3err.MalformedTrailerError},
		{"declared trailer missing", awschunked.UnsignedTrailer, "0\r\n\r\n", 0, crc, "", s3err.MalformedTrailerError},
		{"repeated trailer", awschunked.UnsignedTrailer, "0\r\nx-amz-checksum-crc32:A\r\nx-amz-checksum-crc32:B\r\n\r\n", 0, crc, "", s3err.MalformedTrailerError},
		{"trailer without colon", awschunked.UnsignedTrailer, "0\r\nx-amz-checksum-crc32\r\n\r\n", 0, crc, "", s3err.MalformedTrailerError},
		{"signature in unsigned trailer", awschunked.UnsignedTrailer, "0\r\nx-amz-trailer-signature:" + sig + "\r\n\r\n", 0, nil, "", s3err.MalformedTrailerError},
		{"trailer after signature", awschunked.SignedTrailer, "0;chunk-signature=" + sig + "\r\nx-amz-trailer-signature:" + sig + "\r\nx-amz-checksum-crc32:A\r\n\r\n", 0, crc, "", s3err.MalformedTrailerError},
		{"trailer too large", awschunked.UnsignedTrailer, "0\r\n" + strings.Repeat(strings.Repeat("x", 4000)+"\r\n", 5), 0, nil, "", s3err.MalformedTrailerError},
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r, err := awschunked.NewReader(wrap(strings.NewReader(tt.body)), tt.mode, acceptAll{},
					awschunked.Options{DecodedLength: tt.decoded, Trailers: tt.trailers})
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(r, 2)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					return
				}
				if err != nil || string(got) != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				if tt.trailers != nil && r.Trailers()[tt.trailers[0]] == "" {
					t.Errorf("Trailers() = %v", r.Trailers())
				}
			})
		}
	}
}

func TestNewReaderArguments(t *testing.T) {
	if _, err := awschunked.NewReader(strings.NewReader(""), awschunked.Signed, nil, awschunked.Options{}); err == nil {
		t.Error("signed mode without verifier accepted")
	}
	if _, err := awschunked.NewReader(strings.NewReader(""), 0, nil, awschunked.Options{}); err == nil {
		t.Error("mode 0 accepted")
	}
	if _, err := awschunked.NewReader(strings.NewReader(""), awschunked.Signed, acceptAll{}, awschunked.Options{Trailers: []string{"x"}}); err == nil {
		t.Error("trailer with STREAMING-AWS4-HMAC-SHA256-PAYLOAD accepted")
	}
	for in, want := range map[string]awschunked.Mode{
		sigv4.StreamingSigned: awschunked.Signed, sigv4.StreamingSignedTrailer: awschunked.SignedTrailer,
		sigv4.StreamingUnsignedTrailer: awschunked.UnsignedTrailer,
	} {
		if m, ok := awschunked.ModeOf(in); !ok || m != want {
			t.Errorf("ModeOf(%s) = %v %v", in, m, ok)
		}
	}
	if _, ok := awschunked.ModeOf(sigv4.UnsignedPayload); ok {
		t.Error("ModeOf(UNSIGNED-PAYLOAD) ok")
	}
	if got := awschunked.ParseTrailerHeader(" X-Amz-Checksum-CRC32 , x-amz-checksum-sha256,"); len(got) != 2 || got[0] != "x-amz-checksum-crc32" {
		t.Errorf("ParseTrailerHeader = %q", got)
	}
}

// TestChunkSwap reorders two valid chunks: the chain refuses it.
func TestChunkSwap(t *testing.T) {
	signer, verifier := testChain()
	var body bytes.Buffer
	_ = awschunked.Encode(&body, []byte("0123456789abcdefghij"), 10, awschunked.Signed, signer, nil)
	s := body.String()
	parts := strings.SplitAfterN(s, "\r\n", 5) // hdr1 data1 hdr2 data2 rest
	swapped := parts[2] + parts[3] + parts[0] + parts[1] + parts[4]
	r, _ := awschunked.NewReader(strings.NewReader(swapped), awschunked.Signed, verifier, awschunked.Options{DecodedLength: 20})
	if _, err := io.ReadAll(r); !errors.Is(err, s3err.SignatureDoesNotMatch) {
		t.Fatalf("swapped chunks: %v", err)
	}
}

func FuzzAWSChunked(f *testing.F) {
	f.Add([]byte(exampleSignedBody()[:200]), uint8(1), int64(66560))
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"), uint8(3), int64(5))
	f.Add([]byte("3;chunk-signature="+sig+"\r\nabc\r\n0;chunk-signature="+sig+"\r\nx-amz-checksum-crc32:NhCmhg==\n\r\nx-amz-trailer-signature:"+sig+"\r\n\r\n"), uint8(2), int64(3))
	f.Add([]byte("0\r\n\r\n"), uint8(3), int64(-1))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, decoded int64) {
		m := awschunked.Mode(mode%3 + 1)
		var trailers []string
		if m != awschunked.Signed {
			trailers = []string{"x-amz-checksum-crc32"}
		}
		r, err := awschunked.NewReader(bytes.NewReader(body), m, acceptAll{}, awschunked.Options{DecodedLength: decoded, Trailers: trailers})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 7)
		total, calls := 0, 0
		for {
			calls++
			if calls > len(body)+2 {
				t.Fatalf("%d Read calls for a %d-byte body", calls, len(body))
			}
			n, err := r.Read(buf)
			total += n
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d", n)
			}
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatal("Read returned 0, nil")
			}
		}
		if total > len(body) {
			t.Fatalf("decoded %d bytes from a %d-byte body", total, len(body))
		}
		if decoded >= 0 && int64(total) > decoded {
			t.Fatalf("decoded %d bytes, more than the declared %d", total, decoded)
		}
	})
}

func BenchmarkDecodeSigned64MiB(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	signer, _ := testChain()
	var body bytes.Buffer
	if err := awschunked.Encode(&body, data, 64<<10, awschunked.Signed, signer, nil); err != nil {
		b.Fatal(err)
	}
	encoded := body.Bytes()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		_, verifier := testChain()
		r, _ := awschunked.NewReader(bytes.NewReader(encoded), awschunked.Signed, verifier, awschunked.Options{DecodedLength: int64(len(data))})
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeUnsigned64MiB(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	var body bytes.Buffer
	_ = awschunked.Encode(&body, data, 64<<10, awschunked.UnsignedTrailer, nil, []awschunked.Trailer{{"x-amz-checksum-crc32", "AAAAAA=="}})
	encoded := body.Bytes()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		r, _ := awschunked.NewReader(bytes.NewReader(encoded), awschunked.UnsignedTrailer, nil,
			awschunked.Options{DecodedLength: int64(len(data)), Trailers: []string{"x-amz-checksum-crc32"}})
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
