package chunk

import (
	"context"
	"fmt"
	"io"
)

// Reader reads a byte range of a segment from its chunks. It reads only the
// data shards whose blocks hold the range, a stripe at a time, all shards of
// a stripe concurrently. When a shard cannot be opened or read, ends early,
// or has a block with a bad checksum, the Reader stops using it, reports it
// through ReadOptions.OnBadShard, and from that stripe on reads parity (or
// other data) shards in its place and reconstructs the missing blocks.
// Every block is checked before a byte of it is returned, so a Reader
// returns the segment's bytes or an error, never other bytes; with fewer than
// K usable shards the error wraps ErrUnrecoverable.
//
// Memory: one block buffer per shard it touches, (K+M)*BlockSize at most.
// A Reader is not safe for concurrent use.
type Reader struct {
	// ctx is the context NewReader was given: a Reader is an io.Reader,
	// whose Read has no context, so it keeps the one it was made for (as
	// http.Request does) and passes it to every OpenShard.
	ctx context.Context
	f   *fetcher
	l   Layout

	pos, end  int64 // segment offsets: next byte to return, end of the range
	cur       int   // stripe whose blocks f holds, -1 for none
	needFirst []int // per data shard: first stripe of the range it holds
	need      []bool
	err       error
}

var _ io.ReadCloser = (*Reader)(nil)

// NewReader returns a Reader of bytes [off, off+n) of a segment of the
// given size stored as chunks with the codec's Params. No shard is opened
// before the first Read.
func (c *Codec) NewReader(ctx context.Context, seg SegmentID, size, off, n int64, src ShardSource, opt ReadOptions) (*Reader, error) {
	l, err := NewLayout(c.p, size)
	if err != nil {
		return nil, err
	}
	if err := l.CheckRange(off, n); err != nil {
		return nil, fmt.Errorf("read segment %s: %w", seg, err)
	}
	_, end := l.Stripes(off, n)
	ss := l.shardStripes(off, n)
	wantEnd := make([]int, c.p.Scheme.Shards())
	needFirst := make([]int, c.p.Scheme.K)
	for j, r := range ss {
		needFirst[j], wantEnd[j] = r[0], r[1]
	}
	return &Reader{
		ctx:       ctx,
		f:         newFetcher(c, l, seg, src, opt, end, wantEnd),
		l:         l,
		pos:       off,
		end:       off + n,
		cur:       -1,
		needFirst: needFirst,
		need:      make([]bool, c.p.Scheme.Shards()),
	}, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.pos >= r.end {
		return 0, io.EOF
	}
	sd := r.l.p.StripeDataSize()
	n := 0
	for n < len(p) && r.pos < r.end {
		s := int(r.pos / sd)
		if s != r.cur {
			if err := r.fill(s); err != nil {
				r.err = err
				r.f.close()
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
		}
		x := r.pos - int64(s)*sd
		bl := int64(r.l.BlockLen(s))
		j, o := int(x/bl), x%bl
		stop := min(bl, o+r.end-r.pos)
		m := copy(p[n:], r.f.block(j, s)[o:stop])
		n += m
		r.pos += int64(m)
	}
	return n, nil
}

// fill fetches the data blocks of stripe s that the range touches.
func (r *Reader) fill(s int) error {
	for j := range r.needFirst {
		r.need[j] = r.needFirst[j] <= s && s < r.f.wantEnd[j]
	}
	if err := r.f.fetch(r.ctx, s, r.need); err != nil {
		r.cur = -1
		return fmt.Errorf("read segment %s: %w", r.f.seg, err)
	}
	r.cur = s
	return nil
}

// Close closes every shard stream the Reader opened. Read after Close
// returns an error.
func (r *Reader) Close() error {
	r.f.close()
	if r.err == nil {
		r.err = fmt.Errorf("read segment %s: reader closed", r.f.seg)
	}
	return nil
}
