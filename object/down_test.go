package object_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/localcluster"
	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// downMap is the cluster's metadata client except that the cluster maps it
// returns have the given nodes DOWN: what a gateway sees when metad has
// lost their heartbeats while the gateway can still reach them.
type downMap struct {
	object.Metadata
	down map[string]bool
}

func (d *downMap) GetClusterMap(ctx context.Context, in *pb.GetClusterMapRequest, opts ...grpc.CallOption) (*pb.GetClusterMapResponse, error) {
	resp, err := d.Metadata.GetClusterMap(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	resp = proto.Clone(resp).(*pb.GetClusterMapResponse)
	for _, n := range resp.GetClusterMap().GetNodes() {
		if d.down[n.Id] {
			n.State = pb.NodeState_NODE_STATE_DOWN
		}
	}
	return resp, nil
}

// addrCountingBlobs is the real blob client, counting the chunk reads it
// opens on each address.
type addrCountingBlobs struct {
	*blob.Client
	mu    sync.Mutex
	opens map[string]int
}

func (b *addrCountingBlobs) GetStripes(ctx context.Context, addr string, id chunk.ID, from, to int) (io.ReadCloser, error) {
	b.mu.Lock()
	b.opens[addr]++
	b.mu.Unlock()
	return b.Client.GetStripes(ctx, addr, id, from, to)
}

func (b *addrCountingBlobs) take(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.opens[addr]
	b.opens[addr] = 0
	return n
}

// TestReadFromDownNodeAsLastResort: a node the cluster map has DOWN is not
// read while parity can stand in for it, and is read, rather than the GET
// failed, when m other nodes of the segment are gone. Once it is gone too,
// the GET fails with an error.
func TestReadFromDownNodeAsLastResort(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	createBucket(t, c, "b")
	data := randomData(21, 6<<20)
	o := put(t, c.ObjectStore(t, object.Config{}), "b", "k", data, int64(len(data)))
	seg := o.Segments[0]
	m := int(seg.GetScheme().GetM())
	byID := map[string]*localcluster.BlobNode{}
	for _, b := range c.Blobs {
		byID[b.ID] = b
	}
	down := byID[seg.Nodes[0]] // a data shard: read first when it is up

	counts := &addrCountingBlobs{Client: blob.NewClient(blob.ClientConfig{}), opens: map[string]int{}}
	s := c.ObjectStore(t, object.Config{
		Meta:  &downMap{Metadata: c.MetaClient(t), down: map[string]bool{down.ID: true}},
		Blobs: counts,
	})

	got, err := readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with %s DOWN: %d bytes, err %v", down.ID, len(got), err)
	}
	if n := counts.take(down.Addr); n != 0 {
		t.Fatalf("read %d streams from %s, DOWN in the map, while parity could stand in", n, down.ID)
	}

	for _, id := range seg.Nodes[1 : 1+m] {
		if err := byID[id].Stop(); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
	}
	got, err = readAll(t, s, "b", "k", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with %d nodes stopped and %s DOWN but reachable: %d bytes, err %v", m, down.ID, len(got), err)
	}
	if counts.take(down.Addr) == 0 {
		t.Fatalf("the object was read without %s: the test proves nothing", down.ID)
	}

	if err := down.Stop(); err != nil {
		t.Fatalf("stop %s: %v", down.ID, err)
	}
	if got, err := readAll(t, s, "b", "k", 0, -1); err == nil {
		t.Fatalf("read %d bytes with %d of %d chunks gone; want an error", len(got), m+1, len(seg.Nodes))
	}
}
