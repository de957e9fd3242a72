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
	// enc computes Encode's parity on the calling goroutine. rs splits a
	// stripe across goroutines (fine for a lone rebuild), but a gateway
	// encodes a stripe per upload with many uploads in flight: the split
	// only moves the stripe to another core's cache and adds hand-offs.
	enc reedsolomon.Encoder
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
		enc, err := reedsolomon.New(p.Scheme.K, p.Scheme.M, reedsolomon.WithMaxGoroutines(1))
		if err != nil {
			return nil, fmt.Errorf("reed-solomon %s: %w", p.Scheme, err)
		}
		c.enc = enc
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
	return c.encode(ctx, seg, r, limit, false, w)
}

// EncodeSized is Encode for a segment of exactly size bytes: r must supply
// them all. Knowing every stripe's layout before reading it lets each data
// block go to its writer as soon as it is read, while it is still in the
// CPU's cache, instead of after the whole stripe. If r ends early the error
// wraps io.ErrUnexpectedEOF and the chunks written so far are not a valid
// segment: the caller must abort them (it must anyway, for a short body).
// res.EOF is only known as for Encode (r with a Peek method).
func (c *Codec) EncodeSized(ctx context.Context, seg SegmentID, r io.Reader, size int64, w []io.Writer) (EncodeResult, error) {
	return c.encode(ctx, seg, r, size, true, w)
}

func (c *Codec) encode(ctx context.Context, seg SegmentID, r io.Reader, limit int64, sized bool, w []io.Writer) (EncodeResult, error) {
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
	err := c.encodeStripes(ctx, seg, r, limit, sized, sws, &failed, &res, &bufs)

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
//
// The stripe is read one block at a time and each block's checksum taken as
// soon as it is in, and the parity's right after it is computed: the bytes
// are still in the CPU's cache then. Taken by the shard writers after the
// whole stripe (1.5 MiB at 4+2, with 16 uploads interleaved on 2 cores), the
// CRC32C read every block back from memory and cost a gateway 12% of its
// CPU under PUT 64 MiB, at a quarter of the speed it runs on cached data.
func (c *Codec) encodeStripes(ctx context.Context, seg SegmentID, r io.Reader, limit int64, sized bool, sws []*shardWriter, failed *atomic.Int32, res *EncodeResult, bufs *[2]*encStripe) error {
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
		want := int(min(sd, limit-res.Size))
		if want == 0 {
			res.EOF = peekEOF(r)
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
		st.stripe = stripe
		st.pending.Add(len(sws))

		// The layout if r fills the stripe: blocks of bl bytes, the
		// last ones padded with zeros.
		bl := (want + k - 1) / k // = bs for every full stripe
		n, sent := 0, 0
		var readErr error
		for j := range k {
			lo, hi := j*bl, (j+1)*bl
			// Read until block j's data is in. A read may bring more
			// (as much as the socket holds): capping reads at a block
			// cost more read calls than it saved.
			if end := min(hi, want); end > n {
				got, err := io.ReadAtLeast(r, st.data[n:want], end-n)
				n += got
				if err != nil {
					readErr = err
					break
				}
			}
			blk := st.data[lo:hi]
			clear(blk[max(0, min(want-lo, bl)):])
			st.blocks[j] = blk
			st.sums[j] = Checksum(blk)
			if sized {
				sws[j].jobs <- st
				sent++
			}
		}
		res.Size += int64(n)
		switch {
		case readErr == nil:
		case sized && (errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF)):
			// Blocks already went out laid out for want bytes.
			c.abandon(st, sws, sent)
			return fmt.Errorf("encode segment %s: stripe %d: read %d of %d bytes: %w", seg, stripe, n, want, io.ErrUnexpectedEOF)
		case errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF):
			res.EOF = true
			if n == 0 {
				c.abandon(st, sws, sent)
				return nil
			}
			// A short last stripe: its blocks are shorter than
			// planned. Nothing was sent yet (not sized).
			bl = (n + k - 1) / k
			clear(st.data[n : k*bl])
			for j := range k {
				st.blocks[j] = st.data[j*bl : (j+1)*bl]
				st.sums[j] = Checksum(st.blocks[j])
			}
		default:
			c.abandon(st, sws, sent)
			return fmt.Errorf("encode segment %s: read stripe %d: %w", seg, stripe, readErr)
		}
		for i := range m {
			st.blocks[k+i] = st.parity[i][:bl]
		}
		if m > 0 {
			if err := c.enc.Encode(st.blocks); err != nil {
				c.abandon(st, sws, sent)
				return fmt.Errorf("encode segment %s: stripe %d: %w", seg, stripe, err)
			}
			for i := range m {
				st.sums[k+i] = Checksum(st.blocks[k+i])
			}
		}
		for _, sw := range sws[sent:] {
			sw.jobs <- st
		}
		if res.EOF {
			return nil
		}
	}
}

// abandon releases the writers not sent stripe st (all but the first sent)
// from waiting for it.
func (c *Codec) abandon(st *encStripe, sws []*shardWriter, sent int) {
	for range sws[sent:] {
		st.pending.Done()
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
func peekEOF(r io.Reader) bool {
	p, ok := r.(interface{ Peek(int) ([]byte, error) })
	if !ok {
		return false
	}
	_, err := p.Peek(1)
	return errors.Is(err, io.EOF)
}

// encStripe is one stripe buffer of Encode.
type encStripe struct {
	data    []byte   // K*BlockSize bytes of segment data, 64-byte aligned
	parity  [][]byte // M blocks of BlockSize
	blocks  [][]byte // the K+M blocks of the current stripe, slices of the above
	sums    []uint32 // the blocks' checksums
	stripe  int
	pending sync.WaitGroup // shard writers still writing this stripe
}

func newEncStripe(k, m, bs int) *encStripe {
	st := &encStripe{
		data:   reedsolomon.AllocAligned(1, k*bs)[0],
		blocks: make([][]byte, k+m),
		sums:   make([]uint32, k+m),
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
	var sum [ChecksumSize]byte
	for st := range sw.jobs {
		if sw.err == nil {
			b := st.blocks[sw.id.Shard]
			binary.LittleEndian.PutUint32(sum[:], st.sums[sw.id.Shard])
			_, err := sw.w.Write(b)
			if err == nil {
				_, err = sw.w.Write(sum[:])
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
