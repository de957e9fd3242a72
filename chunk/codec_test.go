package chunk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// testParams are the schemes the round-trip tests cover, each with its
// default block size and with a small one that makes many stripes cheap.
func testParams() []Params {
	var ps []Params
	for _, s := range []Scheme{{1, 0}, {2, 1}, {4, 2}, {16, 8}, {3, 2}} {
		ps = append(ps, DefaultParams(s))
	}
	return append(ps,
		Params{Scheme{3, 2}, 7}, // odd block size, odd k
		Params{Scheme{4, 2}, 64},
		Params{Scheme{5, 3}, 13},
	)
}

// testSizes are the segment sizes around the edges of blocks and stripes.
func testSizes(p Params) []int64 {
	b, sd := int64(p.BlockSize), p.StripeDataSize()
	sizes := []int64{0, 1, b - 1, b, b + 1, sd - 1, sd, sd + 1, 2 * sd}
	if sd < 1<<16 {
		sizes = append(sizes, 5*sd+b/2+1) // many stripes
	} else {
		sizes = append(sizes, 3*sd+b/2+1)
	}
	return slices.DeleteFunc(slices.Compact(sizes), func(n int64) bool { return n < 0 })
}

// testRanges are ranges of a segment of the given size worth reading.
func testRanges(p Params, size int64) [][2]int64 {
	b, sd := int64(p.BlockSize), p.StripeDataSize()
	rs := [][2]int64{
		{0, size},     // whole
		{0, 0},        // empty at the start
		{size, 0},     // empty at the end
		{size / 2, 0}, // empty in the middle
		{0, min(1, size)},
		{max(size-1, 0), min(1, size)},       // last byte
		{size / 3, size / 3},                 // middle
		{min(b-1, size), min(2, size-b+1)},   // across a block boundary
		{min(sd-3, size), min(6, size-sd+3)}, // across a stripe boundary
		{min(b+1, size), size - min(b+1, size)},
		{0, max(size-1, 0)},
	}
	return slices.DeleteFunc(rs, func(r [2]int64) bool { return r[0] < 0 || r[1] < 0 || r[0]+r[1] > size })
}

func TestRoundTrip(t *testing.T) {
	for _, p := range testParams() {
		c := mustCodec(t, p)
		for _, size := range testSizes(p) {
			t.Run(fmt.Sprintf("%s/%d", p, size), func(t *testing.T) {
				data := randBytes(uint64(size), int(size))
				seg := NewSegmentID()
				chunks := encodeBytes(t, c, seg, data)
				l, _ := NewLayout(p, size)
				for i, ch := range chunks {
					if int64(len(ch)) != l.ChunkSize() {
						t.Fatalf("chunk %d is %d bytes, layout says %d", i, len(ch), l.ChunkSize())
					}
					h, f, err := Verify(bytes.NewReader(ch))
					if err != nil || h.ID() != (ID{seg, i}) || f != l.Framing() {
						t.Fatalf("Verify(chunk %d) = %+v, %+v, %v", i, h, f, err)
					}
				}
				src := newMemSource(chunks)
				var bad badShards
				for _, r := range testRanges(p, size) {
					got, err := readRange(t, c, seg, size, r[0], r[1], src, bad.opts())
					if err != nil {
						t.Fatalf("range %v: %v", r, err)
					}
					if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
						t.Fatalf("range %v: wrong bytes", r)
					}
				}
				if len(bad.errs) > 0 {
					t.Errorf("healthy chunks reported bad: %v", bad.errs)
				}
				for _, o := range src.openCalls() {
					if o.shard >= p.Scheme.K {
						t.Errorf("healthy read opened parity shard %d", o.shard)
					}
				}
			})
		}
	}
}

