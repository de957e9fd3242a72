package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// encodeBytes encodes data as one segment and returns the K+M chunk files.
func encodeBytes(t testing.TB, c *Codec, seg SegmentID, data []byte) [][]byte {
	t.Helper()
	n := c.Params().Scheme.Shards()
	bufs := make([]*bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	res, err := c.Encode(context.Background(), seg, bytes.NewReader(data), int64(len(data)), ws)
	if err != nil {
		t.Fatalf("Encode %s, %d bytes: %v", c.Params(), len(data), err)
	}
	if res.Size != int64(len(data)) || res.Healthy() != n {
		t.Fatalf("Encode %s, %d bytes: size %d, healthy %d of %d, errs %v", c.Params(), len(data), res.Size, res.Healthy(), n, res.ShardErrs)
	}
	out := make([][]byte, n)
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out
}

func mustCodec(t testing.TB, p Params) *Codec {
	t.Helper()
	c, err := NewCodec(p)
	if err != nil {
		t.Fatalf("NewCodec(%s): %v", p, err)
	}
	return c
}

// memSource serves chunk files from memory. A nil chunk is a missing one
// (OpenShard fails); openErr makes OpenShard of a shard fail; cut limits
// what a shard's streams return to the chunk's first cut[i] bytes. A
// shard in stall gives up as a source with a read budget does: its
// streams fail with ErrStalled once past chunk offset stall[i] (at once
// for 0), unless opened with a Patient ctx; stallAlways[i] makes it do so
// even then.
type memSource struct {
	chunks      [][]byte
	openErr     map[int]error
	cut         map[int]int64
	stall       map[int]int64
	stallAlways map[int]bool

	mu      sync.Mutex
	opens   []openCall
	patient []int // shards opened with a Patient ctx, in order
}

type openCall struct{ shard, first, end int }

var errMissing = errors.New("chunk not found")

func newMemSource(chunks [][]byte) *memSource {
	return &memSource{chunks: chunks, openErr: map[int]error{}, cut: map[int]int64{}, stall: map[int]int64{}, stallAlways: map[int]bool{}}
}

func (m *memSource) OpenShard(ctx context.Context, shard, first, end int) (io.ReadCloser, error) {
	m.mu.Lock()
	m.opens = append(m.opens, openCall{shard, first, end})
	if IsPatient(ctx) {
		m.patient = append(m.patient, shard)
	}
	m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.openErr[shard]; err != nil {
		return nil, err
	}
	c := m.chunks[shard]
	if c == nil {
		return nil, fmt.Errorf("shard %d: %w", shard, errMissing)
	}
	h, err := ParseHeader(c)
	if err != nil {
		return nil, err
	}
	fr, err := FramingFromChunkSize(h.Params.BlockSize, int64(len(c)))
	if err != nil {
		return nil, err
	}
	if first < 0 || first > end || end > fr.NumStripes {
		return nil, fmt.Errorf("shard %d: stripes [%d, %d) of %d", shard, first, end, fr.NumStripes)
	}
	lo, hi := fr.StripeOffset(first), fr.StripeOffset(end)
	if cut, ok := m.cut[shard]; ok {
		hi = min(hi, cut)
		lo = min(lo, hi)
	}
	if at, ok := m.stall[shard]; ok && at < hi && (m.stallAlways[shard] || !IsPatient(ctx)) {
		if at <= lo {
			return nil, fmt.Errorf("shard %d: %w", shard, ErrStalled)
		}
		return io.NopCloser(io.MultiReader(bytes.NewReader(c[lo:min(hi, at)]), stalledReader{})), nil
	}
	return io.NopCloser(bytes.NewReader(c[lo:hi])), nil
}

// stalledReader is a stream its source gave up on.
type stalledReader struct{}

func (stalledReader) Read([]byte) (int, error) { return 0, fmt.Errorf("stream: %w", ErrStalled) }

func (m *memSource) patientOpens() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.patient...)
}

func (m *memSource) openCalls() []openCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]openCall(nil), m.opens...)
}

// badShards records OnBadShard calls.
type badShards struct {
	mu   sync.Mutex
	errs map[int]error
	dups []int
}

func (b *badShards) opts() ReadOptions {
	return ReadOptions{OnBadShard: func(shard int, err error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.errs == nil {
			b.errs = map[int]error{}
		}
		if _, ok := b.errs[shard]; ok {
			b.dups = append(b.dups, shard)
		}
		b.errs[shard] = err
	}}
}

// How readRange drains a Reader: the read tests run once per way
// (TestReadSuiteWriteTo), since Read and WriteTo are two paths through the
// same fetcher.
type readWay int

const (
	viaRead         readWay = iota // io.ReadAll: Read calls only
	viaWriteTo                     // WriteTo alone, stripe after stripe
	viaAheadWriteTo                // WriteTo fetching a stripe ahead
	viaReadWriteTo                 // a short Read, then WriteTo (ahead) for the rest
	viaPoolWriteTo                 // WriteTo (ahead) with buffers from a shared, dirty pool
)

var (
	readVia  = viaRead
	testPool = NewBlockPool()
)

// readRange reads [off, off+n) through a Reader and returns the bytes.
func readRange(t testing.TB, c *Codec, seg SegmentID, size, off, n int64, src ShardSource, opt ReadOptions) ([]byte, error) {
	t.Helper()
	if readVia == viaPoolWriteTo {
		opt.Pool = testPool
	}
	opt.ReadAhead = readVia >= viaAheadWriteTo
	r, err := c.NewReader(context.Background(), seg, size, off, n, src, opt)
	if err != nil {
		t.Fatalf("NewReader(size %d, [%d,+%d)): %v", size, off, n, err)
	}
	defer r.Close()
	var buf bytes.Buffer
	switch readVia {
	case viaRead:
		return io.ReadAll(r)
	case viaReadWriteTo:
		p := make([]byte, min(n, 3))
		m, err := r.Read(p)
		buf.Write(p[:m])
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return buf.Bytes(), err
		}
	}
	_, err = r.WriteTo(&buf)
	return buf.Bytes(), err
}

func cloneChunks(chunks [][]byte) [][]byte {
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		out[i] = bytes.Clone(c)
	}
	return out
}
