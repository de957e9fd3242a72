package metadata

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// An in-process metad cluster for tests: real Raft over TCP on 127.0.0.1,
// real Badger under t.TempDir(), the production Server objects.

// waitFor polls cond until it holds or timeout passes, then fails with msg.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, fmt.Sprintf(msg, args...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogWriter sends log lines to t.Log until the test ends.
type testLogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB, id string) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	level := slog.LevelInfo
	if os.Getenv("METAD_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("node", id)
}

type testNode struct {
	id       string
	dir      string
	raftAddr string
	srv      *Server
	cancel   context.CancelFunc
	done     chan error
}

type testCluster struct {
	t     testing.TB
	nodes []*testNode
	peers []Peer
	// tune adjusts every member's config (tests shorten snapshots etc.).
	tune func(*Config)
}

// fastTimings are Raft timings for loopback on a busy 2-core machine
// running -race next to other packages' tests: elections well under a
// second, yet a leader rides out stalls of a few hundred milliseconds (at a
// load average of 7, 100ms leases made leaders step down mid-test).
func fastTimings(c *Config) {
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 300 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
	c.RaftLogLevel = "warn"
}

func newTestCluster(t testing.TB, n int, tune func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, tune: tune}
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		id := fmt.Sprintf("m%d", i+1)
		c.peers = append(c.peers, Peer{ID: id, RaftAddr: ln.Addr().String()})
		c.nodes = append(c.nodes, &testNode{id: id, dir: t.TempDir(), raftAddr: ln.Addr().String()})
	}
	t.Cleanup(c.closeAll)
	for i, nd := range c.nodes {
		c.start(nd, lns[i])
	}
	return c
}

func (c *testCluster) config(nd *testNode, ln net.Listener) Config {
	cfg := DefaultConfig()
	cfg.ID = nd.id
	cfg.DataDir = nd.dir
	cfg.RaftListener = ln
	cfg.RaftAddr = nd.raftAddr
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.InitialCluster = c.peers
	cfg.Logger = testLogger(c.t, nd.id)
	fastTimings(&cfg)
	if c.tune != nil {
		c.tune(&cfg)
	}
	return cfg
}

// start runs a member; ln is its Raft listener, nil to bind its address
// again (a restart).
func (c *testCluster) start(nd *testNode, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", nd.raftAddr); err != nil {
			c.t.Fatalf("rebind %s for %s: %v", nd.raftAddr, nd.id, err)
		}
	}
	srv, err := NewServer(c.config(nd, ln))
	if err != nil {
		c.t.Fatalf("NewServer(%s): %v", nd.id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd.srv, nd.cancel, nd.done = srv, cancel, make(chan error, 1)
	go func() { nd.done <- srv.Run(ctx) }()
}

// kill stops a member abruptly (no leadership transfer).
func (c *testCluster) kill(nd *testNode) {
	c.t.Helper()
	if nd.srv == nil {
		return
	}
	if err := nd.srv.Close(); err != nil {
		c.t.Errorf("Close(%s): %v", nd.id, err)
	}
	select {
	case err := <-nd.done:
		if err != nil {
			c.t.Errorf("Run(%s): %v", nd.id, err)
		}
	case <-time.After(10 * time.Second):
		c.t.Errorf("Run(%s) did not return after Close", nd.id)
	}
	nd.cancel()
	nd.srv = nil
}

func (c *testCluster) closeAll() {
	for _, nd := range c.nodes {
		c.kill(nd)
	}
}

func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, nd := range c.nodes {
		if nd.srv != nil {
			out = append(out, nd)
		}
	}
	return out
}

// waitLeader waits until exactly one live member leads and serves (its
// first barrier applied) and every live member agrees who it is.
func (c *testCluster) waitLeader() *testNode {
	c.t.Helper()
	var leader *testNode
	waitFor(c.t, 15*time.Second, func() bool {
		leader = nil
		for _, nd := range c.live() {
			if nd.srv.IsLeader() {
				if leader != nil {
					return false
				}
				leader = nd
			}
		}
		if leader == nil {
			return false
		}
		for _, nd := range c.live() {
			if nd.srv.Leader() != leader.id {
				return false
			}
		}
		return true
	}, "one leader that every live member knows")
	return leader
}

func (c *testCluster) followers() []*testNode {
	var out []*testNode
	for _, nd := range c.live() {
		if nd.srv.RaftState() == raft.Follower {
			out = append(out, nd)
		}
	}
	return out
}

// waitAddresses waits until every live member's gRPC address is recorded
// in every live member's state.
func (c *testCluster) waitAddresses() {
	c.t.Helper()
	waitFor(c.t, 15*time.Second, func() bool {
		for _, a := range c.live() {
			addrs, err := a.srv.state.MemberAddresses()
			if err != nil {
				return false
			}
			for _, b := range c.live() {
				if addrs[b.id] != b.srv.GRPCAddr() {
					return false
				}
			}
		}
		return true
	}, "every member's grpc address to be replicated")
}

func (c *testCluster) client(nodes ...*testNode) *metaclient.Client {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.live()
	}
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.srv.GRPCAddr())
	}
	cl, err := metaclient.New(addrs, metaclient.Options{MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testObject(bucket, key string) *pb.Object {
	return &pb.Object{Bucket: bucket, Key: key, VersionId: "v-" + key, Size: int64(len(key)), Etag: "e-" + key, Inline: []byte(key)}
}