// TestReadOpensOnlyWhatItNeeds checks a range inside one block costs one
// shard stream of one stripe, and a whole read one stream per data shard.
func TestReadOpensOnlyWhatItNeeds(t *testing.T) {
	p := Params{Scheme{4, 2}, 100}
	c := mustCodec(t, p)
	size := int64(1000) // stripes of 400: [0,400) [400,800) [800,1000)
	data := randBytes(1, int(size))
	chunks := encodeBytes(t, c, SegmentID{}, data)
	tests := []struct {
		off, n int64
		want   []openCall
	}{
		{410, 20, []openCall{{0, 1, 2}}},            // inside shard 0's block of stripe 1
		{860, 20, []openCall{{1, 2, 3}}},            // last stripe: blocks of 50
		{890, 20, []openCall{{1, 2, 3}, {2, 2, 3}}}, // across a block boundary there
		{390, 20, []openCall{{0, 1, 2}, {3, 0, 1}}}, // shard 3 of stripe 0, shard 0 of stripe 1
		{0, 0, nil}, // nothing
		{0, size, []openCall{{0, 0, 3}, {1, 0, 3}, {2, 0, 3}, {3, 0, 3}}},  // every data shard, once
		{150, 400, []openCall{{0, 1, 2}, {1, 0, 2}, {2, 0, 1}, {3, 0, 1}}}, // [150,400) + [400,550)
	}
	for _, tt := range tests {
		src := newMemSource(chunks)
		got, err := readRange(t, c, SegmentID{}, size, tt.off, tt.n, src, ReadOptions{})
		if err != nil || !bytes.Equal(got, data[tt.off:tt.off+tt.n]) {
			t.Fatalf("[%d,+%d): %v, bytes equal: %v", tt.off, tt.n, err, bytes.Equal(got, data[tt.off:tt.off+tt.n]))
		}
		opens := src.openCalls()
		slices.SortFunc(opens, func(a, b openCall) int { return a.shard - b.shard })
		if !slices.Equal(opens, tt.want) {
			t.Errorf("[%d,+%d): opened %v, want %v", tt.off, tt.n, opens, tt.want)
		}
	}
}

// subsets returns every subset of {0..n-1} with at most max elements.
func subsets(n, max int) [][]int {
	var out [][]int
	for mask := 0; mask < 1<<n; mask++ {
		var s []int
		for i := range n {
			if mask&(1<<i) != 0 {
				s = append(s, i)
			}
		}
		if len(s) <= max {
			out = append(out, s)
		}
	}
	return out
}

func TestReadMissingShards(t *testing.T) {
	for _, p := range []Params{{Scheme{4, 2}, 64}, {Scheme{3, 2}, 7}, {Scheme{2, 1}, 16}, {Scheme{5, 3}, 13}} {
		c := mustCodec(t, p)
		size := 3*p.StripeDataSize() + int64(p.BlockSize)/2 + 1
		data := randBytes(9, int(size))
		chunks := encodeBytes(t, c, SegmentID{3}, data)
		n := p.Scheme.Shards()
		for _, missing := range subsets(n, n) {
			t.Run(fmt.Sprintf("%s/missing%v", p, missing), func(t *testing.T) {
				cs := cloneChunks(chunks)
				for _, i := range missing {
					cs[i] = nil
				}
				for _, r := range testRanges(p, size) {
					var bad badShards
					got, err := readRange(t, c, SegmentID{3}, size, r[0], r[1], newMemSource(cs), bad.opts())
					if len(missing) > p.Scheme.M {
						// Unless the range needs none of the missing
						// shards, the read must fail, never lie.
						if err == nil && !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
							t.Fatalf("range %v: wrong bytes with %d missing", r, len(missing))
						}
						if err != nil && !errors.Is(err, ErrUnrecoverable) {
							t.Fatalf("range %v: error %v does not wrap ErrUnrecoverable", r, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("range %v: %v", r, err)
					}
					if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
						t.Fatalf("range %v: wrong bytes", r)
					}
					for sh, e := range bad.errs {
						if !slices.Contains(missing, sh) || !errors.Is(e, errMissing) {
							t.Errorf("range %v: shard %d reported bad: %v", r, sh, e)
						}
					}
					if len(bad.dups) > 0 {
						t.Errorf("range %v: shards reported twice: %v", r, bad.dups)
					}
				}
				// A whole read with more than M missing always fails.
				if len(missing) > p.Scheme.M {
					_, err := readRange(t, c, SegmentID{3}, size, 0, size, newMemSource(cs), ReadOptions{})
					if !errors.Is(err, ErrUnrecoverable) {
						t.Fatalf("whole read with %v missing: %v, want ErrUnrecoverable", missing, err)
					}
				}
			})
		}
	}
}

