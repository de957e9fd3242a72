package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Params: DefaultParams(Scheme{4, 2}), Segment: SegmentID{1, 2, 3}, Shard: 5},
		{Params: Params{Scheme{1, 0}, 1}, Shard: 0},
		{Params: Params{Scheme{16, 8}, MaxBlockSize}, Segment: NewSegmentID(), Shard: 23},
	} {
		b, err := h.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != len("prefix")+HeaderSize {
			t.Fatalf("encoded header is %d bytes", len(b)-len("prefix"))
		}
		got, err := ParseHeader(append(b[len("prefix"):], "trailing"...))
		if err != nil || got != h {
			t.Errorf("ParseHeader(AppendBinary(%+v)) = %+v, %v", h, got, err)
		}
		if got.ID() != (ID{h.Segment, h.Shard}) {
			t.Errorf("ID() = %v", got.ID())
		}
	}
	if _, err := (Header{Params: Params{Scheme{4, 2}, 64}, Shard: 6}).AppendBinary(nil); !errors.Is(err, ErrBadParams) {
		t.Errorf("AppendBinary with shard 6 of 4+2 = %v, want ErrBadParams", err)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	good, err := Header{Params: Params{Scheme{4, 2}, 4096}, Segment: SegmentID{9}, Shard: 1}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	// edit changes the header and, when fix is set, recomputes its checksum
	// so the check under test is the one that fires.
	edit := func(f func(b []byte), fix bool) []byte {
		b := bytes.Clone(good)
		f(b)
		if fix {
			binary.LittleEndian.PutUint32(b[32:], Checksum(b[:32]))
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:HeaderSize-1], ErrCorrupt},
		{"empty", nil, ErrCorrupt},
		{"magic", edit(func(b []byte) { b[0] = 'X' }, true), ErrCorrupt},
		{"newer version", edit(func(b []byte) { b[4] = 2 }, true), ErrVersion},
		{"version 0", edit(func(b []byte) { b[4] = 0 }, true), ErrCorrupt},
		{"checksum", edit(func(b []byte) { b[33] ^= 1 }, false), ErrCorrupt},
		{"segment bit flip", edit(func(b []byte) { b[20] ^= 0x10 }, false), ErrCorrupt},
		{"k 0", edit(func(b []byte) { b[6] = 0 }, true), ErrCorrupt},
		{"k 17", edit(func(b []byte) { b[6] = 17 }, true), ErrCorrupt},
		{"m 9", edit(func(b []byte) { b[7] = 9 }, true), ErrCorrupt},
		{"shard k+m", edit(func(b []byte) { b[8] = 6 }, true), ErrCorrupt},
		{"reserved", edit(func(b []byte) { b[10] = 1 }, true), ErrCorrupt},
		{"block size 0", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 0) }, true), ErrCorrupt},
		{"block size huge", edit(func(b []byte) { binary.LittleEndian.PutUint32(b[12:], MaxBlockSize+1) }, true), ErrCorrupt},
	}
	for _, tt := range tests {
		if _, err := ParseHeader(tt.b); !errors.Is(err, tt.want) {
			t.Errorf("%s: ParseHeader = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	p := Params{Scheme{3, 2}, 10}
	c := mustCodec(t, p)
	for _, size := range []int{0, 1, 29, 30, 31, 95} {
		chunks := encodeBytes(t, c, SegmentID{7}, randBytes(3, size))
		l, _ := NewLayout(p, int64(size))
		for i, ch := range chunks {
			h, f, err := Verify(iotest.HalfReader(bytes.NewReader(ch)))
			if err != nil || h.Shard != i || h.Params != p || f != l.Framing() {
				t.Fatalf("size %d shard %d: Verify = %+v, %+v, %v; want framing %+v", size, i, h, f, err, l.Framing())
			}
			// Every flipped bit, anywhere in the chunk, is caught.
			for at := range ch {
				bad := bytes.Clone(ch)
				bad[at] ^= 1 << (at % 8)
				if _, _, err := Verify(bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("size %d shard %d: flipped byte %d: Verify = %v, want ErrCorrupt", size, i, at, err)
				}
			}
			// So is every truncation, and trailing bytes after a short block.
			for n := range len(ch) {
				if _, f, err := Verify(bytes.NewReader(ch[:n])); err == nil && f.ChunkSize() != int64(n) {
					t.Fatalf("size %d shard %d: truncated to %d: Verify passed with framing %+v", size, i, n, f)
				} else if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("size %d shard %d: truncated to %d: Verify = %v", size, i, n, err)
				}
			}
			if l.Framing().LastBlockLen < p.BlockSize && size > 0 {
				if _, _, err := Verify(bytes.NewReader(append(bytes.Clone(ch), 0))); !errors.Is(err, ErrCorrupt) {
					t.Errorf("size %d shard %d: trailing byte: Verify = %v, want ErrCorrupt", size, i, err)
				}
			}
		}
	}
	// A read error is passed on, not called corruption.
	boom := errors.New("disk on fire")
	ch := encodeBytes(t, c, SegmentID{7}, randBytes(3, 50))[0]
	_, _, err := Verify(io.MultiReader(bytes.NewReader(ch[:HeaderSize+5]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify with a failing reader = %v, want %v", err, boom)
	}
}

// Truncations that land on a block boundary are valid chunks of a shorter
// segment: the metadata, not the file, knows the size. Check the framing a
// blob node derives then disagrees with the segment's layout.
func TestVerifyTruncatedAtBoundary(t *testing.T) {
	p := Params{Scheme{2, 1}, 8}
	c := mustCodec(t, p)
	chunks := encodeBytes(t, c, SegmentID{}, randBytes(1, 40))
	l, _ := NewLayout(p, 40)
	cut := chunks[0][:l.StripeOffset(1)]
	_, f, err := Verify(bytes.NewReader(cut))
	if err != nil || f == l.Framing() {
		t.Errorf("Verify(first stripe only) = %+v, %v", f, err)
	}
}

func FuzzParseHeader(f *testing.F) {
	good, _ := Header{Params: DefaultParams(Scheme{4, 2}), Segment: SegmentID{1}, Shard: 3}.AppendBinary(nil)
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("ParseHeader error %v is neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		// A header that parses re-encodes to the same bytes.
		again, err := h.AppendBinary(nil)
		if err != nil || !bytes.Equal(again, b[:HeaderSize]) {
			t.Fatalf("re-encoding %+v: %x, %v; parsed from %x", h, again, err, b[:HeaderSize])
		}
	})
}

func FuzzVerify(f *testing.F) {
	c := mustCodec(f, Params{Scheme{2, 1}, 16})
	for _, size := range []int{0, 1, 33, 64} {
		for _, ch := range encodeBytes(f, c, SegmentID{2}, randBytes(uint64(size), size)) {
			f.Add(ch)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, fr, err := Verify(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Verify error %v is neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		// A chunk that verifies has the length its framing says, and the
		// framing derived from that length agrees.
		if fr.ChunkSize() != int64(len(b)) {
			t.Fatalf("Verify passed a %d-byte chunk with framing %+v", len(b), fr)
		}
		if g, err := FramingFromChunkSize(h.Params.BlockSize, int64(len(b))); err != nil || g != fr {
			t.Fatalf("FramingFromChunkSize = %+v, %v; Verify found %+v", g, err, fr)
		}
	})
}
