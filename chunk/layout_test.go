package chunk

import (
	"errors"
	"testing"
)

func TestLayout(t *testing.T) {
	p42 := Params{Scheme{4, 2}, 100} // stripe holds 400 bytes
	tests := []struct {
		name    string
		p       Params
		size    int64
		stripes int
		last    int
	}{
		{"empty", p42, 0, 0, 0},
		{"one byte", p42, 1, 1, 1},
		{"k bytes", p42, 4, 1, 1},
		{"k+1 bytes", p42, 5, 1, 2},
		{"one block", p42, 100, 1, 25},
		{"stripe-1", p42, 399, 1, 100},
		{"stripe", p42, 400, 1, 100},
		{"stripe+1", p42, 401, 2, 1},
		{"many", p42, 10*400 + 203, 11, 51},
		{"1+0", Params{Scheme{1, 0}, 7}, 20, 3, 6},
		{"3+2 odd", Params{Scheme{3, 2}, 7}, 22, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLayout(tt.p, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if l.NumStripes() != tt.stripes || l.Framing().LastBlockLen != tt.last {
				t.Fatalf("stripes %d, last block %d; want %d, %d", l.NumStripes(), l.Framing().LastBlockLen, tt.stripes, tt.last)
			}
			// The chunk is the header plus every framed block.
			want := int64(HeaderSize)
			var data int64
			for s := range l.NumStripes() {
				if got := l.StripeOffset(s); got != want {
					t.Errorf("StripeOffset(%d) = %d, want %d", s, got, want)
				}
				if s < l.NumStripes()-1 && l.BlockLen(s) != tt.p.BlockSize {
					t.Errorf("BlockLen(%d) = %d, want %d", s, l.BlockLen(s), tt.p.BlockSize)
				}
				want += int64(l.BlockLen(s) + ChecksumSize)
				data += l.StripeDataLen(s)
			}
			if l.ChunkSize() != want || l.StripeOffset(l.NumStripes()) != want {
				t.Errorf("ChunkSize() = %d, want %d", l.ChunkSize(), want)
			}
			if data != tt.size {
				t.Errorf("stripes hold %d data bytes, want %d", data, tt.size)
			}
			// The last stripe's blocks hold the rest with less than one byte
			// of padding per block.
			if n := l.NumStripes(); n > 0 {
				rem := l.StripeDataLen(n - 1)
				k := int64(tt.p.Scheme.K)
				if bl := int64(l.BlockLen(n - 1)); bl*k < rem || (bl-1)*k >= rem {
					t.Errorf("last block %d for %d remaining bytes", bl, rem)
				}
			}
			f, err := FramingFromChunkSize(tt.p.BlockSize, l.ChunkSize())
			if err != nil || f != l.Framing() {
				t.Errorf("FramingFromChunkSize(%d) = %+v, %v; want %+v", l.ChunkSize(), f, err, l.Framing())
			}
		})
	}
}

func TestFramingFromChunkSize(t *testing.T) {
	// Every length is either exactly one layout's chunk size or ErrCorrupt.
	for _, bs := range []int{1, 5, 64} {
		valid := map[int64]Framing{}
		p := Params{Scheme{1, 0}, bs}
		for size := int64(0); size < int64(bs*6); size++ {
			l, err := NewLayout(p, size)
			if err != nil {
				t.Fatal(err)
			}
			valid[l.ChunkSize()] = l.Framing()
		}
		for n := int64(0); n < HeaderSize+int64(5*(bs+ChecksumSize)); n++ {
			f, err := FramingFromChunkSize(bs, n)
			want, ok := valid[n]
			switch {
			case ok && (err != nil || f != want):
				t.Errorf("bs %d: FramingFromChunkSize(%d) = %+v, %v; want %+v", bs, n, f, err, want)
			case !ok && !errors.Is(err, ErrCorrupt):
				t.Errorf("bs %d: FramingFromChunkSize(%d) = %+v, %v; want ErrCorrupt", bs, n, f, err)
			}
		}
	}
	if _, err := FramingFromChunkSize(0, 100); !errors.Is(err, ErrCorrupt) {
		t.Errorf("block size 0: %v, want ErrCorrupt", err)
	}
}

func TestLayoutExtents(t *testing.T) {
	// Extents must point at the chunk bytes that hold each data byte: check
	// against an encoded segment.
	for _, p := range []Params{{Scheme{4, 2}, 16}, {Scheme{3, 2}, 7}, {Scheme{1, 0}, 5}, {Scheme{2, 1}, 64}} {
		c := mustCodec(t, p)
		for _, size := range []int64{1, 3, 17, p.StripeDataSize() - 1, p.StripeDataSize(), 5*p.StripeDataSize() + 2} {
			data := randBytes(uint64(size), int(size))
			chunks := encodeBytes(t, c, SegmentID{1}, data)
			l, _ := NewLayout(p, size)
			for _, r := range [][2]int64{{0, size}, {0, 1}, {size - 1, 1}, {size / 2, size / 3}, {size, 0}} {
				next := r[0]
				for e := range l.Extents(r[0], r[1]) {
					if e.Data != next || e.Len <= 0 || e.Off+e.Len > l.BlockLen(e.Stripe) {
						t.Fatalf("%s size %d range %v: bad extent %+v (next %d)", p, size, r, e, next)
					}
					at := l.StripeOffset(e.Stripe) + int64(e.Off)
					if got, want := chunks[e.Shard][at:at+int64(e.Len)], data[e.Data:e.Data+int64(e.Len)]; string(got) != string(want) {
						t.Fatalf("%s size %d: extent %+v does not hold the data", p, size, e)
					}
					next += int64(e.Len)
				}
				if next != r[0]+r[1] {
					t.Errorf("%s size %d range %v: extents end at %d", p, size, r, next)
				}
				first, end := l.Stripes(r[0], r[1])
				if r[1] > 0 && (first != int(r[0]/p.StripeDataSize()) || end != int((r[0]+r[1]-1)/p.StripeDataSize())+1) {
					t.Errorf("%s size %d: Stripes(%v) = %d, %d", p, size, r, first, end)
				}
			}
		}
	}
}

func TestLayoutCheckRange(t *testing.T) {
	l, err := NewLayout(Params{Scheme{4, 2}, 64}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		off, n int64
		ok     bool
	}{
		{0, 1000, true}, {1000, 0, true}, {999, 1, true}, {0, 0, true},
		{-1, 1, false}, {0, -1, false}, {1000, 1, false}, {1001, 0, false}, {1, 1 << 62, false},
	} {
		err := l.CheckRange(r.off, r.n)
		if (err == nil) != r.ok || (err != nil && !errors.Is(err, ErrBadRange)) {
			t.Errorf("CheckRange(%d, %d) = %v, want ok=%v", r.off, r.n, err, r.ok)
		}
	}
	if _, err := NewLayout(Params{Scheme{4, 2}, 64}, -1); !errors.Is(err, ErrBadParams) {
		t.Errorf("NewLayout(size -1) = %v, want ErrBadParams", err)
	}
}