// TestReadCorruptBlock flips one byte in every block (and every checksum)
// of every shard in turn. A read of the whole segment must notice, report
// the shard, and return the exact data, or, when the flip leaves fewer than
// K good shards, fail at that stripe after only correct bytes.
func TestReadCorruptBlock(t *testing.T) {
	for _, p := range []Params{{Scheme{4, 2}, 32}, {Scheme{3, 2}, 7}, {Scheme{2, 1}, 8}} {
		c := mustCodec(t, p)
		size := 2*p.StripeDataSize() + 5
		data := randBytes(4, int(size))
		chunks := encodeBytes(t, c, SegmentID{4}, data)
		l, _ := NewLayout(p, size)
		k, n := p.Scheme.K, p.Scheme.Shards()
		for shard := range n {
			for s := range l.NumStripes() {
				if shard < k && int64(shard*l.BlockLen(s)) >= l.StripeDataLen(s) {
					continue // all padding: a read has no reason to look at it
				}
				for _, at := range []int{0, l.BlockLen(s) - 1, l.BlockLen(s) + 1} { // first, last byte, checksum
					name := fmt.Sprintf("%s: shard %d stripe %d byte %d flipped", p, shard, s, at)
					cs := cloneChunks(chunks)
					cs[shard][l.StripeOffset(s)+int64(at)] ^= 0x40
					// Parity is read only in place of a data shard, and
					// in order: to make the flipped parity shard be read,
					// lose data shard 0 and the parity shards before it.
					recoverable := true
					if shard >= k {
						cs[0] = nil
						for i := k; i < shard; i++ {
							cs[i] = nil
						}
						recoverable = shard < n-1
					}
					var bad badShards
					got, err := readRange(t, c, SegmentID{4}, size, 0, size, newMemSource(cs), bad.opts())
					if e := bad.errs[shard]; !errors.Is(e, ErrCorrupt) {
						t.Fatalf("%s: reported %v, want ErrCorrupt", name, e)
					}
					if recoverable {
						if err != nil || !bytes.Equal(got, data) {
							t.Fatalf("%s: %v, bytes equal %v", name, err, bytes.Equal(got, data))
						}
						continue
					}
					if !errors.Is(err, ErrUnrecoverable) {
						t.Fatalf("%s with %d others lost: %v, want ErrUnrecoverable", name, p.Scheme.M, err)
					}
					if int64(len(got)) != l.StripeDataOffset(s) || !bytes.Equal(got, data[:len(got)]) {
						t.Fatalf("%s with %d others lost: %d bytes before the error, want the %d before stripe %d", name, p.Scheme.M, len(got), l.StripeDataOffset(s), s)
					}
				}
			}
		}
	}
}

func TestReadShortAndFailingStreams(t *testing.T) {
	p := Params{Scheme{4, 2}, 16}
	c := mustCodec(t, p)
	size := 3*p.StripeDataSize() + 9
	data := randBytes(5, int(size))
	chunks := encodeBytes(t, c, SegmentID{5}, data)
	l, _ := NewLayout(p, size)
	for _, cut := range []int64{0, HeaderSize, HeaderSize + 1, l.StripeOffset(1) - 1, l.StripeOffset(1), l.StripeOffset(2) + 3, l.ChunkSize() - 1} {
		src := newMemSource(chunks)
		src.cut[2] = cut
		var bad badShards
		got, err := readRange(t, c, SegmentID{5}, size, 0, size, src, bad.opts())
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("shard 2 cut at %d: %v", cut, err)
		}
		if e := bad.errs[2]; !errors.Is(e, io.ErrUnexpectedEOF) {
			t.Errorf("shard 2 cut at %d: reported %v, want io.ErrUnexpectedEOF", cut, e)
		}
	}
	// Two bad data shards and a third failing at the last stripe is one
	// too many: an error, and no wrong byte before it.
	src := newMemSource(chunks)
	src.openErr[0] = errMissing
	src.openErr[1] = errMissing
	src.cut[4] = l.StripeOffset(3)
	r, err := c.NewReader(context.Background(), SegmentID{5}, size, 0, size, src, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("3 bad shards: %v, want ErrUnrecoverable", err)
	}
	if !bytes.Equal(got, data[:len(got)]) || len(got) != int(3*p.StripeDataSize()) {
		t.Fatalf("3 bad shards: %d bytes before the error, want the first 3 stripes intact", len(got))
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrUnrecoverable) {
		t.Errorf("Read after the error = %v, want the error again", err)
	}
}

