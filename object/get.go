package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/watchdog"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// ErrRange is a byte range outside the object.
var ErrRange = errors.New("range outside the object")

// Open streams bytes [off, off+n) of the object o (as returned by Head)
// as stored (StoredSize).
// Only the chunks covering the range are read; a chunk that is missing,
// unreachable or corrupt is read around with parity. If a segment has
// fewer than k usable chunks the stream fails with an error wrapping
// chunk.ErrUnrecoverable: it never yields wrong bytes.
func (s *Store) Open(ctx context.Context, o *pb.Object, off, n int64) (io.ReadCloser, error) {
	size := StoredSize(o)
	if off < 0 || n < 0 || off+n > size {
		return nil, fmt.Errorf("open %s/%s bytes %d+%d of %d: %w", o.Bucket, o.Key, off, n, size, ErrRange)
	}
	if len(o.Segments) == 0 {
		if int64(len(o.Inline)) != size {
			return nil, fmt.Errorf("open %s/%s: inline data is %d bytes, object %d", o.Bucket, o.Key, len(o.Inline), size)
		}
		s.metrics.getBytes.Add(float64(n))
		return io.NopCloser(bytes.NewReader(o.Inline[off : off+n])), nil
	}
	s.reading.Add(1)
	return &objectReader{ctx: ctx, s: s, o: o, off: off, left: n}, nil
}

// StoredSize is the number of bytes o's segments (or inline data) hold:
// its size, unless it is encrypted (pb.Object.Encryption), when they hold
// the longer ciphertext and Open's offsets are offsets into that.
func StoredSize(o *pb.Object) int64 {
	if o.GetEncryption() == nil {
		return o.GetSize()
	}
	if len(o.GetSegments()) == 0 {
		return int64(len(o.GetInline()))
	}
	var n int64
	for _, seg := range o.GetSegments() {
		n += seg.GetSize()
	}
	return n
}

// readAhead says whether a segment opened now should fetch a stripe ahead
// while it writes one (chunk.ReadOptions.ReadAhead): only while fewer GETs
// than cores are in flight, so the read-ahead has a core of its own. With a
// core per GET already, it was measured to cost CPU per byte (the blocks go
// cold between the read and the write) and buys no throughput.
func (s *Store) readAhead() bool {
	return s.reading.Load() < int64(runtime.GOMAXPROCS(0))
}

// objectReader reads a range across an object's segments, one segment
// reader at a time.
type objectReader struct {
	ctx  context.Context
	s    *Store
	o    *pb.Object
	off  int64 // object offset of the next byte
	left int64

	seg    int   // index of the segment cur reads
	segOff int64 // object offset where segment seg starts
	cur    io.ReadCloser
	curEnd int64 // object offset where cur's range ends
	err    error
	closed bool
}

var _ io.WriterTo = (*objectReader)(nil)

