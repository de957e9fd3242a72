package chunk

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"testing"
)

const benchSegment = 64 << 20

func BenchmarkEncode(b *testing.B) {
	for _, s := range []Scheme{{4, 2}, {16, 8}} {
		b.Run(s.String(), func(b *testing.B) {
			c := mustCodec(b, DefaultParams(s))
			data := randBytes(1, benchSegment)
			w := make([]io.Writer, s.Shards())
			for i := range w {
				w[i] = io.Discard
			}
			b.SetBytes(benchSegment)
			b.ResetTimer()
			for b.Loop() {
				res, err := c.Encode(context.Background(), SegmentID{}, bytes.NewReader(data), benchSegment, w)
				if err != nil || res.Size != benchSegment {
					b.Fatal(res, err)
				}
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	p := DefaultParams(DefaultScheme())
	c := mustCodec(b, p)
	data := randBytes(1, benchSegment)
	chunks := encodeBytes(b, c, SegmentID{}, data)
	buf := make([]byte, 1<<20)
	for _, tt := range []struct {
		name    string
		missing []int
		off, n  int64
	}{
		{"full", nil, 0, benchSegment},
		{"degraded-2-missing", []int{0, 2}, 0, benchSegment},
		{"range-64KiB", nil, 5<<20 + 1000, 64 << 10},
		{"range-64KiB-degraded", []int{1}, 5<<20 + 300000, 64 << 10},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cs := append([][]byte(nil), chunks...)
			for _, i := range tt.missing {
				cs[i] = nil
			}
			src := newMemSource(cs)
			b.SetBytes(tt.n)
			b.ResetTimer()
			for b.Loop() {
				src.opens = src.opens[:0]
				r, err := c.NewReader(context.Background(), SegmentID{}, benchSegment, tt.off, tt.n, src, ReadOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
				if err != nil || n != tt.n {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}

func BenchmarkRebuild(b *testing.B) {
	p := DefaultParams(DefaultScheme())
	c := mustCodec(b, p)
	chunks := encodeBytes(b, c, SegmentID{}, randBytes(1, benchSegment))
	cs := append([][]byte(nil), chunks...)
	cs[1] = nil
	src := newMemSource(cs)
	b.SetBytes(benchSegment) // segment bytes covered; one chunk of 16 MiB written
	for b.Loop() {
		src.opens = src.opens[:0]
		if err := c.Rebuild(context.Background(), SegmentID{}, benchSegment, src, map[int]io.Writer{1: io.Discard}, ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChecksum measures the block checksum at the default 4+2 block
// size and at a small block. HighwayHash is not a dependency of Cairn; it
// was measured once in a scratch module (see Checksum's comment).
func BenchmarkChecksum(b *testing.B) {
	for _, size := range []int{DefaultParams(DefaultScheme()).BlockSize, 4 << 10} {
		blk := randBytes(2, size)
		b.Run(fmt.Sprintf("CRC32C/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var sink uint32
			for b.Loop() {
				sink += Checksum(blk)
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("hash-crc32-CRC32C/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var sink uint32
			for b.Loop() {
				sink += crc32.Checksum(blk, castagnoli)
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("CRC32-IEEE/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var sink uint32
			for b.Loop() {
				sink += crc32.ChecksumIEEE(blk)
			}
			_ = sink
		})
	}
}
