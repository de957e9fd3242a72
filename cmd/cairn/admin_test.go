package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// testNow is the CLI's clock in these tests.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeMetad serves canned answers. A nil field leaves its RPC
// Unimplemented, as an older metad would.
type fakeMetad struct {
	pb.UnimplementedMetadataServer

	status    *pb.ClusterStatusResponse
	clusterMp *pb.ClusterMap
	health    *pb.HealthStatusResponse
	rebalance []*pb.RebalanceStatusResponse // RebalanceStatus answers in turn; the last repeats
	plan      *pb.RebalancePlanResponse
	drain     *pb.SetNodeDrainResponse
	decom     *pb.DecommissionResponse
	buckets   []*pb.Bucket
	members   bool  // serve AddMember/RemoveMember/TransferLeader
	block     bool  // ClusterStatus waits for the caller's deadline
	err       error // returned by every mutation when set

	// keys are the access keys by id, which the access-key RPCs
	// (keys_test.go) change as metad would; nil leaves those RPCs
	// Unimplemented.
	keys map[string]*pb.AccessKey

	mu   sync.Mutex
	reqs []proto.Message
}

func (f *fakeMetad) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, m)
}

func (f *fakeMetad) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return nil
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeMetad) ClusterStatus(ctx context.Context, r *pb.ClusterStatusRequest) (*pb.ClusterStatusResponse, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.status == nil {
		return f.UnimplementedMetadataServer.ClusterStatus(ctx, r)
	}
	return f.status, nil
}

func (f *fakeMetad) GetClusterMap(ctx context.Context, r *pb.GetClusterMapRequest) (*pb.GetClusterMapResponse, error) {
	if f.clusterMp == nil {
		return f.UnimplementedMetadataServer.GetClusterMap(ctx, r)
	}
	return &pb.GetClusterMapResponse{ClusterMap: f.clusterMp}, nil
}

func (f *fakeMetad) HealthStatus(ctx context.Context, r *pb.HealthStatusRequest) (*pb.HealthStatusResponse, error) {
	f.record(r)
	if f.health == nil {
		return f.UnimplementedMetadataServer.HealthStatus(ctx, r)
	}
	return f.health, nil
}

func (f *fakeMetad) RebalanceStatus(ctx context.Context, r *pb.RebalanceStatusRequest) (*pb.RebalanceStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rebalance) == 0 {
		return f.UnimplementedMetadataServer.RebalanceStatus(ctx, r)
	}
	resp := f.rebalance[0]
	if len(f.rebalance) > 1 {
		f.rebalance = f.rebalance[1:]
	}
	return resp, nil
}

func (f *fakeMetad) RebalanceStart(ctx context.Context, r *pb.RebalanceStartRequest) (*pb.RebalanceStatusResponse, error) {
	f.record(r)
	if len(f.rebalance) == 0 {
		return f.UnimplementedMetadataServer.RebalanceStart(ctx, r)
	}
	return f.rebalance[0], nil
}

func (f *fakeMetad) RebalanceStop(ctx context.Context, r *pb.RebalanceStopRequest) (*pb.RebalanceStatusResponse, error) {
	f.record(r)
	if len(f.rebalance) == 0 {
		return f.UnimplementedMetadataServer.RebalanceStop(ctx, r)
	}
	return f.rebalance[0], nil
}

func (f *fakeMetad) RebalancePlan(ctx context.Context, r *pb.RebalancePlanRequest) (*pb.RebalancePlanResponse, error) {
	f.record(r)
	if f.plan == nil {
		return f.UnimplementedMetadataServer.RebalancePlan(ctx, r)
	}
	return f.plan, nil
}

func (f *fakeMetad) SetNodeDrain(ctx context.Context, r *pb.SetNodeDrainRequest) (*pb.SetNodeDrainResponse, error) {
	f.record(r)
	if f.err != nil {
		return nil, metaerr.ToStatus(f.err)
	}
	if f.drain == nil {
		return f.UnimplementedMetadataServer.SetNodeDrain(ctx, r)
	}
	return f.drain, nil
}

func (f *fakeMetad) Decommission(ctx context.Context, r *pb.DecommissionRequest) (*pb.DecommissionResponse, error) {
	f.record(r)
	if f.err != nil {
		return nil, metaerr.ToStatus(f.err)
	}
	if f.decom == nil {
		return f.UnimplementedMetadataServer.Decommission(ctx, r)
	}
	return f.decom, nil
}

func (f *fakeMetad) AddMember(ctx context.Context, r *pb.AddMemberRequest) (*pb.AddMemberResponse, error) {
	f.record(r)
	if f.err != nil {
		return nil, metaerr.ToStatus(f.err)
	}
	if !f.members {
		return f.UnimplementedMetadataServer.AddMember(ctx, r)
	}
	return &pb.AddMemberResponse{}, nil
}

func (f *fakeMetad) RemoveMember(ctx context.Context, r *pb.RemoveMemberRequest) (*pb.RemoveMemberResponse, error) {
	f.record(r)
	if f.err != nil {
		return nil, metaerr.ToStatus(f.err)
	}
	if !f.members {
		return f.UnimplementedMetadataServer.RemoveMember(ctx, r)
	}
	return &pb.RemoveMemberResponse{}, nil
}

func (f *fakeMetad) TransferLeader(ctx context.Context, r *pb.TransferLeaderRequest) (*pb.TransferLeaderResponse, error) {
	f.record(r)
	if !f.members {
		return f.UnimplementedMetadataServer.TransferLeader(ctx, r)
	}
	id := r.GetId()
	if id == "" {
		id = "m2"
	}
	return &pb.TransferLeaderResponse{LeaderId: id}, nil
}

func (f *fakeMetad) ListBuckets(ctx context.Context, r *pb.ListBucketsRequest) (*pb.ListBucketsResponse, error) {
	return &pb.ListBucketsResponse{Buckets: f.buckets}, nil
}

