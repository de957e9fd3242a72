package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
)

// TestReadSuiteWriteTo runs the Reader's tests again with readRange draining
// through WriteTo (alone, after a short Read, and with pooled buffers that
// earlier reads left dirty): the same ranges, missing, corrupt and cut
// shards must give the same bytes, reports and errors as Read.
func TestReadSuiteWriteTo(t *testing.T) {
	for _, way := range []struct {
		name string
		via  readWay
	}{
		{"WriteTo", viaWriteTo},
		{"AheadWriteTo", viaAheadWriteTo},
		{"ReadThenWriteTo", viaReadWriteTo},
		{"PooledWriteTo", viaPoolWriteTo},
	} {
		t.Run(way.name, func(t *testing.T) {
			readVia = way.via
			defer func() { readVia = viaRead }()
			t.Run("RoundTrip", TestRoundTrip)
			t.Run("OpensOnlyWhatItNeeds", TestReadOpensOnlyWhatItNeeds)
			t.Run("MissingShards", TestReadMissingShards)
			t.Run("CorruptBlock", TestReadCorruptBlock)
			t.Run("ShortAndFailingStreams", TestReadShortAndFailingStreams)
			t.Run("SwitchesToParity", TestReadSwitchesToParityFromTheFailedStripe)
			t.Run("WaitsForStalledShard", TestReadWaitsForStalledShard)
		})
	}
}

// trackingSource counts the shard streams open at any time.
type trackingSource struct {
	ShardSource
	mu         sync.Mutex
	open, peak int
}

func (s *trackingSource) OpenShard(ctx context.Context, shard, first, end int) (io.ReadCloser, error) {
	rc, err := s.ShardSource.OpenShard(ctx, shard, first, end)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	s.peak = max(s.peak, s.open)
	return &trackedStream{ReadCloser: rc, s: s}, nil
}

func (s *trackingSource) openNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

type trackedStream struct {
	io.ReadCloser
	s    *trackingSource
	once sync.Once
}

func (t *trackedStream) Close() error {
	t.once.Do(func() {
		t.s.mu.Lock()
		t.s.open--
		t.s.mu.Unlock()
	})
	return t.ReadCloser.Close()
}

// TestWriteToUnrecoverable: with one shard too many lost from stripe 3 on,
// WriteTo writes exactly the first three stripes, then fails with
// ErrUnrecoverable, having closed every stream; Read then repeats the error.
func TestWriteToUnrecoverable(t *testing.T) {
	p := Params{Scheme{4, 2}, 16}
	c := mustCodec(t, p)
	size := 6 * p.StripeDataSize()
	data := randBytes(21, int(size))
	chunks := encodeBytes(t, c, SegmentID{5}, data)
	l, _ := NewLayout(p, size)
	mem := newMemSource(chunks)
	mem.openErr[0] = errMissing
	mem.openErr[1] = errMissing
	mem.cut[4] = l.StripeOffset(3)
	src := &trackingSource{ShardSource: mem}
	r, err := c.NewReader(context.Background(), SegmentID{5}, size, 0, size, src, ReadOptions{Pool: NewBlockPool(), ReadAhead: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	n, err := r.WriteTo(&got)
	if !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("WriteTo = %d, %v; want ErrUnrecoverable", n, err)
	}
	if n != int64(got.Len()) || n != 3*p.StripeDataSize() || !bytes.Equal(got.Bytes(), data[:n]) {
		t.Fatalf("wrote %d bytes (buffer %d), want the first 3 stripes intact", n, got.Len())
	}
	if o := src.openNow(); o != 0 {
		t.Errorf("%d shard streams still open after the error", o)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrUnrecoverable) {
		t.Errorf("Read after the error = %v, want the error again", err)
	}
}

// TestWriteToWriterFails: the writer's error ends WriteTo, is returned as
// is, reports no shard, and leaves no stream open — wherever in the
// pipeline it strikes.
func TestWriteToWriterFails(t *testing.T) {
	p := Params{Scheme{4, 2}, 16}
	c := mustCodec(t, p)
	size := 5*p.StripeDataSize() + 7
	data := randBytes(22, int(size))
	chunks := encodeBytes(t, c, SegmentID{6}, data)
	boom := errors.New("client went away")
	for _, tt := range writeToCases(0, 1, 16, 64, 65, 200, size-1) {
		after := tt.n
		t.Run(tt.name, func(t *testing.T) {
			src := &trackingSource{ShardSource: newMemSource(chunks)}
			var bad badShards
			opt := bad.opts()
			opt.Pool = NewBlockPool()
			opt.ReadAhead = tt.ahead
			r, err := c.NewReader(context.Background(), SegmentID{6}, size, 0, size, src, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got bytes.Buffer
			w := writerFunc(func(b []byte) (int, error) {
				room := after - int64(got.Len())
				if int64(len(b)) <= room {
					return got.Write(b)
				}
				got.Write(b[:room])
				return int(room), boom
			})
			n, err := r.WriteTo(w)
			if !errors.Is(err, boom) || n != after {
				t.Fatalf("WriteTo = %d, %v; want %d, %v", n, err, after, boom)
			}
			if !bytes.Equal(got.Bytes(), data[:after]) {
				t.Fatal("wrong bytes before the failure")
			}
			if len(bad.errs) != 0 {
				t.Errorf("a failing writer got shards reported: %v", bad.errs)
			}
			if o := src.openNow(); o != 0 {
				t.Errorf("%d shard streams still open after the error", o)
			}
		})
	}
}

// TestWriteToCancel: a context cancelled mid-write stops the fetching
// goroutine; WriteTo returns the context's error and reports no shard.
func TestWriteToCancel(t *testing.T) {
	p := Params{Scheme{3, 2}, 8}
	c := mustCodec(t, p)
	size := 10 * p.StripeDataSize()
	data := randBytes(23, int(size))
	chunks := encodeBytes(t, c, SegmentID{7}, data)
	for _, ahead := range []bool{false, true} {
		t.Run(fmt.Sprint("ahead=", ahead), func(t *testing.T) {
			testWriteToCancel(t, c, chunks, data, ahead)
		})
	}
}

func testWriteToCancel(t *testing.T, c *Codec, chunks [][]byte, data []byte, ahead bool) {
	p := c.Params()
	size := int64(len(data))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &trackingSource{ShardSource: newMemSource(chunks)}
	var bad badShards
	opt := bad.opts()
	opt.ReadAhead = ahead
	r, err := c.NewReader(ctx, SegmentID{7}, size, 0, size, src, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) {
		if int64(got.Len()) >= 2*p.StripeDataSize() {
			cancel()
		}
		return got.Write(b)
	})
	n, err := r.WriteTo(w)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteTo = %d, %v; want context.Canceled", n, err)
	}
	if n >= size || !bytes.Equal(got.Bytes(), data[:n]) {
		t.Fatalf("wrote %d of %d bytes; want a correct prefix", n, size)
	}
	if len(bad.errs) != 0 {
		t.Errorf("a cancelled read got shards reported: %v", bad.errs)
	}
	if o := src.openNow(); o != 0 {
		t.Errorf("%d shard streams still open after the error", o)
	}
}

