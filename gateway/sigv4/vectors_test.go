package sigv4

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// The example credentials and time of the S3 API reference's SigV4
// examples (sig-v4-header-based-auth, sigv4-query-string-auth,
// sigv4-streaming, sigv4-streaming-trailers).
const (
	exampleAccessKey = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func exampleVerifier(t testing.TB, now time.Time) *Verifier {
	t.Helper()
	v, err := New(Config{
		Credentials: StaticCredentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret},
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func authHeader(signed, sig string) string {
	return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=" +
		signed + ",Signature=" + sig
}

// TestAWSExamples verifies the published examples with their published
// signatures.
func TestAWSExamples(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		host    string
		headers [][2]string
		payload string // expected Auth.Payload
	}{
		{
			name: "GET object with range", method: "GET", target: "/test.txt", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"Range", "bytes=0-9"},
				{"x-amz-content-sha256", EmptySHA256},
				{"x-amz-date", "20130524T000000Z"},
				{"Authorization", authHeader("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")},
			},
			payload: EmptySHA256,
		},
		{
			name: "PUT object", method: "PUT", target: "/test%24file.text", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
				{"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
				{"Authorization", authHeader("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")},
			},
			payload: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		},
		{
			name: "GET bucket lifecycle", method: "GET", target: "/?lifecycle", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-content-sha256", EmptySHA256},
				{"Authorization", authHeader("host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")},
			},
			payload: EmptySHA256,
		},
		{
			name: "GET bucket list objects", method: "GET", target: "/?max-keys=2&prefix=J", host: "examplebucket.s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-content-sha256", EmptySHA256},
				{"Authorization", authHeader("host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")},
			},
			payload: EmptySHA256,
		},
		{
			name: "presigned GET", method: "GET", host: "examplebucket.s3.amazonaws.com",
			target:  "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
			payload: UnsignedPayload,
		},
		{
			name: "streaming PUT seed", method: "PUT", target: "/examplebucket/chunkObject.txt", host: "s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
				{"Authorization", authHeader("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class", "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")},
				{"x-amz-content-sha256", StreamingSigned},
				{"Content-Encoding", "aws-chunked"},
				{"x-amz-decoded-content-length", "66560"},
				{"Content-Length", "66824"},
			},
			payload: StreamingSigned,
		},
		{
			name: "streaming PUT with trailer seed", method: "PUT", target: "/examplebucket/chunkObject.txt", host: "s3.amazonaws.com",
			headers: [][2]string{
				{"x-amz-date", "20130524T000000Z"},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
				{"Authorization", authHeader("content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer", "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e")},
				{"x-amz-content-sha256", StreamingSignedTrailer},
				{"Content-Encoding", "aws-chunked"},
				{"x-amz-decoded-content-length", "66560"},
				{"x-amz-trailer", "x-amz-checksum-crc32c"},
				{"Content-Length", "66824"},
			},
			payload: StreamingSignedTrailer,
		},
	}
	v := exampleVerifier(t, exampleTime.Add(time.Minute))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			for _, h := range tt.headers {
				r.Header.Add(h[0], h[1])
			}
			a, err := v.Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != exampleAccessKey || a.Payload != tt.payload {
				t.Errorf("Auth = %+v", a)
			}
			// Any change to a signed part must break the signature.
			for _, mutate := range []func(*http.Request){
				func(r *http.Request) { r.Method = "DELETE" },
				func(r *http.Request) { r.Host = "other.s3.amazonaws.com" },
				func(r *http.Request) { r.URL.Path += "x"; r.URL.RawPath = ""; r.RequestURI = "" },
			} {
				m := r.Clone(r.Context())
				mutate(m)
				if _, err := v.Verify(m); !errors.Is(err, s3err.SignatureDoesNotMatch) {
					t.Errorf("mutated request: err = %v, want SignatureDoesNotMatch", err)
				}
			}
		})
	}
}

// TestAWSStreamingChain checks the chunk chain against the published
// chunk and trailer signatures.
func TestAWSStreamingChain(t *testing.T) {
	key := SigningKey(exampleSecret, "20130524", "us-east-1")
	const scope = "20130524/us-east-1/s3/aws4_request"
	a64 := sha256.Sum256([]byte(strings.Repeat("a", 65536)))
	a1 := sha256.Sum256([]byte(strings.Repeat("a", 1024)))
	empty := sha256.Sum256(nil)

	c := NewChain(key, "20130524T000000Z", scope, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	for i, step := range []struct {
		sum [32]byte
		sig string
	}{
		{a64, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"},
		{a1, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"},
		{empty, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"},
	} {
		if !c.VerifyChunk(step.sum[:], []byte(step.sig)) {
			t.Fatalf("chunk %d: published signature rejected", i)
		}
	}

	c = NewChain(key, "20130524T000000Z", scope, "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e")
	for i, step := range []struct {
		sum [32]byte
		sig string
	}{
		{a64, "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"},
		{a1, "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"},
		{empty, "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"},
	} {
		if !c.VerifyChunk(step.sum[:], []byte(step.sig)) {
			t.Fatalf("trailer chain chunk %d: published signature rejected", i)
		}
	}
	trailer := sha256.Sum256([]byte("x-amz-checksum-crc32c:sOO8/Q==\n"))
	if !c.VerifyTrailer(trailer[:], []byte("d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435")) {
		t.Fatal("published trailer signature rejected")
	}

	// Out of order: the second chunk's signature in first place.
	c = NewChain(key, "20130524T000000Z", scope, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	if c.VerifyChunk(a1[:], []byte("0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497")) {
		t.Fatal("chunk accepted out of order")
	}
}
