package chunk

import (
	"errors"
	"fmt"
	"iter"
)

// ErrBadRange is a data range that does not lie within the segment.
var ErrBadRange = errors.New("range outside the segment")

// Framing is the shape of one chunk file: how many blocks it holds and how
// long each is. A blob node knows it from the file alone (ParseHeader for the
// block size, FramingFromChunkSize for the rest); a gateway knows it from the
// segment's Layout.
type Framing struct {
	BlockSize  int
	NumStripes int
	// LastBlockLen is the length of the last stripe's block (1..BlockSize);
	// 0 when NumStripes is 0.
	LastBlockLen int
}

// BlockLen is the length of the block of the given stripe, checksum not
// included.
func (f Framing) BlockLen(stripe int) int {
	if stripe == f.NumStripes-1 {
		return f.LastBlockLen
	}
	return f.BlockSize
}

// StripeOffset is the byte offset in the chunk file of the given stripe's
// block, for 0 ≤ stripe ≤ NumStripes; StripeOffset(NumStripes) is ChunkSize.
// The framed bytes of stripes [a, b) are [StripeOffset(a), StripeOffset(b)).
func (f Framing) StripeOffset(stripe int) int64 {
	off := int64(HeaderSize) + int64(stripe)*int64(f.BlockSize+ChecksumSize)
	if stripe == f.NumStripes && stripe > 0 {
		off -= int64(f.BlockSize - f.LastBlockLen)
	}
	return off
}

// ChunkSize is the length of the whole chunk file.
func (f Framing) ChunkSize() int64 { return f.StripeOffset(f.NumStripes) }

// FramedLen is the length of the framed bytes (blocks and checksums, no
// header) of stripes [first, end).
func (f Framing) FramedLen(first, end int) int64 {
	return f.StripeOffset(end) - f.StripeOffset(first)
}

// FramingFromChunkSize derives a chunk's framing from the length of its file
// and the block size from its header, for a blob node that does not know the
// segment's size. A length no chunk can have is ErrCorrupt (a truncated or
// extended file).
func FramingFromChunkSize(blockSize int, chunkSize int64) (Framing, error) {
	if blockSize < 1 || blockSize > MaxBlockSize {
		return Framing{}, fmt.Errorf("block size %d: %w", blockSize, ErrCorrupt)
	}
	if chunkSize < HeaderSize {
		return Framing{}, fmt.Errorf("chunk of %d bytes is shorter than its header: %w", chunkSize, ErrCorrupt)
	}
	x := chunkSize - HeaderSize
	if x == 0 {
		return Framing{BlockSize: blockSize}, nil
	}
	frame := int64(blockSize + ChecksumSize)
	q, r := x/frame, x%frame
	var f Framing
	switch {
	case r == 0:
		f = Framing{BlockSize: blockSize, NumStripes: int(q), LastBlockLen: blockSize}
	case r > ChecksumSize:
		f = Framing{BlockSize: blockSize, NumStripes: int(q) + 1, LastBlockLen: int(r) - ChecksumSize}
	default:
		return Framing{}, fmt.Errorf("chunk of %d bytes ends inside a checksum: %w", chunkSize, ErrCorrupt)
	}
	if int64(f.NumStripes) != q && int64(f.NumStripes) != q+1 { // int overflow
		return Framing{}, fmt.Errorf("chunk of %d bytes: %w", chunkSize, ErrCorrupt)
	}
	return f, nil
}

// Layout is where every byte of a segment lives: a pure function of the
// segment's Params and size.
//
// Stripe s holds data bytes [s*K*BlockSize, (s+1)*K*BlockSize) of the
// segment. Its blocks are BlockSize long, except in the last stripe, whose
// blocks are L = ceil(remaining/K) long; there data shard j holds bytes
// [j*L, (j+1)*L) of the remaining data, zero-padded past the end. A segment
// of 0 bytes has no stripes.
type Layout struct {
	p    Params
	size int64
	f    Framing
}

