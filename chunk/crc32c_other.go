//go:build !amd64

package chunk

import "hash/crc32"

// hasAVX512CLMUL: amd64 only.
const hasAVX512CLMUL = false

// updateCastagnoli is crc32.Update(crc, castagnoli, p); amd64 has a faster
// one for CPUs with AVX-512 VPCLMULQDQ.
func updateCastagnoli(crc uint32, p []byte) uint32 {
	return crc32.Update(crc, castagnoli, p)
}
