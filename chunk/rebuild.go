package chunk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Rebuild reconstructs whole chunks of a segment of the given size: for
// each shard i in w, it writes to w[i] exactly the chunk file Encode wrote
// for it (header, then every stripe's block and checksum). It reads K other
// healthy shards (never those in w) stripe by stripe, standing in for any
// that fail as a Reader does, and reports them through opt.OnBadShard.
// It fails, wrapping ErrUnrecoverable, with fewer than K usable shards, and
// on the first error of any writer. Memory: (K+M)*BlockSize.
func (c *Codec) Rebuild(ctx context.Context, seg SegmentID, size int64, src ShardSource, w map[int]io.Writer, opt ReadOptions) error {
	l, err := NewLayout(c.p, size)
	if err != nil {
		return err
	}
	n := c.p.Scheme.Shards()
	if len(w) == 0 {
		return nil
	}
	targets := make([]int, 0, len(w))
	for i := range w {
		if i < 0 || i >= n {
			return fmt.Errorf("rebuild segment %s: shard %d of a %s scheme: %w", seg, i, c.p.Scheme, ErrBadParams)
		}
		targets = append(targets, i)
	}
	slices.Sort(targets)

	for _, i := range targets {
		hdr, err := Header{Params: c.p, Segment: seg, Shard: i}.AppendBinary(nil)
		if err != nil {
			return err
		}
		if _, err := w[i].Write(hdr); err != nil {
			return fmt.Errorf("rebuild: write chunk %s header: %w", ID{Segment: seg, Shard: i}, err)
		}
	}
	if l.NumStripes() == 0 {
		return nil
	}
	wantEnd := make([]int, n)
	for i := range wantEnd {
		wantEnd[i] = l.NumStripes()
	}
	f := newFetcher(c, l, seg, src, opt, l.NumStripes(), wantEnd)
	defer f.close()
	need := make([]bool, n)
	for _, i := range targets {
		need[i] = true
		f.exclude(i, errors.New("being rebuilt"))
	}
	for s := range l.NumStripes() {
		if err := f.fetch(ctx, s, need); err != nil {
			return fmt.Errorf("rebuild segment %s: %w", seg, err)
		}
		bl := l.BlockLen(s)
		for _, i := range targets {
			frame := f.bufs[i][:bl+ChecksumSize]
			binary.LittleEndian.PutUint32(frame[bl:], Checksum(frame[:bl]))
			if _, err := w[i].Write(frame); err != nil {
				return fmt.Errorf("rebuild: write chunk %s stripe %d: %w", ID{Segment: seg, Shard: i}, s, err)
			}
		}
	}
	return nil
}
