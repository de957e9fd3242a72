package metadata

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

func mustCreateBucket(t *testing.T, cl pb.MetadataClient, name string) {
	t.Helper()
	if _, err := cl.CreateBucket(testCtx(t), &pb.CreateBucketRequest{Name: name}); err != nil {
		t.Fatalf("CreateBucket(%s): %v", name, err)
	}
}

// mustCommit commits an object. An unconditional commit of the same
// version is idempotent, so, as a careful caller would, it retries when the
// outcome is unknown (Unavailable: leadership lost mid-commit, which a
// loaded test machine can cause); metaclient itself never does that.
func mustCommit(t *testing.T, cl pb.MetadataClient, bucket, key string) {
	t.Helper()
	ctx := testCtx(t)
	for {
		_, err := cl.CommitObject(ctx, &pb.CommitObjectRequest{Object: testObject(bucket, key)})
		if err == nil {
			return
		}
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			t.Fatalf("CommitObject(%s/%s): %v", bucket, key, err)
		}
		t.Logf("CommitObject(%s/%s): %v; retrying", bucket, key, err)
	}
}

func mustGet(t *testing.T, cl pb.MetadataClient, bucket, key string) {
	t.Helper()
	r, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatalf("GetObject(%s/%s): %v", bucket, key, err)
	}
	if got := string(r.GetObject().GetInline()); got != key {
		t.Fatalf("GetObject(%s/%s) inline = %q", bucket, key, got)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSingleNode(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	nd := c.waitLeader()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	mustCommit(t, cl, "b", "k")
	mustGet(t, cl, "b", "k")
	if _, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "b", Key: "missing"}); !errors.Is(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("GetObject(missing) = %v, want ErrNoSuchKey", err)
	}

	// The leader bootstrapped the cluster with the default scheme and
	// recorded its own address.
	cm, err := cl.GetClusterMap(testCtx(t), &pb.GetClusterMapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := cm.GetClusterMap().GetDefaultScheme(); s.GetK() != 4 || s.GetM() != 2 {
		t.Fatalf("default scheme = %v, want 4+2", s)
	}
	st, err := cl.ClusterStatus(testCtx(t), &pb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetLeaderId() != "m1" || len(st.GetMembers()) != 1 || st.GetMembers()[0].GetGrpcAddress() != nd.srv.GRPCAddr() ||
		!st.GetMembers()[0].GetLeader() || !st.GetMembers()[0].GetVoter() || st.GetAppliedIndex() == 0 || st.GetTerm() == 0 {
		t.Fatalf("ClusterStatus = %v", st)
	}

	code, body := httpGet(t, "http://"+nd.srv.HTTPAddr()+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	code, body = httpGet(t, "http://"+nd.srv.HTTPAddr()+"/metrics")
	for _, want := range []string{
		"cairn_metad_raft_state 2",
		"cairn_metad_apply_seconds_count",
		// metaclient sends commits as CommitObjects calls.
		`cairn_metad_rpcs_total{code="OK",method="/cairn.metadata.v1.Metadata/CommitObjects"} 1`,
		`cairn_metad_rpcs_total{code="NotFound",method="/cairn.metadata.v1.Metadata/GetObject"} 1`,
		"cairn_metad_applied_index",
		"cairn_metad_leader_verifications_total",
		`cairn_bucket_objects{bucket="b"} 1`,
		`cairn_bucket_upload_bytes{bucket="b"} 0`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics (%d) lacks %q:\n%s", code, want, body)
		}
	}
}

func TestReadFromAnyMemberIsLinearizable(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	writer := c.client(leader)
	mustCreateBucket(t, writer, "b")

	// A follower refuses and names the leader.
	f := c.followers()[0]
	conn, err := grpc.NewClient(f.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = pb.NewMetadataClient(conn).GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "b", Key: "k"})
	var nl *metaerr.NotLeaderError
	if !errors.As(metaerr.FromStatus(err), &nl) || nl.LeaderAddr != leader.srv.GRPCAddr() {
		t.Fatalf("follower answered %v, want NotLeader naming %s", err, leader.srv.GRPCAddr())
	}

	// Readers that only know one follower each see every write the moment
	// it is acknowledged.
	var readers []pb.MetadataClient
	for _, f := range c.followers() {
		readers = append(readers, c.client(f))
	}
	for i := range 30 {
		key := fmt.Sprintf("k%03d", i)
		mustCommit(t, writer, "b", key)
		mustGet(t, readers[i%len(readers)], "b", key)
	}
	if rounds, reads := counterValue(t, leader.srv.metrics.verifications), counterValue(t, leader.srv.metrics.reads); rounds == 0 || rounds > reads {
		t.Fatalf("%v leader verifications for %v reads", rounds, reads)
	}
}