// WriteTo writes the rest of the range to w, each segment through its
// chunk.Reader's WriteTo: the verified blocks go from the buffers they were
// read into straight to w, and the next stripe is fetched while one is
// written. io.Copy (the gateway's response) calls it.
func (r *objectReader) WriteTo(w io.Writer) (int64, error) {
	var written int64
	for {
		if r.err != nil {
			return written, r.err
		}
		if r.left == 0 {
			return written, nil
		}
		if r.cur == nil {
			if err := r.openNext(); err != nil {
				r.err = err
				return written, err
			}
		}
		var n int64
		var err error
		if wt, ok := r.cur.(io.WriterTo); ok {
			n, err = wt.WriteTo(w)
		} else {
			n, err = io.Copy(w, struct{ io.Reader }{r.cur})
		}
		written += n
		r.off += n
		r.left -= n
		r.s.metrics.getBytes.Add(float64(n))
		if err == nil && r.off != r.curEnd {
			err = fmt.Errorf("segment %d ended early at %d: %w", r.seg, r.off, io.ErrUnexpectedEOF)
		}
		if err != nil {
			r.err = fmt.Errorf("get %s/%s at %d: %w", r.o.Bucket, r.o.Key, r.off, err)
			return written, r.err
		}
		r.cur.Close()
		r.cur = nil
	}
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.cur == nil {
		if err := r.openNext(); err != nil {
			r.err = err
			return 0, err
		}
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	nr, err := r.cur.Read(p)
	r.off += int64(nr)
	r.left -= int64(nr)
	r.s.metrics.getBytes.Add(float64(nr))
	if err == io.EOF {
		r.cur.Close()
		r.cur = nil
		segEnd := r.segOff + r.o.Segments[r.seg].Size
		if r.off < segEnd && r.left > 0 {
			r.err = fmt.Errorf("read %s/%s: segment %d ended early at %d: %w", r.o.Bucket, r.o.Key, r.seg, r.off, io.ErrUnexpectedEOF)
			return nr, r.err
		}
		err = nil
	}
	if err != nil {
		r.err = fmt.Errorf("read %s/%s at %d: %w", r.o.Bucket, r.o.Key, r.off, err)
		return nr, r.err
	}
	if r.left == 0 {
		return nr, io.EOF
	}
	return nr, nil
}

// openNext opens the reader of the segment holding byte r.off.
func (r *objectReader) openNext() error {
	for r.seg < len(r.o.Segments) && r.off >= r.segOff+r.o.Segments[r.seg].Size {
		r.segOff += r.o.Segments[r.seg].Size
		r.seg++
	}
	if r.seg >= len(r.o.Segments) {
		return fmt.Errorf("read %s/%s: offset %d past its segments: %w", r.o.Bucket, r.o.Key, r.off, io.ErrUnexpectedEOF)
	}
	seg := r.o.Segments[r.seg]
	within := r.off - r.segOff
	n := min(r.left, seg.Size-within)
	rc, err := r.s.openSegment(r.ctx, seg, within, n)
	if err != nil {
		return fmt.Errorf("read %s/%s segment %d: %w", r.o.Bucket, r.o.Key, r.seg, err)
	}
	r.cur, r.curEnd = rc, r.off+n
	return nil
}

func (r *objectReader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	if !r.closed {
		r.closed = true
		r.s.reading.Add(-1)
	}
	if r.err == nil {
		r.err = errors.New("read after close")
	}
	return nil
}

// openSegment reads bytes [off, off+n) of one segment.
func (s *Store) openSegment(ctx context.Context, seg *pb.Segment, off, n int64) (io.ReadCloser, error) {
	id, err := chunk.SegmentIDFromBytes(seg.Id)
	if err != nil {
		return nil, err
	}
	p := chunk.Params{Scheme: chunk.Scheme{K: int(seg.GetScheme().GetK()), M: int(seg.GetScheme().GetM())}, BlockSize: int(seg.BlockSize)}
	codec, err := s.codec(p)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", id, err)
	}
	cm, err := s.clusters.get(ctx, false)
	if err != nil {
		return nil, err
	}
	src := &shardSource{s: s, seg: seg, id: id}
	src.cm.Store(cm)
	return codec.NewReader(ctx, id, seg.Size, off, n, src, chunk.ReadOptions{
		Pool:      s.readBufs,
		ReadAhead: s.readAhead(),
		OnBadShard: func(shard int, err error) {
			s.metrics.badShards.Inc()
			if errors.Is(err, errStalledLately) || errors.Is(err, errNodeDown) {
				// Logged when it stalled, and metad reports DOWN nodes;
				// not again for every GET.
				s.log.Debug("chunk set aside, reading around it", "chunk", chunk.ID{Segment: id, Shard: shard}.String(), "node", src.node(shard))
				return
			}
			s.log.Warn("chunk unusable, reading around it", "chunk", chunk.ID{Segment: id, Shard: shard}.String(), "node", src.node(shard), "err", err)
			if reason := badChunkReason(err); reason != "" && src.node(shard) != "" {
				s.reportChunk(&pb.ChunkRef{SegmentId: seg.Id, Shard: uint32(shard), NodeId: src.node(shard)}, reason)
			}
		},
	})
}

// badChunkReason says whether a chunk that failed a read should be
// repaired: corrupt and missing chunks are; slow or unreachable nodes are
// not (liveness tracking decides about nodes, and a blip must not set off
// repairs of healthy chunks).
func badChunkReason(err error) string {
	switch {
	case errors.Is(err, chunk.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, blob.ErrNotFound):
		return "missing"
	}
	return ""
}

// reportChunk tells metad about a bad chunk, in the background: the read
// that found it has already read around it.
func (s *Store) reportChunk(ref *pb.ChunkRef, reason string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := s.meta.ReportChunks(ctx, &pb.ReportChunksRequest{Chunks: []*pb.ChunkRef{ref}, Reason: reason, Reporter: s.reporter})
		if err != nil {
			s.log.Warn("report bad chunk", "node", ref.NodeId, "shard", ref.Shard, "reason", reason, "err", err)
		}
	}()
}

