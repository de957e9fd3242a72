package object_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// randomData is deterministic pseudo-random content: a wrong byte anywhere
// shows.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func createBucket(t *testing.T, c *testcluster.Cluster, name string) {
	t.Helper()
	if _, err := c.MetaClient(t).CreateBucket(testCtx(t), &pb.CreateBucketRequest{Name: name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// readAll reads as the gateway does: a first short Read, then io.Copy,
// which hands the rest to the reader's WriteTo.
func readAll(t *testing.T, s *object.Store, bucket, key string, off, n int64) ([]byte, error) {
	t.Helper()
	return readVia(t, s, bucket, key, off, n, func(r io.Reader) ([]byte, error) {
		var buf bytes.Buffer
		first := make([]byte, 1000)
		k, err := io.ReadFull(r, first)
		buf.Write(first[:k])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return buf.Bytes(), err
		}
		_, err = io.Copy(&buf, r)
		return buf.Bytes(), err
	})
}

// readAllReads reads with Read calls only.
func readAllReads(t *testing.T, s *object.Store, bucket, key string, off, n int64) ([]byte, error) {
	t.Helper()
	return readVia(t, s, bucket, key, off, n, func(r io.Reader) ([]byte, error) {
		return io.ReadAll(struct{ io.Reader }{r})
	})
}

func readVia(t *testing.T, s *object.Store, bucket, key string, off, n int64, read func(io.Reader) ([]byte, error)) ([]byte, error) {
	t.Helper()
	ctx := testCtx(t)
	o, err := s.Head(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		n = o.Size - off
	}
	rc, err := s.Open(ctx, o, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return read(rc)
}

func put(t *testing.T, s *object.Store, bucket, key string, data []byte, size int64) *pb.Object {
	t.Helper()
	o, err := s.Put(testCtx(t), bucket, key, bytes.NewReader(data), size, object.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatalf("put %s (%d bytes): %v", key, len(data), err)
	}
	return o
}

// TestClusterRoundTrip stores objects of many sizes (inline, one stripe,
// several segments, unknown size) and reads them and ranges of them back.
func TestClusterRoundTrip(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	// A small segment size makes multi-segment objects cheap to test.
	s := c.ObjectStore(t, object.Config{SegmentSize: 3 << 20})
	createBucket(t, c, "b")
	sizes := []int{0, 1, object.DefaultInlineMax, object.DefaultInlineMax + 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3 << 20, 7<<20 + 12345}
	for i, n := range sizes {
		data := randomData(uint64(i), n)
		for _, known := range []bool{true, false} {
			size := int64(n)
			if !known {
				size = -1
			}
			key := "obj-" + hex.EncodeToString([]byte{byte(i)}) + map[bool]string{true: "-known", false: "-unknown"}[known]
			o := put(t, s, "b", key, data, size)
			sum := md5.Sum(data)
			if o.Etag != hex.EncodeToString(sum[:]) || o.Size != int64(n) {
				t.Fatalf("%s: etag %s size %d, want %x %d", key, o.Etag, o.Size, sum, n)
			}
			got, err := readAll(t, s, "b", key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes (err %v), want %d identical", key, len(got), err, n)
			}
			got, err = readAllReads(t, s, "b", key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read back with Read calls only: %d bytes (err %v), want %d identical", key, len(got), err, n)
			}
			if n < 3 {
				continue
			}
			for _, r := range [][2]int64{{0, 1}, {int64(n) - 1, 1}, {int64(n) / 3, int64(n) / 3}, {1, int64(n) - 2}} {
				got, err := readAll(t, s, "b", key, r[0], r[1])
				if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
					t.Fatalf("%s range %v: got %d bytes, err %v", key, r, len(got), err)
				}
			}
		}
	}
}

// TestClusterLargeObjectSurvivesLosses is the durability promise at the
// object layer: 100 MiB written at full redundancy reads back byte-exact
// with m blob nodes down, and with m+1 down the read fails — it never
// returns wrong bytes.
func TestClusterLargeObjectSurvivesLosses(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB through the cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "big")
	data := randomData(42, 100<<20)
	o := put(t, s, "big", "hundred", data, int64(len(data)))
	for _, seg := range o.Segments {
		for i, n := range seg.Nodes {
			if n == "" {
				t.Fatalf("segment written degraded (shard %d missing) with every node up", i)
			}
		}
	}
	got, err := readAll(t, s, "big", "hundred", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, err %v", len(got), err)
	}

	// Stop m = 2 nodes holding chunks of the first segment, data shards
	// first so that reads must reconstruct.
	first := o.Segments[0]
	stopNode := func(id string) {
		for _, b := range c.Blobs {
			if b.ID == id {
				if err := b.Stop(); err != nil {
					t.Fatalf("stop %s: %v", id, err)
				}
				return
			}
		}
		t.Fatalf("no blob node %s", id)
	}
	stopNode(first.Nodes[0])
	stopNode(first.Nodes[1])
	got, err = readAll(t, s, "big", "hundred", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with 2 nodes down: %d bytes, err %v", len(got), err)
	}
	got, err = readAll(t, s, "big", "hundred", 5<<20+7, 3<<20)
	if err != nil || !bytes.Equal(got, data[5<<20+7:8<<20+7]) {
		t.Fatalf("range read with 2 nodes down: %d bytes, err %v", len(got), err)
	}

	stopNode(first.Nodes[2])
	got, err = readAll(t, s, "big", "hundred", 0, -1)
	if err == nil {
		t.Fatalf("read with 3 of 6 nodes down succeeded (%d bytes); want an error", len(got))
	}
	if !errors.Is(err, chunk.ErrUnrecoverable) {
		t.Fatalf("read with 3 nodes down: %v, want chunk.ErrUnrecoverable", err)
	}
	if !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("bytes returned before the failure differ from the object")
	}
}

