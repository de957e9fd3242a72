package metadata

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/cairnstore/cairn/internal/faultnet"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// stallingLogs is a raft.LogStore whose appends hang, once stall is set,
// until release is closed: a disk that stops answering.
type stallingLogs struct {
	raft.LogStore
	stall   *atomic.Bool
	release <-chan struct{}
}

func (s stallingLogs) StoreLogs(logs []*raft.Log) error {
	if s.stall.Load() {
		<-s.release
	}
	return s.LogStore.StoreLogs(logs)
}

func (s stallingLogs) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s stallingLogs) IsMonotonic() bool { return true }

// TestLeaderWithStalledDiskGivesWay: when the leader's Raft log appends
// hang, its heartbeats still go out, so without the stall guard its
// followers never elect another leader and every commit waits for the disk.
// With it, the member gives up (in metad: exits; here: is cut off, as an
// exited process would be) and the others elect a leader that commits.
func TestLeaderWithStalledDiskGivesWay(t *testing.T) {
	n := faultnet.NewNet()
	release := make(chan struct{})
	stall := map[string]*atomic.Bool{}
	var mu sync.Mutex
	stalled := map[string]error{}
	var c *testCluster
	c = newTestCluster(t, 3, func(cfg *Config) {
		id := cfg.ID
		n.Own(id, cfg.RaftAddr)
		cfg.RaftDial = n.Dialer(id)
		// Far above any append on a loaded machine, far below the wait a
		// stalled disk would impose.
		cfg.DiskStallTimeout = 3 * time.Second
		cfg.OnDiskStall = func(err error) {
			mu.Lock()
			stalled[id] = err
			mu.Unlock()
			// As if the process had exited: no Raft traffic, no API.
			n.Cut(id)
			for _, nd := range c.nodes {
				if nd.id == id {
					nd.srv.grpcSrv.Stop()
				}
			}
		}
		if stall[id] == nil {
			stall[id] = &atomic.Bool{}
		}
		flag := stall[id]
		cfg.testLogStore = func(l raft.LogStore) raft.LogStore {
			return stallingLogs{LogStore: l, stall: flag, release: release}
		}
	})
	// Cleanups run last first: the stalled appends return before the
	// cluster shuts down (Raft's shutdown waits for its leader loop).
	t.Cleanup(func() { close(release) })
	leader := c.waitLeader()
	c.waitAddresses()
	mustCreateBucket(t, c.client(), "b")
	mustCommitInline(t, c.client(), "k", "v1")

	stall[leader.id].Store(true)
	var others []*testNode
	for _, nd := range c.nodes {
		if nd != leader {
			others = append(others, nd)
		}
	}
	// A commit sent to the stalled leader fails when it exits (its
	// outcome unknown, as the gateway would answer 503); one sent after
	// that needs a leader among the others.
	cl := c.client(others...)
	o := testObject("b", "k")
	o.Inline = []byte("v2")
	var lastErr error
	waitFor(t, 20*time.Second, func() bool {
		_, lastErr = cl.CommitObject(testCtx(t), &pb.CommitObjectRequest{Object: o})
		return lastErr == nil
	}, "a commit with the leader's disk stalled")
	mustGetInline(t, cl, "k", "v2")

	mu.Lock()
	defer mu.Unlock()
	err := stalled[leader.id]
	if err == nil {
		t.Fatalf("%s's appends hung and it never gave up (gave up: %v)", leader.id, stalled)
	}
	if !strings.Contains(err.Error(), "has not returned after") {
		t.Fatalf("%s gave up with %v", leader.id, err)
	}
	for id, err := range stalled {
		if id != leader.id {
			t.Fatalf("%s gave up too, with healthy appends: %v", id, err)
		}
	}
}

// TestDiskStallExits: by default a member whose log append hangs for
// DiskStallTimeout logs why and exits (status 3), here in a child process.
func TestDiskStallExits(t *testing.T) {
	if os.Getenv("CAIRN_DISK_STALL_CHILD") == "1" {
		var stall atomic.Bool
		stall.Store(true)
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		w := &stallWatch{timeout: 100 * time.Millisecond, stalled: exitOnDiskStall(log)}
		g := stallGuardLogs{LogStore: stallingLogs{stall: &stall, release: make(chan struct{})}, w: w}
		_ = g.StoreLogs([]*raft.Log{{Index: 1}}) // hangs until the process exits
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDiskStallExits$")
	cmd.Env = append(os.Environ(), "CAIRN_DISK_STALL_CHILD=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v (want exit status 3); stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "disk stalled") || !strings.Contains(stderr.String(), "storing entries has not returned after 100ms") {
		t.Fatalf("child's log does not say why it exited:\n%s", stderr.String())
	}
}
