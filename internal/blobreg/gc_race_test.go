package blobreg_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/metadata"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// TestGCRacesOverwrites: writers overwrite and delete a few keys as fast as
// they can while GC (no grace period, short interval) deletes the chunks of
// every released version on the real blob nodes. Once GC has caught up,
// every chunk still referenced must be on disk: each surviving object reads
// back byte-exact with every one of its chunks required (m nodes stopped
// would hide a deleted chunk, so nothing is stopped), and every chunk on
// disk is referenced (GC really ran).
func TestGCRacesOverwrites(t *testing.T) {
	heal := metadata.DefaultHealConfig()
	heal.GCInterval = 20 * time.Millisecond
	heal.GCGrace = 0
	heal.HealthScanInterval = 200 * time.Millisecond
	c := testcluster.New(t, testcluster.Config{Quiet: true, Heal: &heal})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mc := c.MetaClient(t)
	if _, err := mc.CreateBucket(ctx, &pb.CreateBucketRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	s := c.ObjectStore(t, object.Config{SegmentSize: 1 << 20})

	const keys, rounds = 4, 12
	var mu sync.Mutex
	want := map[string][]byte{} // last acknowledged content; nil = deleted
	var wg sync.WaitGroup
	for w := range keys {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", w)
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				if i%5 == 4 {
					if _, err := mc.DeleteObject(ctx, &pb.DeleteObjectRequest{Bucket: "b", Key: key}); err != nil {
						t.Errorf("delete %s: %v", key, err)
						return
					}
					mu.Lock()
					want[key] = nil
					mu.Unlock()
					continue
				}
				data := make([]byte, 100<<10+r.IntN(2<<20))
				for j := range data {
					data[j] = byte(r.Uint32())
				}
				if _, err := s.Put(ctx, "b", key, bytes.NewReader(data), int64(len(data)), object.PutOptions{}); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				mu.Lock()
				want[key] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	testcluster.WaitFor(t, time.Minute, "GC to catch up", func() error {
		h, err := mc.HealthStatus(ctx, &pb.HealthStatusRequest{})
		if err != nil {
			return err
		}
		if h.GcBacklog != 0 {
			return fmt.Errorf("gc backlog %d", h.GcBacklog)
		}
		return nil
	})

	referenced := map[string]bool{}
	for key, data := range want {
		o, err := s.Head(ctx, "b", key)
		if data == nil {
			if err == nil {
				t.Errorf("%s: deleted but present", key)
			}
			continue
		}
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		for _, seg := range o.Segments {
			for shard, node := range seg.Nodes {
				referenced[fmt.Sprintf("%x.%d@%s", seg.Id, shard, node)] = true
			}
		}
		rc, err := s.Open(ctx, o, 0, o.Size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read %d bytes, err %v", key, len(got), err)
		}
	}
	// Every referenced chunk is on disk at every look, and GC removes
	// everything else (the health figures polled above may lag a round, so
	// wait for the disks themselves).
	testcluster.WaitFor(t, time.Minute, "GC to delete every released chunk", func() error {
		onDisk := map[string]bool{}
		for _, b := range c.Blobs {
			infos, _, err := b.Server().Store().List(ctx, "", 100000)
			if err != nil {
				return err
			}
			for _, in := range infos {
				onDisk[fmt.Sprintf("%s@%s", in.ID, b.ID)] = true
			}
		}
		for ref := range referenced {
			if !onDisk[ref] {
				t.Fatalf("referenced chunk %s is gone", ref)
			}
		}
		left := 0
		for ref := range onDisk {
			if !referenced[ref] {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d released chunks still on disk", left)
		}
		return nil
	})
}