// TestWriteToMemoryBounded: WriteTo of a segment of 64 stripes holds two
// stripes' buffers, not the segment, and opens each data shard once.
func TestWriteToMemoryBounded(t *testing.T) {
	p := Params{Scheme{4, 2}, 16 << 10}
	c := mustCodec(t, p)
	size := 64 * p.StripeDataSize() // 4 MiB
	data := randBytes(24, int(size))
	chunks := encodeBytes(t, c, SegmentID{8}, data)
	src := &trackingSource{ShardSource: newMemSource(chunks)}
	var out countingWriter
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := c.NewReader(context.Background(), SegmentID{8}, size, 0, size, src, ReadOptions{ReadAhead: true})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.WriteTo(&out)
	r.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || out.n != size {
		t.Fatalf("WriteTo = %d, %v (writer saw %d), want %d", n, err, out.n, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("writing %d MiB allocated %d KiB, want about two stripes' blocks (%d KiB)", size>>20, alloc>>10, 2*4*p.BlockSize>>10)
	}
	if src.peak != 4 {
		t.Errorf("%d streams open at once, want one per data shard", src.peak)
	}
}

// writeToCase is one n, read with or without read-ahead.
type writeToCase struct {
	name  string
	n     int64
	ahead bool
}

// writeToCases is each n once without read-ahead and once with it.
func writeToCases(ns ...int64) []writeToCase {
	var out []writeToCase
	for _, ahead := range []bool{false, true} {
		for _, n := range ns {
			out = append(out, writeToCase{fmt.Sprintf("%d/ahead=%v", n, ahead), n, ahead})
		}
	}
	return out
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return len(b), nil
}

// BenchmarkWriteTo is BenchmarkRead's whole-segment cases drained through
// WriteTo (as io.Copy does) with pooled buffers, as the gateway reads.
func BenchmarkWriteTo(b *testing.B) {
	p := DefaultParams(DefaultScheme())
	c := mustCodec(b, p)
	data := randBytes(1, benchSegment)
	chunks := encodeBytes(b, c, SegmentID{}, data)
	pool := NewBlockPool()
	for _, tt := range []struct {
		name    string
		missing []int
		ahead   bool
	}{
		{"full", nil, false},
		{"full-ahead", nil, true},
		{"degraded-2-missing", []int{0, 2}, false},
		{"degraded-2-missing-ahead", []int{0, 2}, true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cs := append([][]byte(nil), chunks...)
			for _, i := range tt.missing {
				cs[i] = nil
			}
			src := newMemSource(cs)
			b.SetBytes(benchSegment)
			for b.Loop() {
				src.opens = src.opens[:0]
				r, err := c.NewReader(context.Background(), SegmentID{}, benchSegment, 0, benchSegment, src, ReadOptions{Pool: pool, ReadAhead: tt.ahead})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				if err != nil || n != benchSegment {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}
