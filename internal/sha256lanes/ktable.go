package sha256lanes

import "math/big"

// kTable is SHA-256's round constants: the first 32 bits of the fractional
// parts of the cube roots of the first 64 primes (FIPS 180-4, 4.2.2),
// computed exactly, floor(cbrt(p·2⁹⁶)) mod 2³².
var kTable = func() (t [64]uint32) {
	p := uint64(1)
	for i := range t {
		p = nextPrime(p)
		n := new(big.Int).Lsh(new(big.Int).SetUint64(p), 96)
		// cbrt(p·2⁹⁶) < 2³⁶ for p < 2¹²: the largest x with x³ ≤ n, bit by bit.
		var x, cube big.Int
		for bit := 35; bit >= 0; bit-- {
			y := new(big.Int).SetBit(&x, bit, 1)
			if cube.Exp(y, big.NewInt(3), nil).Cmp(n) <= 0 {
				x.Set(y)
			}
		}
		t[i] = uint32(x.Uint64())
	}
	return t
}()

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