// shardSource reads a segment's chunks from the blob nodes that hold them.
type shardSource struct {
	s   *Store
	seg *pb.Segment
	id  chunk.SegmentID
	// cm is atomic: the Reader opens the shards of a stripe concurrently,
	// and any of them may refresh it.
	cm atomic.Pointer[clusterMap]
}

var errNoChunk = errors.New("chunk not stored (segment written degraded or chunk lost)")

// patientReads is how many read budgets a chunk read waits when no other
// chunk can stand in for it (chunk.Patient).
const patientReads = 10

// errStalledLately sets aside a chunk on a node that stalled a read or an
// upload within stallHold.
var errStalledLately = fmt.Errorf("stalled lately: %w", chunk.ErrStalled)

// errNodeDown sets aside a chunk on a node the cluster map has DOWN: it is
// read only when no other chunk can stand in for it.
var errNodeDown = fmt.Errorf("%s in the cluster map, set aside: %w", pb.NodeState_NODE_STATE_DOWN, chunk.ErrStalled)

func (src *shardSource) node(shard int) string {
	if shard < len(src.seg.Nodes) {
		return src.seg.Nodes[shard]
	}
	return ""
}

func (src *shardSource) OpenShard(ctx context.Context, shard, first, end int) (io.ReadCloser, error) {
	nodeID := src.node(shard)
	if nodeID == "" {
		return nil, errNoChunk
	}
	node, ok := src.cm.Load().nodes[nodeID]
	if !ok {
		// A node that joined after our copy of the map was taken.
		cm, err := src.s.clusters.get(ctx, true)
		if err != nil {
			return nil, err
		}
		src.cm.Store(cm)
		if node, ok = cm.nodes[nodeID]; !ok {
			return nil, fmt.Errorf("node %s is not in the cluster map", nodeID)
		}
	}
	down := node.State == pb.NodeState_NODE_STATE_DOWN
	switch {
	case node.State == pb.NodeState_NODE_STATE_DECOMMISSIONED:
		return nil, fmt.Errorf("node %s is %s", nodeID, node.State)
	case down && !chunk.IsPatient(ctx):
		// metad lost the node's heartbeats; the gateway may still reach
		// it (a cut between the two), so it is read when nothing else
		// can stand in rather than never.
		return nil, fmt.Errorf("node %s: %w", nodeID, errNodeDown)
	}
	id := chunk.ID{Segment: src.id, Shard: shard}
	if src.s.readBudget < 0 {
		return src.s.blobs.GetStripes(ctx, node.Address, id, first, end)
	}
	budget := src.s.readBudget
	switch {
	case down:
		// Read as a last resort, with one budget and not a patient
		// wait: the node is most likely gone.
	case chunk.IsPatient(ctx):
		// Nothing else can stand in: wait far longer, but not forever,
		// so that a node that really hangs gives way to another that
		// was set aside only for a pause (the fetcher tries them all).
		budget *= patientReads
	default:
		if now := time.Now(); src.s.readStalls.has(nodeID, now) || src.s.writeStalls.has(nodeID, now) {
			// A node that stalled lately is set aside at once: the codec
			// reads parity instead, and comes back to it only if it must.
			return nil, fmt.Errorf("node %s: %w", nodeID, errStalledLately)
		}
	}
	// The budget bounds the wait for the response and for every read after
	// it: a node that stalls is abandoned, and the codec reads parity (or,
	// with no parity left, opens it again, patiently).
	sctx, cancel := context.WithCancel(ctx)
	w := watchdog.New(budget, func() {
		src.s.readStalls.add(nodeID, time.Now())
		src.s.metrics.readStalls.Inc()
		cancel()
	})
	w.Arm()
	rc, err := src.s.blobs.GetStripes(sctx, node.Address, id, first, end)
	w.Disarm()
	if err != nil {
		w.Stop()
		cancel()
		return nil, explainStall(w, "read", err)
	}
	return &budgetReader{rc: rc, w: w, cancel: cancel}, nil
}

type budgetReader struct {
	rc     io.ReadCloser
	w      *watchdog.Watchdog
	cancel context.CancelFunc
}

func (b *budgetReader) Read(p []byte) (int, error) {
	b.w.Arm()
	n, err := b.rc.Read(p)
	b.w.Disarm()
	return n, explainStall(b.w, "read", err)
}

func (b *budgetReader) Close() error {
	b.w.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}
