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
// Memory: one block buffer per shard it touches, (K+M)*BlockSize at most;
// twice that when WriteTo fetches a stripe ahead (ReadOptions.ReadAhead). With ReadOptions.Pool
// the buffers come from the pool and go back to it on Close.
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
	ahead     bool // ReadOptions.ReadAhead
	err       error
}

var (
	_ io.ReadCloser = (*Reader)(nil)
	_ io.WriterTo   = (*Reader)(nil)
)

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
		ahead:     opt.ReadAhead,
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
	if err := r.fetch(r.ctx, s); err != nil {
		r.cur = -1
		return err
	}
	r.cur = s
	return nil
}

// fetch makes the fetcher's current buffer set hold the data blocks of
// stripe s that the range touches. It touches the fetcher and r.need only.
func (r *Reader) fetch(ctx context.Context, s int) error {
	for j := range r.needFirst {
		r.need[j] = r.needFirst[j] <= s && s < r.f.wantEnd[j]
	}
	if err := r.f.fetch(ctx, s, r.need); err != nil {
		return fmt.Errorf("read segment %s: %w", r.f.seg, err)
	}
	return nil
}

// WriteTo writes the rest of the range to w straight from the verified
// block buffers: no copy through a caller's buffer, and one Write per
// block (a few hundred KiB) instead of one per 32 KiB that io.Copy would
// make — on a GET the gateway's time is mostly socket syscalls. With
// ReadOptions.ReadAhead, while one stripe is being written the next is
// fetched (read and checked, or rebuilt) by a second goroutine, so reading
// from the blob nodes and writing to the client overlap; that holds two
// stripes' buffers, never more. It returns the first error of w or of the
// fetch; like Read, it never writes a byte it has not verified. A Read may
// come before WriteTo; after it, Read returns EOF or its error.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	sd := r.l.p.StripeDataSize()
	var written int64
	// The rest of the stripe a Read left in the buffers.
	if r.pos < r.end && r.cur >= 0 && int(r.pos/sd) == r.cur {
		n, err := r.writeStripe(w, r.cur, r.f.bufs)
		written += n
		if err != nil {
			return written, r.fail(err)
		}
	}
	if r.pos >= r.end {
		return written, nil
	}
	first, end := int(r.pos/sd), int((r.end-1)/sd)+1
	if r.ahead && end-first > 1 {
		n, err := r.pipeline(w, first, end)
		written += n
		if err != nil {
			return written, r.fail(err)
		}
		return written, nil
	}
	for s := first; s < end; s++ {
		n, err := r.streamStripe(w, s)
		written += n
		if err != nil {
			return written, r.fail(err)
		}
	}
	return written, nil
}

// streamStripe writes the range's bytes in stripe s to w block by block:
// each block is read, checked and written before the next is read, so it
// goes out while it is still in the cache, and one goroutine does it all,
// with no hand-off per block (measured against reading the stripe's blocks
// concurrently and then writing them: see docs/perf/get-path.md). The
// other shards' streams keep arriving into their sockets meanwhile. A block
// that cannot be read or is bad stops that: the rest of the stripe is
// fetched as fill does — read concurrently, rebuilt from parity — with the
// blocks already read (and written) kept for the rebuild. When a needed
// shard has no stream open yet (the range's first stripe), the
// stripe is fetched whole, which opens the streams concurrently.
func (r *Reader) streamStripe(w io.Writer, s int) (int64, error) {
	r.cur = -1
	for j := range r.needFirst {
		r.need[j] = r.needFirst[j] <= s && s < r.f.wantEnd[j]
		if r.need[j] && !r.f.ready(j) {
			if err := r.fill(s); err != nil {
				return 0, err
			}
			return r.writeStripe(w, s, r.f.bufs)
		}
	}
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read segment %s: %w", r.f.seg, err)
	}
	r.f.begin()
	base, stop, bl := r.stripeSpan(s)
	var written int64
	for r.pos < stop {
		x := r.pos - base
		j, o := int(x/bl), x%bl
		ok, err := r.f.readOne(r.ctx, s, j)
		if err != nil {
			return written, fmt.Errorf("read segment %s: %w", r.f.seg, err)
		}
		if !ok {
			if err := r.f.complete(r.ctx, s, r.need); err != nil {
				return written, fmt.Errorf("read segment %s: %w", r.f.seg, err)
			}
			r.cur = s
			n, err := r.writeStripe(w, s, r.f.bufs)
			return written + n, err
		}
		n, err := r.writePiece(w, r.f.bufs[j], o, bl, stop)
		written += n
		if err != nil {
			return written, err
		}
	}
	r.cur = s
	return written, nil
}

