package chunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ShardSource opens the stored chunks of one segment. It is declared here,
// where it is used; the gateway implements it with chunk GETs to blob nodes,
// a repairing blob node with GETs to its peers, tests in memory.
type ShardSource interface {
	// OpenShard returns the framed bytes (each block followed by its
	// checksum, no header) of stripes [firstStripe, endStripe) of the given
	// shard's chunk: bytes [StripeOffset(firstStripe),
	// StripeOffset(endStripe)) of the chunk file. The stream may end early
	// or carry damaged bytes; the caller checks every block. Reads should
	// end when ctx does.
	//
	// A source may give up on a shard that is slow rather than broken (a
	// node that stops sending), so that parity is read instead; its error,
	// from OpenShard or a Read, then wraps ErrStalled. When no other shard
	// can stand in, the shard is opened again with a ctx marked by Patient,
	// and the source must then wait for it far longer (or as long as ctx
	// lasts): a slow read beats a failed one. A shard that stalls even
	// then is not tried again; the others set aside still are.
	OpenShard(ctx context.Context, shard, firstStripe, endStripe int) (io.ReadCloser, error)
}

// ErrStalled, wrapped by a ShardSource's error, says the source gave up on
// a shard for being slow, not broken, or set it aside unread as likely out
// of reach: it is set aside while other shards can stand in for it, and
// read again, patiently, when none can. Writers that give up on a slow
// chunk upload wrap it too.
var ErrStalled = errors.New("chunk stalled")

type patientKey struct{}

// Patient returns ctx marked so that a ShardSource waits on a slow shard
// instead of giving up on it (ErrStalled).
func Patient(ctx context.Context) context.Context {
	return context.WithValue(ctx, patientKey{}, true)
}

// IsPatient says whether ctx was marked by Patient.
func IsPatient(ctx context.Context) bool {
	v, _ := ctx.Value(patientKey{}).(bool)
	return v
}

// ReadOptions tunes a Reader or Rebuild.
type ReadOptions struct {
	// OnBadShard, when set, is called once for each shard found unusable
	// (could not be opened, failed or ended early mid-stream, or held a
	// block with a bad checksum; errors.Is(err, ErrCorrupt) tells the last
	// apart), so the caller can report it for repair. It is called from the
	// goroutine calling Read or Rebuild, or from the one WriteTo starts to
	// fetch ahead, never concurrently.
	OnBadShard func(shard int, err error)
	// Pool, when set, supplies the block buffers and gets them back when
	// the Reader is closed or the Rebuild returns.
	Pool *BlockPool
	// ReadAhead makes a Reader's WriteTo fetch the next stripe in a second
	// goroutine while it writes one, holding two stripes' buffers. That
	// puts a second core to work on one stream; when every core already
	// has a stream of its own it buys nothing, and the blocks, written a
	// stripe after they were read and checked, have left the cache by then
	// (measured: ~10% more CPU per byte at 16 concurrent GETs on 2 cores).
	ReadAhead bool
}

// maxSkip is how many unwanted stripes a shard stream may be read past
// before it is cheaper to open the shard again at the wanted stripe.
const maxSkip = 2

// fetcher gets whole blocks of chosen shards of a segment, one stripe at a
// time, reading them from a ShardSource and rebuilding those it cannot read.
// It is the engine of Reader and Rebuild.
type fetcher struct {
	c     *Codec
	l     Layout
	seg   SegmentID
	src   ShardSource
	onBad func(shard int, err error)
	pool  *BlockPool

	// endStripe is the end of the stripes any read goes to; streams opened
	// to stand in for a bad shard run to it.
	endStripe int
	// wantEnd[i] is the end of the stripes the caller will ask shard i for;
	// a stream opened to serve a request runs to it.
	wantEnd []int

	streams []shardStream
	// bufs is the buffer set fetch fills: per shard, BlockSize+ChecksumSize
	// long, taken from the pool on first use. It is sets[cur]; a Reader's
	// WriteTo fills one set while it writes the other (use).
	bufs   [][]byte
	sets   [2][][]byte
	cur    int
	have   []bool   // per shard: bufs[i] holds a good block of the current stripe
	blocks [][]byte // scratch for the reconstruction call
	tried  []bool   // scratch for fetch
	list   []int    // scratch for fetch
	errs   []error  // scratch for readShards
}

type shardStream struct {
	rc       io.ReadCloser
	pos, end int   // rc yields stripes [pos, end)
	bad      error // why the shard is not used any more
	// stalled says bad is ErrStalled from a source that may give up: the
	// shard is tried again, patiently, when no other can stand in.
	stalled bool
	// patient says rc was opened with a Patient ctx (false while rc is nil).
	patient bool
}

