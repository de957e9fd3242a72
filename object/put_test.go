package object_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/md5lanes"
	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/object"
)

// Concurrent PUTs share the MD5 lanes and the pooled body readers:
// every ETag is the MD5 of its own body and every body reads back intact,
// whichever MD5 each PUT was given.
func TestConcurrentPutsETags(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "b")
	const n = 8
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		datas[i] = randomData(uint64(100+i), 1<<20+i*300000+i)
		wg.Go(func() {
			size := int64(len(datas[i]))
			if i%2 == 1 {
				size = -1
			}
			o, err := s.Put(testCtx(t), "b", fmt.Sprintf("k%d", i), bytes.NewReader(datas[i]), size, object.PutOptions{})
			if err != nil {
				t.Errorf("put k%d: %v", i, err)
				return
			}
			if sum := md5.Sum(datas[i]); o.Etag != hex.EncodeToString(sum[:]) {
				t.Errorf("k%d: etag %s, want %x", i, o.Etag, sum)
			}
		})
	}
	wg.Wait()
	for i, data := range datas {
		got, err := readAll(t, s, "b", fmt.Sprintf("k%d", i), 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("k%d: read back %d bytes (err %v), want %d identical", i, len(got), err, len(data))
		}
	}
}

// Sixteen PUTs at once put their ETag MD5s through the lanes' kernel (the
// test fails if none did): the bytes the encoder reads into its stripe
// buffers, which it reuses stripe after stripe and hands to the next
// segment or PUT once done, must be hashed as they were read. Each body
// arrives in odd-sized reads, as from a socket.
func TestConcurrentPutsETagsThroughLanes(t *testing.T) {
	if !md5lanes.Available() {
		t.Skip("no AVX-512: the lanes are not used")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "b")
	const n = 16
	datas := make([][]byte, n)
	for i := range n {
		datas[i] = randomData(uint64(200+i), 3<<20+i*97001)
	}
	// Whether the lanes' kernel ran (two hashes waiting at once) is up to
	// the scheduler: on a loaded machine a round of PUTs can hash one at a
	// time. A few rounds, every ETag checked in each.
	const rounds = 5
	used := false
	for round := 0; round < rounds && !used && !t.Failed(); round++ {
		before := object.MD5LanesKernelBlocks()
		// Every PUT waits until all have started, so that they hash at once.
		started := newGate(n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				size := int64(len(datas[i]))
				if i%4 == 3 {
					size = -1
				}
				r := &gatedReader{r: bytes.NewReader(datas[i]), gate: started, step: 1 + i*4099}
				o, err := s.Put(testCtx(t), "b", fmt.Sprintf("l%d", i), r, size, object.PutOptions{})
				if err != nil {
					t.Errorf("round %d: put l%d: %v", round, i, err)
					return
				}
				if sum := md5.Sum(datas[i]); o.Etag != hex.EncodeToString(sum[:]) {
					t.Errorf("round %d: l%d: etag %s, want %x", round, i, o.Etag, sum)
				}
			})
		}
		wg.Wait()
		used = object.MD5LanesKernelBlocks() != before
	}
	if !used && !t.Failed() {
		t.Errorf("in %d rounds, no block of the 16 bodies went through the lanes' kernel", rounds)
	}
	for i, data := range datas {
		got, err := readAll(t, s, "b", fmt.Sprintf("l%d", i), 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("l%d: read back %d bytes (err %v), want %d identical", i, len(got), err, len(data))
		}
	}
}

// gatedReader returns reads of at most 64 KiB plus step bytes, its first
// only once every gatedReader of the group has been read from (or a
// minute has passed: a PUT that failed before reading must not hang the
// others).
type gatedReader struct {
	r    *bytes.Reader
	gate *gate
	once sync.Once
	step int
}

type gate struct {
	left atomic.Int32
	open chan struct{}
}

func newGate(n int) *gate {
	g := &gate{open: make(chan struct{})}
	g.left.Store(int32(n))
	return g
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() {
		if g.gate.left.Add(-1) == 0 {
			close(g.gate.open)
		}
		select {
		case <-g.gate.open:
		case <-time.After(time.Minute):
		}
	})
	if max := 64<<10 + g.step%(64<<10); len(p) > max {
		p = p[:max]
	}
	return g.r.Read(p)
}

// An InlineMax larger than the pooled body reader's buffer still peeks
// the whole body: at the limit it is inline, one byte more it is not.
func TestPutLargeInlineMax(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	const inline = 64 << 10
	s := c.ObjectStore(t, object.Config{InlineMax: inline})
	createBucket(t, c, "b")
	for _, size := range []int{inline, inline + 1} {
		for _, known := range []bool{true, false} {
			data := randomData(uint64(size), size)
			declared := int64(size)
			if !known {
				declared = -1
			}
			key := fmt.Sprintf("s%d-%v", size, known)
			o := put(t, s, "b", key, data, declared)
			if wantInline := size <= inline; (len(o.Inline) > 0) != wantInline || (len(o.Segments) > 0) == wantInline {
				t.Errorf("%s: %d inline bytes, %d segments; want inline %v", key, len(o.Inline), len(o.Segments), wantInline)
			}
			if sum := md5.Sum(data); o.Etag != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: etag %s, want %x", key, o.Etag, sum)
			}
			got, err := readAll(t, s, "b", key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes (err %v)", key, len(got), err)
			}
		}
	}
}
