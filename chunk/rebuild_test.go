package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestRebuild(t *testing.T) {
	for _, p := range []Params{{Scheme{4, 2}, 64}, {Scheme{3, 2}, 7}, {Scheme{2, 1}, 16}} {
		c := mustCodec(t, p)
		for _, size := range []int64{0, 1, p.StripeDataSize(), 4*p.StripeDataSize() + 3} {
			data := randBytes(uint64(size), int(size))
			seg := SegmentID{byte(size)}
			chunks := encodeBytes(t, c, seg, data)
			n := p.Scheme.Shards()
			// Rebuild every set of up to M lost chunks from the others;
			// the result must be byte-identical to what Encode wrote.
			for _, lost := range subsets(n, p.Scheme.M) {
				if len(lost) == 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%d/lost%v", p, size, lost), func(t *testing.T) {
					cs := cloneChunks(chunks)
					out := map[int]io.Writer{}
					bufs := map[int]*bytes.Buffer{}
					for _, i := range lost {
						cs[i] = nil
						bufs[i] = new(bytes.Buffer)
						out[i] = bufs[i]
					}
					var bad badShards
					if err := c.Rebuild(context.Background(), seg, size, newMemSource(cs), out, bad.opts()); err != nil {
						t.Fatal(err)
					}
					for _, i := range lost {
						if !bytes.Equal(bufs[i].Bytes(), chunks[i]) {
							t.Errorf("rebuilt chunk %d differs from the one encoded", i)
						}
					}
					if len(bad.errs) != 0 {
						t.Errorf("rebuild read a lost shard: %v", bad.errs)
					}
				})
			}
		}
	}
}

func TestRebuildFailures(t *testing.T) {
	p := Params{Scheme{4, 2}, 32}
	c := mustCodec(t, p)
	size := 3*p.StripeDataSize() + 1
	data := randBytes(1, int(size))
	chunks := encodeBytes(t, c, SegmentID{}, data)
	l, _ := NewLayout(p, size)

	// One lost chunk to rebuild, one source with a bad block: read around it.
	cs := cloneChunks(chunks)
	cs[5] = nil
	cs[1][l.StripeOffset(2)+3] ^= 1
	var buf bytes.Buffer
	var bad badShards
	if err := c.Rebuild(context.Background(), SegmentID{}, size, newMemSource(cs), map[int]io.Writer{5: &buf}, bad.opts()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), chunks[5]) {
		t.Error("rebuilt chunk differs")
	}
	if !errors.Is(bad.errs[1], ErrCorrupt) || len(bad.errs) != 1 {
		t.Errorf("reported %v, want shard 1 corrupt", bad.errs)
	}

	// Three unusable: fail.
	cs[0] = nil
	cs[4] = nil
	err := c.Rebuild(context.Background(), SegmentID{}, size, newMemSource(cs), map[int]io.Writer{5: io.Discard}, ReadOptions{})
	if !errors.Is(err, ErrUnrecoverable) {
		t.Errorf("rebuild from 3 good shards of 4+2: %v, want ErrUnrecoverable", err)
	}

	// A failing target and a bad shard index are errors.
	boom := errors.New("disk full")
	err = c.Rebuild(context.Background(), SegmentID{}, size, newMemSource(chunks), map[int]io.Writer{2: &failWriter{after: HeaderSize + 10, err: boom}}, ReadOptions{})
	if !errors.Is(err, boom) {
		t.Errorf("failing writer: %v, want %v", err, boom)
	}
	err = c.Rebuild(context.Background(), SegmentID{}, size, newMemSource(chunks), map[int]io.Writer{6: io.Discard}, ReadOptions{})
	if !errors.Is(err, ErrBadParams) {
		t.Errorf("shard 6 of 4+2: %v, want ErrBadParams", err)
	}

	// M = 0 has nothing to rebuild from.
	c10 := mustCodec(t, Params{Scheme{1, 0}, 8})
	ch := encodeBytes(t, c10, SegmentID{}, data[:20])
	err = c10.Rebuild(context.Background(), SegmentID{}, 20, newMemSource([][]byte{ch[0]}), map[int]io.Writer{0: io.Discard}, ReadOptions{})
	if !errors.Is(err, ErrUnrecoverable) {
		t.Errorf("1+0: %v, want ErrUnrecoverable", err)
	}
}
