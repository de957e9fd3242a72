package object_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// BenchmarkPut and BenchmarkGet measure the object layer through an
// in-process cluster (3 metad, 6 blob nodes, EC 4+2): real HTTP to the blob
// nodes, real fsyncs, real Raft commits. Run with
//
//	go test -run '^$' -bench . -benchtime 20x ./object/
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Config{Quiet: true, BlobCapacity: 64 << 30})
			s := c.ObjectStore(b, object.Config{})
			ctx := context.Background()
			if _, err := c.MetaClient(b).CreateBucket(ctx, &pb.CreateBucketRequest{Name: "bench"}); err != nil {
				b.Fatal(err)
			}
			data := randomData(1, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Put(ctx, "bench", fmt.Sprintf("k%d", i%8), bytes.NewReader(data), int64(size), object.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			c := testcluster.New(b, testcluster.Config{Quiet: true, BlobCapacity: 64 << 30})
			s := c.ObjectStore(b, object.Config{})
			ctx := context.Background()
			if _, err := c.MetaClient(b).CreateBucket(ctx, &pb.CreateBucketRequest{Name: "bench"}); err != nil {
				b.Fatal(err)
			}
			data := randomData(1, size)
			if _, err := s.Put(ctx, "bench", "k", bytes.NewReader(data), int64(size), object.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				o, err := s.Head(ctx, "bench", "k")
				if err != nil {
					b.Fatal(err)
				}
				rc, err := s.Open(ctx, o, 0, o.Size)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(size) {
					b.Fatalf("read %d bytes: %v", n, err)
				}
				rc.Close()
			}
		})
	}
}
