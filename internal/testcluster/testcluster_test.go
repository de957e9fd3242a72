package testcluster_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// TestKillRestartCut exercises the cluster's fault controls: a killed
// leader is replaced, a cut-off member stops leading, a restarted blob node
// serves its chunks again.
func TestKillRestartCut(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	meta := c.MetaClient(t)
	if _, err := meta.CreateBucket(ctx, &pb.CreateBucketRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}

	old := c.Leader(t)
	c.KillMeta(t, old)
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "a new leader", func() error {
		if i := c.Leader(t); i == old {
			t.Fatalf("killed member %d still leads", old)
		}
		return nil
	})
	if _, err := meta.GetBucket(ctx, &pb.GetBucketRequest{Name: "b"}); err != nil {
		t.Fatalf("read after leader kill: %v", err)
	}
	c.RestartMeta(t, old)

	cut := c.Leader(t)
	c.Cut(cut)
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "another member to lead", func() error {
		for i, m := range c.Metas {
			if i != cut && m.Server() != nil && m.Server().IsLeader() {
				return nil
			}
		}
		return io.ErrNoProgress
	})
	c.Heal(cut)

	s := c.ObjectStore(t, object.Config{})
	data := bytes.Repeat([]byte("cairn"), 300_000)
	o, err := s.Put(ctx, "b", "k", bytes.NewReader(data), int64(len(data)), object.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.KillBlob(t, 0)
	c.KillBlob(t, 1)
	c.RestartBlob(t, 0)
	c.RestartBlob(t, 1)
	// With two other nodes down, the read needs the restarted ones.
	c.KillBlob(t, 2)
	c.KillBlob(t, 3)
	rc, err := s.Open(ctx, o, 0, o.Size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after blob restarts: %d bytes, %v", len(got), err)
	}
}