func TestLeaderFailover(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	old := c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	for i := range 10 {
		mustCommit(t, cl, "b", fmt.Sprintf("before%d", i))
	}
	c.kill(old)
	leader := c.waitLeader()
	if leader == old {
		t.Fatal("killed member still leads")
	}
	// The same client finds the new leader by itself.
	for i := range 10 {
		mustCommit(t, cl, "b", fmt.Sprintf("after%d", i))
	}
	for i := range 10 {
		mustGet(t, cl, "b", fmt.Sprintf("before%d", i))
		mustGet(t, cl, "b", fmt.Sprintf("after%d", i))
	}
	code, body := httpGet(t, "http://"+leader.srv.HTTPAddr()+"/healthz")
	if code != http.StatusOK {
		t.Fatalf("/healthz on new leader = %d %q", code, body)
	}
}

func TestRestartAll(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	const n = 50
	for i := range n {
		mustCommit(t, cl, "b", fmt.Sprintf("k%03d", i))
	}
	// A snapshot on one member so restart covers both paths: replay after
	// a snapshot and replay of the whole log.
	if err := c.nodes[0].srv.Snapshot(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	c.closeAll()
	for _, nd := range c.nodes {
		c.start(nd, nil)
	}
	c.waitLeader()
	// Restarted members serve gRPC on new ports; the new addresses get
	// recorded.
	c.waitAddresses()
	cl = c.client()
	for i := range n {
		mustGet(t, cl, "b", fmt.Sprintf("k%03d", i))
	}
	mustCommit(t, cl, "b", "after-restart")
	mustGet(t, cl, "b", "after-restart")
	resp, err := cl.ListObjects(testCtx(t), &pb.ListObjectsRequest{Bucket: "b"})
	if err != nil || len(resp.GetObjects()) != n+1 {
		t.Fatalf("ListObjects = %d objects, %v; want %d", len(resp.GetObjects()), err, n+1)
	}
}

func TestWipedFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 4
		cfg.SnapshotThreshold = 1 << 30 // only the snapshot the test asks for
		cfg.SnapshotInterval = time.Hour
	})
	c.waitLeader()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	for i := range 20 {
		mustCommit(t, cl, "b", fmt.Sprintf("early%02d", i))
	}
	victim := c.followers()[0]
	c.kill(victim)
	if err := removeAll(victim.dir); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustCommit(t, cl, "b", fmt.Sprintf("late%02d", i))
	}
	// On a loaded machine leadership may have moved since the start (the
	// old leader may even be the member just killed): snapshot on the
	// member that leads now.
	leader := c.waitLeader()
	if err := leader.srv.Snapshot(); err != nil {
		t.Fatalf("Snapshot on leader: %v", err)
	}
	first, _ := leader.srv.logs.FirstIndex()
	if first <= 2 {
		t.Fatalf("leader log starts at %d after snapshot; test needs it truncated", first)
	}

	c.start(victim, nil) // same id, same address, empty data dir
	want := leader.srv.AppliedIndex()
	waitFor(t, 15*time.Second, func() bool { return victim.srv.AppliedIndex() >= want },
		"wiped member to catch up to applied index %d", want)
	// Raft records the installed snapshot just after the FSM restored it.
	waitFor(t, 5*time.Second, func() bool { return victim.srv.raft.Stats()["last_snapshot_index"] != "0" },
		"wiped member to have caught up by installing the leader's snapshot")
	for _, key := range []string{"early00", "early19", "late00", "late19"} {
		if o, err := victim.srv.state.GetObject(&pb.GetObjectRequest{Bucket: "b", Key: key}); err != nil || string(o.GetObject().GetInline()) != key {
			t.Fatalf("wiped member's state: GetObject(%s) = %v, %v", key, o, err)
		}
	}
	// It is a working voter again: with the other follower gone, the
	// cluster still commits because it counts towards the quorum.
	for _, f := range c.followers() {
		if f != victim {
			c.kill(f)
			break
		}
	}
	c.waitLeader()
	mustCommit(t, cl, "b", "with-rejoined-member")
}

