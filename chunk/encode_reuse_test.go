package chunk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

// TestEncodeReusesStripes encodes segments of different sizes through one
// Codec from several goroutines at once, so stripe buffers pass from a long
// segment to a short one and between goroutines: every chunk must still
// read back exactly (no bytes of an earlier segment in a short stripe's
// padding or parity), and a repeated Encode must not allocate new stripes.
func TestEncodeReusesStripes(t *testing.T) {
	p := DefaultParams(DefaultScheme())
	// All double-buffered, some single-buffered, all single-buffered.
	for _, doubled := range []int32{maxDoubledEncodes, 2, 0} {
		t.Run(fmt.Sprintf("doubled=%d", doubled), func(t *testing.T) {
			c := mustCodec(t, p)
			c.maxDoubled = doubled
			encodeConcurrently(t, c)
			if n := c.doubled.Load(); n != 0 {
				t.Errorf("%d second stripes still reserved after every Encode returned", n)
			}
		})
	}
	c := mustCodec(t, p)
	sd := int(p.StripeDataSize())
	// A second Encode of a segment takes the stripes the first one left.
	data := randBytes(9, 4*sd)
	discard := make([]io.Writer, p.Scheme.Shards())
	for i := range discard {
		discard[i] = io.Discard
	}
	encode := func() {
		if _, err := c.Encode(context.Background(), SegmentID{}, bytes.NewReader(data), int64(len(data)), discard); err != nil {
			t.Fatal(err)
		}
	}
	// What makes a reused stripe come back from sync.Pool, and so what
	// made this fail now and then: no collection between the calls (the
	// pool keeps its items through one GC but not two, and the subtests'
	// garbage or a loaded machine can bring two); one P, since an item
	// put in one P's private slot is not found from another; and more
	// than one try, since under the race detector Put drops a quarter of
	// what it is given. The least any try allocates must still be under
	// two fresh stripes, which a Codec that does not reuse them allocates
	// every time.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	encode()
	least := uint64(math.MaxUint64)
	for range 8 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		encode()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	// Two fresh stripes would be 2*(K+M)*BlockSize.
	if stripes := uint64(2 * p.Scheme.Shards() * p.BlockSize); least >= stripes {
		t.Errorf("every repeated Encode allocated at least %d bytes; two new stripes are %d", least, stripes)
	}
}

// encodeConcurrently encodes segments of several sizes from 4 goroutines
// through c and reads every one back, whole and without two data shards.
func encodeConcurrently(t *testing.T, c *Codec) {
	p := c.Params()
	sd := int(p.StripeDataSize())
	sizes := []int{3*sd + 5, 1, sd - 1, 2 * sd, sd/2 + 3, 7}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(sizes))
	for g := range 4 {
		wg.Go(func() {
			for i, size := range sizes {
				data := randBytes(uint64(100*g+i), size)
				seg := NewSegmentID()
				bufs := make([]*bytes.Buffer, p.Scheme.Shards())
				ws := make([]io.Writer, len(bufs))
				for j := range bufs {
					bufs[j] = new(bytes.Buffer)
					ws[j] = bufs[j]
				}
				res, err := c.Encode(context.Background(), seg, bytes.NewReader(data), int64(size), ws)
				if err != nil || res.Size != int64(size) || res.Healthy() != len(bufs) {
					errs <- fmt.Errorf("goroutine %d, %d bytes: Encode = %+v, %v", g, size, res, err)
					return
				}
				chunks := make([][]byte, len(bufs))
				for j, b := range bufs {
					chunks[j] = b.Bytes()
				}
				// Read from the parity shards too: a stale stripe shows there.
				for _, missing := range [][]int{nil, {0, 1}} {
					src := newMemSource(cloneChunks(chunks))
					for _, j := range missing {
						src.chunks[j] = nil
					}
					var bad badShards
					got, err := readRange(t, c, seg, int64(size), 0, int64(size), src, bad.opts())
					if err != nil || !bytes.Equal(got, data) {
						errs <- fmt.Errorf("goroutine %d, %d bytes, shards %v missing: read back wrong (err %v)", g, size, missing, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

}
