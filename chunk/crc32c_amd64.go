package chunk

import (
	"hash/crc32"

	"golang.org/x/sys/cpu"
)

// hasAVX512CLMUL tells whether castagnoliAVX512 can run. x/sys/cpu's
// AVX-512 flags include the OS saving the ZMM registers.
var hasAVX512CLMUL = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41

// clmulMin is the length from which castagnoliAVX512 beats hash/crc32's
// SSE4.2 code: below it the fixed cost of the final folds dominates.
const clmulMin = 1024

//go:noescape
func castagnoliAVX512(crc uint32, p []byte) uint32

// updateCastagnoli is crc32.Update(crc, castagnoli, p), by carry-less
// multiplication on CPUs with AVX-512 VPCLMULQDQ: twice the speed of
// hash/crc32's CRC32-instruction code there (BenchmarkChecksum), and a
// gateway takes the CRC32C of 1.5 bytes per byte stored at 4+2, a blob
// node of every byte it receives.
func updateCastagnoli(crc uint32, p []byte) uint32 {
	if !hasAVX512CLMUL || len(p) < clmulMin {
		return crc32.Update(crc, castagnoli, p)
	}
	do := len(p) &^ 15
	crc = ^castagnoliAVX512(^crc, p[:do])
	if do == len(p) {
		return crc
	}
	return crc32.Update(crc, castagnoli, p[do:])
}
