package blob

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkPut64MiB: one 64 MiB chunk (256 KiB blocks) per op over loopback
// HTTP, verified in step, written to a temp file, fsynced, renamed over the
// previous copy, directory fsynced.
func BenchmarkPut64MiB(b *testing.B) {
	n := startNode(b, Config{})
	id := randomID(b, 0)
	data := makeChunkBlocks(b, id, 64<<20, 256<<10) // 4+2 of a 64 MiB segment would be 16 MiB chunks; size is what matters here
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet64MiB: a whole 64 MiB chunk per op (sendfile from the page
// cache to loopback).
func BenchmarkGet64MiB(b *testing.B) {
	n := startNode(b, Config{})
	id := randomID(b, 0)
	data := makeChunkBlocks(b, id, 64<<20, 256<<10) // 4+2 of a 64 MiB segment would be 16 MiB chunks; size is what matters here
	ctx := context.Background()
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		rc, err := n.client.Get(ctx, n.Addr(), id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkPutSmall: 4 KiB chunks, one at a time: the fsync-bound rate of
// small chunk writes (see MEASURED.md: ~1,000/s with directory fsync).
func BenchmarkPutSmall(b *testing.B) {
	n := startNode(b, Config{})
	ctx := context.Background()
	id := randomID(b, 0)
	data := makeChunk(b, id, 4096)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