func (f *fakeMetad) CreateBucket(ctx context.Context, r *pb.CreateBucketRequest) (*pb.CreateBucketResponse, error) {
	f.record(r)
	for _, b := range f.buckets {
		if b.GetName() == r.GetName() {
			return nil, metaerr.ToStatus(metaerr.ErrBucketAlreadyOwnedByYou)
		}
	}
	return &pb.CreateBucketResponse{Bucket: &pb.Bucket{Name: r.GetName(), CreatedUnixNano: testNow.UnixNano(), Region: "us-east-1"}}, nil
}

func (f *fakeMetad) DeleteBucket(ctx context.Context, r *pb.DeleteBucketRequest) (*pb.DeleteBucketResponse, error) {
	f.record(r)
	switch r.GetName() {
	case "full":
		return nil, metaerr.ToStatus(metaerr.ErrBucketNotEmpty)
	case "photos":
		return &pb.DeleteBucketResponse{}, nil
	}
	return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %s", r.GetName()))
}

func (f *fakeMetad) findBucket(name string) *pb.Bucket {
	for _, b := range f.buckets {
		if b.GetName() == name {
			return b
		}
	}
	return nil
}

func (f *fakeMetad) GetBucket(ctx context.Context, r *pb.GetBucketRequest) (*pb.GetBucketResponse, error) {
	if b := f.findBucket(r.GetName()); b != nil {
		return &pb.GetBucketResponse{Bucket: b}, nil
	}
	return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %s", r.GetName()))
}

func (f *fakeMetad) SetBucketPolicy(ctx context.Context, r *pb.SetBucketPolicyRequest) (*pb.SetBucketPolicyResponse, error) {
	f.record(r)
	b := f.findBucket(r.GetName())
	if b == nil {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %s", r.GetName()))
	}
	nb := proto.CloneOf(b)
	nb.Policy = r.GetPolicy()
	return &pb.SetBucketPolicyResponse{Bucket: nb}, nil
}

func (f *fakeMetad) SetBucketQuota(ctx context.Context, r *pb.SetBucketQuotaRequest) (*pb.SetBucketQuotaResponse, error) {
	f.record(r)
	b := f.findBucket(r.GetName())
	if b == nil {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %s", r.GetName()))
	}
	nb := proto.CloneOf(b)
	nb.Quota = r.GetQuota()
	return &pb.SetBucketQuotaResponse{Bucket: nb}, nil
}

// serve starts f on 127.0.0.1 and returns its address.
func serve(t *testing.T, f *fakeMetad) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterMetadataServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &admin{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }, now: func() time.Time { return testNow }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := runAdmin(ctx, a, args)
	return result{out.String(), errb.String(), code}
}

// A cluster in some trouble: one node down, one draining, segments
// degraded and lost, repair and rebalance running.
func busyCluster() *fakeMetad {
	hb := func(ago time.Duration) int64 { return testNow.Add(-ago).UnixNano() }
	return &fakeMetad{
		status: &pb.ClusterStatusResponse{LeaderId: "m2", Term: 7, CommitIndex: 1523, AppliedIndex: 1520, Members: []*pb.MetadMember{
			{Id: "m1", RaftAddress: "10.0.0.1:7100", GrpcAddress: "10.0.0.1:7200", Voter: true},
			{Id: "m2", RaftAddress: "10.0.0.2:7100", GrpcAddress: "10.0.0.2:7200", Voter: true, Leader: true},
			{Id: "m3", RaftAddress: "10.0.0.3:7100", GrpcAddress: "", Voter: false},
		}},
		clusterMp: &pb.ClusterMap{Epoch: 42, Nodes: []*pb.Node{
			{Id: "b2", Address: "10.0.1.2:7300", Zone: "z2", Rack: "r2", State: pb.NodeState_NODE_STATE_DOWN, CapacityBytes: 4 << 40, UsedBytes: 1 << 40, ChunkCount: 1000, LastHeartbeatUnixNano: hb(95 * time.Second)},
			{Id: "b1", Address: "10.0.1.1:7300", Zone: "z1", Rack: "r1", State: pb.NodeState_NODE_STATE_UP, CapacityBytes: 4 << 40, UsedBytes: 2 << 40, ChunkCount: 2000, LastHeartbeatUnixNano: hb(3 * time.Second)},
			{Id: "b3", Address: "10.0.1.3:7300", Zone: "z3", Rack: "r3", State: pb.NodeState_NODE_STATE_DRAINING, CapacityBytes: 4 << 40, UsedBytes: 512 << 30, ChunkCount: 300},
		}},
		health: &pb.HealthStatusResponse{
			SegmentsTotal: 1234, SegmentsByMissing: []int64{1200, 30, 2}, SegmentsDegraded: 34, SegmentsLost: 2,
			BytesAtRisk: 3 << 30, RepairQueue: 30, RepairsInFlight: 4, RepairsDone: 120, RepairsFailed: 1,
			RepairBytesPerSecond: 12 << 20, EtaSeconds: 185, GcBacklog: 7, ComputedUnixNano: hb(2 * time.Second),
			Lost: []*pb.LostSegment{
				{Bucket: "photos", Key: "cat.jpg", VersionId: "v1", SegmentId: []byte{1, 2}, Healthy: 2, Needed: 4},
				{Bucket: "photos", Key: "cat.jpg", VersionId: "v1", SegmentId: []byte{3, 4}, Healthy: 3, Needed: 4},
			},
		},
		rebalance: []*pb.RebalanceStatusResponse{{Running: true, Threshold: 5, RateBytesPerSecond: 50 << 20, BytesTotal: 10 << 30, BytesMoved: 4 << 30, MovesTotal: 200, MovesDone: 80, BytesPerSecond: 48 << 20, EtaSeconds: 128}},
	}
}

