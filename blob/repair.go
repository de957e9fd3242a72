package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cairnstore/cairn/chunk"
)

// peerSource reads a segment's chunks from the peers that hold them: the
// chunk.ShardSource of a repair.
type peerSource struct {
	client *Client
	seg    chunk.SegmentID
	peers  map[int]Peer
}

var errNoSource = errors.New("no source for this shard")

func (p *peerSource) OpenShard(ctx context.Context, shard, first, end int) (io.ReadCloser, error) {
	peer, ok := p.peers[shard]
	if !ok {
		return nil, errNoSource
	}
	return p.client.GetStripes(ctx, peer.Addr, chunk.ID{Segment: p.seg, Shard: shard}, first, end)
}

// badSource says whether a source chunk that failed a read is itself bad,
// to be reported for repair: corrupt, missing, or not the length the
// segment says. A node that is slow or unreachable is not reported:
// liveness tracking decides about nodes, and a network blip must not get
// healthy chunks dropped.
func badSource(err error) bool {
	return errors.Is(err, chunk.ErrCorrupt) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrBadRange) || errors.Is(err, ErrIncomplete)
}

// segmentLayout validates a task's segment and returns its codec and the
// size of its chunk files.
func (e *Executor) segmentLayout(s Segment) (*chunk.Codec, int64, error) {
	c, err := e.codec(s.Params)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", s.ID, err)
	}
	l, err := chunk.NewLayout(s.Params, s.Size)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", s.ID, err)
	}
	return c, l.ChunkSize(), nil
}

// repair rebuilds the wanted shards from the sources and stores them. The
// rebuilt chunks stream straight into the store (one upload per shard, each
// verified as a PUT is: header id, block checksums, exact length), so
// memory stays at a stripe or two whatever the segment's size. Either every
// wanted shard is stored durably and the result is OK, or the failure is
// reported; a failed Rebuild leaves nothing behind.
func (e *Executor) repair(ctx context.Context, t RepairTask) TaskResult {
	seg := t.Segment
	codec, size, err := e.segmentLayout(seg)
	if err != nil {
		return failed(fmt.Errorf("repair: %w", err))
	}
	n := seg.Params.Scheme.Shards()
	if len(t.Shards) == 0 {
		return failed(fmt.Errorf("repair segment %s: no shards to rebuild", seg.ID))
	}
	want := make(map[int]bool, len(t.Shards))
	for _, i := range t.Shards {
		if i < 0 || i >= n || want[i] {
			return failed(fmt.Errorf("repair segment %s: shard %d of a %s scheme (or listed twice)", seg.ID, i, seg.Params.Scheme))
		}
		want[i] = true
	}
	peers := make(map[int]Peer, len(t.Sources))
	for _, p := range t.Sources {
		if p.Shard < 0 || p.Shard >= n || want[p.Shard] {
			continue // never read a shard being rebuilt
		}
		peers[p.Shard] = p
	}

	var res TaskResult
	opt := chunk.ReadOptions{OnBadShard: func(shard int, err error) {
		p, ok := peers[shard]
		if !ok {
			return
		}
		e.log.Warn("repair source unusable", "segment", seg.ID, "shard", shard, "node", p.NodeID, "addr", p.Addr, "err", err)
		if badSource(err) {
			res.BadSources = append(res.BadSources, ChunkRef{ID: chunk.ID{Segment: seg.ID, Shard: shard}, NodeID: p.NodeID})
		}
	}}

	// One upload into the store per wanted shard, fed through a pipe. An
	// upload that fails closes its pipe's read side with the error, so
	// Rebuild's next write fails instead of blocking.
	shards := slices.Sorted(func(yield func(int) bool) {
		for i := range want {
			if !yield(i) {
				return
			}
		}
	})
	ws := make(map[int]io.Writer, len(shards))
	pws := make(map[int]*io.PipeWriter, len(shards))
	putErrs := make(map[int]error, len(shards))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range shards {
		pr, pw := io.Pipe()
		ws[i], pws[i] = pw, pw
		id := chunk.ID{Segment: seg.ID, Shard: i}
		wg.Go(func() {
			written, err := e.put(ctx, id, pr, size)
			pr.CloseWithError(errOr(err, errors.New("upload ended")))
			mu.Lock()
			putErrs[i] = err
			mu.Unlock()
			if err == nil {
				e.m.bytes.WithLabelValues("repair").Add(float64(written))
			}
		})
	}
	rerr := codec.Rebuild(ctx, seg.ID, seg.Size, &peerSource{client: e.cfg.Client, seg: seg.ID, peers: peers}, ws, opt)
	for _, pw := range pws {
		if rerr != nil {
			pw.CloseWithError(rerr)
		} else {
			pw.Close()
		}
	}
	wg.Wait()
	if rerr != nil {
		// A failed upload shows in rerr: its pipe passed its error on to
		// Rebuild's write.
		res.Error = fmt.Sprintf("repair segment %s shards %v: %v", seg.ID, shards, rerr)
		return res
	}
	var errs []error
	for _, i := range shards {
		if err := putErrs[i]; err != nil {
			errs = append(errs, err)
		} else {
			res.ShardsDone = append(res.ShardsDone, i)
		}
	}
	if err := errors.Join(errs...); err != nil {
		res.Error = fmt.Sprintf("repair segment %s: store rebuilt chunks: %v", seg.ID, err)
		return res
	}
	res.OK = true
	return res
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// put stores a chunk from r, verified on the way in as a PUT is: the header
// names id, every block checks, and the length is exactly size.
func (e *Executor) put(ctx context.Context, id chunk.ID, r io.Reader, size int64) (int64, error) {
	vr := newVerifyingReader(r, id)
	defer vr.Close()
	return e.cfg.Store.Put(ctx, id, vr, size)
}

// move copies one chunk from its source node, verifying it on the way in.
func (e *Executor) move(ctx context.Context, t MoveTask) TaskResult {
	seg := t.Segment
	_, size, err := e.segmentLayout(seg)
	if err != nil {
		return failed(fmt.Errorf("move: %w", err))
	}
	if n := seg.Params.Scheme.Shards(); t.Shard < 0 || t.Shard >= n {
		return failed(fmt.Errorf("move segment %s: shard %d of a %s scheme", seg.ID, t.Shard, seg.Params.Scheme))
	}
	id := chunk.ID{Segment: seg.ID, Shard: t.Shard}
	var res TaskResult
	fail := func(err error) TaskResult {
		if badSource(err) {
			res.BadSources = append(res.BadSources, ChunkRef{ID: id, NodeID: t.Source.NodeID})
		}
		res.Error = fmt.Sprintf("move chunk %s from %s (%s): %v", id, t.Source.NodeID, t.Source.Addr, err)
		return res
	}
	rc, err := e.cfg.Client.Get(ctx, t.Source.Addr, id)
	if err != nil {
		return fail(err)
	}
	written, err := e.put(ctx, id, rc, size)
	rc.Close()
	if err != nil {
		return fail(err)
	}
	e.m.bytes.WithLabelValues("move").Add(float64(written))
	res.OK = true
	res.ShardsDone = []int{t.Shard}
	return res
}
