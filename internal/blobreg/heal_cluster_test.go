package blobreg_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/metadata"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// The whole loop through real daemons: a blob node is killed, metad marks
// it down and hands a repair of every chunk it held to a live node, which
// rebuilds the chunk from its peers over HTTP, stores it and reports; metad
// commits the new placement. The rebuilt chunk is byte-identical to the one
// on the dead node's disk, and the object reads back whole.
func TestKilledNodeRebuiltElsewhere(t *testing.T) {
	heal := metadata.DefaultHealConfig()
	heal.NodeSuspectAfter = 500 * time.Millisecond
	heal.NodeDownAfter = 1500 * time.Millisecond
	heal.RepairScanInterval = 200 * time.Millisecond
	heal.RepairTaskTimeout = 20 * time.Second
	heal.RepairBackoff = 100 * time.Millisecond
	heal.GCInterval = 100 * time.Millisecond
	heal.GCGrace = 0
	heal.HealthScanInterval = 200 * time.Millisecond
	heal.HealthScanRate = 0
	// Seven nodes in seven zones: a 4+2 segment leaves one spare to
	// rebuild on, whatever the placement.
	c := testcluster.New(t, testcluster.Config{Blob: 7, Zones: 7, Quiet: true, Heal: &heal})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mc := c.MetaClient(t)
	if _, err := mc.CreateBucket(ctx, &pb.CreateBucketRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	s := c.ObjectStore(t, object.Config{})
	data := make([]byte, 5<<20+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	o, err := s.Put(ctx, "b", "k", bytes.NewReader(data), int64(len(data)), object.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Segments) != 1 || slices.Contains(o.Segments[0].Nodes, "") {
		t.Fatalf("want one fully placed segment, got %v", o.Segments)
	}
	seg := o.Segments[0]
	segID, err := chunk.SegmentIDFromBytes(seg.Id)
	if err != nil {
		t.Fatal(err)
	}

	// Kill the node holding shard 1, keeping its chunk file to compare.
	const shard = 1
	victim := seg.Nodes[shard]
	vi := -1
	for i, b := range c.Blobs {
		if b.ID == victim {
			vi = i
		}
	}
	if vi < 0 {
		t.Fatalf("shard %d placed on unknown node %q", shard, victim)
	}
	id := chunk.ID{Segment: segID, Shard: shard}
	lost, err := os.ReadFile(filepath.Join(c.Blobs[vi].DataDir(), "chunks", id.String()[:2], id.String()))
	if err != nil {
		t.Fatalf("read the victim's chunk: %v", err)
	}
	c.KillBlob(t, vi)

	var target string
	testcluster.WaitFor(t, 90*time.Second, fmt.Sprintf("shard %d of %s rebuilt off %s", shard, segID, victim), func() error {
		resp, err := mc.GetObject(ctx, &pb.GetObjectRequest{Bucket: "b", Key: "k"})
		if err != nil {
			return err
		}
		nodes := resp.GetObject().GetSegments()[0].GetNodes()
		if n := nodes[shard]; n == victim || n == "" {
			return fmt.Errorf("shard %d still placed on %q", shard, n)
		}
		if slices.Contains(nodes, victim) || slices.Contains(nodes, "") {
			return fmt.Errorf("placement %v still short", nodes)
		}
		target = nodes[shard]
		return nil
	})

	client := blob.NewClient(blob.ClientConfig{})
	defer client.Close()
	var addr string
	for _, b := range c.Blobs {
		if b.ID == target {
			addr = b.Addr
		}
	}
	rc, err := client.Get(ctx, addr, id)
	if err != nil {
		t.Fatalf("get the rebuilt chunk from %s: %v", target, err)
	}
	rebuilt, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(rebuilt, lost) {
		t.Fatalf("rebuilt chunk on %s: %d bytes (err %v), lost one %d bytes; equal %v", target, len(rebuilt), err, len(lost), bytes.Equal(rebuilt, lost))
	}

	head, err := s.Head(ctx, "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, head, 0, head.Size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object after repair: %d bytes, err %v", len(got), err)
	}
}
