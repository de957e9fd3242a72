package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// TestEncodeSizedMatchesEncode checks EncodeSized writes the very chunks
// Encode writes, for every size around block and stripe edges, whatever
// pieces the reader hands out.
func TestEncodeSizedMatchesEncode(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"half":    iotest.HalfReader,
		"onebyte": iotest.OneByteReader,
	}
	for _, p := range testParams() {
		c := mustCodec(t, p)
		for _, size := range testSizes(p) {
			data := randBytes(uint64(size)+7, int(size))
			seg := NewSegmentID()
			want := encodeBytes(t, c, seg, data)
			for name, wrap := range readers {
				if name == "onebyte" && size > 1<<16 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%d/%s", p, size, name), func(t *testing.T) {
					n := p.Scheme.Shards()
					bufs := make([]*bytes.Buffer, n)
					ws := make([]io.Writer, n)
					for i := range bufs {
						bufs[i] = new(bytes.Buffer)
						ws[i] = bufs[i]
					}
					res, err := c.EncodeSized(context.Background(), seg, wrap(bytes.NewReader(data)), size, ws)
					if err != nil || res.Size != size || res.Healthy() != n {
						t.Fatalf("EncodeSized = %+v, %v", res, err)
					}
					for i := range bufs {
						if !bytes.Equal(bufs[i].Bytes(), want[i]) {
							t.Fatalf("chunk %d differs from Encode's (%d vs %d bytes)", i, bufs[i].Len(), len(want[i]))
						}
					}
				})
			}
		}
	}
}

// TestEncodeSizedShortBody checks a body ending before the size it
// announced is an error wrapping io.ErrUnexpectedEOF, wherever it ends,
// and that a failing body's error comes back as it is.
func TestEncodeSizedShortBody(t *testing.T) {
	p := Params{Scheme{4, 2}, 64} // 256 bytes a stripe
	c := mustCodec(t, p)
	discard := func() []io.Writer {
		w := make([]io.Writer, 6)
		for i := range w {
			w[i] = io.Discard
		}
		return w
	}
	for _, have := range []int{0, 1, 63, 64, 65, 255, 256, 257, 700} {
		res, err := c.EncodeSized(context.Background(), SegmentID{}, bytes.NewReader(randBytes(3, have)), 701, discard())
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d of 701 bytes: err %v, want io.ErrUnexpectedEOF", have, err)
		}
		if res.Size != int64(have) {
			t.Errorf("%d of 701 bytes: Size %d", have, res.Size)
		}
	}
	boom := errors.New("client went away")
	res, err := c.EncodeSized(context.Background(), SegmentID{}, io.MultiReader(bytes.NewReader(make([]byte, 300)), iotest.ErrReader(boom)), 1000, discard())
	if !errors.Is(err, boom) || res.Size != 300 {
		t.Errorf("failing reader: %+v, %v; want size 300 and %v", res, err, boom)
	}
}
