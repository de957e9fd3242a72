// Package hashtest checks, in tests, a hash that compresses many streams
// together (internal/md5lanes, internal/sha256lanes) against the standard
// library's, written the way the gateway writes it.
package hashtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"math/rand/v2"
)

// WriteStream writes total random bytes to got and want in pieces of odd
// sizes (some below what a lane takes, up to 300 KiB) from one buffer that
// it overwrites as soon as Write returns, as the gateway reuses its read
// buffers: a lane still reading it would hash the wrong bytes. Now and
// then, and at the end, it checks that the sums agree.
func WriteStream(rng *rand.Rand, total int, got, want hash.Hash) error {
	buf := make([]byte, 300<<10)
	for left := total; left > 0; {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = rng.IntN(200)
		case 1:
			n = rng.IntN(64<<10) + 1
		default:
			n = rng.IntN(len(buf)) + 1
		}
		n = min(n, left)
		fillRandom(rng, buf[:n])
		want.Write(buf[:n])
		got.Write(buf[:n])
		copy(buf[:n], overwrite[:n])
		left -= n
		if rng.IntN(50) == 0 {
			// A sum in the middle must not disturb the stream.
			if g, w := got.Sum(nil), want.Sum(nil); !bytes.Equal(g, w) {
				return fmt.Errorf("intermediate sum %x, want %x", g, w)
			}
		}
	}
	if g, w := got.Sum(nil), want.Sum(nil); !bytes.Equal(g, w) {
		return fmt.Errorf("sum %x, want %x", g, w)
	}
	return nil
}

// overwrite is what WriteStream writes over a piece once it is hashed.
var overwrite = bytes.Repeat([]byte{0xa5}, 300<<10)

// fillRandom fills b from rng eight bytes at a time: byte by byte, under
// the race detector, the filling took most of these tests' time.
func fillRandom(rng *rand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, rng.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