// fetched is a stripe the fetching goroutine of pipeline has filled into
// buffer set x, or the error that stopped it.
type fetched struct {
	stripe, x int
	err       error
}

// pipeline writes stripes [first, end) to w while a goroutine fetches
// them, one stripe ahead: each buffer set goes fetcher → writer → fetcher.
// Only the fetching goroutine touches r.f and r.need until it is done;
// pipeline waits for it before returning.
func (r *Reader) pipeline(w io.Writer, first, end int) (int64, error) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	free := make(chan int, 2) // buffer sets the fetcher may fill
	free <- r.f.cur
	free <- 1 - r.f.cur
	ready := make(chan fetched, 1)
	go func() {
		defer close(ready)
		for s := first; s < end; s++ {
			var x int
			select {
			case x = <-free:
			case <-ctx.Done():
				ready <- fetched{stripe: s, err: fmt.Errorf("read segment %s: %w", r.f.seg, ctx.Err())}
				return
			}
			r.f.use(x)
			err := r.fetch(ctx, s)
			ready <- fetched{stripe: s, x: x, err: err}
			if err != nil {
				return
			}
		}
	}()
	var written int64
	var err error
	for fe := range ready {
		if fe.err != nil {
			err = fe.err
			break
		}
		r.cur = fe.stripe
		var n int64
		n, err = r.writeStripe(w, fe.stripe, r.f.sets[fe.x])
		written += n
		if err != nil {
			break
		}
		free <- fe.x
	}
	if err == nil && r.pos < r.end {
		err = fmt.Errorf("read segment %s: fetching stopped at %d of %d: %w", r.f.seg, r.pos, r.end, io.ErrUnexpectedEOF)
	}
	if err != nil {
		// Stop the fetcher, and wait for it: r.f is ours again only then.
		cancel()
		for range ready {
		}
		r.cur = -1
	}
	return written, err
}

// writeStripe writes the range's bytes in stripe s, from r.pos on, from
// the blocks in bufs.
func (r *Reader) writeStripe(w io.Writer, s int, bufs [][]byte) (int64, error) {
	base, stop, bl := r.stripeSpan(s)
	var written int64
	for r.pos < stop {
		x := r.pos - base
		j, o := int(x/bl), x%bl
		n, err := r.writePiece(w, bufs[j], o, bl, stop)
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// stripeSpan gives stripe s's first data offset, where the range ends in
// it, and its block length.
func (r *Reader) stripeSpan(s int) (base, stop, bl int64) {
	base = int64(s) * r.l.p.StripeDataSize()
	return base, min(r.end, base+r.l.StripeDataLen(s)), int64(r.l.BlockLen(s))
}

// writePiece writes block from offset o to the block's end or stop,
// whichever comes first, and advances r.pos by what was written.
func (r *Reader) writePiece(w io.Writer, block []byte, o, bl, stop int64) (int64, error) {
	e := min(bl, o+stop-r.pos)
	n, err := w.Write(block[o:e])
	r.pos += int64(n)
	if err == nil && int64(n) < e-o {
		err = io.ErrShortWrite
	}
	return int64(n), err
}

// fail records err as the Reader's error and releases its streams and
// buffers.
func (r *Reader) fail(err error) error {
	r.err = err
	r.cur = -1
	r.f.close()
	return err
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
