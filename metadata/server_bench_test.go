package metadata

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// BenchmarkCommitObject3Nodes measures CommitObject through the gRPC API
// and metaclient on a 3-member cluster with 64 concurrent callers: every
// commit is in a Raft entry fsynced on a quorum and applied to Badger.
//
//	go test -run '^$' -bench CommitObject3Nodes -benchtime 20000x -count 6 ./metadata/
func BenchmarkCommitObject3Nodes(b *testing.B) {
	benchProposeSweep(b, benchCommitObject3Nodes)
}

// benchProposeSweep runs bench with propose-batch=1, one Raft entry per
// command as before the proposer batched them, and with the default batch;
// both run in one invocation so that a loaded machine treats them alike.
//
// For sweeps, CAIRN_BENCH_INFLIGHT sets --propose-inflight,
// CAIRN_BENCH_PIPELINE=1 turns on --propose-pipeline and
// CAIRN_BENCH_GATHER sets --propose-gather (a duration; 0 turns it off).
func benchProposeSweep(b *testing.B, bench func(b *testing.B, tune func(*Config))) {
	inflight := benchEnvInt(b, "CAIRN_BENCH_INFLIGHT", DefaultProposeInflight)
	pipeline := os.Getenv("CAIRN_BENCH_PIPELINE") == "1"
	gather := DefaultProposeGather
	if v := os.Getenv("CAIRN_BENCH_GATHER"); v != "" {
		var err error
		if gather, err = time.ParseDuration(v); err != nil {
			b.Fatalf("CAIRN_BENCH_GATHER=%q: %v", v, err)
		}
	}
	for _, batch := range []int{1, DefaultProposeBatch} {
		b.Run(fmt.Sprintf("propose-batch=%d", batch), func(b *testing.B) {
			bench(b, func(cfg *Config) {
				cfg.ProposeBatch = batch
				cfg.ProposeInflight = inflight
				cfg.ProposePipeline = pipeline
				cfg.ProposeGather = gather
				// Longer Raft timings than the tests' and metad's: the three
				// members and 64 callers saturate this process, and at load
				// 20-30 on 2 cores even metad's 250 ms lease lost the leader
				// in most runs. Commits never wait on these timers; only
				// heartbeats (HeartbeatTimeout/10) do, a few per second.
				cfg.HeartbeatTimeout, cfg.ElectionTimeout = time.Second, 2*time.Second
				cfg.LeaderLeaseTimeout = time.Second
				cfg.CommitTimeout = DefaultConfig().CommitTimeout
			})
		})
	}
}

