package object_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/object"
)

// hangingBlobs is the real blob client except that reads from one address
// hang until their context ends: a node that accepts connections and then
// stalls.
type hangingBlobs struct {
	*blob.Client
	addr   string
	hung   atomic.Int32
	active atomic.Bool
}

func (h *hangingBlobs) GetStripes(ctx context.Context, addr string, id chunk.ID, from, to int) (io.ReadCloser, error) {
	if h.active.Load() && addr == h.addr {
		h.hung.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Client.GetStripes(ctx, addr, id, from, to)
}

// TestReadAroundHungNode: a GET that meets a node that hangs gives up on it
// after the read budget and returns the right bytes from parity.
func TestReadAroundHungNode(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	hb := &hangingBlobs{Client: blob.NewClient(blob.ClientConfig{})}
	s := c.ObjectStore(t, object.Config{Blobs: hb, ReadBudget: 200 * time.Millisecond})
	data := randomData(9, 6<<20)
	o := put(t, s, "b", "k", data, int64(len(data)))

	// Hang the node holding shard 0 (a data shard every full read needs).
	for _, b := range c.Blobs {
		if b.ID == o.Segments[0].Nodes[0] {
			hb.addr = b.Addr
		}
	}
	hb.active.Store(true)
	got, err := readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with a hung node: %d bytes, err %v", len(got), err)
	}
	if hb.hung.Load() == 0 {
		t.Fatal("the read never asked the hung node: the test proves nothing")
	}
}

// TestReadAroundCorruptChunk: a flipped byte in a stored chunk is detected
// by its block checksum and read around.
func TestReadAroundCorruptChunk(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	s := c.ObjectStore(t, object.Config{})
	data := randomData(10, 3<<20)
	o := put(t, s, "b", "k", data, int64(len(data)))

	seg, err := chunk.SegmentIDFromBytes(o.Segments[0].Id)
	if err != nil {
		t.Fatal(err)
	}
	id := chunk.ID{Segment: seg, Shard: 1}
	var path string
	for _, b := range c.Blobs {
		if b.ID == o.Segments[0].Nodes[1] {
			path = filepath.Join(b.DataDir(), "chunks", id.String()[:2], id.String())
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read chunk file: %v", err)
	}
	raw[len(raw)/2] ^= 0x40
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with a corrupt chunk: %d bytes, err %v", len(got), err)
	}
}
