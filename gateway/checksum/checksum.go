// Package checksum implements the S3 object checksums: CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3 and XXHASH128
// ("Checking object integrity", S3 user guide), the parsing of their request headers, and the multipart checksums:
// COMPOSITE (the checksum of the concatenated part checksums, "-N") and
// FULL_OBJECT for the CRCs, combined from the part CRCs without reading
// the data again (combine.go).
//
// Checksum values travel as the base64 of the big-endian digest, in
// x-amz-checksum-<alg> headers or aws-chunked trailers; the algorithm of a
// request is named by x-amz-sdk-checksum-algorithm. A value that is not
// base64 of the right length is InvalidRequest, as S3 answers; a mismatch
// is BadDigest. Content-MD5 that is malformed is InvalidDigest.
package checksum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/minio/crc64nvme"
	"github.com/zeebo/xxh3"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Algorithm is an S3 checksum algorithm. The zero value is no algorithm.
type Algorithm int

// The algorithms, in the order S3 lists them.
const (
	None Algorithm = iota
	CRC32
	CRC32C
	CRC64NVME
	SHA1
	SHA256
	SHA512
	MD5
	XXHASH64
	XXHASH3
	XXHASH128
	numAlgorithms
)

var algorithms = [numAlgorithms]struct {
	name string
	size int
}{
	None:      {"", 0},
	CRC32:     {"CRC32", crc32.Size},
	CRC32C:    {"CRC32C", crc32.Size},
	CRC64NVME: {"CRC64NVME", crc64nvme.Size},
	SHA1:      {"SHA1", sha1.Size},
	SHA256:    {"SHA256", sha256.Size},
	SHA512:    {"SHA512", sha512.Size},
	MD5:       {"MD5", md5.Size},
	XXHASH64:  {"XXHASH64", 8},
	XXHASH3:   {"XXHASH3", 8},
	XXHASH128: {"XXHASH128", 16},
}

// Algorithms lists every algorithm.
func Algorithms() []Algorithm {
	all := make([]Algorithm, 0, numAlgorithms-1)
	for a := CRC32; a < numAlgorithms; a++ {
		all = append(all, a)
	}
	return all
}

// String is the algorithm's S3 name: "CRC32", "CRC64NVME"...
func (a Algorithm) String() string {
	if a <= None || a >= numAlgorithms {
		return ""
	}
	return algorithms[a].name
}

// Header is the request and response header carrying a checksum of this
// algorithm: "x-amz-checksum-crc32"...
func (a Algorithm) Header() string { return "x-amz-checksum-" + strings.ToLower(a.String()) }

// Size is the digest length in bytes.
func (a Algorithm) Size() int {
	if a <= None || a >= numAlgorithms {
		return 0
	}
	return algorithms[a].size
}

// IsCRC reports whether a is one of the CRCs, which support FULL_OBJECT
// multipart checksums.
func (a Algorithm) IsCRC() bool { return a == CRC32 || a == CRC32C || a == CRC64NVME }

// Parse parses an algorithm name, as in x-amz-sdk-checksum-algorithm or
// x-amz-checksum-algorithm; case does not matter.
func Parse(name string) (Algorithm, bool) {
	for a := CRC32; a < numAlgorithms; a++ {
		if strings.EqualFold(name, algorithms[a].name) {
			return a, true
		}
	}
	return None, false
}

// FromHeader maps a header name ("x-amz-checksum-crc32", any case) to its
// algorithm.
func FromHeader(name string) (Algorithm, bool) {
	if len(name) <= len("x-amz-checksum-") || !strings.EqualFold(name[:len("x-amz-checksum-")], "x-amz-checksum-") {
		return None, false
	}
	return Parse(name[len("x-amz-checksum-"):])
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// DefaultObject is the checksum computed and stored for an object whose
// upload or copy names none, as S3 does: a client that
// asks for checksums on GET (the AWS SDKs do by default) can then check
// every object end to end. Its SIMD implementation (minio/crc64nvme)
// costs 20-37 µs of CPU per MiB here (BenchmarkChecksum/CRC64NVME:
// 28-50 GB/s on one core).
const DefaultObject = CRC64NVME

// New returns a new hash for a; nil for None. The CRCs use the SIMD
// implementations (hash/crc32 on amd64 and arm64, minio/crc64nvme).
func New(a Algorithm) hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	case MD5:
		return md5.New()
	case XXHASH64:
		return xxhash.New() // Sum: the 64-bit digest, big-endian
	case XXHASH3:
		return xxh3.New() // Sum: the 64-bit XXH3 digest, big-endian
	case XXHASH128:
		return xxh3.New128() // Sum: the 128-bit digest, high half first
	}
	return nil
}

// Sum returns the checksum of data.
func Sum(a Algorithm, data []byte) []byte {
	h := New(a)
	if h == nil {
		return nil
	}
	h.Write(data)
	return h.Sum(nil)
}

// Encode renders a digest as S3 does: standard base64.
func Encode(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

// Decode parses a base64 checksum value of algorithm a, checking its
// length. Errors are InvalidRequest, as S3 answers a malformed value.
func (a Algorithm) Decode(v string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(v))
	if err != nil || a.Size() == 0 || len(b) != a.Size() {
		return nil, s3err.New(s3err.InvalidRequest, "Value for %s header is invalid.", a.Header())
	}
	return b, nil
}

