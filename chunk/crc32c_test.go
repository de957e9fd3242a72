package chunk

import (
	"hash/crc32"
	"math/bits"
	"testing"
)

// TestUpdateCastagnoli checks updateCastagnoli against hash/crc32 for every
// length up to a few KiB at every alignment, for large blocks, and when a
// CRC is continued over pieces.
func TestUpdateCastagnoli(t *testing.T) {
	data := randBytes(11, 1<<20+77)
	for off := range 64 {
		for n := 0; n <= 4200; n += 1 + n/64 {
			p := data[off : off+n]
			if got, want := updateCastagnoli(0, p), crc32.Checksum(p, castagnoli); got != want {
				t.Fatalf("offset %d, %d bytes: %08x, want %08x", off, n, got, want)
			}
			if got, want := updateCastagnoli(0xdeadbeef, p), crc32.Update(0xdeadbeef, castagnoli, p); got != want {
				t.Fatalf("offset %d, %d bytes, crc continued: %08x, want %08x", off, n, got, want)
			}
		}
	}
	for _, n := range []int{256 << 10, 256<<10 + 1, 1 << 20, len(data) - 3} {
		if got, want := Checksum(data[3:3+n]), crc32.Checksum(data[3:3+n], castagnoli); got != want {
			t.Fatalf("%d bytes: %08x, want %08x", n, got, want)
		}
	}
	want := crc32.Checksum(data, castagnoli)
	crc := uint32(0)
	for p := data; len(p) > 0; {
		n := min(len(p), 1000+len(p)%5000)
		crc = updateCastagnoli(crc, p[:n])
		p = p[n:]
	}
	if crc != want {
		t.Fatalf("in pieces: %08x, want %08x", crc, want)
	}
	if !hasAVX512CLMUL {
		t.Log("no AVX-512 VPCLMULQDQ here: only hash/crc32's code was tested")
	}
}

// TestCastagnoliConstants recomputes the folding constants in
// crc32c_amd64.s from the polynomial.
func TestCastagnoliConstants(t *testing.T) {
	const p = 0x11EDC6F41        // x^32 + Castagnoli
	xmod := func(n int) uint64 { // x^n mod P
		r := uint64(1)
		for range n {
			r <<= 1
			if r>>32&1 != 0 {
				r ^= p
			}
		}
		return r
	}
	k := func(n int) uint64 { return uint64(bits.Reverse32(uint32(xmod(n)))) << 1 }
	// floor(x^64 / P), 33 bits, by long division: x^64's own term gives
	// the quotient's top bit and leaves (P - x^32) << 32, which fits in 64.
	q := uint64(1) << 32
	rem := uint64(p&0xffffffff) << 32
	for i := 31; i >= 0; i-- {
		if rem>>uint(i+32)&1 != 0 {
			q |= 1 << uint(i)
			rem ^= p << uint(i)
		}
	}
	mu := bits.Reverse64(q) >> 31
	poly := bits.Reverse64(p) >> 31
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"k1", 0x0740eef02, k(4*128 + 32)},
		{"k2", 0x09e4addf8, k(4*128 - 32)},
		{"k3", 0x0f20c0dfe, k(128 + 32)},
		{"k4", 0x14cd00bd6, k(128 - 32)},
		{"k5", 0x0dd45aab8, k(64)},
		{"poly", 0x105ec76f1, poly},
		{"mu", 0x0dea713f1, mu},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
