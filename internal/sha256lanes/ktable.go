package sha256lanes

import (
	"math"
	"math/bits"
)

// kTable is SHA-256's round constants: the first 32 bits of the fractional
// parts of the cube roots of the first 64 primes (FIPS 180-4, 4.2.2),
// computed exactly: floor(∛(p·2⁹⁶)) mod 2³².
var kTable = func() (t [64]uint32) {
	p := uint64(1)
	for i := range t {
		p = nextPrime(p)
		// A float64 estimate (∛p·2³² < 2³⁶, so off by at most one or
		// two), made exact by comparing cubes in 128 bits.
		x := uint64(math.Cbrt(float64(p)) * (1 << 32))
		for cubeAbove(x, p) {
			x--
		}
		for !cubeAbove(x+1, p) {
			x++
		}
		t[i] = uint32(x)
	}
	return t
}()

// cubeAbove reports whether x³ > p·2⁹⁶, for x < 2³⁶ and p < 2³².
func cubeAbove(x, p uint64) bool {
	hi, lo := bits.Mul64(x, x) // x² < 2⁷², hi < 2⁸
	h2, l2 := bits.Mul64(lo, x)
	hi = hi*x + h2 // x³ = hi·2⁶⁴ + l2
	want := p << 32
	return hi > want || (hi == want && l2 > 0)
}

func nextPrime(n uint64) uint64 {
	for n++; ; n++ {
		prime := true
		for d := uint64(2); d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}
