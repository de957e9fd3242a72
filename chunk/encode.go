package chunk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/reedsolomon"
)

// ErrUnrecoverable is returned when fewer than K chunks of a segment are
// usable: by a Reader or Rebuild that cannot find K healthy shards for a
// stripe, and by Encode once so many writers failed that the segment could
// never be read back.
var ErrUnrecoverable = errors.New("fewer than k healthy chunks")

// Codec erasure-codes segments of one Params. It holds the Reed-Solomon
// encoder (its matrices and a cache of inverted matrices for
// reconstruction), so make one per Params and reuse it. It is safe for
// concurrent use.
type Codec struct {
	p  Params
	rs reedsolomon.Encoder // nil when M == 0: nothing to encode or rebuild
	// stripes recycles Encode's stripe buffers (*encStripe) across
	// segments and calls. Without it a gateway writing 64 uploads at once
	// drops two fresh stripes (3 MiB at 4+2) per upload every 64 MiB
	// segment, and that garbage let its heap grow to twice the live
	// buffers before each collection: ~500 MiB of RSS where ~210 MiB
	// were in use.
	stripes sync.Pool
	// doubled counts the Encodes holding a second stripe, at most
	// maxDoubled. The second stripe lets an upload read its next stripe
	// while the last one is written out; with more uploads than that in
	// flight the cores are busy anyway, and every upload's second 1.5 MiB
	// (at 4+2) is what pushed a gateway with 64 uploads past 300 MiB.
	doubled    atomic.Int32
	maxDoubled int32
}

// maxDoubledEncodes is how many Encodes of one Codec may double-buffer at
// once: well above the concurrency at which a 2-core gateway saturates
// (16 streams), well below the 64 uploads the memory target is set at.
const maxDoubledEncodes = 16

// NewCodec validates p and builds its encoder. The encoder uses the widest
// SIMD kernels the CPU has (AVX-512/GFNI, AVX2, NEON) and splits a block
// across goroutines when that pays for the block size.
func NewCodec(p Params) (*Codec, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Codec{p: p, maxDoubled: maxDoubledEncodes}
	if p.Scheme.M > 0 {
		rs, err := reedsolomon.New(p.Scheme.K, p.Scheme.M, reedsolomon.WithAutoGoroutines(p.BlockSize))
		if err != nil {
			return nil, fmt.Errorf("reed-solomon %s: %w", p.Scheme, err)
		}
		c.rs = rs
	}
	return c, nil
}

// Params returns the codec's parameters.
func (c *Codec) Params() Params { return c.p }

// EncodeResult is what Encode did.
type EncodeResult struct {
	// Size is the number of bytes of segment data read from r and encoded:
	// the segment's size, to record in its metadata.
	Size int64
	// EOF reports that r is exhausted: no segment follows this one. When
	// Size reached the limit exactly, EOF is known only if r has a
	// Peek(int) ([]byte, error) method (as *bufio.Reader does); otherwise it
	// is false and the next segment may turn out empty.
	EOF bool
	// ShardErrs[i] is the error that made Encode stop writing shard i, nil
	// for a shard whose chunk was written whole. Its length is K+M.
	ShardErrs []error
}

// Healthy is the number of shards written whole.
func (r EncodeResult) Healthy() int {
	n := 0
	for _, err := range r.ShardErrs {
		if err == nil {
			n++
		}
	}
	return n
}