// TestReadWaitsForStalledShard: a shard its source gave up on for being
// slow (ErrStalled) is read around while parity can stand in for it, and
// read again, patiently, when nothing else can: a slow read must not turn
// into a failed one. A shard that stalls even then fails the read.
func TestReadWaitsForStalledShard(t *testing.T) {
	p := Params{Scheme{4, 2}, 16}
	c := mustCodec(t, p)
	size := 4*p.StripeDataSize() + 9
	data := randBytes(6, int(size))
	chunks := encodeBytes(t, c, SegmentID{6}, data)
	l, _ := NewLayout(p, size)
	for _, tc := range []struct {
		name        string
		missing     []int
		stallAt     int64 // chunk offset where shard 1 stalls
		always      bool  // shard 1 stalls even when waited for
		alsoStall2  bool  // shard 2 stalls too, unless waited for
		wantPatient bool  // shard 1 is opened patiently
		wantErr     error
	}{
		{name: "spare parity/at open", stallAt: 0},
		{name: "spare parity/mid chunk", stallAt: l.StripeOffset(2) + 5},
		{name: "one spare/at open", missing: []int{0}, stallAt: 0},
		{name: "no spare/at open", missing: []int{0, 4}, stallAt: 0, wantPatient: true},
		{name: "no spare/mid chunk", missing: []int{0, 5}, stallAt: l.StripeOffset(2) + 5, wantPatient: true},
		{name: "no spare/stalls when waited for", missing: []int{0, 4}, stallAt: l.StripeOffset(1), always: true, wantPatient: true, wantErr: ErrUnrecoverable},
		{name: "no spare/one stalls when waited for, another does not", missing: []int{4}, stallAt: 0, always: true, alsoStall2: true, wantPatient: true},
		{name: "too many lost", missing: []int{0, 4, 5}, stallAt: 0, wantPatient: true, wantErr: ErrUnrecoverable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := cloneChunks(chunks)
			for _, i := range tc.missing {
				cs[i] = nil
			}
			src := newMemSource(cs)
			src.stall[1] = tc.stallAt
			src.stallAlways[1] = tc.always
			if tc.alsoStall2 {
				src.stall[2] = 0
			}
			var bad badShards
			got, err := readRange(t, c, SegmentID{6}, size, 0, size, src, bad.opts())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if !bytes.Equal(got, data[:len(got)]) {
					t.Fatalf("wrong bytes before the error")
				}
			} else if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %d bytes, err %v", len(got), err)
			}
			patient := src.patientOpens()
			for _, sh := range patient {
				if sh != 1 && !(tc.alsoStall2 && sh == 2) {
					t.Errorf("shard %d opened patiently; only the stalled shards should be", sh)
				}
			}
			if tc.wantPatient != (len(patient) > 0) {
				t.Errorf("shards opened patiently: %v; want shard 1: %v", patient, tc.wantPatient)
			}
			if e := bad.errs[1]; !errors.Is(e, ErrStalled) {
				t.Errorf("shard 1 reported %v, want ErrStalled", e)
			}
		})
	}
}

