package metaclient

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cairnstore/cairn/metadata/metadatapb"
)

// echoMember answers every commit at once with the object it was given:
// what is left of a commit is the client, gRPC and protobuf.
type echoMember struct {
	metadatapb.UnimplementedMetadataServer
	calls atomic.Int64
}

func (e *echoMember) CommitObject(_ context.Context, req *metadatapb.CommitObjectRequest) (*metadatapb.CommitObjectResponse, error) {
	e.calls.Add(1)
	return &metadatapb.CommitObjectResponse{Object: req.GetObject()}, nil
}

func (e *echoMember) CommitObjects(_ context.Context, req *metadatapb.CommitObjectsRequest) (*metadatapb.CommitObjectsResponse, error) {
	e.calls.Add(1)
	rs := make([]*metadatapb.CommitObjectResult, len(req.GetCommits()))
	for i, c := range req.GetCommits() {
		rs[i] = &metadatapb.CommitObjectResult{Object: c.GetObject()}
	}
	return &metadatapb.CommitObjectsResponse{Results: rs}, nil
}

// BenchmarkCommitRPC is the cost of a commit's RPC alone: 64 callers commit
// through one client to a member that answers at once, one RPC per commit
// (commit-calls=-1) and batched. Reports the process's CPU time per commit
// (client and server both run here) and commits per RPC.
func BenchmarkCommitRPC(b *testing.B) {
	for _, calls := range []int{-1, 1, 2, 8} {
		b.Run(fmt.Sprintf("commit-calls=%d", calls), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			m := &echoMember{}
			srv := grpc.NewServer()
			metadatapb.RegisterMetadataServer(srv, m)
			go func() { _ = srv.Serve(ln) }()
			defer srv.Stop()
			c, err := New([]string{ln.Addr().String()}, Options{CommitCalls: calls})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			const callers = 64
			var next atomic.Int64
			b.ResetTimer()
			cpu0 := processCPU(b)
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						seg := &metadatapb.Segment{Id: make([]byte, 16), Scheme: &metadatapb.Scheme{K: 4, M: 2},
							BlockSize: 1 << 18, Size: 1 << 20, Nodes: []string{"blob1", "blob2", "blob3", "blob4", "blob5", "blob6"}}
						o := &metadatapb.Object{Bucket: "bench", Key: "obj/00000001", VersionId: "0123456789abcdef0123456789abcdef",
							Size: 1 << 20, Etag: "0123456789abcdef0123456789abcdef", ContentType: "application/octet-stream",
							Segments: []*metadatapb.Segment{seg}}
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						_, err := c.CommitObject(ctx, &metadatapb.CommitObjectRequest{Object: o})
						cancel()
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
			b.ReportMetric(float64(b.N)/float64(m.calls.Load()), "commits/rpc")
		})
	}
}

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
