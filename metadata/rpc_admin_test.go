package metadata

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// startNew starts a member that is not in the initial cluster: with join
// set it asks those gRPC addresses to add it (metad --join); without, it
// waits for someone to add it through the API.
func (c *testCluster) startNew(id string, join []string) *testNode {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &testNode{id: id, dir: c.t.TempDir(), raftAddr: ln.Addr().String()}
	cfg := c.config(nd, ln)
	cfg.InitialCluster = nil
	cfg.Join = join
	srv, err := NewServer(cfg)
	if err != nil {
		c.t.Fatalf("NewServer(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd.srv, nd.cancel, nd.done = srv, cancel, make(chan error, 1)
	go func() { nd.done <- srv.Run(ctx) }()
	c.nodes = append(c.nodes, nd)
	return nd
}

// members returns "id:voter|nonvoter" for every member in the leader's
// view, sorted.
func members(t *testing.T, cl pb.MetadataClient) []string {
	t.Helper()
	st, err := cl.ClusterStatus(testCtx(t), &pb.ClusterStatusRequest{})
	if err != nil {
		t.Fatalf("ClusterStatus: %v", err)
	}
	var out []string
	for _, m := range st.GetMembers() {
		kind := "voter"
		if !m.GetVoter() {
			kind = "nonvoter"
		}
		out = append(out, m.GetId()+":"+kind)
	}
	slices.Sort(out)
	return out
}

func waitMembers(t *testing.T, c *testCluster, want ...string) {
	t.Helper()
	leader := c.waitLeader()
	cl := c.client(leader)
	waitFor(t, 15*time.Second, func() bool { return slices.Equal(members(t, cl), want) }, "members %v (have %v)", want, members(t, cl))
}

// waitCaughtUp waits until nd has applied everything the leader has.
func waitCaughtUp(t *testing.T, c *testCluster, nd *testNode) {
	t.Helper()
	leader := c.waitLeader()
	want := leader.srv.AppliedIndex()
	waitFor(t, 15*time.Second, func() bool { return nd.srv.AppliedIndex() >= want }, "%s to apply index %d", nd.id, want)
}

func TestAddMemberTransferLeaderRemoveMember(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	for i := range 20 {
		mustCommit(t, cl, "b", fmt.Sprintf("k%d", i))
	}

	m4 := c.startNew("m4", nil)
	if _, err := cl.AddMember(testCtx(t), &pb.AddMemberRequest{Id: "m4", RaftAddress: m4.raftAddr}); err != nil {
		t.Fatalf("AddMember(m4): %v", err)
	}
	// A repeat of the same request is a no-op.
	if _, err := cl.AddMember(testCtx(t), &pb.AddMemberRequest{Id: "m4", RaftAddress: m4.raftAddr}); err != nil {
		t.Fatalf("AddMember(m4) again: %v", err)
	}
	waitMembers(t, c, "m1:voter", "m2:voter", "m3:voter", "m4:voter")
	waitCaughtUp(t, c, m4)
	c.waitAddresses()

	// The newcomer can lead: transfer leadership to it by name.
	resp, err := cl.TransferLeader(testCtx(t), &pb.TransferLeaderRequest{Id: "m4"})
	if err != nil {
		t.Fatalf("TransferLeader(m4): %v", err)
	}
	if resp.GetLeaderId() != "m4" {
		t.Fatalf("TransferLeader(m4) answered leader %q", resp.GetLeaderId())
	}
	if leader := c.waitLeader(); leader != m4 {
		t.Fatalf("leader after transfer = %s, want m4", leader.id)
	}
	mustCommit(t, cl, "b", "after-transfer")

	// Remove a follower, then the leader itself.
	if _, err := cl.RemoveMember(testCtx(t), &pb.RemoveMemberRequest{Id: "m1"}); err != nil {
		t.Fatalf("RemoveMember(m1): %v", err)
	}
	waitMembers(t, c, "m2:voter", "m3:voter", "m4:voter")
	c.kill(c.nodes[0])
	if _, err := cl.RemoveMember(testCtx(t), &pb.RemoveMemberRequest{Id: "m4"}); err != nil {
		t.Fatalf("RemoveMember(m4, the leader): %v", err)
	}
	c.kill(m4)
	// Closing the removed leader releases its Raft port: Raft must not have
	// shut itself down on removal, after which Close could neither wait for
	// Raft's goroutines nor close the transport.
	if conn, err := net.DialTimeout("tcp", m4.raftAddr, 5*time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("the removed leader's Raft address %s still accepts connections after Close", m4.raftAddr)
	}
	waitMembers(t, c, "m2:voter", "m3:voter")
	mustCommit(t, cl, "b", "after-remove")
	mustGet(t, cl, "b", "k7")

	// Any voter when no id is given.
	old := c.waitLeader()
	resp, err = cl.TransferLeader(testCtx(t), &pb.TransferLeaderRequest{})
	if err != nil {
		t.Fatalf("TransferLeader(any): %v", err)
	}
	if resp.GetLeaderId() == old.id || resp.GetLeaderId() == "" {
		t.Fatalf("TransferLeader(any) from %s answered leader %q", old.id, resp.GetLeaderId())
	}
}

// A member started with --join asks the cluster to add it, catches up and
// then counts towards quorum: with the old leader gone, 3 of 4 voters
// remain, and only its vote makes a majority with the two others.
func TestJoinCatchesUpAndVotes(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	for i := range 20 {
		mustCommit(t, cl, "b", fmt.Sprintf("k%d", i))
	}
	var join []string
	for _, nd := range c.live() {
		join = append(join, nd.srv.GRPCAddr())
	}
	m4 := c.startNew("m4", join)
	waitMembers(t, c, "m1:voter", "m2:voter", "m3:voter", "m4:voter")
	waitCaughtUp(t, c, m4)
	if _, err := m4.srv.state.GetBucket(&pb.GetBucketRequest{Name: "b"}); err != nil {
		t.Fatalf("joined member's state lacks bucket b: %v", err)
	}

	// Stop two of the original members: m4 and the remaining one are 2 of
	// 4 voters, no quorum; bring one back and the three must elect.
	leader := c.waitLeader()
	var others []*testNode
	for _, nd := range c.live() {
		if nd != leader && nd != m4 {
			others = append(others, nd)
		}
	}
	c.kill(leader)
	c.kill(others[0])
	c.start(others[0], nil)
	newLeader := c.waitLeader()
	if newLeader == leader {
		t.Fatal("killed member still leads")
	}
	mustCommit(t, c.client(), "b", "after")
	waitCaughtUp(t, c, m4)
}

func TestMembershipRefusals(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	cl := c.client()
	m2addr := c.nodes[1].raftAddr
	tests := []struct {
		name string
		call func(context.Context) error
	}{
		{"add without id", func(ctx context.Context) error {
			_, err := cl.AddMember(ctx, &pb.AddMemberRequest{RaftAddress: "127.0.0.1:1"})
			return err
		}},
		{"add with wildcard address", func(ctx context.Context) error {
			_, err := cl.AddMember(ctx, &pb.AddMemberRequest{Id: "m9", RaftAddress: "0.0.0.0:7000"})
			return err
		}},
		{"add with another member's address", func(ctx context.Context) error {
			_, err := cl.AddMember(ctx, &pb.AddMemberRequest{Id: "m9", RaftAddress: m2addr})
			return err
		}},
		{"remove unknown", func(ctx context.Context) error {
			_, err := cl.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: "m9"})
			return err
		}},
		{"transfer to unknown", func(ctx context.Context) error {
			_, err := cl.TransferLeader(ctx, &pb.TransferLeaderRequest{Id: "m9"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(testCtx(t)); !errors.Is(err, metaerr.ErrInvalidArgument) {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
		})
	}
	if got := members(t, cl); !slices.Equal(got, []string{"m1:voter", "m2:voter", "m3:voter"}) {
		t.Fatalf("members changed by refused requests: %v", got)
	}
	// Transferring to the leader itself is a no-op.
	resp, err := cl.TransferLeader(testCtx(t), &pb.TransferLeaderRequest{Id: leader.id})
	if err != nil || resp.GetLeaderId() != leader.id {
		t.Fatalf("TransferLeader(leader) = %v, %v", resp, err)
	}
	// Followers refuse with NotLeader (which metaclient follows).
	f := c.followers()[0]
	var nl *metaerr.NotLeaderError
	if err := f.srv.addMember(testCtx(t), &pb.AddMemberRequest{Id: "m9", RaftAddress: "127.0.0.1:1"}); !errors.As(err, &nl) || nl.LeaderAddr != leader.srv.GRPCAddr() {
		t.Fatalf("follower addMember = %v, want NotLeader naming %s", err, leader.srv.GRPCAddr())
	}
	if err := f.srv.removeMember(testCtx(t), "m1"); !errors.As(err, &nl) {
		t.Fatalf("follower removeMember = %v, want NotLeader", err)
	}
	if _, err := f.srv.transferLeader(testCtx(t), ""); !errors.As(err, &nl) {
		t.Fatalf("follower transferLeader = %v, want NotLeader", err)
	}
}
