package blob

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// cpuTime is the process's user+system CPU time so far. Benchmarks report
// it per op (cpu-ms/op): on a shared, loaded machine the wall time of an op
// says more about the neighbours than about the code, the CPU it burns
// (client and node together, both in this process) much less so.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

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
	cpu := cpuTime(b)
	for b.Loop() {
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkPut16MiBNew: 16 MiB chunks (a 64 MiB segment's share at 4+2),
// each op a new chunk, 4 uploads at a time, as a node sees them under
// concurrent PUTs: the files are kept, so the page cache (when a write goes
// through it) keeps taking fresh pages, as it does under a real load.
func BenchmarkPut16MiBNew(b *testing.B) {
	n := startNode(b, Config{})
	ctx := context.Background()
	const size = 16 << 20
	ids := make(chan int, 1)
	ids <- 0
	datas := make([][]byte, 4)
	for i := range datas {
		datas[i] = makeChunkBlocks(b, randomID(b, i), size, 256<<10)
	}
	b.SetBytes(size)
	b.SetParallelism(2) // with GOMAXPROCS 2: 4 uploads in flight
	b.ResetTimer()
	cpu := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		i := <-ids
		ids <- i + 1
		data := datas[i%len(datas)]
		for pb.Next() {
			// A fresh id each time, same blocks: only the header,
			// which names the id, is new.
			id := randomID(b, i%len(datas))
			hdr, err := chunk.Header{Params: chunk.Params{Scheme: chunk.Scheme{K: 16, M: 8}, BlockSize: 256 << 10}, Segment: id.Segment, Shard: id.Shard}.AppendBinary(nil)
			if err != nil {
				b.Error(err)
				return
			}
			body := io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(data[chunk.HeaderSize:]))
			if err := n.client.Put(ctx, n.Addr(), id, body, int64(len(data))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPU(b, cpu)
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

// BenchmarkPut256KiB: the chunk size of a 1 MiB object at 4+2 (one
// 256 KiB block), one at a time: mostly fsync and request costs.
func BenchmarkPut256KiB(b *testing.B) {
	n := startNode(b, Config{})
	ctx := context.Background()
	id := randomID(b, 0)
	data := makeChunkBlocks(b, id, 256<<10, 256<<10)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	cpu := cpuTime(b)
	for b.Loop() {
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
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
	cpu := cpuTime(b)
	for b.Loop() {
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkGetTransport: a 16 MiB chunk (a 64 MiB segment's share at 4+2)
// per op, read 256 KiB at a time as the gateway reads blocks, over
// loopback TCP and over the node's Unix socket. cpu-ms/op is client and
// node together.
func BenchmarkGetTransport(b *testing.B) {
	n := startNode(b, Config{})
	id := randomID(b, 0)
	data := makeChunkBlocks(b, id, 16<<20, 256<<10)
	ctx := context.Background()
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
		b.Fatal(err)
	}
	for _, local := range []bool{false, true} {
		name := "tcp"
		if local {
			name = "unix"
		}
		b.Run(name, func(b *testing.B) {
			c := NewClient(ClientConfig{LocalSockets: local})
			defer c.Close()
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			cpu := cpuTime(b)
			for b.Loop() {
				rc, err := c.Get(ctx, n.Addr(), id)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := io.ReadFull(rc, buf); err == io.EOF {
						break
					} else if err != nil && err != io.ErrUnexpectedEOF {
						b.Fatal(err)
					}
				}
				rc.Close()
			}
			reportCPU(b, cpu)
		})
	}
}
