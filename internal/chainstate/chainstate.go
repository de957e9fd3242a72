// Package chainstate moves the state of a stream hashed in SIMD lanes
// (internal/md5lanes, internal/sha256lanes) into and out of the standard
// library's hash of the same kind, through that hash's MarshalBinary
// format: the lanes compress whole blocks, and crypto/md5 or crypto/sha256
// does the rest (the partial block, the padding, the length, a piece with
// no company), so every sum is the standard library's by construction.
//
// crypto/md5's and crypto/sha256's marshalled states share one layout: a
// 4-byte magic, the chaining value as big-endian 32-bit words, the partial
// block padded to 64 bytes, and the length in bytes, big-endian.
package chainstate

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"unsafe"
)

var zeros [64]byte

// Size is the length of a marshalled state with words chaining words.
func Size(words int) int { return 4 + 4*words + 64 + 8 }

// Load sets h (crypto/md5 or crypto/sha256; magic is its marshalled
// state's first 4 bytes) to chaining value cv, partial block x (under 64
// bytes) and length. scratch needs room for Size(len(cv)) bytes.
func Load(h hash.Hash, magic string, cv []uint32, x []byte, length uint64, scratch []byte) error {
	b := append(scratch[:0], magic...)
	for _, w := range cv {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, x...)
	b = append(b, zeros[:64-len(x)]...)
	b = binary.BigEndian.AppendUint64(b, length)
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return fmt.Errorf("load hash state: %w", err)
	}
	return nil
}

// Read copies h's chaining value into cv. scratch needs room for
// Size(len(cv)) bytes.
func Read(h hash.Hash, cv []uint32, scratch []byte) error {
	b, err := h.(encoding.BinaryAppender).AppendBinary(scratch[:0])
	if err != nil {
		return fmt.Errorf("read hash state: %w", err)
	}
	if len(b) < 4+4*len(cv) {
		return fmt.Errorf("read hash state: %d bytes", len(b))
	}
	for i := range cv {
		cv[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	return nil
}

// Blocks is a stream's partial block and length: Write hands the whole
// 64-byte blocks of what is written to push, in order, and keeps the rest
// for the next Write or the sum.
type Blocks struct {
	x   [64]byte
	nx  int
	len uint64
}

// Write counts p and hands push every block it completes: first the
// partial block, once filled, then p's whole blocks as one slice of the
// caller's memory. push must be done with its slice when it returns.
func (b *Blocks) Write(p []byte, push func(blocks []byte)) {
	b.len += uint64(len(p))
	if b.nx > 0 {
		c := copy(b.x[b.nx:], p)
		b.nx += c
		p = p[c:]
		if b.nx < len(b.x) {
			return
		}
		push(b.x[:])
		b.nx = 0
	}
	if whole := len(p) &^ 63; whole > 0 {
		push(p[:whole])
		p = p[whole:]
	}
	b.nx = copy(b.x[:], p)
}

// Partial is the bytes written after the last whole block.
func (b *Blocks) Partial() []byte { return b.x[:b.nx] }

// Len is the number of bytes written.
func (b *Blocks) Len() uint64 { return b.len }

// Reset forgets everything written.
func (b *Blocks) Reset() { b.nx, b.len = 0, 0 }

// Lanes is the number of streams a 16-lane kernel hashes at once.
const Lanes = 16

// KernelArgs turns the inputs of a 16-lane kernel call (whole 64-byte
// blocks per lane, empty for a lane that sits out) into what the kernels
// take: each input's address, and per block round a mask of the lanes that
// hash in it, in masks (which needs room for the longest input's blocks).
// It returns no masks when no lane has a block. The addresses are plain
// integers: the caller keeps in reachable until the kernel returns.
func KernelArgs(in *[Lanes][]byte, masks []uint16) (ptrs [Lanes]uintptr, used []uint16) {
	rounds := 0
	for i, b := range in {
		if n := len(b) / 64; n > 0 {
			ptrs[i] = uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			rounds = max(rounds, n)
		}
	}
	if rounds == 0 {
		return ptrs, nil
	}
	used = masks[:rounds]
	clear(used)
	for i, b := range in {
		for r := range len(b) / 64 {
			used[r] |= 1 << i
		}
	}
	return ptrs, used
}

// ToLanes puts the chaining value cv[i] of every lane that takes part
// (cv[i] non-nil) into state in the kernels' layout, word j of lane i at
// state[j*Lanes+i], and returns what the call on in will do: its block
// rounds (the most blocks of any such lane) and its blocks in all.
func ToLanes(state []uint32, cv *[Lanes][]uint32, in *[Lanes][]byte) (rounds, blocks int) {
	for i, h := range cv {
		if h == nil {
			continue
		}
		n := len(in[i]) / 64
		rounds = max(rounds, n)
		blocks += n
		for j, w := range h {
			state[j*Lanes+i] = w
		}
	}
	return rounds, blocks
}

// FromLanes copies each taking part lane's chaining value back out of
// state after a kernel call.
func FromLanes(state []uint32, cv *[Lanes][]uint32) {
	for i, h := range cv {
		for j := range h {
			h[j] = state[j*Lanes+i]
		}
	}
}