// Encode reads up to limit bytes of one segment's data from r, stripe by
// stripe, and writes each shard's chunk (header, then each stripe's block
// and its checksum) to w[shard]; len(w) must be K+M.
//
// A writer that fails is not written to again, and the others go on: its
// error lands in ShardErrs, and the caller decides whether the healthy
// shards meet its write quorum. Once fewer than K shards are healthy the
// segment is lost, so Encode stops and returns an error wrapping
// ErrUnrecoverable. A read error from r or the end of ctx also stops it with
// an error. In every case the result tells how far it got.
//
// The writers are written concurrently, one goroutine each, so one slow
// chunk upload does not stall the reads of the next stripe; a Write that
// blocks forever blocks Encode, so tie the writers to ctx (as an HTTP
// request body does). Memory: two stripes (2*(K+M)*BlockSize bytes),
// whatever the segment's size, or one when many Encodes of the Codec run
// at once; the Codec keeps them for its next Encode.
func (c *Codec) Encode(ctx context.Context, seg SegmentID, r io.Reader, limit int64, w []io.Writer) (EncodeResult, error) {
	k, m := c.p.Scheme.K, c.p.Scheme.M
	res := EncodeResult{ShardErrs: make([]error, k+m)}
	if len(w) != k+m {
		return res, fmt.Errorf("encode segment %s: %d writers for %s: %w", seg, len(w), c.p.Scheme, ErrBadParams)
	}
	if limit < 0 {
		return res, fmt.Errorf("encode segment %s: limit %d: %w", seg, limit, ErrBadParams)
	}

	var failed atomic.Int32
	var workers sync.WaitGroup
	sws := make([]*shardWriter, k+m)
	for i := range sws {
		hdr, err := Header{Params: c.p, Segment: seg, Shard: i}.AppendBinary(nil)
		if err != nil {
			return res, err // cannot happen: c.p was validated
		}
		sws[i] = &shardWriter{id: ID{Segment: seg, Shard: i}, w: w[i], jobs: make(chan *encStripe, 1), failed: &failed}
		workers.Add(1)
		go func() {
			defer workers.Done()
			sws[i].run(hdr)
		}()
	}

	var bufs [2]*encStripe
	err := c.encodeStripes(ctx, seg, r, limit, sws, &failed, &res, &bufs)

	for _, sw := range sws {
		close(sw.jobs)
	}
	workers.Wait()
	// No writer holds a stripe now (io.Writer must not retain p).
	for _, st := range bufs {
		if st != nil {
			c.stripes.Put(st)
		}
	}
	if bufs[1] != nil {
		c.doubled.Add(-1)
	}
	for i, sw := range sws {
		res.ShardErrs[i] = sw.err
	}
	if err == nil && int(failed.Load()) > m {
		err = fmt.Errorf("encode segment %s: %d of %d chunk writes failed: %w", seg, failed.Load(), k+m, ErrUnrecoverable)
	}
	return res, err
}

// encodeStripes is Encode's reading loop. Two stripe buffers alternate: the
// shard writers write one while the next is read and encoded into the other
// (one buffer, written then refilled, when maxDoubled Encodes already hold
// two).
func (c *Codec) encodeStripes(ctx context.Context, seg SegmentID, r io.Reader, limit int64, sws []*shardWriter, failed *atomic.Int32, res *EncodeResult, bufs *[2]*encStripe) error {
	k, m, bs := c.p.Scheme.K, c.p.Scheme.M, c.p.BlockSize
	sd := c.p.StripeDataSize()
	nbuf := 2
	for stripe := 0; ; stripe++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("encode segment %s: %w", seg, err)
		}
		if int(failed.Load()) > m {
			return fmt.Errorf("encode segment %s: %d of %d chunk writes failed: %w", seg, failed.Load(), k+m, ErrUnrecoverable)
		}
		want := min(sd, limit-res.Size)
		if want == 0 {
			eof, err := peekEOF(r)
			if err != nil {
				// The body failed while the segment's chunks were still
				// open (a client gone or silent at a segment boundary):
				// the caller must learn it from the body, not later from
				// uploads its request's end cancelled.
				return fmt.Errorf("encode segment %s: read past the segment: %w", seg, err)
			}
			res.EOF = eof
			return nil
		}
		if stripe == 1 && !c.reserveSecond() {
			nbuf = 1 // read into the first stripe once its writers are done
		}
		st := bufs[stripe%nbuf]
		if st == nil {
			// Taken on first use, so a small segment never costs a
			// second stripe buffer.
			if v, ok := c.stripes.Get().(*encStripe); ok {
				st = v
			} else {
				st = newEncStripe(k, m, bs)
			}
			bufs[stripe%nbuf] = st
		}
		st.pending.Wait() // the writers are done with this buffer's last stripe

		n, err := io.ReadFull(r, st.data[:want])
		res.Size += int64(n)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			res.EOF = true
		default:
			return fmt.Errorf("encode segment %s: read stripe %d: %w", seg, stripe, err)
		}
		if n == 0 {
			return nil
		}

		bl := (n + k - 1) / k // = bs for every full stripe
		clear(st.data[n : k*bl])
		for j := range k {
			st.blocks[j] = st.data[j*bl : (j+1)*bl]
		}
		for i := range m {
			st.blocks[k+i] = st.parity[i][:bl]
		}
		if m > 0 {
			if err := c.rs.Encode(st.blocks); err != nil {
				return fmt.Errorf("encode segment %s: stripe %d: %w", seg, stripe, err)
			}
		}
		// The blocks' checksums are taken here, while the encoder has just
		// read and written the whole stripe and most of it is still in this
		// core's cache; by the time each shard writer ran, it often was
		// not (PUT 64 MiB profiles: 0.16 ms of gateway CPU per MiB there,
		// 0.10 here; docs/perf/put-path.md, "s9").
		for i, b := range st.blocks {
			binary.LittleEndian.PutUint32(st.sums[i][:], Checksum(b))
		}
		st.stripe = stripe
		st.pending.Add(len(sws))
		for _, sw := range sws {
			sw.jobs <- st
		}
		if res.EOF {
			return nil
		}
	}
}

