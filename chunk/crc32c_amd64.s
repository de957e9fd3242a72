// Copyright 2011 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE-go file.
//
// CRC32C (Castagnoli) by carry-less multiplication, folding 64 bytes a
// step in the four 128-bit lanes of a ZMM register. This is hash/crc32's
// ieeeCLMUL AVX-512 path from the Go source tree (BSD licence, Copyright
// 2011 The Go Authors; based on Intel's "Fast CRC Computation for Generic
// Polynomials Using PCLMULQDQ" and the Linux kernel's crc32-pclmul) with the
// Castagnoli polynomial's folding constants in place of IEEE's. hash/crc32
// computes Castagnoli with the SSE4.2 CRC32 instruction, half the speed of
// this on a CPU with VPCLMULQDQ.

#include "textflag.h"

// Constants, bit-reflected and shifted left by one as the algorithm wants
// them (P = 0x1EDC6F41):
//   k1 = x^(4*128+32) mod P, k2 = x^(4*128-32) mod P (fold 64 bytes)
//   k3 = x^(128+32) mod P,   k4 = x^(128-32) mod P   (fold 16 bytes)
//   k5 = x^64 mod P; poly = P, mu = x^64 / P (Barrett reduction).
// TestCastagnoliConstants recomputes them.
DATA c2c1<>+0(SB)/8, $0x0740eef02
DATA c2c1<>+8(SB)/8, $0x09e4addf8
DATA c2c1<>+16(SB)/8, $0x0740eef02
DATA c2c1<>+24(SB)/8, $0x09e4addf8
DATA c2c1<>+32(SB)/8, $0x0740eef02
DATA c2c1<>+40(SB)/8, $0x09e4addf8
DATA c2c1<>+48(SB)/8, $0x0740eef02
DATA c2c1<>+56(SB)/8, $0x09e4addf8

DATA c4c3<>+0(SB)/8, $0x0f20c0dfe
DATA c4c3<>+8(SB)/8, $0x14cd00bd6
DATA cupoly<>+0(SB)/8, $0x105ec76f1
DATA cupoly<>+8(SB)/8, $0x0dea713f1
DATA c5<>+0(SB)/8, $0x0dd45aab8

GLOBL c2c1<>(SB), RODATA, $64
GLOBL c4c3<>(SB), RODATA, $16
GLOBL cupoly<>(SB), RODATA, $16
GLOBL c5<>(SB), RODATA, $8

// func castagnoliAVX512(crc uint32, p []byte) uint32
// crc is the internal (inverted) state. len(p) must be at least 128 and a
// multiple of 16; the CPU must have AVX-512F and VPCLMULQDQ.
TEXT ·castagnoliAVX512(SB), NOSPLIT, $0
	MOVL crc+0(FP), X0
	MOVQ p+8(FP), SI
	MOVQ p_len+16(FP), CX

	// Zero Z10, put the initial CRC in its low 32 bits and fold it into
	// the first 64 bytes.
	VPXORQ    Z10, Z10, Z10
	VMOVAPS   X0, X10
	VMOVDQU64 (SI), Z1
	VPXORQ    Z10, Z1, Z1
	ADDQ      $64, SI
	SUBQ      $64, CX

	VMOVDQU64 c2c1<>+0(SB), Z0

loop64:
	VMOVDQU64  (SI), Z11
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z11, Z5, Z1

	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JGE  loop64

	// The four 128-bit lanes into X1-X4.
	VEXTRACTF32X4 $1, Z1, X2
	VEXTRACTF32X4 $2, Z1, X3
	VEXTRACTF32X4 $3, Z1, X4
	VZEROUPPER

	// Fold them into X1.
	MOVOU     c4c3<>+0(SB), X0

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X2, X1

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X3, X1

	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X4, X1

	CMPQ CX, $16
	JB   finish

remain16:
	MOVOU     (SI), X10
	MOVOA     X1, X5
	PCLMULQDQ $0, X0, X1
	PCLMULQDQ $0x11, X0, X5
	PXOR      X5, X1
	PXOR      X10, X1
	SUBQ      $16, CX
	ADDQ      $16, SI
	CMPQ      CX, $16
	JGE       remain16

finish:
	// 128 bits to 64, then Barrett reduction to 32.
	PCMPEQB   X3, X3
	PCLMULQDQ $1, X1, X0
	PSRLDQ    $8, X1
	PXOR      X0, X1

	MOVOA X1, X2
	MOVQ  c5<>+0(SB), X0

	PSRLQ     $32, X3
	PSRLDQ    $4, X2
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	MOVOU cupoly<>+0(SB), X0

	MOVOA     X1, X2
	PAND      X3, X1
	PCLMULQDQ $0x10, X0, X1
	PAND      X3, X1
	PCLMULQDQ $0, X0, X1
	PXOR      X2, X1

	PEXTRD $1, X1, AX
	MOVL   AX, ret+32(FP)
	RET
