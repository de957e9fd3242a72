package object_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/object"
)

// stallingBlobs is the real blob client except that a stream from one
// address stops after its first after bytes, until its context ends or,
// with pause set, for that long: a node that hangs in the middle of a
// chunk, or is that slow. It also counts the streams opened on parity
// shards, which a read of a healthy object never needs.
type stallingBlobs struct {
	*blob.Client
	addr   string
	after  int64
	pause  time.Duration
	active atomic.Bool
	stalls atomic.Int32
	parity atomic.Int32
	k      int
}

func (s *stallingBlobs) GetStripes(ctx context.Context, addr string, id chunk.ID, from, to int) (io.ReadCloser, error) {
	if id.Shard >= s.k {
		s.parity.Add(1)
	}
	rc, err := s.Client.GetStripes(ctx, addr, id, from, to)
	if err != nil || !s.active.Load() || addr != s.addr {
		return rc, err
	}
	return &stallingReader{rc: rc, left: s.after, pause: s.pause, ctx: ctx, stalls: &s.stalls}, nil
}

type stallingReader struct {
	rc     io.ReadCloser
	left   int64
	pause  time.Duration
	paused bool
	ctx    context.Context
	stalls *atomic.Int32
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.left <= 0 && !r.paused {
		r.stalls.Add(1)
		if r.pause == 0 {
			<-r.ctx.Done()
			return 0, r.ctx.Err()
		}
		select {
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		case <-time.After(r.pause):
			r.paused = true
		}
	}
	if r.paused {
		return r.rc.Read(p)
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *stallingReader) Close() error { return r.rc.Close() }

// TestReadAroundStallMidChunk: a node that stops sending in the middle of
// a chunk, after the stream and its first blocks came through, is given up
// after the read budget, and the GET returns the right bytes from parity.
func TestReadAroundStallMidChunk(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	sb := &stallingBlobs{Client: blob.NewClient(blob.ClientConfig{}), after: 300 << 10}
	cfg := object.Config{Blobs: sb, ReadBudget: 200 * time.Millisecond}
	data := randomData(11, 6<<20)
	o := put(t, c.ObjectStore(t, cfg), "b", "k", data, int64(len(data)))
	sb.k = int(o.Segments[0].GetScheme().GetK())

	for _, b := range c.Blobs {
		if b.ID == o.Segments[0].Nodes[0] {
			sb.addr = b.Addr
		}
	}
	sb.active.Store(true)
	for name, read := range map[string]func(*testing.T, *object.Store, string, string, int64, int64) ([]byte, error){
		"WriteTo": readAll, "Read": readAllReads,
	} {
		sb.stalls.Store(0)
		// A Store of its own: one that saw the node stall sets it aside.
		got, err := read(t, c.ObjectStore(t, cfg), "b", "k", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s with a node stalling mid-chunk: %d bytes, err %v", name, len(got), err)
		}
		if sb.stalls.Load() == 0 {
			t.Fatalf("%s: the stream never stalled: the test proves nothing", name)
		}
	}
}

// TestReadSetsAsideNodeThatStalled: once a node stalled a read past the
// budget, the next GETs through the same Store read parity in its place at
// once instead of waiting a budget on it again.
func TestReadSetsAsideNodeThatStalled(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	sb := &stallingBlobs{Client: blob.NewClient(blob.ClientConfig{})}
	// Long enough that a loaded machine's pause does not stall (and set
	// aside) other nodes, which could leave this one needed again.
	s := c.ObjectStore(t, object.Config{Blobs: sb, ReadBudget: 500 * time.Millisecond})
	data := randomData(15, 6<<20)
	o := put(t, s, "b", "k", data, int64(len(data)))
	for _, b := range c.Blobs {
		if b.ID == o.Segments[0].Nodes[0] {
			sb.addr = b.Addr
		}
	}
	sb.active.Store(true)
	for i := range 3 {
		got, err := readAll(t, s, "b", "k", 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d: %d bytes, err %v", i, len(got), err)
		}
		if n := sb.stalls.Load(); n != 1 {
			t.Fatalf("after read %d: the node stalled %d reads, want 1 (the first; then it is set aside)", i, n)
		}
	}
}

// TestReadWaitsForSlowNodeWithNoParityLeft: with m blob nodes down, a
// node that is slower than the read budget has no parity to be read
// around with; the GET waits for it and returns the object, where giving
// up would have failed it.
func TestReadWaitsForSlowNodeWithNoParityLeft(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	const budget = 200 * time.Millisecond
	sb := &stallingBlobs{Client: blob.NewClient(blob.ClientConfig{}), after: 300 << 10, pause: 5 * budget}
	s := c.ObjectStore(t, object.Config{Blobs: sb, ReadBudget: budget})
	data := randomData(13, 6<<20)
	o := put(t, s, "b", "k", data, int64(len(data)))
	seg := o.Segments[0]
	m := int(seg.GetScheme().GetM())
	for _, b := range c.Blobs {
		if b.ID == seg.Nodes[m] { // the first data shard left up
			sb.addr = b.Addr
		}
	}
	for _, id := range seg.Nodes[:m] {
		for _, b := range c.Blobs {
			if b.ID == id {
				if err := b.Stop(); err != nil {
					t.Fatalf("stop %s: %v", id, err)
				}
			}
		}
	}
	sb.active.Store(true)
	got, err := readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with %d nodes down and one slow: %d bytes, err %v", m, len(got), err)
	}
	if sb.stalls.Load() < 2 {
		t.Fatalf("the slow node stalled %d times; want the stream given up and then waited for", sb.stalls.Load())
	}
}

