package s3bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Pattern is a read-only buffer of pseudo-random bytes, the same for the
// same seed, shared by every request: an object's body is a window into
// it, read cyclically from an offset derived from the object's key. Bodies
// cost no allocation and no copy beyond the one the HTTP client makes into
// its socket, so 16 concurrent 64 MiB PUTs need the pattern (at most
// MaxPatternSize) and not 1 GiB.
type Pattern struct {
	buf []byte

	mu     sync.Mutex
	hashes map[hashKey]func() string // PayloadHash's, by variant and size
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

// BodyVariants is how many distinct bodies of one size a pattern gives:
// a key's body starts at one of BodyVariants evenly spaced offsets. So few
// that the generator can hash each one once (PayloadHash) instead of once
// per request; the stores under test see pseudo-random, incompressible
// bodies either way and neither deduplicates.
const BodyVariants = 16

// offset is where key's body starts in the pattern.
func (p *Pattern) offset(key string) int64 {
	return int64(p.variant(key)) * p.stride()
}

func (p *Pattern) variant(key string) int {
	h := fnv.New64a()
	_, _ = io.WriteString(h, key)
	return int(h.Sum64() % BodyVariants)
}

func (p *Pattern) stride() int64 { return int64(len(p.buf)) / BodyVariants }

// Body returns key's body of size bytes: a seekable reader (the SDK seeks
// to hash and sign, and to rewind on retry) over the shared pattern.
func (p *Pattern) Body(key string, size int64) *Body {
	return p.variantBody(p.variant(key), size)
}

// variantBody is the body of size bytes that starts at variant's offset.
func (p *Pattern) variantBody(variant int, size int64) *Body {
	return &Body{src: cyclic{buf: p.buf, start: int64(variant) * p.stride()}, size: size}
}

// Body is an object's body: size bytes of the pattern's ring from an
// offset. Besides Read and Seek it has WriteTo, which writes straight from
// the pattern; a connection that hands the body to it (bodyconn.Conn) sends
// without copying every byte into a buffer first.
type Body struct {
	src  cyclic
	size int64
	pos  int64
}

func (b *Body) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), b.size-b.pos)]
	n, _ := b.src.ReadAt(p, b.pos)
	b.pos += int64(n)
	return n, nil
}

// Seek sets the offset of the next Read or WriteTo.
func (b *Body) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("seek to negative offset %d", off)
	}
	b.pos = off
	return off, nil
}

// WriteTo writes the rest of the body to w in as few Writes as the ring
// allows (one per pass over the pattern).
func (b *Body) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for b.pos < b.size {
		at := (b.src.start + b.pos) % int64(len(b.src.buf))
		chunk := b.src.buf[at:]
		chunk = chunk[:min(int64(len(chunk)), b.size-b.pos)]
		n, err := w.Write(chunk)
		b.pos += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(chunk) {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

// PayloadHash returns the hex SHA-256 of key's body of size bytes, the
// x-amz-content-sha256 a SigV4 client signs. Each of the BodyVariants
// bodies of a size is hashed once and remembered: the SDK would otherwise
// read and hash every 64 MiB body before sending it, which cost the
// generator ~45% of its CPU on the cores it shares with the store.
func (p *Pattern) PayloadHash(key string, size int64) string {
	return p.hashOf(p.variant(key), size)
}

// HashBodies computes the payload hashes of every variant of size bytes,
// in parallel, so that none is computed during a measured run.
func (p *Pattern) HashBodies(size int64) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for v := range BodyVariants {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p.hashOf(v, size)
		})
	}
	wg.Wait()
}

type hashKey struct {
	variant int
	size    int64
}

func (p *Pattern) hashOf(variant int, size int64) string {
	p.mu.Lock()
	if p.hashes == nil {
		p.hashes = make(map[hashKey]func() string)
	}
	k := hashKey{variant, size}
	f := p.hashes[k]
	if f == nil {
		f = sync.OnceValue(func() string {
			h := sha256.New()
			_, _ = p.variantBody(variant, size).WriteTo(h)
			return hex.EncodeToString(h.Sum(nil))
		})
		p.hashes[k] = f
	}
	p.mu.Unlock()
	return f()
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