func TestRacingConditionalCommits(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	mustCreateBucket(t, c.client(), "b")
	clients := []pb.MetadataClient{c.client(), c.client()}
	for round := range 10 {
		key := fmt.Sprintf("race%d", round)
		var wg sync.WaitGroup
		errs := make([]error, len(clients))
		for i, cl := range clients {
			wg.Go(func() {
				o := testObject("b", key)
				o.VersionId = fmt.Sprintf("v%d", i)
				_, errs[i] = cl.CommitObject(testCtx(t), &pb.CommitObjectRequest{Object: o, Condition: &pb.Condition{MustNotExist: true}})
			})
		}
		wg.Wait()
		won, lost := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, metaerr.ErrPreconditionFailed):
				lost++
			default:
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d won, %d failed the precondition; want 1 and 1", round, won, lost)
		}
	}
}

func TestHeartbeats(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	nd := c.waitLeader()
	cl := c.client()
	ctx := testCtx(t)
	const capacity = 1000 << 20
	if _, err := cl.Heartbeat(ctx, &pb.HeartbeatRequest{Id: "blob1", CapacityBytes: capacity}); !errors.Is(err, metaerr.ErrNoSuchNode) {
		t.Fatalf("heartbeat before register = %v, want ErrNoSuchNode", err)
	}
	if _, err := cl.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.Node{Id: "blob1", Address: "x:1", Zone: "z", CapacityBytes: capacity, UsedBytes: 100 << 20}}); err != nil {
		t.Fatal(err)
	}
	recorded := func() int64 {
		cm, err := nd.srv.state.ClusterMap()
		if err != nil || len(cm.GetNodes()) != 1 {
			t.Fatalf("state cluster map = %v, %v", cm, err)
		}
		return cm.GetNodes()[0].GetUsedBytes()
	}
	tests := []struct {
		name         string
		used         int64
		wantRecorded int64 // usage in the replicated state afterwards
	}{
		{"small change stays in memory", 105 << 20, 100 << 20},
		{"change within 1% of capacity from the recorded value", 109 << 20, 100 << 20},
		{"change beyond 1% is committed", 120 << 20, 120 << 20},
		{"back below the band edge", 115 << 20, 120 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cl.Heartbeat(ctx, &pb.HeartbeatRequest{Id: "blob1", CapacityBytes: capacity, UsedBytes: tt.used, ChunkCount: 7}); err != nil {
				t.Fatal(err)
			}
			if got := recorded(); got != tt.wantRecorded {
				t.Fatalf("replicated usage = %d MiB, want %d MiB", got>>20, tt.wantRecorded>>20)
			}
			cm, err := cl.GetClusterMap(ctx, &pb.GetClusterMapRequest{})
			if err != nil {
				t.Fatal(err)
			}
			n := cm.GetClusterMap().GetNodes()[0]
			if n.GetUsedBytes() != tt.used || n.GetChunkCount() != 7 || time.Since(time.Unix(0, n.GetLastHeartbeatUnixNano())) > time.Minute {
				t.Fatalf("cluster map node = %v, want the latest heartbeat overlaid", n)
			}
		})
	}
}

func TestHealthzWithoutLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	survivor := c.nodes[0]
	for _, nd := range c.nodes[1:] {
		c.kill(nd)
	}
	waitFor(t, 10*time.Second, func() bool {
		code, _ := httpGet(t, "http://"+survivor.srv.HTTPAddr()+"/healthz")
		return code == http.StatusServiceUnavailable
	}, "/healthz to fail on a member without quorum")
	_, body := httpGet(t, "http://"+survivor.srv.HTTPAddr()+"/healthz")
	if !strings.Contains(body, "no known raft leader") {
		t.Fatalf("/healthz body %q", body)
	}
}

// TestLostStateRebuiltFromSnapshot covers the one start on which Raft
// must restore the newest snapshot into the FSM (snapshot.go): the state is
// gone (or a snapshot install crashed half way) while the log before the
// snapshot is already truncated.
func TestLostStateRebuiltFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.TrailingLogs = 2
		cfg.SnapshotThreshold = 1 << 30
		cfg.SnapshotInterval = time.Hour
	})
	nd := c.waitLeader()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	for i := range 10 {
		mustCommit(t, cl, "b", fmt.Sprintf("in-snapshot%d", i))
	}
	if err := nd.srv.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustCommit(t, cl, "b", fmt.Sprintf("in-log%d", i))
	}
	c.kill(nd)
	if err := removeAll(filepath.Join(nd.dir, "state")); err != nil {
		t.Fatal(err)
	}
	c.start(nd, nil)
	c.waitLeader()
	cl = c.client()
	for i := range 10 {
		mustGet(t, cl, "b", fmt.Sprintf("in-snapshot%d", i))
	}
	for i := range 5 {
		mustGet(t, cl, "b", fmt.Sprintf("in-log%d", i))
	}
}
