package sse

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/minio/sio"
)

func mustKey(t *testing.T) DataKey {
	t.Helper()
	dk, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func encrypt(t *testing.T, plain []byte, dk DataKey, stream uint32) []byte {
	t.Helper()
	er, err := Encrypt(bytes.NewReader(plain), dk, stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := io.ReadAll(er)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(c)) != EncryptedSize(int64(len(plain))) {
		t.Fatalf("%d plaintext bytes encrypted to %d, EncryptedSize says %d", len(plain), len(c), EncryptedSize(int64(len(plain))))
	}
	return c
}

func TestEncryptedSizeMatchesSio(t *testing.T) {
	for _, n := range []int64{0, 1, 100, packagePayload - 1, packagePayload, packagePayload + 1, 5*packagePayload + 7, 5 << 30} {
		want, err := sio.EncryptedSize(uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if got := EncryptedSize(n); got != int64(want) {
			t.Errorf("EncryptedSize(%d) = %d, sio says %d", n, got, want)
		}
	}
}

// Every range of streams of sizes around package boundaries decrypts to
// the same bytes of the plaintext, reading only its span.
func TestSpanRoundTrip(t *testing.T) {
	dk := mustKey(t)
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, size := range []int64{1, 17, packagePayload - 1, packagePayload, packagePayload + 1, 3*packagePayload + 100} {
		plain := make([]byte, size)
		rand.Read(plain)
		c := encrypt(t, plain, dk, 7)
		ranges := [][2]int64{{0, size}, {0, 1}, {size - 1, 1}, {0, 0}}
		for range 40 {
			off := rng.Int64N(size)
			ranges = append(ranges, [2]int64{off, 1 + rng.Int64N(size-off)})
		}
		for _, rg := range ranges {
			off, n := rg[0], rg[1]
			sp := SpanOf(size, off, n)
			if sp.CipherOff < 0 || sp.CipherOff+sp.CipherLen > int64(len(c)) {
				t.Fatalf("size %d range %d+%d: span %+v outside the %d-byte stream", size, off, n, sp, len(c))
			}
			pr, err := sp.Decrypt(bytes.NewReader(c[sp.CipherOff:sp.CipherOff+sp.CipherLen]), dk, 7)
			if err != nil {
				t.Fatalf("size %d range %d+%d: %v", size, off, n, err)
			}
			got, err := io.ReadAll(pr)
			if err != nil {
				t.Fatalf("size %d range %d+%d: %v", size, off, n, err)
			}
			if !bytes.Equal(got, plain[off:off+n]) {
				t.Fatalf("size %d range %d+%d: wrong plaintext", size, off, n)
			}
			var buf bytes.Buffer
			wrote, err := sp.DecryptTo(&buf, bytes.NewReader(c[sp.CipherOff:sp.CipherOff+sp.CipherLen]), dk, 7)
			if err != nil || wrote != n || !bytes.Equal(buf.Bytes(), plain[off:off+n]) {
				t.Fatalf("size %d range %d+%d: DecryptTo wrote %d bytes (equal: %v), %v", size, off, n, wrote, bytes.Equal(buf.Bytes(), plain[off:off+n]), err)
			}
		}
	}
}

func TestDecryptRefusesWrongKeyStreamAndDamage(t *testing.T) {
	dk := mustKey(t)
	plain := make([]byte, 2*packagePayload+5)
	rand.Read(plain)
	c := encrypt(t, plain, dk, 3)
	read := func(c []byte, dk DataKey, stream uint32) error {
		sp := SpanOf(int64(len(plain)), 0, int64(len(plain)))
		pr, err := sp.Decrypt(bytes.NewReader(c), dk, stream)
		if err != nil {
			return err
		}
		_, err = io.ReadAll(pr)
		return err
	}
	if err := read(c, dk, 3); err != nil {
		t.Fatalf("intact stream: %v", err)
	}
	readTo := func(c []byte, dk DataKey, stream uint32) error {
		sp := SpanOf(int64(len(plain)), 0, int64(len(plain)))
		_, err := sp.DecryptTo(io.Discard, bytes.NewReader(c), dk, stream)
		return err
	}
	if err := readTo(c, dk, 3); err != nil {
		t.Fatalf("intact stream, DecryptTo: %v", err)
	}
	if readTo(c, mustKey(t), 3) == nil || readTo(c, dk, 4) == nil || readTo(c[:len(c)-1], dk, 3) == nil || readTo(c[:packageSize], dk, 3) == nil {
		t.Error("DecryptTo took another key, another stream, or a truncated stream")
	}
	if err := read(c, mustKey(t), 3); err == nil {
		t.Error("another data key decrypted the stream")
	}
	if err := read(c, dk, 4); err == nil {
		t.Error("another stream's key decrypted the stream")
	}
	bad := bytes.Clone(c)
	bad[packageSize+100] ^= 1
	if err := read(bad, dk, 3); err == nil {
		t.Error("a flipped bit decrypted")
	}
	if err := readTo(bad, dk, 3); err == nil {
		t.Error("a flipped bit decrypted (DecryptTo)")
	}
	if err := read(c[:len(c)-1], dk, 3); err == nil {
		t.Error("a truncated stream decrypted")
	}
}

func TestPieces(t *testing.T) {
	dk := mustKey(t)
	sizes := []int64{5 << 20, 3, packagePayload + 9, 1 << 20}
	var streams []Stream
	var plain, stored []byte
	for i, s := range sizes {
		p := make([]byte, s)
		rand.Read(p)
		plain = append(plain, p...)
		stored = append(stored, encrypt(t, p, dk, uint32(i+1))...)
		streams = append(streams, Stream{Number: uint32(i + 1), PlainSize: s})
	}
	total := int64(len(plain))
	rng := mrand.New(mrand.NewPCG(3, 4))
	ranges := [][2]int64{{0, total}, {sizes[0] - 1, 3}, {sizes[0], 3}, {total - 1, 1}}
	for range 30 {
		off := rng.Int64N(total)
		ranges = append(ranges, [2]int64{off, 1 + rng.Int64N(total-off)})
	}
	for _, rg := range ranges {
		var got []byte
		for _, pc := range Pieces(streams, rg[0], rg[1]) {
			c := stored[pc.Base+pc.Span.CipherOff : pc.Base+pc.Span.CipherOff+pc.Span.CipherLen]
			pr, err := pc.Span.Decrypt(bytes.NewReader(c), dk, pc.Stream)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(pr)
			if err != nil {
				t.Fatalf("range %v piece %+v: %v", rg, pc, err)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, plain[rg[0]:rg[0]+rg[1]]) {
			t.Fatalf("range %v: wrong plaintext", rg)
		}
	}
}

func TestSealOpen(t *testing.T) {
	dk := mustKey(t)
	keys, err := ParseMasterKeys("# comment\nnew:" + b64key(1) + "\n\nold:" + b64key(2) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	id, sealed, err := keys.Seal(dk)
	if err != nil || id != "new" {
		t.Fatalf("Seal = %q, %v", id, err)
	}
	if got, err := keys.Open(id, sealed); err != nil || got != dk {
		t.Fatalf("Open: %v", err)
	}
	if _, err := keys.Open("old", sealed); !errors.Is(err, ErrSealedKey) {
		t.Errorf("opened under another master key: %v", err)
	}
	if _, err := keys.Open("gone", sealed); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("unknown master key: %v", err)
	}
	client := bytes.Repeat([]byte{9}, KeySize)
	cs, err := SealForClient(client, dk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenForClient(client, cs); err != nil || got != dk {
		t.Fatalf("OpenForClient: %v", err)
	}
	if _, err := OpenForClient(bytes.Repeat([]byte{8}, KeySize), cs); !errors.Is(err, ErrSealedKey) {
		t.Errorf("another client key: %v", err)
	}
	// A client key never opens an SSE-S3 record, even if it equals a master key.
	if _, err := OpenForClient(bytes.Repeat([]byte{1}, KeySize), sealed); !errors.Is(err, ErrSealedKey) {
		t.Errorf("SSE-C opened an SSE-S3 key: %v", err)
	}
	for _, bad := range [][]byte{nil, sealed[:10], append(bytes.Clone(sealed), 0)} {
		if _, err := keys.Open(id, bad); !errors.Is(err, ErrSealedKey) {
			t.Errorf("Open(%d bytes) = %v", len(bad), err)
		}
	}
}

func b64key(fill byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, KeySize))
}

func TestParseMasterKeys(t *testing.T) {
	for _, tc := range []struct {
		text, err string
	}{
		{"a:" + b64key(1), ""},
		{"  a:" + b64key(1) + "  \n#x\nb.c-d_e:" + b64key(2), ""},
		{"", "no master key"},
		{"# only a comment", "no master key"},
		{"a " + b64key(1), "want id:base64-key"},
		{":" + b64key(1), "1 to 64"},
		{"a/b:" + b64key(1), "only letters"},
		{"a:" + base64.StdEncoding.EncodeToString([]byte("short")), "32 random bytes"},
		{"a:!!!", "32 random bytes"},
		{"a:" + b64key(1) + "\na:" + b64key(2), "given twice"},
	} {
		_, err := ParseMasterKeys(tc.text)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseMasterKeys(%q) = %v, want %q", tc.text, err, tc.err)
		}
	}
}

func FuzzParseMasterKeys(f *testing.F) {
	f.Add("a:" + b64key(1))
	f.Add("#c\n\nx:" + b64key(2) + "\ny:" + b64key(3))
	f.Add("a:b:c")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseMasterKeys(text)
		if err != nil {
			return
		}
		if len(m.keys[m.Current()]) != KeySize {
			t.Fatalf("current key %q has %d bytes", m.Current(), len(m.keys[m.Current()]))
		}
		dk := DataKey{1}
		id, sealed, err := m.Seal(dk)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.Open(id, sealed); err != nil || got != dk {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func TestOpaqueETag(t *testing.T) {
	sum := md5.Sum([]byte("data"))
	dk1, dk2 := mustKey(t), mustKey(t)
	a, err := OpaqueETag(dk1, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := OpaqueETag(dk1, sum[:])
	c, _ := OpaqueETag(dk2, sum[:])
	if a != b || a == c || a == hex.EncodeToString(sum[:]) || len(a) != 32 {
		t.Errorf("OpaqueETag: %s, again %s, another key %s, the MD5 %x: want stable, per key, not the MD5, 32 hex digits", a, b, c, sum)
	}
	if _, err := OpaqueETag(dk1, sum[:5]); err == nil {
		t.Error("OpaqueETag of 5 bytes succeeded")
	}
}

// A range read partly through Decrypt goes on from the end of the package
// it stopped in with Rest, as the gateway's GET does after its first read.
func TestSpanRest(t *testing.T) {
	dk := mustKey(t)
	size := int64(5*packagePayload + 321)
	plain := make([]byte, size)
	rand.Read(plain)
	c := encrypt(t, plain, dk, 0)
	for _, tc := range [][3]int64{{0, size, 4096}, {100, size - 100, 4096}, {packagePayload, 2 * packagePayload, 0}, {packagePayload - 10, 30, 5}, {7, 3 * packagePayload, packagePayload - 7}} {
		off, n, k := tc[0], tc[1], tc[2]
		sp := SpanOf(size, off, n)
		head := k + sp.ToPackageEnd(k)
		if head > n || (off+head)%packagePayload != 0 && head != n {
			t.Fatalf("range %d+%d after %d: ToPackageEnd leads to %d, not a package end", off, n, k, off+head)
		}
		pr, err := sp.Decrypt(bytes.NewReader(c[sp.CipherOff:sp.CipherOff+sp.CipherLen]), dk, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, head)
		if _, err := io.ReadFull(pr, got); err != nil {
			t.Fatal(err)
		}
		if head < n {
			rest := sp.Rest(head)
			var buf bytes.Buffer
			if _, err := rest.DecryptTo(&buf, bytes.NewReader(c[rest.CipherOff:rest.CipherOff+rest.CipherLen]), dk, 0); err != nil {
				t.Fatal(err)
			}
			got = append(got, buf.Bytes()...)
		}
		if !bytes.Equal(got, plain[off:off+n]) {
			t.Errorf("range %d+%d read %d bytes then the rest: wrong plaintext", off, n, k)
		}
	}
}
