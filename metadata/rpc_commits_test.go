package metadata

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// memberConn is a plain gRPC client of one member: no redirects, no
// batching.
func memberConn(t *testing.T, nd *testNode) pb.MetadataClient {
	t.Helper()
	cc, err := grpc.NewClient(nd.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewMetadataClient(cc)
}

func TestCommitObjectsAnswersEachCommit(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	cl := memberConn(t, leader)
	mustCreateBucket(t, cl, "b")
	if _, err := cl.CommitObject(testCtx(t), &pb.CommitObjectRequest{Object: testObject("b", "exists")}); err != nil {
		t.Fatal(err)
	}
	seg := func(id byte) *pb.Segment {
		return &pb.Segment{Id: []byte{id, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, Scheme: &pb.Scheme{K: 4, M: 2},
			BlockSize: 1 << 16, Size: 1 << 16, Nodes: []string{"n1", "n2", "n3", "n4", "n5", "n6"}}
	}
	withSeg := func(key string, id byte) *pb.Object {
		o := testObject("b", key)
		o.Inline, o.Size, o.Segments = nil, 1<<16, []*pb.Segment{seg(id)}
		return o
	}
	commits := []*pb.CommitObjectRequest{
		{Object: withSeg("a", 1)},
		{Object: testObject("missing", "x")},
		{Object: testObject("b", "exists"), Condition: &pb.Condition{MustNotExist: true}},
		{Object: withSeg("reuses-a", 1)}, // refused whichever of the two is applied first
		{Object: testObject("b", "c")},
		{Object: testObject("b", "")},
	}
	resp, err := cl.CommitObjects(testCtx(t), &pb.CommitObjectsRequest{Commits: commits})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != len(commits) {
		t.Fatalf("%d results for %d commits", len(resp.GetResults()), len(commits))
	}
	errOf := func(i int) error {
		return metaerr.FromStatus(resp.GetResults()[i].GetError().Err())
	}
	// The two commits of segment 1: exactly one wins.
	if (errOf(0) == nil) == (errOf(3) == nil) {
		t.Errorf("segment reused: a %v, reuses-a %v; want exactly one refused", errOf(0), errOf(3))
	}
	for i, want := range map[int]error{1: metaerr.ErrNoSuchBucket, 2: metaerr.ErrPreconditionFailed, 5: metaerr.ErrInvalidArgument} {
		if !errors.Is(errOf(i), want) {
			t.Errorf("commit %d: %v, want %v", i, errOf(i), want)
		}
	}
	if err := errOf(4); err != nil {
		t.Fatalf("commit c: %v", err)
	}
	if got := resp.GetResults()[4].GetObject(); got.GetKey() != "c" || got.GetModifiedUnixNano() == 0 {
		t.Errorf("commit c answered %v, want the stored object", got)
	}
	// What was answered is what is stored.
	for i, key := range []string{"a", "", "", "reuses-a", "c"} {
		if key == "" || errOf(i) != nil {
			continue
		}
		got, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "b", Key: key})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if got.GetObject().GetVersionId() != "v-"+key {
			t.Errorf("get %s: version %q", key, got.GetObject().GetVersionId())
		}
	}

	// A follower refuses the whole call, naming the leader.
	_, err = memberConn(t, c.followers()[0]).CommitObjects(testCtx(t), &pb.CommitObjectsRequest{Commits: commits[4:5]})
	var nl *metaerr.NotLeaderError
	if !errors.As(metaerr.FromStatus(err), &nl) || nl.LeaderAddr != leader.srv.GRPCAddr() {
		t.Fatalf("follower answered %v, want NotLeader naming %s", err, leader.srv.GRPCAddr())
	}
	// No commits, or too many: refused.
	for _, n := range []int{0, MaxCommitsPerCall + 1} {
		req := &pb.CommitObjectsRequest{}
		for range n {
			req.Commits = append(req.Commits, commits[4])
		}
		if _, err := cl.CommitObjects(testCtx(t), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%d commits: %v, want InvalidArgument", n, err)
		}
	}
}

// TestBriefCommitAnswers: a brief commit is answered with the stored
// object's modification time only, through CommitObject and CommitObjects
// alike, and the flag, an answer option, never reaches the Raft log.
func TestBriefCommitAnswers(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	cl := memberConn(t, leader)
	mustCreateBucket(t, cl, "b")
	first, _ := leader.srv.logs.LastIndex()

	one, err := cl.CommitObject(testCtx(t), &pb.CommitObjectRequest{Object: testObject("b", "one"), Brief: true})
	if err != nil {
		t.Fatal(err)
	}
	if one.GetObject() != nil || one.GetModifiedUnixNano() == 0 {
		t.Fatalf("brief CommitObject answered %v", one)
	}
	resp, err := cl.CommitObjects(testCtx(t), &pb.CommitObjectsRequest{Commits: []*pb.CommitObjectRequest{
		{Object: testObject("b", "brief"), Brief: true},
		{Object: testObject("b", "full")},
		{Object: testObject("b", "one"), Brief: true, Condition: &pb.Condition{MustNotExist: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rs := resp.GetResults()
	if rs[0].GetObject() != nil || rs[0].GetModifiedUnixNano() == 0 || rs[0].GetError() != nil {
		t.Errorf("brief commit answered %v", rs[0])
	}
	if rs[1].GetObject().GetKey() != "full" || rs[1].GetModifiedUnixNano() != 0 {
		t.Errorf("full commit answered %v", rs[1])
	}
	if !errors.Is(metaerr.FromStatus(rs[2].GetError().Err()), metaerr.ErrPreconditionFailed) {
		t.Errorf("refused brief commit answered %v", rs[2])
	}
	// The times are the stored objects'.
	for key, mtime := range map[string]int64{"one": one.GetModifiedUnixNano(), "brief": rs[0].GetModifiedUnixNano()} {
		got, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "b", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetObject().GetModifiedUnixNano() != mtime {
			t.Errorf("%s stored with time %d, answered %d", key, got.GetObject().GetModifiedUnixNano(), mtime)
		}
	}
	last, _ := leader.srv.logs.LastIndex()
	var commits int
	for i := first + 1; i <= last; i++ {
		var l raft.Log
		if err := leader.srv.logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		cmds := []*pb.Command{}
		if isBatchEntry(l.Data) {
			if cmds, err = decodeBatch(l.Data); err != nil {
				t.Fatal(err)
			}
		} else {
			cmd := &pb.Command{}
			if err := proto.Unmarshal(l.Data, cmd); err != nil {
				t.Fatal(err)
			}
			cmds = append(cmds, cmd)
		}
		for _, cmd := range cmds {
			if co := cmd.GetCommitObject(); co != nil {
				commits++
				if co.GetBrief() {
					t.Errorf("entry %d carries a brief commit of %s", i, co.GetObject().GetKey())
				}
			}
		}
	}
	if commits != 4 {
		t.Errorf("%d commits in the log, want 4", commits)
	}
}
