//go:build amd64 && gc && !purego

package sha256lanes

import "golang.org/x/sys/cpu"

// sha256X16Avx512 compresses up to 16 independent SHA-256 streams at once,
// one per 32-bit lane of the AVX-512 registers (the kernel of
// github.com/minio/sha256-simd, kernel_amd64.s). digests holds the eight
// state words of the 16 lanes, word j of lane i at bytes (j*16+i)*4, native
// order. mask has one entry per 64-byte block round: bit i set when lane i
// hashes a block in that round. A lane reads inputs[i][64*r:] in round r, so
// its bits must be set from round 0 for as many rounds as it has blocks;
// lanes whose bit is clear neither read their input nor change their state.
//
//go:noescape
func sha256X16Avx512(digests *[512]byte, scratch *[512]byte, table *[512]uint64, mask []uint64, inputs [16][]byte)

// hasKernel: the kernel uses AVX-512F/BW/DQ/VL instructions (the same
// check as sha256-simd's).
var hasKernel = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL

func block16(digests *[512]byte, scratch *[512]byte, mask []uint64, inputs *[16][]byte) {
	sha256X16Avx512(digests, scratch, &kTable, mask, *inputs)
}

// kTable is SHA-256's round constants, each repeated in all 16 lanes.
var kTable = func() (t [512]uint64) {
	for i, k := range [64]uint32{
		0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
		0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
		0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
		0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
		0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
		0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
		0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
		0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
	} {
		for j := range 8 {
			t[i*8+j] = uint64(k)<<32 | uint64(k)
		}
	}
	return t
}()