// benchCommitObject3Nodes commits through CAIRN_BENCH_CONNS clients
// (default 4), each keeping CAIRN_BENCH_COMMIT_CALLS CommitObjects calls in
// flight (default metaclient.DefaultCommitCalls; -1: one CommitObject call
// per commit).
func benchCommitObject3Nodes(b *testing.B, tune func(*Config)) {
	c := newTestCluster(b, 3, tune)
	leader := c.waitLeader().srv
	c.waitAddresses()
	// A few connections, as a handful of gateways would have.
	var addrs []string
	for _, nd := range c.live() {
		addrs = append(addrs, nd.srv.GRPCAddr())
	}
	calls := metaclient.DefaultCommitCalls
	if v := os.Getenv("CAIRN_BENCH_COMMIT_CALLS"); v != "" {
		var err error
		if calls, err = strconv.Atoi(v); err != nil {
			b.Fatalf("CAIRN_BENCH_COMMIT_CALLS=%q: %v", v, err)
		}
	}
	var clients []pb.MetadataClient
	for range benchEnvInt(b, "CAIRN_BENCH_CONNS", 4) {
		cl, err := metaclient.New(addrs, metaclient.Options{CommitCalls: calls})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cl.Close() })
		clients = append(clients, cl)
	}
	if _, err := clients[0].CreateBucket(context.Background(), &pb.CreateBucketRequest{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	runCommitCallers(b, leader, func(ctx context.Context, w int, req *pb.CommitObjectRequest) error {
		// As the object layer commits: it holds the object it sent.
		req.Brief = true
		_, err := clients[w%len(clients)].CommitObject(ctx, req)
		return err
	})
}

// BenchmarkProposeCommitObject3Nodes is the Raft level under
// BenchmarkCommitObject3Nodes: the same commands from 64 callers on the
// same 3-member cluster, handed to the leader's Server.propose (the
// proposer, Raft, every member's state machine) without gRPC. It compares
// with MEASURED.md's raw hashicorp/raft figure (64 proposers of 256-byte
// commands, ~17,300 commits/s with 3 voters in one process), and the gap
// to BenchmarkCommitObject3Nodes is what gRPC and metaclient cost.
//
//	go test -run '^$' -bench ProposeCommitObject3Nodes -benchtime 40000x ./metadata/
func BenchmarkProposeCommitObject3Nodes(b *testing.B) {
	benchProposeSweep(b, func(b *testing.B, tune func(*Config)) {
		c := newTestCluster(b, 3, tune)
		leader := c.waitLeader().srv
		ctx := context.Background()
		if _, err := leader.propose(ctx, &pb.Command{Op: &pb.Command_CreateBucket{
			CreateBucket: &pb.CreateBucketRequest{Name: "bench"}}}); err != nil {
			b.Fatal(err)
		}
		runCommitCallers(b, leader, func(ctx context.Context, _ int, req *pb.CommitObjectRequest) error {
			// What mutate does, minus the gRPC status conversion.
			_, err := leader.propose(ctx, &pb.Command{Op: &pb.Command_CommitObject{CommitObject: req}})
			return err
		})
	})
}

// runCommitCallers commits b.N objects of one 4+2 segment each into bucket
// "bench" from 64 concurrent callers (CAIRN_BENCH_CALLERS for sweeps: what
// the throughput is bound by shows in how it moves with them) and reports commits/s, latency and
// the process's CPU time per commit, and how many commits shared a Raft
// entry on average (leader's log entries appended during the run).
func runCommitCallers(b *testing.B, leader *Server, commit func(ctx context.Context, caller int, req *pb.CommitObjectRequest) error) {
	callers := benchEnvInt(b, "CAIRN_BENCH_CALLERS", 64)
	ctx := context.Background()
	// 256-byte-ish commands, as in MEASURED.md.
	nodes := []string{"blob1", "blob2", "blob3", "blob4", "blob5", "blob6"}

	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	b.ResetTimer()
	cpu0 := processCPU(b)
	index0 := leader.raft.LastIndex()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				// Segment ids are fresh per write (the state refuses reuse).
				seg := &pb.Segment{Id: binary.BigEndian.AppendUint64(make([]byte, 8, 16), uint64(i)), Scheme: &pb.Scheme{K: 4, M: 2},
					BlockSize: 1 << 18, Size: 1 << 20, Nodes: nodes}
				o := &pb.Object{Bucket: "bench", Key: fmt.Sprintf("obj/%08d", i), VersionId: fmt.Sprintf("%032x", i),
					Size: 1 << 20, Etag: "0123456789abcdef0123456789abcdef", ContentType: "application/octet-stream",
					Segments: []*pb.Segment{seg}}
				t0 := time.Now()
				if err := commit(ctx, w, &pb.CommitObjectRequest{Object: o}); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	entries := leader.raft.LastIndex() - index0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "commits/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		// The whole cluster and its callers run in this process: CPU time
		// per commit is what 2 cores divide, and unlike commits/s it barely
		// moves with the machine's load.
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/commit")
		if entries > 0 {
			b.ReportMetric(float64(len(all))/float64(entries), "commits/entry")
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEnvInt reads an integer knob of a benchmark from the environment.
func benchEnvInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
