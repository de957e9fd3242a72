package metadata

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A leader's pipeline to a follower, used as hashicorp/raft's replication
// uses it when a response fails: its decoder (pipelineDecode) reads that
// response and returns, and its sender, which has not noticed yet, sends
// once more. With the transport as NetworkTransport builds it, that send
// blocked for ever (the transport's decoder holds the next response for a
// reader that is gone), and Raft's Shutdown with it: a full metadata test
// run hung in Close after TestAddMemberTransferLeaderRemoveMember's
// leadership transfer, and after TestCutOffLeaderServesNoStaleRead's
// partition. Real transports over TCP on both ends.
func TestRaftPipelineSendAfterDecoderStops(t *testing.T) {
	followerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	follower := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &streamLayer{Listener: followerLn, advertise: followerLn.Addr()}, MaxPool: 2, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
	})
	defer follower.Close()
	// The follower refuses every entry, as one with a newer term does.
	go func() {
		for rpc := range follower.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 2, Success: false}, nil)
		}
	}()

	leaderLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{cfg: Config{RaftListener: leaderLn}}
	leader, err := srv.newTransport(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()

	p, err := leader.AppendEntriesPipeline("f", raft.ServerAddress(followerLn.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			_ = p.Close()
		}
	}()
	// Raft's decoder: it reads the first response, sees the refusal and
	// returns.
	decoded := make(chan raft.AppendFuture, 1)
	go func() { decoded <- <-p.Consumer() }()

	send := func(i uint64) <-chan error {
		errc := make(chan error, 1)
		go func() {
			_, err := p.AppendEntries(&raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("l"), Addr: []byte(leaderLn.Addr().String())}, Term: 1, PrevLogEntry: i},
				new(raft.AppendEntriesResponse))
			errc <- err
		}()
		return errc
	}
	// Generous: every step below takes a loopback round trip.
	const deadline = 30 * time.Second
	wait := func(what string, errc <-chan error) {
		t.Helper()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(deadline):
			t.Fatalf("%s still blocked after %v: the pipeline deadlocked", what, deadline)
		}
	}
	wait("the first send", send(1))
	wait("the second send", send(2))
	select {
	case f := <-decoded:
		if f.Response().Success {
			t.Fatal("the follower accepted the entries")
		}
	case <-time.After(deadline):
		t.Fatalf("no response decoded within %v", deadline)
	}
	// The sender's next select picked a ready trigger over its decoder's
	// end: one more send, which must come back so that the sender can see
	// the decoder gone, close the pipeline and let Raft shut down.
	wait("the send after the decoder returned", send(3))
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	wait("closing the pipeline", closed)
	released = true
}
