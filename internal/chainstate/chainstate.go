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