// NewLayout validates p and size and returns the segment's layout.
func NewLayout(p Params, size int64) (Layout, error) {
	if err := p.Validate(); err != nil {
		return Layout{}, err
	}
	if size < 0 {
		return Layout{}, fmt.Errorf("segment size %d: %w", size, ErrBadParams)
	}
	sd := p.StripeDataSize()
	n := (size + sd - 1) / sd
	if n > int64(int32Max) {
		return Layout{}, fmt.Errorf("segment size %d needs %d stripes: %w", size, n, ErrBadParams)
	}
	l := Layout{p: p, size: size, f: Framing{BlockSize: p.BlockSize, NumStripes: int(n)}}
	if n > 0 {
		rem := size - (n-1)*sd
		k := int64(p.Scheme.K)
		l.f.LastBlockLen = int((rem + k - 1) / k)
	}
	return l, nil
}

const int32Max = 1<<31 - 1

func (l Layout) Params() Params   { return l.p }
func (l Layout) Size() int64      { return l.size }
func (l Layout) Framing() Framing { return l.f }
func (l Layout) NumStripes() int  { return l.f.NumStripes }

// BlockLen is the length of every block (data and parity) of the stripe.
func (l Layout) BlockLen(stripe int) int { return l.f.BlockLen(stripe) }

// StripeOffset is the offset of the stripe's block in every chunk file.
func (l Layout) StripeOffset(stripe int) int64 { return l.f.StripeOffset(stripe) }

// ChunkSize is the length of every chunk file of the segment.
func (l Layout) ChunkSize() int64 { return l.f.ChunkSize() }

// StripeDataOffset is the segment offset of the stripe's first data byte.
func (l Layout) StripeDataOffset(stripe int) int64 {
	return int64(stripe) * l.p.StripeDataSize()
}

// StripeDataLen is how many bytes of segment data the stripe holds.
func (l Layout) StripeDataLen(stripe int) int64 {
	return min(l.p.StripeDataSize(), l.size-l.StripeDataOffset(stripe))
}

// CheckRange reports whether [off, off+n) lies within the segment.
func (l Layout) CheckRange(off, n int64) error {
	if off < 0 || n < 0 || off > l.size || n > l.size-off {
		return fmt.Errorf("range [%d, +%d) outside a segment of %d bytes: %w", off, n, l.size, ErrBadRange)
	}
	return nil
}

// Stripes returns the stripes [first, end) that data range [off, off+n)
// touches; first == end for an empty or invalid range.
func (l Layout) Stripes(off, n int64) (first, end int) {
	if n <= 0 || l.CheckRange(off, n) != nil {
		return 0, 0
	}
	sd := l.p.StripeDataSize()
	return int(off / sd), int((off+n-1)/sd) + 1
}

// Extent is the part of one data block that a data range covers.
type Extent struct {
	Stripe int
	Shard  int   // data shard, 0..K-1
	Off    int   // offset within the block
	Len    int   // bytes
	Data   int64 // segment offset of the extent's first byte
}

// Extents yields, in segment order, the pieces of data blocks that hold
// data range [off, off+n). An invalid range yields nothing (see CheckRange).
func (l Layout) Extents(off, n int64) iter.Seq[Extent] {
	return func(yield func(Extent) bool) {
		if n <= 0 || l.CheckRange(off, n) != nil {
			return
		}
		sd := l.p.StripeDataSize()
		for x, end := off, off+n; x < end; {
			s := int(x / sd)
			base := int64(s) * sd
			bl := int64(l.BlockLen(s))
			j := (x - base) / bl
			o := (x - base) % bl
			ln := min(bl-o, end-x)
			if !yield(Extent{Stripe: s, Shard: int(j), Off: int(o), Len: int(ln), Data: x}) {
				return
			}
			x += ln
		}
	}
}

// shardStripes returns, for each data shard, the stripes [first, end) in
// which data range [off, off+n) touches its blocks (first == end when it
// touches none). The stripes a shard is needed in are contiguous.
func (l Layout) shardStripes(off, n int64) [][2]int {
	out := make([][2]int, l.p.Scheme.K)
	for i := range out {
		out[i] = [2]int{-1, -1}
	}
	// Only the first and last stripe are partial; a cheap walk over the
	// extents of those two and a fill for the middle would do, but the
	// extents of a range are at most K per stripe, so walk them all.
	for e := range l.Extents(off, n) {
		r := &out[e.Shard]
		if r[0] < 0 {
			r[0] = e.Stripe
		}
		r[1] = e.Stripe + 1
	}
	for i := range out {
		if out[i][0] < 0 {
			out[i] = [2]int{0, 0}
		}
	}
	return out
}