func newFetcher(c *Codec, l Layout, seg SegmentID, src ShardSource, opt ReadOptions, endStripe int, wantEnd []int) *fetcher {
	n := c.p.Scheme.Shards()
	f := &fetcher{
		c: c, l: l, seg: seg, src: src, onBad: opt.OnBadShard, pool: opt.Pool,
		endStripe: endStripe,
		wantEnd:   wantEnd,
		streams:   make([]shardStream, n),
		have:      make([]bool, n),
		blocks:    make([][]byte, n),
		tried:     make([]bool, n),
		list:      make([]int, 0, n),
		errs:      make([]error, n),
	}
	f.sets = [2][][]byte{make([][]byte, n), make([][]byte, n)}
	f.bufs = f.sets[0]
	return f
}

// use makes fetch fill buffer set x (0 or 1) from now on; the blocks in
// the other set stay as they are.
func (f *fetcher) use(x int) { f.cur, f.bufs = x, f.sets[x] }

// exclude marks shards not to be read at all (the ones Rebuild writes).
func (f *fetcher) exclude(shard int, why error) { f.streams[shard].bad = why }

// close closes the shard streams and gives the buffers back to the pool;
// the fetcher must not be used afterwards. Calling it again does nothing.
func (f *fetcher) close() {
	for i := range f.streams {
		if rc := f.streams[i].rc; rc != nil {
			rc.Close()
			f.streams[i].rc = nil
		}
	}
	for _, set := range f.sets {
		for i, b := range set {
			f.pool.put(b)
			set[i] = nil
		}
	}
}

func (f *fetcher) buf(i int) []byte {
	if f.bufs[i] == nil {
		f.bufs[i] = f.pool.get(f.c.p.BlockSize + ChecksumSize)
	}
	return f.bufs[i]
}

// block is shard i's block of the stripe last fetched.
func (f *fetcher) block(i, stripe int) []byte { return f.bufs[i][:f.l.BlockLen(stripe)] }

// fetch makes block(i, stripe) hold shard i's block of the stripe for every
// i with need[i] (len K+M): read when the shard is healthy, else rebuilt
// from K others. It fails, wrapping ErrUnrecoverable, when fewer than K
// shards of the stripe can be read, and with ctx's error when ctx ends.
func (f *fetcher) fetch(ctx context.Context, stripe int, need []bool) error {
	f.begin()
	return f.complete(ctx, stripe, need)
}

// begin starts a stripe: no block held, no shard tried. readOne and
// complete then fill the stripe's blocks.
func (f *fetcher) begin() {
	clear(f.have)
	clear(f.tried)
}

// ready says whether readOne can do without a request round trip for
// shard i: its stream is open, or the shard is not used any more.
func (f *fetcher) ready(i int) bool { return f.streams[i].rc != nil || f.streams[i].bad != nil }

// readOne reads and checks shard i's block of the stripe begun (begin)
// and says whether block(i, stripe) now holds it. A shard that fails is
// marked bad (and reported) as in fetch; false with no error then means
// the caller must complete the stripe, which rebuilds the block. The
// error is ctx's only.
func (f *fetcher) readOne(ctx context.Context, stripe, i int) (bool, error) {
	if f.streams[i].bad != nil || f.tried[i] {
		return f.have[i], nil
	}
	one := append(f.list[:0], i)
	if err := f.readShards(ctx, stripe, one, false, f.tried); err != nil {
		return false, err
	}
	return f.have[i], nil
}

// complete makes block(i, stripe) hold shard i's block for every i with
// need[i], keeping the blocks readOne already got since begin: it reads the
// needed shards not tried yet, concurrently, and rebuilds what it could
// not read. Errors as fetch's.
func (f *fetcher) complete(ctx context.Context, stripe int, need []bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(f.streams)
	k := f.c.p.Scheme.K
	tried := f.tried

	first := f.list[:0]
	for i := range n {
		if need[i] && !tried[i] && f.streams[i].bad == nil {
			first = append(first, i)
		}
	}
	if err := f.readShards(ctx, stripe, first, false, tried); err != nil {
		return err
	}
	missing := false
	for i := range n {
		if need[i] && !f.have[i] {
			missing = true
		}
	}
	if !missing {
		return nil
	}

	// Rebuild: gather K good blocks of this stripe, parity first (the data
	// shards that were needed were just tried), then the other data shards.
	for {
		got := 0
		for i := range n {
			if f.have[i] {
				got++
			}
		}
		if got >= k {
			break
		}
		more := f.list[:0]
		for _, i := range candidateOrder(k, n) {
			if len(more) == k-got {
				break
			}
			if !f.have[i] && !tried[i] && f.streams[i].bad == nil {
				more = append(more, i)
			}
		}
		patient := false
		if len(more) == 0 {
			// Last resort: the shards given up for being slow, waited for.
			for i := range f.streams {
				if s := &f.streams[i]; s.stalled && len(more) < k-got {
					s.bad, s.stalled = nil, false
					more = append(more, i)
				}
			}
			patient = true
		}
		if len(more) == 0 {
			return f.unrecoverable(stripe, got)
		}
		rctx := ctx
		if patient {
			rctx = Patient(ctx)
		}
		if err := f.readShards(rctx, stripe, more, true, tried); err != nil {
			return err
		}
	}
	if f.c.rs == nil {
		return f.unrecoverable(stripe, 0) // M == 0: nothing to rebuild from
	}
	bl := f.l.BlockLen(stripe)
	for i := range n {
		switch {
		case f.have[i]:
			f.blocks[i] = f.bufs[i][:bl]
		case need[i]:
			f.blocks[i] = f.buf(i)[:0] // rebuilt in place
		default:
			f.blocks[i] = nil
		}
	}
	if err := f.c.rs.ReconstructSome(f.blocks, need); err != nil {
		return fmt.Errorf("segment %s stripe %d: reconstruct: %w", f.seg, stripe, err)
	}
	return nil
}