func TestStatus(t *testing.T) {
	addr := serve(t, busyCluster())
	r := runCLI(t, nil, "status", "--metad", addr)
	want := `metad       leader m2, term 7, 3 members (2 voters), applied 1520 of 1523
members     m1, m2 (leader), m3 (nonvoter)
blob nodes  3: 1 up, 1 down, 1 draining (map epoch 42)
capacity    3.5 TiB used of 12.0 TiB raw (29.2%)
segments    1234: 1200 full, 30 at -1, 2 at -2, 2 lost (see ` + "`cairn repair status`" + `)
repair      queue 30, 4 in flight, 12.0 MiB/s, ETA 3m05s
rebalance   running: 4.0 GiB of 10.0 GiB moved (40.0%), 48.0 MiB/s, ETA 2m08s
`
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("status: code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}

	r = runCLI(t, nil, "status", "--metad", addr, "--json")
	var v statusView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 {
		t.Fatalf("status --json: code %d, %v:\n%s", r.code, err, r.stdout)
	}
	if v.Nodes.CapacityBytes != 12<<40 || v.Nodes.ByState["down"] != 1 || v.Segments.SegmentsLost != 2 || v.Rebalance.BytesMoved != 4<<30 || v.Metad.LeaderID != "m2" {
		t.Fatalf("status --json = %+v", v)
	}
}

// A metad without the self-healing and administration RPCs: those sections
// say n/a and the command still succeeds.
func TestStatusUnimplementedSections(t *testing.T) {
	f := busyCluster()
	f.health, f.rebalance = nil, nil
	addr := serve(t, f)
	r := runCLI(t, nil, "status", "--metad", addr)
	if r.code != 0 {
		t.Fatalf("status: code %d, stderr %q", r.code, r.stderr)
	}
	for _, line := range []string{"segments    n/a\n", "repair      n/a\n", "rebalance   n/a\n", "blob nodes  3: 1 up"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("status output lacks %q:\n%s", line, r.stdout)
		}
	}
	r = runCLI(t, nil, "status", "--metad", addr, "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v["segments"] != nil || v["rebalance"] != nil || v["nodes"] == nil {
		t.Fatalf("status --json = %v; want null segments and rebalance", v)
	}
}

// check is one more condition on a command's run: the fake's requests,
// the output.
type check func(t *testing.T, f *fakeMetad, r result)

// wantReq checks the last request the fake was sent (nil: none).
func wantReq(want proto.Message) check {
	return func(t *testing.T, f *fakeMetad, r result) {
		if got := f.last(); !proto.Equal(got, want) {
			t.Errorf("request = %v, want %v", got, want)
		}
	}
}

// cmdCase is one command line against busyCluster, changed by fake; each
// runs twice, the second time with --json (whose output only has to be
// JSON) unless notJSON.
type cmdCase struct {
	name    string
	fake    func(f *fakeMetad)
	args    []string
	code    int
	stdout  string // exact when it has a newline, else a substring
	stderr  string // substring
	checks  []check
	notJSON bool // with --json the command fails before printing
}