// TestReadBudgetIgnoresIdleReader: the budget bounds how long a read from
// a node waits, not how long the reader of the object takes between two
// reads: a GET whose client pauses for longer than the budget must not
// give up on healthy chunks (it would read parity, and report them).
func TestReadBudgetIgnoresIdleReader(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	sb := &stallingBlobs{Client: blob.NewClient(blob.ClientConfig{})}
	const budget = 2 * time.Second
	s := c.ObjectStore(t, object.Config{Blobs: sb, ReadBudget: budget})
	data := randomData(12, 6<<20)
	o := put(t, s, "b", "k", data, int64(len(data)))
	sb.k = int(o.Segments[0].GetScheme().GetK())

	ctx := testCtx(t)
	rc, err := s.Open(ctx, o, 0, o.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	first := make([]byte, 1000)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}
	buf.Write(first)
	// The client stalls; the watchdogs of the open streams see no read
	// under way all this time. Nothing to wait for but the clock.
	time.Sleep(3 * budget)
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatalf("read after an idle pause: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("read %d bytes, not the object's", buf.Len())
	}
	if n := sb.parity.Load(); n != 0 {
		t.Fatalf("%d parity streams opened: a healthy chunk was given up while the reader was idle", n)
	}
}

// hangingUploads is the real blob client except that a chunk upload to one
// address hangs, until its context ends: before taking any of the body
// (a node that stopped reading its socket), or after taking all of it
// and before answering (a node stuck in its write or fsync).
type hangingUploads struct {
	*blob.Client
	addr      string
	afterBody bool
	active    atomic.Bool
	hangs     atomic.Int32
}

func (h *hangingUploads) Put(ctx context.Context, addr string, id chunk.ID, body io.Reader, size int64) error {
	if !h.active.Load() || addr != h.addr {
		return h.Client.Put(ctx, addr, id, body, size)
	}
	if h.afterBody {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
	}
	h.hangs.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// TestWriteAroundHungNode: a chunk upload to a node that hangs is given up
// after the write budget, and the PUT completes with the other chunks (at
// least the write quorum), as it does with a node down; the next segments
// are placed around the node rather than wait for it again; the object
// reads back whole. Without the budget the PUT would wait as long as the
// node hangs.
func TestWriteAroundHungNode(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	for _, afterBody := range []bool{false, true} {
		name := map[bool]string{false: "before the body", true: "after the body"}[afterBody]
		hb := &hangingUploads{Client: blob.NewClient(blob.ClientConfig{}), addr: c.Blobs[2].Addr, afterBody: afterBody}
		s := c.ObjectStore(t, object.Config{Blobs: hb, SegmentSize: 3 << 20, WriteBudget: 300 * time.Millisecond})
		hb.active.Store(true)
		data := randomData(14, 9<<20+17)
		key := "k-" + map[bool]string{false: "before", true: "after"}[afterBody]
		o := put(t, s, "b", key, data, int64(len(data)))
		if n := hb.hangs.Load(); n != 1 {
			t.Fatalf("%s: %d uploads hung, want 1: the first segment's, then none placed there", name, n)
		}
		if len(o.Segments) < 3 {
			t.Fatalf("%d segments: the test needs several", len(o.Segments))
		}
		for _, seg := range o.Segments {
			missing := 0
			for _, n := range seg.Nodes {
				if n == c.Blobs[2].ID {
					t.Fatalf("%s: segment records a chunk on the hung node", name)
				}
				if n == "" {
					missing++
				}
			}
			if missing != 1 {
				t.Fatalf("%s: segment placed %v, want exactly the hung node's shard missing", name, seg.Nodes)
			}
		}
		hb.active.Store(false)
		got, err := readAll(t, s, "b", key, 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes, err %v", name, len(got), err)
		}
	}
}

// storedChunks is the real blob client, counting the chunk uploads a
// node acknowledged.
type storedChunks struct {
	*blob.Client
	stored atomic.Int32
}

func (s *storedChunks) Put(ctx context.Context, addr string, id chunk.ID, body io.Reader, size int64) error {
	err := s.Client.Put(ctx, addr, id, body, size)
	if err == nil {
		s.stored.Add(1)
	}
	return err
}

// TestSegmentDoneBeforeTheNextBytes: with the body's size known, a
// segment's chunks are stored once its last byte is read, while the
// client has not yet sent the next segment's first byte (the codec does
// not look past a segment for the body's end).
func TestSegmentDoneBeforeTheNextBytes(t *testing.T) {
	const segment = 1 << 20
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	sc := &storedChunks{Client: blob.NewClient(blob.ClientConfig{})}
	s := c.ObjectStore(t, object.Config{Blobs: sc, SegmentSize: segment})
	data := randomData(15, 2*segment)
	gate := make(chan struct{})
	body := io.MultiReader(bytes.NewReader(data[:segment]), heldReader{held: gate, r: bytes.NewReader(data[segment:])})
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), "b", "k", body, int64(len(data)), object.PutOptions{})
		done <- err
	}()
	testcluster.WaitFor(t, 30*time.Second, "the first segment's chunks stored while the body waits", func() error {
		if n := sc.stored.Load(); n < 6 {
			return fmt.Errorf("%d chunks stored", n)
		}
		return nil
	})
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}
}

// heldReader reads r once held is closed.
type heldReader struct {
	held chan struct{}
	r    io.Reader
}

func (h heldReader) Read(p []byte) (int, error) {
	<-h.held
	return h.r.Read(p)
}