// candidateOrder lists the shards to stand in for missing ones: parity
// first, then data.
func candidateOrder(k, n int) []int {
	out := make([]int, 0, n)
	for i := k; i < n; i++ {
		out = append(out, i)
	}
	for i := range k {
		out = append(out, i)
	}
	return out
}

func (f *fetcher) unrecoverable(stripe, got int) error {
	var why []string
	for i, s := range f.streams {
		if s.bad != nil {
			why = append(why, fmt.Sprintf("shard %d: %v", i, s.bad))
		}
	}
	return fmt.Errorf("segment %s stripe %d: %d of %d shards usable, need %d (%s): %w",
		f.seg, stripe, got, len(f.streams), f.c.p.Scheme.K, strings.Join(why, "; "), ErrUnrecoverable)
}

// readShards reads the stripe's block of each listed shard, concurrently,
// into bufs, checks it, and sets have[i]; a shard that fails is marked bad
// (and reported) for the rest of the fetcher's life. standIn says the
// shards stand in for others, so their streams run to endStripe.
func (f *fetcher) readShards(ctx context.Context, stripe int, shards []int, standIn bool, tried []bool) error {
	errs := f.errs[:len(shards)]
	clear(errs)
	if len(shards) == 1 {
		errs[0] = f.readShard(ctx, stripe, shards[0], standIn)
	} else {
		var wg sync.WaitGroup
		for x, i := range shards {
			wg.Go(func() { errs[x] = f.readShard(ctx, stripe, i, standIn) })
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		// Not the shards' fault: report none of them, but drop the streams
		// that failed, whose position is now unknown.
		for x, i := range shards {
			if s := &f.streams[i]; errs[x] != nil && s.rc != nil {
				s.rc.Close()
				s.rc, s.patient = nil, false
			}
		}
		return err
	}
	for x, i := range shards {
		tried[i] = true
		if errs[x] == nil {
			f.have[i] = true
			continue
		}
		s := &f.streams[i]
		// A shard that stalls even when waited for is not tried again.
		waited := s.patient || IsPatient(ctx)
		if s.rc != nil {
			s.rc.Close()
			s.rc, s.patient = nil, false
		}
		s.bad = errs[x]
		s.stalled = errors.Is(errs[x], ErrStalled) && !waited
		if f.onBad != nil {
			f.onBad(i, errs[x])
		}
	}
	return nil
}

// readShard reads one block; it touches only shard i's state.
func (f *fetcher) readShard(ctx context.Context, stripe, i int, standIn bool) error {
	s := &f.streams[i]
	end := f.wantEnd[i]
	if standIn || stripe >= end {
		end = f.endStripe
	}
	if s.rc != nil && (s.pos > stripe || stripe >= s.end || stripe-s.pos > maxSkip) {
		s.rc.Close()
		s.rc, s.patient = nil, false
	}
	id := ID{Segment: f.seg, Shard: i}
	if s.rc == nil {
		rc, err := f.src.OpenShard(ctx, i, stripe, end)
		if err != nil {
			return fmt.Errorf("open chunk %s at stripe %d: %w", id, stripe, err)
		}
		s.rc, s.pos, s.end, s.patient = rc, stripe, end, IsPatient(ctx)
	}
	for s.pos < stripe {
		skip := int64(f.l.BlockLen(s.pos) + ChecksumSize)
		if _, err := io.CopyN(io.Discard, s.rc, skip); err != nil {
			return fmt.Errorf("read chunk %s stripe %d: %w", id, s.pos, noEOF(err))
		}
		s.pos++
	}
	frame := f.buf(i)[:f.l.BlockLen(stripe)+ChecksumSize]
	if _, err := io.ReadFull(s.rc, frame); err != nil {
		return fmt.Errorf("read chunk %s stripe %d: %w", id, stripe, noEOF(err))
	}
	s.pos++
	if err := checkBlock(frame, stripe); err != nil {
		return fmt.Errorf("chunk %s: %w", id, err)
	}
	return nil
}

// noEOF turns the end of a stream that should have gone on into
// io.ErrUnexpectedEOF, so no caller mistakes it for a clean end.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