func TestCommands(t *testing.T) {
	runCmdCases(t, []cmdCase{
		{name: "node list", args: []string{"node", "list"}, stdout: `ID  ZONE  RACK  ADDRESS        STATE     CAPACITY  USED       USE%   CHUNKS  HEARTBEAT
b1  z1    r1    10.0.1.1:7300  up        4.0 TiB   2.0 TiB    50.0%  2000    3s ago
b2  z2    r2    10.0.1.2:7300  down      4.0 TiB   1.0 TiB    25.0%  1000    1m35s ago
b3  z3    r3    10.0.1.3:7300  draining  4.0 TiB   512.0 GiB  12.5%  300     never
`},
		{name: "node show", args: []string{"node", "show", "b2"}, stdout: `id         b2
state      down
address    10.0.1.2:7300
zone       z2
rack       r2
capacity   4.0 TiB
used       1.0 TiB (25.0%)
chunks     1000
heartbeat  1m35s ago
`},
		{name: "node show missing", args: []string{"node", "show", "b9"}, code: 1, stderr: `cairn: no blob node "b9" (` + "`cairn node list`" + ` shows the nodes)`, notJSON: true},
		{name: "node show without id", args: []string{"node", "show"}, code: 1, stderr: "accepts 1 arg(s), received 0", notJSON: true},
		{name: "drain dry run",
			fake: func(f *fakeMetad) {
				f.drain = &pb.SetNodeDrainResponse{Node: &pb.Node{Id: "b1", State: pb.NodeState_NODE_STATE_UP}, ChunksRemaining: 2000, BytesRemaining: 2 << 40}
			},
			args:   []string{"node", "drain", "b1", "--dry-run"},
			stdout: "dry run: draining b1 would move 2000 chunks (2.0 TiB) off it\n",
			checks: []check{wantReq(&pb.SetNodeDrainRequest{Id: "b1", Drain: true, DryRun: true})}},
		{name: "drain",
			fake: func(f *fakeMetad) {
				f.drain = &pb.SetNodeDrainResponse{Node: &pb.Node{Id: "b1", State: pb.NodeState_NODE_STATE_DRAINING}, ChunksRemaining: 2000, BytesRemaining: 2 << 40}
			},
			args:   []string{"node", "drain", "b1"},
			stdout: "b1 is draining: 2000 chunks (2.0 TiB) still to move (`cairn node show b1` follows it)\n",
			checks: []check{wantReq(&pb.SetNodeDrainRequest{Id: "b1", Drain: true})}},
		{name: "undrain",
			fake: func(f *fakeMetad) {
				f.drain = &pb.SetNodeDrainResponse{Node: &pb.Node{Id: "b3", State: pb.NodeState_NODE_STATE_UP}, ChunksRemaining: 10, BytesRemaining: 1 << 20}
			},
			args:   []string{"node", "undrain", "b3"},
			stdout: "b3 is up: it takes new chunks again; 10 chunks (1.0 MiB) on it\n",
			checks: []check{wantReq(&pb.SetNodeDrainRequest{Id: "b3", Drain: false})}},
		{name: "drain unknown node", fake: func(f *fakeMetad) { f.err = metaerr.Detailed(metaerr.ErrNoSuchNode, "node b9") },
			args: []string{"node", "drain", "b9"}, code: 1, stderr: `cairn: no blob node "b9"`, notJSON: true},
		{name: "drain unimplemented", args: []string{"node", "drain", "b1"}, code: 1,
			stderr: "does not serve SetNodeDrain yet (it is older than this cairn); upgrade metad", notJSON: true},
		{name: "decommission refused",
			fake: func(f *fakeMetad) {
				f.decom = &pb.DecommissionResponse{Node: &pb.Node{Id: "b1"}, Blockers: []string{"holds the only healthy copy of 3 segments", "zone z1 would have too few nodes for 4+2"}, ChunksRemaining: 2000, BytesRemaining: 2 << 40}
			},
			args: []string{"node", "decommission", "b1"}, code: 1,
			stdout: "b1: 2 blocker(s); 2000 chunks (2.0 TiB) still on it\n  - holds the only healthy copy of 3 segments\n  - zone z1 would have too few nodes for 4+2\n",
			stderr: "cairn: b1 cannot be decommissioned yet: 2 blocker(s); drain it first",
			checks: []check{wantReq(&pb.DecommissionRequest{Id: "b1"})}},
		{name: "decommission status",
			fake: func(f *fakeMetad) {
				f.decom = &pb.DecommissionResponse{Node: &pb.Node{Id: "b1"}, Blockers: []string{"2000 chunks still to move"}, ChunksRemaining: 2000, BytesRemaining: 2 << 40}
			},
			args:   []string{"node", "decommission", "--status", "b1"},
			stdout: "b1: 1 blocker(s); 2000 chunks (2.0 TiB) still on it\n  - 2000 chunks still to move\n",
			checks: []check{wantReq(&pb.DecommissionRequest{Id: "b1", StatusOnly: true})}},
		{name: "decommission status with skipped drain moves",
			fake: func(f *fakeMetad) {
				f.decom = &pb.DecommissionResponse{Node: &pb.Node{Id: "b1"}, ChunksRemaining: 1, BytesRemaining: 16 << 20, SkippedCount: 2,
					Blockers: []string{"node holds 1 chunks (16777216 bytes) that have not moved yet",
						"the drain gave up 1 moves off it after 5 failures each (first: segment abcd shard 2 to b7: write chunk: disk read-only); `cairn node drain b1` tries them again"},
					Skipped: []*pb.SkippedMove{
						{ToNode: "b9", Failures: 3, RetryUnixNano: testNow.Add(5 * time.Second).UnixNano(), Reason: "write chunk: no space left on device"},
						{SegmentId: []byte{0xab, 0xcd}, Shard: 2, FromNode: "b1", ToNode: "b7", Failures: 5, Reason: "write chunk: disk read-only"}}}
			},
			args: []string{"node", "decommission", "--status", "b1"},
			stdout: "b1: 2 blocker(s); 1 chunks (16.0 MiB) still on it\n" +
				"  - node holds 1 chunks (16777216 bytes) that have not moved yet\n" +
				"  - the drain gave up 1 moves off it after 5 failures each (first: segment abcd shard 2 to b7: write chunk: disk read-only); `cairn node drain b1` tries them again\n" +
				"skipped: 2 moves off it failed and are not tried now (the leader's drain backs them off, and gives one up after its 5th failure until the node is drained again)\n" +
				"\n" +
				"first 2 of 2 skipped moves:\n" +
				"SEGMENT  SHARD  FROM  TO  FAILURES  RETRY     LAST ERROR\n" +
				"any      -      -     b9  3         in 5s     write chunk: no space left on device\n" +
				"abcd     2      b1    b7  5         given up  write chunk: disk read-only\n",
			checks: []check{wantReq(&pb.DecommissionRequest{Id: "b1", StatusOnly: true})}},
		{name: "decommission done",
			fake: func(f *fakeMetad) {
				f.decom = &pb.DecommissionResponse{Node: &pb.Node{Id: "b3", State: pb.NodeState_NODE_STATE_DECOMMISSIONED}, Decommissioned: true}
			},
			args: []string{"node", "decommission", "b3"}, stdout: "b3 is decommissioned\n"},
		{name: "decommission dry run",
			fake: func(f *fakeMetad) { f.decom = &pb.DecommissionResponse{Node: &pb.Node{Id: "b3"}} },
			args: []string{"node", "decommission", "b3", "--dry-run"}, stdout: "b3: nothing blocks decommissioning; 0 chunks (0 B) still on it\n",
			checks: []check{wantReq(&pb.DecommissionRequest{Id: "b3", DryRun: true})}},
		{name: "rebalance plan",
			fake: func(f *fakeMetad) {
				f.plan = &pb.RebalancePlanResponse{MovesTotal: 120, BytesTotal: 3 << 30,
					Moves:  []*pb.PlannedMove{{SegmentId: []byte{0xab, 0xcd}, Shard: 2, FromNode: "b1", ToNode: "b7", Bytes: 16 << 20}},
					Before: []*pb.NodeUtilization{{Id: "b1", CapacityBytes: 4 << 30, UsedBytes: 3 << 30}, {Id: "b7", CapacityBytes: 4 << 30}},
					After:  []*pb.NodeUtilization{{Id: "b1", CapacityBytes: 4 << 30, UsedBytes: 2 << 30}, {Id: "b7", CapacityBytes: 4 << 30, UsedBytes: 1 << 30}}}
			},
			args: []string{"rebalance", "plan", "--threshold", "3"},
			stdout: `plan: 120 moves, 3.0 GiB (threshold 3 points)

NODE  CAPACITY  USED BEFORE  USE% BEFORE  USED AFTER  USE% AFTER
b1    4.0 GiB   3.0 GiB      75.0%        2.0 GiB     50.0%
b7    4.0 GiB   0 B          0.0%         1.0 GiB     25.0%

first 1 of 120 moves:
SEGMENT  SHARD  FROM  TO  SIZE
abcd     2      b1    b7  16.0 MiB
`,
			checks: []check{wantReq(&pb.RebalancePlanRequest{Threshold: 3, MaxMoves: 20})}},
		{name: "rebalance start", args: []string{"rebalance", "start", "--rate", "100MiB/s", "--threshold", "2.5"},
			stdout: "rebalance started: 10.0 GiB in 200 moves at up to 50.0 MiB/s (`cairn rebalance status --watch` follows it)\n",
			checks: []check{wantReq(&pb.RebalanceStartRequest{Threshold: 2.5, RateBytesPerSecond: 100 << 20})}},
		{name: "rebalance start dry run", args: []string{"rebalance", "start", "--dry-run"},
			stdout: "dry run: would move 10.0 GiB in 200 moves at up to 50.0 MiB/s\n",
			checks: []check{wantReq(&pb.RebalanceStartRequest{Threshold: 5, RateBytesPerSecond: 50 << 20, DryRun: true})}},
		{name: "rebalance start bad rate", args: []string{"rebalance", "start", "--rate", "fast"}, code: 1, stderr: `cairn: --rate: size "fast"`, notJSON: true},
		{name: "rebalance status", args: []string{"rebalance", "status"},
			stdout: "rebalance  running (threshold 5 points, limit 50.0 MiB/s)\n" +
				"progress   [############..................]  40.0%  4.0 GiB of 10.0 GiB, 80 of 200 moves\n" +
				"rate       48.0 MiB/s, ETA 2m08s\n"},
		{name: "rebalance status with skipped moves",
			fake: func(f *fakeMetad) {
				f.rebalance = []*pb.RebalanceStatusResponse{{Running: true, Threshold: 5, RateBytesPerSecond: 50 << 20, BytesTotal: 10 << 30, BytesMoved: 4 << 30,
					MovesTotal: 200, MovesDone: 80, BytesPerSecond: 48 << 20, EtaSeconds: 128, SkippedCount: 4, Skipped: []*pb.SkippedMove{
						{ToNode: "b9", Failures: 3, RetryUnixNano: testNow.Add(5 * time.Second).UnixNano(), Reason: "write chunk: no space left on device"},
						{SegmentId: []byte{0xab, 0xcd}, Shard: 2, FromNode: "b1", ToNode: "b7", Failures: 2, RetryUnixNano: testNow.Add(40 * time.Second).UnixNano(), Reason: "write chunk: disk read-only"},
						{SegmentId: []byte{0xab, 0xce}, Shard: 0, FromNode: "b1", ToNode: "b7", Failures: 5, Reason: "no result within the task timeout"}}}}
			},
			args: []string{"rebalance", "status"},
			stdout: "rebalance  running (threshold 5 points, limit 50.0 MiB/s)\n" +
				"progress   [############..................]  40.0%  4.0 GiB of 10.0 GiB, 80 of 200 moves\n" +
				"rate       48.0 MiB/s, ETA 2m08s\n" +
				"skipped    4 moves failed and are not tried now (the leader's balancer backs them off, and gives one up for the run after its 5th failure)\n" +
				"\n" +
				"first 3 of 4 skipped moves:\n" +
				"SEGMENT  SHARD  FROM  TO  FAILURES  RETRY     LAST ERROR\n" +
				"any      -      -     b9  3         in 5s     write chunk: no space left on device\n" +
				"abcd     2      b1    b7  2         in 40s    write chunk: disk read-only\n" +
				"abce     0      b1    b7  5         given up  no result within the task timeout\n"},
		{name: "rebalance stop", args: []string{"rebalance", "stop"}, stdout: "rebalance stopped: 4.0 GiB of 10.0 GiB moved, 80 of 200 moves\n",
			checks: []check{wantReq(&pb.RebalanceStopRequest{})}},
		{name: "rebalance status unimplemented", fake: func(f *fakeMetad) { f.rebalance = nil }, args: []string{"rebalance", "status"}, code: 1,
			stderr: "does not serve RebalanceStatus yet", notJSON: true},
		{name: "repair status", args: []string{"repair", "status", "--max-lost", "10"},
			stdout: `segments    1234: 1200 full, 30 at -1, 2 at -2, 2 lost (see ` + "`cairn repair status`" + `)
at risk     3.0 GiB in 34 degraded segments
queue       30 waiting, 4 in flight
rate        12.0 MiB/s, ETA 3m05s
repairs     120 done, 1 failed
gc backlog  7
computed    2s ago

LOST: 2 segments (fewer than k healthy chunks; restore these objects from elsewhere)
OBJECT                       SEGMENTS  HEALTHY CHUNKS
photos/cat.jpg (version v1)  2         2 of 4 needed
`,
			checks: []check{wantReq(&pb.HealthStatusRequest{MaxLost: 10})}},
		{name: "metad members", args: []string{"metad", "members"}, stdout: `leader m2, term 7, commit index 1523, applied 1520

ID  ROLE      RAFT ADDRESS   GRPC ADDRESS
m1  follower  10.0.0.1:7100  10.0.0.1:7200
m2  leader    10.0.0.2:7100  10.0.0.2:7200
m3  nonvoter  10.0.0.3:7100  (not yet known)
`},
		{name: "metad add", fake: func(f *fakeMetad) { f.members = true }, args: []string{"metad", "add", "m4", "10.0.0.4:7100"},
			stdout: "added m4 (raft 10.0.0.4:7100) as a voter; it catches up from the leader (`cairn metad members`)\n",
			checks: []check{wantReq(&pb.AddMemberRequest{Id: "m4", RaftAddress: "10.0.0.4:7100"})}},
		{name: "metad add nonvoter", fake: func(f *fakeMetad) { f.members = true }, args: []string{"metad", "add", "--nonvoter", "m4", "10.0.0.4:7100"},
			stdout: "as a nonvoter", checks: []check{wantReq(&pb.AddMemberRequest{Id: "m4", RaftAddress: "10.0.0.4:7100", Nonvoter: true})}},
		{name: "metad add refused", fake: func(f *fakeMetad) {
			f.err = metaerr.Detailed(metaerr.ErrInvalidArgument, "add member m4: raft address 10.0.0.1:7100 belongs to member m1")
		}, args: []string{"metad", "add", "m4", "10.0.0.1:7100"}, code: 1,
			stderr: "cairn: add member m4: raft address 10.0.0.1:7100 belongs to member m1: InvalidArgument\n", notJSON: true},
		{name: "metad remove", fake: func(f *fakeMetad) { f.members = true }, args: []string{"metad", "remove", "m3"},
			stdout: "removed m3; stop its metad process now\n", checks: []check{wantReq(&pb.RemoveMemberRequest{Id: "m3"})}},
		{name: "metad transfer-leader to", fake: func(f *fakeMetad) { f.members = true }, args: []string{"metad", "transfer-leader", "m1"},
			stdout: "leader is now m1\n", checks: []check{wantReq(&pb.TransferLeaderRequest{Id: "m1"})}},
		{name: "metad transfer-leader any", fake: func(f *fakeMetad) { f.members = true }, args: []string{"metad", "transfer-leader"},
			stdout: "leader is now m2\n", checks: []check{wantReq(&pb.TransferLeaderRequest{})}},
		{name: "metad remove unimplemented", args: []string{"metad", "remove", "m3"}, code: 1, stderr: "does not serve RemoveMember", notJSON: true},
		{name: "bucket list", fake: func(f *fakeMetad) {
			f.buckets = []*pb.Bucket{{Name: "photos", CreatedUnixNano: testNow.Add(-time.Hour).UnixNano(), Region: "us-east-1",
				Usage: &pb.BucketUsage{Objects: 1234, Bytes: 5 << 30, UploadBytes: 200 << 20}, Quota: &pb.BucketQuota{MaxBytes: 100 << 30}}}
		}, args: []string{"bucket", "list"}, stdout: "NAME    CREATED               REGION     OBJECTS  SIZE     UPLOADS    QUOTA      ACCESS\nphotos  2026-11-25T11:00:00Z  us-east-1  1234     5.0 GiB  200.0 MiB  100.0 GiB  private\n"},
		{name: "bucket show", fake: func(f *fakeMetad) {
			f.buckets = []*pb.Bucket{{Name: "photos", CreatedUnixNano: testNow.UnixNano(), Region: "r",
				Usage: &pb.BucketUsage{Objects: 12, Bytes: 3 << 20, UploadBytes: 1 << 20, NoncurrentVersions: 5, NoncurrentBytes: 2 << 20},
				Quota: &pb.BucketQuota{MaxObjects: 100}, Versioning: pb.VersioningStatus_VERSIONING_STATUS_ENABLED,
				Tags: map[string]string{"team": "web", "env": "prod"}, DefaultEncryption: "AES256",
				Cors: `<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`,
				Lifecycle: `<LifecycleConfiguration><Rule><ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>` +
					`<Rule><ID>b</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`}}
			f.keys = map[string]*pb.AccessKey{
				"CKWEB":   {Id: "CKWEB", Grants: map[string]*pb.BucketGrant{"photos": {Read: true, Write: true}}},
				"CKOWNER": {Id: "CKOWNER", Grants: map[string]*pb.BucketGrant{"photos": {Read: true, Write: true, Owner: true}}},
				"CKOTHER": {Id: "CKOTHER", Grants: map[string]*pb.BucketGrant{"logs": {Read: true}}},
			}
		}, args: []string{"bucket", "show", "photos"}, stdout: "bucket              photos\ncreated             2026-11-25T12:00:00Z\nregion              r\nobjects             12\nsize                3.0 MiB\n" +
			"uploads             1.0 MiB (parts of multipart uploads in progress)\n" +
			"versioning          Enabled\nnoncurrent          5 versions, 2.0 MiB (kept by versioning; delete markers included)\n" +
			"quota               100 objects\naccess              private\ncors                1 rule\nlifecycle           2 rules\ndefault encryption  AES256 (SSE-S3)\n" +
			"tags                env=prod, team=web\naccess keys         CKOWNER  read, write, owner\n                    CKWEB  read, write\n"},
		{name: "bucket show bare, old metad", fake: func(f *fakeMetad) {
			f.buckets = []*pb.Bucket{{Name: "logs", CreatedUnixNano: testNow.UnixNano(), Region: "r"}}
		},
			args: []string{"bucket", "show", "logs"}, stdout: "bucket              logs\ncreated             2026-11-25T12:00:00Z\nregion              r\nobjects             0\nsize                0 B\n" +
				"uploads             0 B (parts of multipart uploads in progress)\nversioning          -\nquota               -\n" +
				"access              private\ncors                the gateways' --cors-allowed-origins\nlifecycle           none\ndefault encryption  none\n" +
				"tags                -\naccess keys         - (metad predates access keys)\n"},
		{name: "bucket show missing", args: []string{"bucket", "show", "nope"}, code: 1,
			stderr: "cairn: bucket \"nope\" does not exist (`cairn bucket list` shows the buckets)\n", notJSON: true},
		{name: "bucket quota", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} }, args: []string{"bucket", "quota", "photos", "--max-size", "100GiB", "--max-objects", "5000"},
			stdout: "bucket photos: quota 100.0 GiB, 5000 objects\n", checks: []check{wantReq(&pb.SetBucketQuotaRequest{Name: "photos", Quota: &pb.BucketQuota{MaxBytes: 100 << 30, MaxObjects: 5000}})}},
		{name: "bucket quota none", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} }, args: []string{"bucket", "quota", "photos", "--none"},
			stdout: "bucket photos: quota -\n", checks: []check{wantReq(&pb.SetBucketQuotaRequest{Name: "photos", Quota: &pb.BucketQuota{}})}},
		{name: "bucket quota no flag", args: []string{"bucket", "quota", "photos"}, code: 1,
			stderr: "cairn: give --max-size, --max-objects, or --none to remove the quota\n", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "bucket quota bad size", args: []string{"bucket", "quota", "photos", "--max-size", "lots"}, code: 1, stderr: "cairn: --max-size: ", notJSON: true, checks: []check{wantReq(nil)}},
		{name: "bucket quota missing", args: []string{"bucket", "quota", "nope", "--max-objects", "1"}, code: 1,
			stderr: "cairn: bucket \"nope\" does not exist", notJSON: true},
		{name: "bucket list empty", args: []string{"bucket", "list"}, stdout: "no buckets\n"},
		{name: "bucket list published", fake: func(f *fakeMetad) {
			f.buckets = []*pb.Bucket{{Name: "photos", CreatedUnixNano: testNow.UnixNano(), Region: "r", Policy: publicReadPolicy("photos", "", false)}, {Name: "logs", CreatedUnixNano: testNow.UnixNano(), Region: "r"}}
		}, args: []string{"bucket", "list"}, stdout: "NAME    CREATED               REGION  OBJECTS  SIZE  UPLOADS  QUOTA  ACCESS\nphotos  2026-11-25T12:00:00Z  r       0        0 B   0 B      -      anonymous read (policy)\nlogs    2026-11-25T12:00:00Z  r       0        0 B   0 B      -      private\n"},
		{name: "bucket publish prefix", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} }, args: []string{"bucket", "publish", "photos", "--prefix", "public/"},
			stdout: "bucket photos: anonymous clients may now read objects under public/\n",
			checks: []check{wantReq(&pb.SetBucketPolicyRequest{Name: "photos", Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/public/*"}]}`})}},
		{name: "bucket publish with listing", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} }, args: []string{"bucket", "publish", "photos", "--list"},
			stdout: "bucket photos: anonymous clients may now read all objects and the bucket's listing\n",
			checks: []check{wantReq(&pb.SetBucketPolicyRequest{Name: "photos", Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::photos"}]}`})}},
		{name: "bucket publish missing", args: []string{"bucket", "publish", "nope"}, code: 1,
			stderr: "cairn: bucket \"nope\" does not exist", notJSON: true},
		{name: "bucket policy show", fake: func(f *fakeMetad) {
			f.buckets = []*pb.Bucket{{Name: "photos", Policy: publicReadPolicy("photos", "a/", false)}}
		},
			args: []string{"bucket", "policy", "show", "photos"}, stdout: "\"Resource\": \"arn:aws:s3:::photos/a/*\""},
		{name: "bucket policy show none", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "logs"}} },
			args: []string{"bucket", "policy", "show", "logs"}, stdout: "bucket logs has no policy: it is private\n"},
		{name: "bucket policy set", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} },
			args:   []string{"bucket", "policy", "set", "photos", writePolicyFile(t, "{\n  \"Statement\": {\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::photos/x\"}\n}\n")},
			stdout: "bucket photos: policy set (anonymous read (policy))\n",
			checks: []check{wantReq(&pb.SetBucketPolicyRequest{Name: "photos", Policy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/x"}}`})}},
		{name: "bucket policy set refused", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos"}} },
			args:   []string{"bucket", "policy", "set", "photos", writePolicyFile(t, `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:PutObjekt","Resource":"arn:aws:s3:::photos/*"}}`)},
			code:   1,
			stderr: "cairn: policy refused: Policy has invalid action (statement 1: \"s3:PutObjekt\" is not an S3 action)", notJSON: true,
			checks: []check{wantReq(nil)}},
		{name: "bucket policy delete", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "photos", Policy: "{}"}} },
			args: []string{"bucket", "policy", "delete", "photos"}, stdout: "bucket photos: policy deleted; it is private\n",
			checks: []check{wantReq(&pb.SetBucketPolicyRequest{Name: "photos"})}},
		{name: "bucket create", args: []string{"bucket", "create", "logs", "--region", "eu-1"}, stdout: "created bucket logs\n",
			checks: []check{wantReq(&pb.CreateBucketRequest{Name: "logs", Region: "eu-1"})}},
		{name: "bucket create existing", fake: func(f *fakeMetad) { f.buckets = []*pb.Bucket{{Name: "logs"}} },
			args: []string{"bucket", "create", "logs"}, code: 1, stderr: "cairn: bucket \"logs\" already exists\n", notJSON: true},
		{name: "bucket delete", args: []string{"bucket", "delete", "photos"}, stdout: "deleted bucket photos\n"},
		{name: "bucket delete missing", args: []string{"bucket", "delete", "nope"}, code: 1,
			stderr: "cairn: bucket \"nope\" does not exist (`cairn bucket list` shows the buckets)\n", notJSON: true},
		{name: "bucket delete not empty", args: []string{"bucket", "delete", "full"}, code: 1,
			stderr: "cairn: bucket \"full\" is not empty", notJSON: true},
	})
}

func runCmdCases(t *testing.T, tests []cmdCase) {
	t.Helper()
	for _, tt := range tests {
		for _, asJSON := range []bool{false, true} {
			if asJSON && tt.notJSON {
				continue
			}
			name := tt.name
			if asJSON {
				name += " --json"
			}
			t.Run(name, func(t *testing.T) {
				f := busyCluster()
				if tt.fake != nil {
					tt.fake(f)
				}
				args := append(append([]string{}, tt.args...), "--metad", serve(t, f))
				if asJSON {
					args = append(args, "--json")
				}
				r := runCLI(t, nil, args...)
				if r.code != tt.code {
					t.Fatalf("exit code %d, want %d; stderr %q; stdout:\n%s", r.code, tt.code, r.stderr, r.stdout)
				}
				if tt.code == 0 && r.stderr != "" {
					t.Errorf("stderr %q, want none", r.stderr)
				}
				if tt.code != 0 && (strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "cairn: ")) {
					t.Errorf("stderr %q: want one line starting with \"cairn: \"", r.stderr)
				}
				if !strings.Contains(r.stderr, tt.stderr) {
					t.Errorf("stderr %q lacks %q", r.stderr, tt.stderr)
				}
				switch {
				case asJSON:
					var v any
					if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
						t.Errorf("--json output is not JSON (%v):\n%s", err, r.stdout)
					}
				case strings.Contains(tt.stdout, "\n") && r.stdout != tt.stdout:
					t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.stdout)
				case !strings.Contains(r.stdout, tt.stdout):
					t.Errorf("stdout lacks %q:\n%s", tt.stdout, r.stdout)
				}
				for _, c := range tt.checks {
					c(t, f, r)
				}
			})
		}
	}
}

// writePolicyFile writes a policy document for `bucket policy set`.
func writePolicyFile(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNodeListJSONExact(t *testing.T) {
	addr := serve(t, busyCluster())
	r := runCLI(t, nil, "node", "list", "--json", "--metad", addr)
	var nodes []nodeView
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil || r.code != 0 {
		t.Fatalf("node list --json: code %d, %v", r.code, err)
	}
	if len(nodes) != 3 || nodes[2].ID != "b3" || nodes[2].UsedBytes != 512<<30 || nodes[2].LastHeartbeat != nil ||
		!nodes[0].LastHeartbeat.Equal(testNow.Add(-3*time.Second)) {
		t.Fatalf("node list --json = %+v", nodes)
	}
}

func TestRebalanceWatch(t *testing.T) {
	f := busyCluster()
	step := func(moved int64, running bool, outcome string) *pb.RebalanceStatusResponse {
		return &pb.RebalanceStatusResponse{Running: running, BytesTotal: 100 << 20, BytesMoved: moved << 20, MovesTotal: 10, MovesDone: moved / 10, BytesPerSecond: 1 << 20, EtaSeconds: float64(100 - moved), Outcome: outcome}
	}
	f.rebalance = []*pb.RebalanceStatusResponse{step(0, true, ""), step(50, true, ""), step(100, false, "done")}
	addr := serve(t, f)
	r := runCLI(t, nil, "rebalance", "status", "--watch", "--interval", "10ms", "--metad", addr)
	want := "[..............................]   0.0%  0 B of 100.0 MiB, 0 of 10 moves, 1.0 MiB/s, ETA 1m40s\n" +
		"[###############...............]  50.0%  50.0 MiB of 100.0 MiB, 5 of 10 moves, 1.0 MiB/s, ETA 50s\n" +
		"[##############################] 100.0%  100.0 MiB of 100.0 MiB, 10 of 10 moves\n" +
		"rebalance done\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("watch: code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}

	f.rebalance = []*pb.RebalanceStatusResponse{step(0, true, ""), step(30, true, ""), step(100, false, "stopped")}
	r = runCLI(t, nil, "rebalance", "status", "--watch", "--interval", "10ms", "--json", "--metad", addr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("watch --json: code %d, stdout:\n%s", r.code, r.stdout)
	}
	var last rebalanceView
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.Outcome != "stopped" || last.BytesMoved != 100<<20 {
		t.Fatalf("last watch line %q: %+v, %v", lines[2], last, err)
	}
}

// Ctrl-C ends --watch without an error.
func TestRebalanceWatchInterrupted(t *testing.T) {
	f := busyCluster() // running forever
	addr := serve(t, f)
	var out, errb lockedBuffer
	a := &admin{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, now: func() time.Time { return testNow }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- runAdmin(ctx, a, []string{"rebalance", "status", "--watch", "--interval", "10ms", "--metad", addr})
	}()
	deadline := time.After(10 * time.Second)
	for strings.Count(out.String(), "\n") < 2 { // condition wait: two redraws seen
		select {
		case <-deadline:
			t.Fatal("no redraws within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("interrupted watch exited %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not stop on cancel")
	}
}

// lockedBuffer is a buffer the CLI writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestUnreachable(t *testing.T) {
	dead := closedAddr(t)
	live := serve(t, busyCluster())
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
	}{
		{"flag", nil, []string{"status", "--metad", dead}, 1,
			"cairn: cannot reach metad at " + dead + ": connection refused (is metad running there? check --metad)\n"},
		{"env", map[string]string{"CAIRN_METAD": dead}, []string{"node", "list"}, 1,
			"cairn: cannot reach metad at " + dead + ": connection refused (is metad running there? check CAIRN_METAD)\n"},
		{"flag wins over env", map[string]string{"CAIRN_METAD": dead}, []string{"metad", "members", "--metad", live}, 0, ""},
		{"one of several is enough", nil, []string{"metad", "members", "--metad", dead + "," + live}, 0, ""},
		{"empty list", nil, []string{"status", "--metad", " , "}, 1, "cairn: --metad names no metad address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.env, tt.args...)
			if r.code != tt.code || !strings.HasPrefix(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
				t.Fatalf("code %d, stderr %q; want %d, %q", r.code, r.stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestDefaultAddressesAreDevs(t *testing.T) {
	a := &admin{getenv: func(string) string { return "" }, timeout: time.Second}
	if got := strings.Join(devMetadAddrs(), ","); got != "127.0.0.1:7200,127.0.0.1:7201,127.0.0.1:7202" {
		t.Fatalf("dev metad addresses = %s", got)
	}
	// Whether or not a dev cluster runs here, connect resolves to them.
	if cl, err := a.connect(context.Background()); err == nil {
		cl.Close()
	} else if !strings.Contains(err.Error(), "(is `cairn dev` running? set --metad or CAIRN_METAD)") {
		t.Fatalf("connect error without flags: %v", err)
	}
	if a.source != "default" || len(a.addrs) != 3 {
		t.Fatalf("resolved %v from %s", a.addrs, a.source)
	}
}

func TestTimeout(t *testing.T) {
	f := busyCluster()
	f.block = true
	addr := serve(t, f)
	start := time.Now()
	r := runCLI(t, nil, "metad", "members", "--metad", addr, "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "cairn: metad at "+addr+" did not answer ClusterStatus within 300ms") {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v with --timeout 300ms", el)
	}
}
