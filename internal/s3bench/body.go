package s3bench

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
)

// Pattern is a read-only buffer of pseudo-random bytes, the same for the
// same seed, shared by every request: an object's body is a window into
// it, read cyclically from an offset derived from the object's key. Bodies
// cost no allocation and no copy beyond the one the HTTP client makes into
// its socket, so 16 concurrent 64 MiB PUTs need the pattern (at most
// MaxPatternSize) and not 1 GiB.
type Pattern struct {
	buf []byte
}

// MaxPatternSize bounds a pattern's buffer; larger objects repeat it.
const MaxPatternSize = 64 << 20

// minPatternSize keeps small objects' bodies varied.
const minPatternSize = 1 << 20

// NewPattern fills a buffer of max(1 MiB, min(size, MaxPatternSize)) bytes
// from seed.
func NewPattern(seed uint64, size int64) *Pattern {
	n := int64(minPatternSize)
	if size > n {
		n = min(size, MaxPatternSize)
	}
	n = (n + 7) &^ 7
	buf := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < len(buf); i += 8 {
		v := r.Uint64()
		buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		buf[i+4], buf[i+5], buf[i+6], buf[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	return &Pattern{buf: buf}
}

// Len is the pattern's length in bytes.
func (p *Pattern) Len() int { return len(p.buf) }

// Bytes returns the pattern itself; callers must not modify it.
func (p *Pattern) Bytes() []byte { return p.buf }

// offset is where key's body starts in the pattern.
func (p *Pattern) offset(key string) int64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, key)
	return int64(h.Sum64() % uint64(len(p.buf)))
}

// Body returns key's body of size bytes: a seekable reader (the SDK seeks
// to hash and sign, and to rewind on retry) over the shared pattern.
func (p *Pattern) Body(key string, size int64) *io.SectionReader {
	return io.NewSectionReader(cyclic{buf: p.buf, start: p.offset(key)}, 0, size)
}

// cyclic reads buf as an endless ring starting at start.
type cyclic struct {
	buf   []byte
	start int64
}

func (c cyclic) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	n := 0
	pos := (c.start + off) % int64(len(c.buf))
	for n < len(b) {
		k := copy(b[n:], c.buf[pos:])
		n += k
		pos = 0
	}
	return n, nil
}

// Verifier is an io.Writer that checks what is written against key's body.
type Verifier struct {
	src cyclic
	off int64
	bad int64 // offset of the first mismatch, -1 if none
}

// Verifier returns a checker for key's body.
func (p *Pattern) Verifier(key string) *Verifier {
	return &Verifier{src: cyclic{buf: p.buf, start: p.offset(key)}, bad: -1}
}

func (v *Verifier) Write(b []byte) (int, error) {
	pos := (v.src.start + v.off) % int64(len(v.src.buf))
	for i := 0; i < len(b); {
		want := v.src.buf[pos:]
		n := min(len(want), len(b)-i)
		if v.bad < 0 && !bytes.Equal(b[i:i+n], want[:n]) {
			for j := range n {
				if b[i+j] != want[j] {
					v.bad = v.off + int64(i+j)
					break
				}
			}
		}
		i += n
		pos = 0
	}
	v.off += int64(len(b))
	return len(b), nil
}

// Check reports whether exactly size bytes matching the body were written.
func (v *Verifier) Check(size int64) error {
	if v.bad >= 0 {
		return fmt.Errorf("body differs from what was written at byte %d", v.bad)
	}
	if v.off != size {
		return fmt.Errorf("body is %d bytes, want %d", v.off, size)
	}
	return nil
}
