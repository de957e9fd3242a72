package chunk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// TestEncodeReaderShapes checks Encode writes the same chunks whatever
// pieces the reader hands out, and for a limit past the body's end.
func TestEncodeReaderShapes(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"half":     iotest.HalfReader,
		"onebyte":  iotest.OneByteReader,
		"data-err": func(r io.Reader) io.Reader { return iotest.DataErrReader(r) },
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
				for _, limit := range []int64{size, size + 1} { // exact, and a body that ends first
					t.Run(fmt.Sprintf("%s/%d/%s/limit%d", p, size, name, limit), func(t *testing.T) {
						n := p.Scheme.Shards()
						bufs := make([]*bytes.Buffer, n)
						ws := make([]io.Writer, n)
						for i := range bufs {
							bufs[i] = new(bytes.Buffer)
							ws[i] = bufs[i]
						}
						res, err := c.Encode(context.Background(), seg, wrap(bytes.NewReader(data)), limit, ws)
						if err != nil || res.Size != size || res.Healthy() != n {
							t.Fatalf("Encode = %+v, %v", res, err)
						}
						for i := range bufs {
							if !bytes.Equal(bufs[i].Bytes(), want[i]) {
								t.Fatalf("chunk %d differs from a whole read's (%d vs %d bytes)", i, bufs[i].Len(), len(want[i]))
							}
						}
					})
				}
			}
		}
	}
}