func TestReaderSmallReads(t *testing.T) {
	p := Params{Scheme{3, 2}, 7}
	c := mustCodec(t, p)
	size := int64(100)
	data := randBytes(6, int(size))
	chunks := encodeBytes(t, c, SegmentID{6}, data)
	src := newMemSource(chunks)
	src.openErr[1] = errMissing // degraded too
	r, err := c.NewReader(context.Background(), SegmentID{6}, size, 3, 90, src, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := iotest.TestReader(r, data[3:93]); err != nil {
		t.Error(err)
	}
}

func TestReaderContext(t *testing.T) {
	p := Params{Scheme{2, 1}, 16}
	c := mustCodec(t, p)
	data := randBytes(7, 100)
	chunks := encodeBytes(t, c, SegmentID{}, data)
	ctx, cancel := context.WithCancel(context.Background())
	var bad badShards
	r, err := c.NewReader(ctx, SegmentID{}, 100, 0, 100, newMemSource(chunks), bad.opts())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel = %v, want context.Canceled", err)
	}
	if len(bad.errs) != 0 {
		t.Errorf("cancelled read reported shards bad: %v", bad.errs)
	}
	if _, err := c.NewReader(ctx, SegmentID{}, 100, 90, 11, newMemSource(chunks), ReadOptions{}); !errors.Is(err, ErrBadRange) {
		t.Errorf("NewReader past the end = %v, want ErrBadRange", err)
	}
}

// failWriter fails every write after the first after bytes.
type failWriter struct {
	after int
	n     int
	err   error
}

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.after {
		return 0, w.err
	}
	w.n += len(b)
	return len(b), nil
}

func TestEncodeFailingWriters(t *testing.T) {
	p := Params{Scheme{4, 2}, 64}
	c := mustCodec(t, p)
	size := 10*p.StripeDataSize() + 3
	data := randBytes(8, int(size))
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		failing map[int]int // shard → bytes accepted before failing
		wantErr error
	}{
		{"one at the header", map[int]int{1: 0}, nil},
		{"one mid-stream", map[int]int{3: 300}, nil},
		{"m of them", map[int]int{0: 500, 5: 100}, nil},
		{"m+1", map[int]int{0: 500, 2: 50, 5: 100}, ErrUnrecoverable},
		{"all", map[int]int{0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0}, ErrUnrecoverable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bufs := make([]*bytes.Buffer, 6)
			ws := make([]io.Writer, 6)
			for i := range ws {
				bufs[i] = new(bytes.Buffer)
				ws[i] = bufs[i]
				if after, ok := tt.failing[i]; ok {
					ws[i] = io.MultiWriter(&failWriter{after: after, err: boom}, bufs[i])
				}
			}
			res, err := c.Encode(context.Background(), SegmentID{8}, bytes.NewReader(data), 1<<20, ws)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Encode = %v, want %v", err, tt.wantErr)
			}
			if len(res.ShardErrs) != 6 || res.Healthy() != 6-len(tt.failing) {
				t.Fatalf("healthy %d, errs %v", res.Healthy(), res.ShardErrs)
			}
			for i, e := range res.ShardErrs {
				if _, f := tt.failing[i]; f != (e != nil) || (f && !errors.Is(e, boom)) {
					t.Errorf("shard %d: error %v", i, e)
				}
			}
			if tt.wantErr != nil {
				return
			}
			if res.Size != size || !res.EOF {
				t.Fatalf("size %d eof %v, want %d true", res.Size, res.EOF, size)
			}
			cs := make([][]byte, 6)
			for i := range cs {
				if res.ShardErrs[i] == nil {
					cs[i] = bufs[i].Bytes()
				}
			}
			got, err := readRange(t, c, SegmentID{8}, size, 0, size, newMemSource(cs), ReadOptions{})
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v", err)
			}
		})
	}
}