// Mismatch is the error for a checksum that does not match the data.
func (a Algorithm) Mismatch() error {
	return s3err.New(s3err.BadDigest, "The %s you specified did not match the calculated checksum.", a.String())
}

// DecodeContentMD5 parses a Content-MD5 header: base64 of 16 bytes, else
// InvalidDigest.
func DecodeContentMD5(v string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != md5.Size {
		return nil, &s3err.Error{Code: s3err.InvalidDigest}
	}
	return b, nil
}

// Type is the kind of a multipart object's checksum (x-amz-checksum-type).
type Type int

const (
	// Composite is the checksum of the part checksums, suffixed "-N".
	Composite Type = iota + 1
	// FullObject is the checksum of the whole object's bytes.
	FullObject
)

func (t Type) String() string {
	switch t {
	case Composite:
		return "COMPOSITE"
	case FullObject:
		return "FULL_OBJECT"
	}
	return ""
}

// ParseType parses x-amz-checksum-type.
func ParseType(s string) (Type, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "COMPOSITE":
		return Composite, true
	case "FULL_OBJECT":
		return FullObject, true
	}
	return 0, false
}

// DefaultType is the multipart checksum type S3 uses when none is asked
// for: FULL_OBJECT for CRC64NVME (it supports nothing else), COMPOSITE
// for the others.
func DefaultType(a Algorithm) Type {
	if a == CRC64NVME {
		return FullObject
	}
	return Composite
}

// ValidType reports whether S3 allows the multipart checksum type t for a:
// the SHAs, MD5 and the XXHASHes are composite only, CRC64NVME
// full-object only.
func ValidType(a Algorithm, t Type) bool {
	switch a {
	case CRC32, CRC32C:
		return t == Composite || t == FullObject
	case CRC64NVME:
		return t == FullObject
	case SHA1, SHA256, SHA512, MD5, XXHASH64, XXHASH3, XXHASH128:
		return t == Composite
	}
	return false
}

// Expected is what a request says about the checksum of its body.
type Expected struct {
	// Algorithm is None when the request names no checksum.
	Algorithm Algorithm
	// Value is the decoded x-amz-checksum-<alg> header; nil when the value
	// comes in an aws-chunked trailer or was not given.
	Value []byte
	// Trailer is true when x-amz-trailer announces the value.
	Trailer bool
}

// HeaderValue finds the one x-amz-checksum-<algorithm> header of h (the
// mode, type and algorithm headers are not checksums) and returns its
// algorithm and value as sent; None when there is none. An unknown
// algorithm or more than one checksum header is InvalidRequest.
func HeaderValue(h http.Header) (Algorithm, string, error) {
	found, value := None, ""
	for name, values := range h {
		lname := strings.ToLower(name)
		if !strings.HasPrefix(lname, "x-amz-checksum-") || lname == "x-amz-checksum-mode" ||
			lname == "x-amz-checksum-type" || lname == "x-amz-checksum-algorithm" {
			continue
		}
		a, ok := FromHeader(lname)
		if !ok {
			return None, "", s3err.New(s3err.InvalidRequest, "The header %s is not a known checksum.", lname)
		}
		if found != None || len(values) != 1 {
			return None, "", multiple
		}
		found, value = a, values[0]
	}
	return found, value, nil
}

// FromRequest reads x-amz-sdk-checksum-algorithm, the x-amz-checksum-*
// headers and x-amz-trailer. At most one checksum may be given, by header
// or trailer, and it must agree with x-amz-sdk-checksum-algorithm;
// violations are InvalidRequest, as S3 answers.
func FromRequest(h http.Header) (Expected, error) {
	var e Expected
	var sdk Algorithm
	if v := h.Get("X-Amz-Sdk-Checksum-Algorithm"); v != "" {
		a, ok := Parse(v)
		if !ok {
			return e, s3err.New(s3err.InvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
		sdk = a
	}
	a, raw, err := HeaderValue(h)
	if err != nil {
		return e, err
	}
	if a != None {
		v, err := a.Decode(raw)
		if err != nil {
			return e, err
		}
		e.Algorithm, e.Value = a, v
	}
	for _, t := range strings.Split(h.Get("X-Amz-Trailer"), ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		a, ok := FromHeader(t)
		if !ok {
			return e, s3err.New(s3err.InvalidRequest, "The value of x-amz-trailer, %s, is not a supported trailer.", t)
		}
		if e.Algorithm != None {
			return e, multiple
		}
		e.Algorithm, e.Trailer = a, true
	}
	switch {
	case sdk != None && e.Algorithm == None:
		e.Algorithm = sdk
	case sdk != None && sdk != e.Algorithm:
		return e, s3err.New(s3err.InvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid.")
	}
	return e, nil
}

var multiple = s3err.New(s3err.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")

// CompositeSum is the COMPOSITE multipart checksum: the checksum of the
// concatenated binary part checksums.
func CompositeSum(a Algorithm, parts [][]byte) []byte {
	h := New(a)
	if h == nil {
		return nil
	}
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// FormatComposite renders a composite checksum as S3 returns it: base64,
// then "-" and the number of parts.
func FormatComposite(sum []byte, parts int) string {
	return Encode(sum) + "-" + strconv.Itoa(parts)
}