// reserveSecond reports whether an Encode may take a second stripe.
func (c *Codec) reserveSecond() bool {
	if c.doubled.Add(1) > c.maxDoubled {
		c.doubled.Add(-1)
		return false
	}
	return true
}

// peekEOF reports whether r is known to be exhausted without consuming it.
// A reader that fails otherwise returns its error.
func peekEOF(r io.Reader) (bool, error) {
	p, ok := r.(interface{ Peek(int) ([]byte, error) })
	if !ok {
		return false, nil
	}
	_, err := p.Peek(1)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, io.EOF):
		return true, nil
	}
	return false, err
}

// encStripe is one stripe buffer of Encode.
type encStripe struct {
	data    []byte               // K*BlockSize bytes of segment data, 64-byte aligned
	parity  [][]byte             // M blocks of BlockSize
	blocks  [][]byte             // the K+M blocks of the current stripe, slices of the above
	sums    [][ChecksumSize]byte // the blocks' checksums, as stored after them
	stripe  int
	pending sync.WaitGroup // shard writers still writing this stripe
}

func newEncStripe(k, m, bs int) *encStripe {
	st := &encStripe{
		data:   reedsolomon.AllocAligned(1, k*bs)[0],
		blocks: make([][]byte, k+m),
		sums:   make([][ChecksumSize]byte, k+m),
	}
	if m > 0 {
		st.parity = reedsolomon.AllocAligned(m, bs)
	}
	return st
}

// shardWriter writes one shard's chunk from its own goroutine.
type shardWriter struct {
	id     ID
	w      io.Writer
	jobs   chan *encStripe
	failed *atomic.Int32
	err    error // owned by run until jobs is closed and run returned
}

func (sw *shardWriter) run(hdr []byte) {
	if _, err := sw.w.Write(hdr); err != nil {
		sw.fail(fmt.Errorf("write chunk %s header: %w", sw.id, err))
	}
	for st := range sw.jobs {
		if sw.err == nil {
			_, err := sw.w.Write(st.blocks[sw.id.Shard])
			if err == nil {
				_, err = sw.w.Write(st.sums[sw.id.Shard][:])
			}
			if err != nil {
				sw.fail(fmt.Errorf("write chunk %s stripe %d: %w", sw.id, st.stripe, err))
			}
		}
		st.pending.Done()
	}
}

func (sw *shardWriter) fail(err error) {
	sw.err = err
	sw.failed.Add(1)
}
