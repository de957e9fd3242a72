package checksum

import (
	"encoding/binary"
	"errors"
	"sync"
)

// FULL_OBJECT checksums of multipart uploads: the CRC of the whole object
// from the parts' CRCs and sizes, without reading the data again.
//
// A CRC with pre- and post-inversion satisfies
//
//	crc(A‖B) = crc(A)·x^(8·|B|) mod P  ⊕  crc(B)
//
// in GF(2)[x], where multiplication by x^(8·|B|) is the effect of feeding
// |B| zero bytes through the register. This is zlib's crc32_combine
// (1.2.12 and later): x^(8n) mod P is built from a table of x^(2^k) mod P,
// so combining costs O(log n) polynomial multiplications, not O(n) work
// or zlib's older 32×32 GF(2) matrix squaring. It is written here once for
// any reflected polynomial of width up to 64.

// poly is a reflected CRC polynomial in GF(2) with its table of
// x^(2^k) mod P.
type poly struct {
	p     uint64 // reflected polynomial
	top   uint64 // x^0 in the reflected representation: the highest bit
	width int
	x2n   [67]uint64 // x^(2^k) mod P; 67 covers lengths up to 2^63 bytes (k starts at 3)
}

func newPoly(p uint64, width int) *poly {
	g := &poly{p: p, top: 1 << (width - 1), width: width}
	x := g.top >> 1 // x^1
	for k := range g.x2n {
		g.x2n[k] = x
		x = g.mul(x, x)
	}
	return g
}

// mul returns a·b mod P.
func (g *poly) mul(a, b uint64) uint64 {
	if a == 0 {
		return 0
	}
	var prod uint64
	for m := g.top; ; m >>= 1 {
		if a&m != 0 {
			prod ^= b
			if a&(m-1) == 0 {
				return prod
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ g.p
		} else {
			b >>= 1
		}
	}
}

// xpow8n returns x^(8·n) mod P.
func (g *poly) xpow8n(n uint64) uint64 {
	r := g.top // x^0
	for k := 3; n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			r = g.mul(g.x2n[k], r)
		}
	}
	return r
}

// combine returns crc(A‖B) from crc(A), crc(B) and |B|.
func (g *poly) combine(crcA, crcB uint64, lenB uint64) uint64 {
	return g.mul(g.xpow8n(lenB), crcA) ^ crcB
}

// Reflected polynomials: CRC-32 (ISO-HDLC), CRC-32C (Castagnoli) and
// CRC-64/NVME.
var polys = sync.OnceValue(func() map[Algorithm]*poly {
	return map[Algorithm]*poly{
		CRC32:     newPoly(0xEDB88320, 32),
		CRC32C:    newPoly(0x82F63B78, 32),
		CRC64NVME: newPoly(0x9A6C9329AC4BC9B5, 64),
	}
})

// Part is one part's checksum and size, for CombineParts.
type Part struct {
	Sum  []byte // big-endian digest, as the part's checksum header carries it
	Size int64
}

// ErrNotCombinable is returned for algorithms without FULL_OBJECT support
// and for malformed part sums.
var ErrNotCombinable = errors.New("checksum: only CRC32, CRC32C and CRC64NVME part checksums combine")

// Combine returns the checksum of A‖B from the checksums of A and B and
// the length of B.
func Combine(a Algorithm, sumA, sumB []byte, lenB int64) ([]byte, error) {
	return CombineParts(a, []Part{{sumA, 0}, {sumB, lenB}})
}

// CombineParts returns the FULL_OBJECT checksum of the concatenation of
// the parts, from their checksums and sizes alone. The first part's size
// is not needed. With no parts it returns the checksum of no bytes.
func CombineParts(a Algorithm, parts []Part) ([]byte, error) {
	if !a.IsCRC() {
		return nil, ErrNotCombinable
	}
	g := polys()[a]
	size := a.Size()
	var crc uint64
	for i, p := range parts {
		if len(p.Sum) != size || p.Size < 0 {
			return nil, ErrNotCombinable
		}
		v := readBE(p.Sum)
		if i == 0 {
			crc = v
			continue
		}
		crc = g.combine(crc, v, uint64(p.Size))
	}
	if len(parts) == 0 {
		return Sum(a, nil), nil
	}
	out := make([]byte, size)
	if size == 4 {
		binary.BigEndian.PutUint32(out, uint32(crc))
	} else {
		binary.BigEndian.PutUint64(out, crc)
	}
	return out, nil
}

func readBE(b []byte) uint64 {
	if len(b) == 4 {
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}