func TestEncodeLimitAndEOF(t *testing.T) {
	p := Params{Scheme{2, 1}, 8} // 16 bytes a stripe
	c := mustCodec(t, p)
	discard := func() []io.Writer { return []io.Writer{io.Discard, io.Discard, io.Discard} }
	tests := []struct {
		name     string
		data     int
		limit    int64
		buffered bool
		size     int64
		eof      bool
	}{
		{"empty", 0, 100, false, 0, true},
		{"short", 10, 100, false, 10, true},
		{"exactly a stripe", 16, 100, false, 16, true},
		{"limit in a stripe", 100, 20, false, 20, false},
		{"limit = size, unbuffered", 32, 32, false, 32, false},
		{"limit = size, bufio", 32, 32, true, 32, true},
		{"limit < size, bufio", 33, 32, true, 32, false},
		{"limit 0", 5, 0, false, 0, false},
		{"limit 0, empty, bufio", 0, 0, true, 0, true},
	}
	for _, tt := range tests {
		var r io.Reader = bytes.NewReader(randBytes(1, tt.data))
		if tt.buffered {
			r = bufio.NewReader(r)
		}
		res, err := c.Encode(context.Background(), SegmentID{}, r, tt.limit, discard())
		if err != nil || res.Size != tt.size || res.EOF != tt.eof {
			t.Errorf("%s: Encode = %+v, %v; want size %d eof %v", tt.name, res, err, tt.size, tt.eof)
		}
	}

	// Cutting one stream into segments and reading them back in turn gives
	// the stream back.
	data := randBytes(2, 1000)
	br := bufio.NewReader(iotest.HalfReader(bytes.NewReader(data)))
	var out []byte
	for seg := 0; ; seg++ {
		bufs := []*bytes.Buffer{{}, {}, {}}
		res, err := c.Encode(context.Background(), SegmentID{byte(seg)}, br, 100, []io.Writer{bufs[0], bufs[1], bufs[2]})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readRange(t, c, SegmentID{byte(seg)}, res.Size, 0, res.Size,
			newMemSource([][]byte{nil, bufs[1].Bytes(), bufs[2].Bytes()}), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
		if res.EOF {
			if seg != 9 {
				t.Errorf("EOF after segment %d, want 9", seg)
			}
			break
		}
		if seg > 20 {
			t.Fatal("no EOF")
		}
	}
	if !bytes.Equal(out, data) {
		t.Error("segments do not join back into the stream")
	}
}

func TestEncodeErrors(t *testing.T) {
	c := mustCodec(t, Params{Scheme{2, 1}, 8})
	w3 := []io.Writer{io.Discard, io.Discard, io.Discard}
	boom := errors.New("client went away")
	res, err := c.Encode(context.Background(), SegmentID{}, io.MultiReader(bytes.NewReader(make([]byte, 40)), iotest.ErrReader(boom)), 100, w3)
	if !errors.Is(err, boom) {
		t.Errorf("failing reader: %v, want %v", err, boom)
	}
	if res.Size != 40 {
		t.Errorf("failing reader: consumed %d, want 40", res.Size)
	}
	// A reader that fails right after the segment's last byte: the look
	// past the segment (bufio's Peek) must report it, not call the
	// segment done.
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(make([]byte, 32)), iotest.ErrReader(boom)))
	if res, err := c.Encode(context.Background(), SegmentID{}, br, 32, w3); !errors.Is(err, boom) || res.Size != 32 {
		t.Errorf("reader failing at the segment's end: %+v, %v; want 32 bytes and %v", res, err, boom)
	}
	if _, err := c.Encode(context.Background(), SegmentID{}, bytes.NewReader(nil), 100, w3[:2]); !errors.Is(err, ErrBadParams) {
		t.Errorf("2 writers for 2+1: %v, want ErrBadParams", err)
	}
	if _, err := c.Encode(context.Background(), SegmentID{}, bytes.NewReader(nil), -1, w3); !errors.Is(err, ErrBadParams) {
		t.Errorf("limit -1: %v, want ErrBadParams", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Encode(ctx, SegmentID{}, bytes.NewReader(make([]byte, 10)), 100, w3); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}

// countingReader yields n pseudo-random-ish bytes without holding them.
type countingReader struct{ left int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	for i := range p[:n] {
		p[i] = byte(r.left) ^ byte(i)
	}
	r.left -= int64(n)
	return n, nil
}

// TestEncodeMemoryBounded checks Encode's memory does not grow with the
// segment: 64 MiB through a 4+2 codec allocates a few stripes, not the
// segment.
func TestEncodeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 64 MiB")
	}
	c := mustCodec(t, DefaultParams(DefaultScheme()))
	w := make([]io.Writer, 6)
	var total atomic.Int64
	for i := range w {
		w[i] = writerFunc(func(b []byte) (int, error) { total.Add(int64(len(b))); return len(b), nil })
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := c.Encode(context.Background(), SegmentID{}, &countingReader{left: 64 << 20}, 64<<20, w)
	runtime.ReadMemStats(&after)
	if err != nil || res.Size != 64<<20 {
		t.Fatalf("Encode = %+v, %v", res, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("encoding 64 MiB allocated %d MiB, want a few stripes (< 8 MiB)", alloc>>20)
	}
	if total.Load() != 6*DefaultParamsChunkSize(64<<20) {
		t.Errorf("wrote %d bytes", total.Load())
	}
}

func DefaultParamsChunkSize(size int64) int64 {
	l, _ := NewLayout(DefaultParams(DefaultScheme()), size)
	return l.ChunkSize()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// FuzzRead damages stored chunks at will (lose some, flip a byte, cut one
// short) and reads a range: the Reader must return exactly the data or an
// error, never other bytes, and must not panic.
func FuzzRead(f *testing.F) {
	p := Params{Scheme{3, 2}, 11}
	c := mustCodec(f, p)
	const size = 100
	data := randBytes(11, size)
	chunks := encodeBytes(f, c, SegmentID{}, data)
	f.Add(uint8(0), uint8(1), uint16(40), uint8(0x80), uint16(0xffff), uint8(0), uint8(size))
	f.Add(uint8(3), uint8(4), uint16(HeaderSize), uint8(1), uint16(60), uint8(10), uint8(50))
	f.Fuzz(func(t *testing.T, lost, flipShard uint8, flipAt uint16, xor uint8, cutAt uint16, off, n uint8) {
		cs := cloneChunks(chunks)
		shard := int(flipShard) % len(cs)
		if at := int(flipAt) % len(cs[shard]); at >= HeaderSize {
			cs[shard][at] ^= xor
		}
		src := newMemSource(cs)
		src.cut[(shard+1)%len(cs)] = int64(cutAt)
		for i := range cs {
			if lost&(1<<i) != 0 {
				cs[i] = nil
			}
		}
		o := int64(off) % (size + 1)
		ln := min(int64(n), size-o)
		r, err := c.NewReader(context.Background(), SegmentID{}, size, o, ln, src, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if !bytes.Equal(got, data[o:o+int64(len(got))]) {
			t.Fatalf("wrong bytes (err %v)", err)
		}
		if err == nil && int64(len(got)) != ln {
			t.Fatalf("%d bytes and no error, want %d", len(got), ln)
		}
		if err != nil && !errors.Is(err, ErrUnrecoverable) {
			t.Fatalf("error %v does not wrap ErrUnrecoverable", err)
		}
	})
}

// TestReadSwitchesToParityFromTheFailedStripe checks a shard failing
// mid-read is replaced by parity from that stripe on, not from the start.
func TestReadSwitchesToParityFromTheFailedStripe(t *testing.T) {
	p := Params{Scheme{4, 2}, 16}
	c := mustCodec(t, p)
	size := 4 * p.StripeDataSize()
	data := randBytes(12, int(size))
	chunks := encodeBytes(t, c, SegmentID{}, data)
	l, _ := NewLayout(p, size)
	src := newMemSource(chunks)
	src.cut[1] = l.StripeOffset(2) + 5 // shard 1 breaks inside stripe 2
	var bad badShards
	got, err := readRange(t, c, SegmentID{}, size, 0, size, src, bad.opts())
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	opens := src.openCalls()
	slices.SortFunc(opens, func(a, b openCall) int { return a.shard - b.shard })
	want := []openCall{{0, 0, 4}, {1, 0, 4}, {2, 0, 4}, {3, 0, 4}, {4, 2, 4}}
	if !slices.Equal(opens, want) {
		t.Errorf("opened %v, want %v", opens, want)
	}
	if len(bad.errs) != 1 || bad.errs[1] == nil {
		t.Errorf("reported %v, want shard 1", bad.errs)
	}
}
