package checksum

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Published check values ("123456789") and S3 example values.
func TestKnownValues(t *testing.T) {
	check := []byte("123456789")
	for _, tc := range []struct {
		a    Algorithm
		data []byte
		want string // hex of the big-endian digest
	}{
		{CRC32, check, "cbf43926"},
		{CRC32C, check, "e3069283"},
		{CRC64NVME, check, "ae8b14860a799888"},
		{SHA1, []byte("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{SHA256, []byte("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	} {
		if got := hexs(Sum(tc.a, tc.data)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.a, got, tc.want)
		}
	}
	// The trailer of the S3 streaming-trailer example: CRC32C of 66560 'a'.
	if got := Encode(Sum(CRC32C, bytes.Repeat([]byte("a"), 66560))); got != "sOO8/Q==" {
		t.Errorf("CRC32C example: %s, want sOO8/Q==", got)
	}
	if got := Encode(Sum(CRC32, nil)); got != "AAAAAA==" {
		t.Errorf("empty CRC32: %s", got)
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, d[c>>4], d[c&15])
	}
	return string(out)
}

func TestNames(t *testing.T) {
	for _, a := range Algorithms() {
		if p, ok := Parse(a.String()); !ok || p != a {
			t.Errorf("Parse(%s) = %v %v", a, p, ok)
		}
		if p, ok := FromHeader(http.CanonicalHeaderKey(a.Header())); !ok || p != a {
			t.Errorf("FromHeader(%s) = %v %v", a.Header(), p, ok)
		}
		if len(Sum(a, nil)) != a.Size() {
			t.Errorf("%s: size %d", a, a.Size())
		}
	}
	if a, ok := Parse("crc64nvme"); !ok || a != CRC64NVME || CRC64NVME.Header() != "x-amz-checksum-crc64nvme" {
		t.Error("lower-case name")
	}
	for _, bad := range []string{"", "SHA384", "CRC", "crc32x"} {
		if _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) ok", bad)
		}
	}
	if _, ok := FromHeader("x-amz-checksum-"); ok {
		t.Error("FromHeader of the bare prefix")
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		a     Algorithm
		value string
		ok    bool
	}{
		{CRC32, "AAAAAA==", true},
		{CRC32, " sOO8/Q== ", true},
		{CRC32, "AAAAAAA=", false}, // 5 bytes
		{CRC32, "AAAAAA", false},   // unpadded
		{CRC32, "AAAA!A==", false}, // not base64
		{CRC64NVME, "AAAAAA==", false},
		{CRC64NVME, "AAAAAAAAAAA=", true},
		{SHA256, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", true},
		{SHA1, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", false},
		{None, "", false},
	}
	for _, tt := range tests {
		_, err := tt.a.Decode(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("%s %q: %v", tt.a, tt.value, err)
		}
		if err != nil && !errors.Is(err, s3err.InvalidRequest) {
			t.Errorf("%s %q: %v, want InvalidRequest", tt.a, tt.value, err)
		}
	}
	if _, err := DecodeContentMD5("1B2M2Y8AsgTpgAmY7PhCfg=="); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "1B2M2Y8AsgTpgAmY7PhC", "d41d8cd98f00b204e9800998ecf8427e"} {
		if _, err := DecodeContentMD5(bad); !errors.Is(err, s3err.InvalidDigest) {
			t.Errorf("Content-MD5 %q: %v", bad, err)
		}
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    Expected
		err     bool
	}{
		{"nothing", nil, Expected{}, false},
		{"header", map[string]string{"X-Amz-Checksum-Crc32c": "sOO8/Q=="}, Expected{Algorithm: CRC32C, Value: []byte{0xb0, 0xe3, 0xbc, 0xfd}}, false},
		{"header and sdk", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Sdk-Checksum-Algorithm": "CRC32"}, Expected{Algorithm: CRC32, Value: []byte{0, 0, 0, 0}}, false},
		{"trailer", map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc64nvme", "X-Amz-Sdk-Checksum-Algorithm": "crc64nvme"}, Expected{Algorithm: CRC64NVME, Trailer: true}, false},
		{"sdk only", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA256"}, Expected{Algorithm: SHA256}, false},
		{"mode and type ignored", map[string]string{"X-Amz-Checksum-Mode": "ENABLED", "X-Amz-Checksum-Type": "FULL_OBJECT", "X-Amz-Checksum-Algorithm": "CRC32"}, Expected{}, false},
		{"two headers", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Checksum-Crc32c": "AAAAAA=="}, Expected{}, true},
		{"header and trailer", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Trailer": "x-amz-checksum-crc32"}, Expected{}, true},
		{"sdk disagrees", map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA==", "X-Amz-Sdk-Checksum-Algorithm": "SHA1"}, Expected{}, true},
		{"bad sdk", map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA384"}, Expected{}, true},
		{"bad value", map[string]string{"X-Amz-Checksum-Sha1": "AAAAAA=="}, Expected{}, true},
		{"unknown checksum header", map[string]string{"X-Amz-Checksum-Sha384": "AAAAAAAAAAA="}, Expected{}, true},
		{"MD5", map[string]string{"X-Amz-Checksum-Md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, Expected{Algorithm: MD5, Value: Sum(MD5, nil)}, false},
		{"unknown trailer", map[string]string{"X-Amz-Trailer": "x-amz-meta-foo"}, Expected{}, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		got, err := FromRequest(h)
		if tt.err {
			if !errors.Is(err, s3err.InvalidRequest) {
				t.Errorf("%s: err %v, want InvalidRequest", tt.name, err)
			}
			continue
		}
		if err != nil || got.Algorithm != tt.want.Algorithm || got.Trailer != tt.want.Trailer || !bytes.Equal(got.Value, tt.want.Value) {
			t.Errorf("%s: %+v %v, want %+v", tt.name, got, err, tt.want)
		}
	}
}

// TestXXHashVectors: the XXHASH digests of the empty input, from the
// xxHash reference, travel big-endian (the 128-bit one high half first),
// as the SDKs encode them.
func TestXXHashVectors(t *testing.T) {
	for _, tc := range []struct {
		a    Algorithm
		want string
	}{
		{XXHASH64, "ef46db3751d8e999"},
		{XXHASH3, "2d06800538d394c2"},
		{XXHASH128, "99aa06d3014798d86001c324468d497f"},
	} {
		if got := hex.EncodeToString(Sum(tc.a, nil)); got != tc.want {
			t.Errorf("%s of nothing = %s, want %s", tc.a, got, tc.want)
		}
	}
}

func TestComposite(t *testing.T) {
	parts := [][]byte{[]byte("part one"), []byte("part two"), []byte("3")}
	var sums [][]byte
	var concat []byte
	for _, p := range parts {
		s := Sum(SHA256, p)
		sums = append(sums, s)
		concat = append(concat, s...)
	}
	got := CompositeSum(SHA256, sums)
	if !bytes.Equal(got, Sum(SHA256, concat)) {
		t.Error("composite is not the checksum of the concatenated sums")
	}
	if s := FormatComposite(got, 3); s != base64.StdEncoding.EncodeToString(got)+"-3" {
		t.Errorf("FormatComposite = %s", s)
	}
}

func TestTypes(t *testing.T) {
	for _, tc := range []struct {
		a     Algorithm
		typ   Type
		valid bool
	}{
		{CRC32, Composite, true}, {CRC32, FullObject, true}, {CRC32C, FullObject, true},
		{CRC64NVME, FullObject, true}, {CRC64NVME, Composite, false},
		{SHA1, Composite, true}, {SHA256, FullObject, false},
	} {
		if ValidType(tc.a, tc.typ) != tc.valid {
			t.Errorf("ValidType(%s, %s) = %v", tc.a, tc.typ, !tc.valid)
		}
	}
	if DefaultType(CRC64NVME) != FullObject || DefaultType(CRC32) != Composite {
		t.Error("DefaultType")
	}
	if ty, ok := ParseType("full_object"); !ok || ty != FullObject || ty.String() != "FULL_OBJECT" {
		t.Error("ParseType")
	}
	if _, ok := ParseType("BOTH"); ok {
		t.Error("ParseType accepted BOTH")
	}
}

// TestCombine checks that combining part CRCs gives the CRC of the
// concatenation, for every CRC, random splits, and empty parts.
func TestCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, a := range []Algorithm{CRC32, CRC32C, CRC64NVME} {
		for trial := range 50 {
			nparts := 1 + rng.IntN(12)
			cuts := []int{0}
			for range nparts - 1 {
				cuts = append(cuts, rng.IntN(len(data)+1))
			}
			cuts = append(cuts, len(data))
			sortInts(cuts)
			end := cuts[len(cuts)-1]
			if trial%5 == 0 {
				end = rng.IntN(100) // tiny objects
				for i := range cuts {
					cuts[i] = min(cuts[i], end)
				}
			}
			var parts []Part
			for i := 1; i < len(cuts); i++ {
				p := data[cuts[i-1]:cuts[i]]
				parts = append(parts, Part{Sum: Sum(a, p), Size: int64(len(p))})
			}
			got, err := CombineParts(a, parts)
			if err != nil {
				t.Fatal(err)
			}
			if want := Sum(a, data[:end]); !bytes.Equal(got, want) {
				t.Fatalf("%s trial %d cuts %v: %x, want %x", a, trial, cuts, got, want)
			}
		}
		if got, _ := CombineParts(a, nil); !bytes.Equal(got, Sum(a, nil)) {
			t.Errorf("%s: no parts", a)
		}
		got, err := Combine(a, Sum(a, []byte("hello, ")), Sum(a, []byte("world")), 5)
		if err != nil || !bytes.Equal(got, Sum(a, []byte("hello, world"))) {
			t.Errorf("%s Combine: %x %v", a, got, err)
		}
	}
	// Long parts exercise the high powers of x: B is 1 GiB + 12345 zero
	// bytes, whose CRC is fed directly for comparison.
	zeros := make([]byte, 1<<20)
	const n = 1<<30 + 12345
	for _, a := range []Algorithm{CRC32C, CRC64NVME} {
		hb, hab := New(a), New(a)
		hab.Write([]byte("prefix"))
		for left := n; left > 0; left -= min(left, len(zeros)) {
			hb.Write(zeros[:min(left, len(zeros))])
			hab.Write(zeros[:min(left, len(zeros))])
		}
		got, err := Combine(a, Sum(a, []byte("prefix")), hb.Sum(nil), n)
		if err != nil || !bytes.Equal(got, hab.Sum(nil)) {
			t.Errorf("%s with a %d-byte part: %x, want %x (%v)", a, n, got, hab.Sum(nil), err)
		}
	}
	if _, err := CombineParts(SHA256, []Part{{Sum(SHA256, nil), 0}}); !errors.Is(err, ErrNotCombinable) {
		t.Error("SHA256 combined")
	}
	if _, err := CombineParts(CRC32, []Part{{[]byte{1, 2}, 0}}); !errors.Is(err, ErrNotCombinable) {
		t.Error("short CRC combined")
	}
}

func sortInts(s []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func FuzzChecksumHeader(f *testing.F) {
	f.Add("x-amz-checksum-crc32", "AAAAAA==", "CRC32", "")
	f.Add("x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "", "x-amz-checksum-crc32c")
	f.Add("X-Amz-Checksum-", "====", "crc", ",,,")
	f.Fuzz(func(t *testing.T, name, value, sdk, trailer string) {
		h := http.Header{}
		h[http.CanonicalHeaderKey(name)] = []string{value}
		h.Set("X-Amz-Sdk-Checksum-Algorithm", sdk)
		h.Set("X-Amz-Trailer", trailer)
		e, err := FromRequest(h)
		if err != nil {
			var se *s3err.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *s3err.Error", err)
			}
			return
		}
		if e.Value != nil && len(e.Value) != e.Algorithm.Size() {
			t.Fatalf("value of %d bytes for %s", len(e.Value), e.Algorithm)
		}
		if e.Value != nil && e.Trailer {
			t.Fatal("value and trailer at once")
		}
		if a, ok := FromHeader(name); ok {
			if v, err := a.Decode(value); err == nil && Encode(v) != trimmed(value) {
				t.Fatalf("%q decodes but does not round-trip", value)
			}
		}
	})
}

func trimmed(s string) string { return string(bytes.TrimSpace([]byte(s))) }

// BenchmarkChecksum: each algorithm over 1 MiB writes, what a body
// streamed through it costs.
func BenchmarkChecksum(b *testing.B) {
	buf := make([]byte, 1<<20)
	for _, a := range Algorithms() {
		b.Run(a.String(), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			h := New(a)
			for b.Loop() {
				h.Write(buf)
			}
		})
	}
}

func BenchmarkCombine10000Parts(b *testing.B) {
	parts := make([]Part, 10000)
	for i := range parts {
		parts[i] = Part{Sum: Sum(CRC64NVME, []byte{byte(i)}), Size: 5 << 20}
	}
	for b.Loop() {
		if _, err := CombineParts(CRC64NVME, parts); err != nil {
			b.Fatal(err)
		}
	}
}