// TestClusterWriteWithNodeDown: with one of six blob nodes stopped (and the
// cluster map not yet aware of it), writes still succeed on k+1 chunks and
// read back.
func TestClusterWriteWithNodeDown(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "b")
	if err := c.Blobs[3].Stop(); err != nil {
		t.Fatal(err)
	}
	data := randomData(7, 5<<20+3)
	o := put(t, s, "b", "degraded", data, int64(len(data)))
	missing := 0
	for _, n := range o.Segments[0].Nodes {
		if n == "" {
			missing++
		}
		if n == c.Blobs[3].ID {
			t.Fatalf("segment records a chunk on the stopped node")
		}
	}
	if missing > 1 {
		t.Fatalf("%d chunks missing, want at most 1", missing)
	}
	got, err := readAll(t, s, "b", "degraded", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, err %v", len(got), err)
	}

	// With three nodes down only 3 < k+1 chunks can be stored: the write
	// fails and nothing becomes visible.
	for _, i := range []int{4, 5} {
		if err := c.Blobs[i].Stop(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Put(testCtx(t), "b", "too-few", bytes.NewReader(data), int64(len(data)), object.PutOptions{})
	if err == nil {
		t.Fatal("put with 3 of 6 nodes down succeeded")
	}
	if _, err := s.Head(testCtx(t), "b", "too-few"); !errors.Is(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("after a failed put: head = %v, want NoSuchKey", err)
	}
}

// TestClusterConditionalPut: must-not-exist and if-match conditions.
func TestClusterConditionalPut(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "b")
	ctx := testCtx(t)
	first, err := s.Put(ctx, "b", "k", bytes.NewReader([]byte("one")), 3, object.PutOptions{Condition: &pb.Condition{MustNotExist: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, "b", "k", bytes.NewReader([]byte("two")), 3, object.PutOptions{Condition: &pb.Condition{MustNotExist: true}})
	if !errors.Is(err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("second must-not-exist put: %v, want PreconditionFailed", err)
	}
	_, err = s.Put(ctx, "b", "k", bytes.NewReader([]byte("two")), 3, object.PutOptions{Condition: &pb.Condition{IfMatchEtag: "0123"}})
	if !errors.Is(err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("if-match with a wrong etag: %v, want PreconditionFailed", err)
	}
	if _, err := s.Put(ctx, "b", "k", bytes.NewReader([]byte("two")), 3, object.PutOptions{Condition: &pb.Condition{IfMatchEtag: first.Etag}}); err != nil {
		t.Fatalf("if-match with the right etag: %v", err)
	}
	if _, err := s.Put(ctx, "nobucket", "k", bytes.NewReader(nil), 0, object.PutOptions{}); !errors.Is(err, metaerr.ErrNoSuchBucket) {
		t.Fatalf("put into a missing bucket: %v, want NoSuchBucket", err)
	}
	// An object too big to be inline is refused before any of it is read
	// (small ones are refused by their commit, having moved nothing).
	body := &countingReader{r: bytes.NewReader(make([]byte, 1<<20))}
	if _, err := s.Put(ctx, "nobucket", "big", body, 1<<20, object.PutOptions{}); !errors.Is(err, metaerr.ErrNoSuchBucket) {
		t.Fatalf("big put into a missing bucket: %v, want NoSuchBucket", err)
	}
	if body.n != 0 {
		t.Fatalf("big put into a missing bucket read %d bytes of its body first", body.n)
	}
	_, err = s.Put(ctx, "b", "k", &countingReader{r: bytes.NewReader(make([]byte, 1<<20))}, 1<<20, object.PutOptions{Condition: &pb.Condition{MustNotExist: true}})
	if !errors.Is(err, metaerr.ErrPreconditionFailed) {
		t.Fatalf("big must-not-exist put: %v, want PreconditionFailed", err)
	}
	// A body shorter than declared stores nothing.
	if _, err := s.Put(ctx, "b", "short", bytes.NewReader(make([]byte, 10<<10)), 20<<10, object.PutOptions{}); !errors.Is(err, object.ErrIncompleteBody) {
		t.Fatalf("short body: %v, want ErrIncompleteBody", err)
	}
	if _, err := s.Head(ctx, "b", "short"); !errors.Is(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("after a short body: head = %v, want NoSuchKey", err)
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
