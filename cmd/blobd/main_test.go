package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"google.golang.org/grpc"
)

func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v", err)
	}
	for _, name := range []string{"id", "data-dir", "addr", "metad", "zone", "rack", "capacity", "heartbeat-interval", "log-level",
		"shutdown-timeout", "advertise-addr", "task-concurrency", "task-timeout", "scrub-rate", "scrub-interval", "orphan-grace", "reconcile-interval",
		"local-socket", "peer-local-sockets"} {
		// A bool flag's line ends at its name; the others name a type.
		if h := out.String(); !strings.Contains(h, "  -"+name+" ") && !strings.Contains(h, "  -"+name+"\n") {
			t.Errorf("--help lacks --%s:\n%s", name, out.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags([]string{"--id=b1", "--data-dir=/d", "--addr=127.0.0.1:7401", "--metad=a:1, b:2,,c:3",
		"--capacity=10G", "--zone=z", "--rack=r", "--heartbeat-interval=1s", "--log-level=debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.node.Capacity != 10<<30 || f.node.HeartbeatInterval != time.Second || f.node.Zone != "z" {
		t.Fatalf("parsed %+v", f.node)
	}
	if got := metaclient.ParseAddrs(f.metad); strings.Join(got, " ") != "a:1 b:2 c:3" {
		t.Fatalf("metad addrs %q", got)
	}
	for _, args := range [][]string{
		{"--data-dir=/d"}, // no id
		{"--id=b1"},       // no data dir
		{"--id=b1", "--data-dir=/d", "--capacity=1Q"},
		{"--id=b1", "--data-dir=/d", "--addr=nohost"},
		{"--id=b1", "--data-dir=/d", "stray"},
		{"--id=b1", "--data-dir=/d", "--local-socket=/run/blobd.sock"}, // abstract names only
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	if code := run(context.Background(), []string{"--id=x"}, io.Discard); code != 2 {
		t.Errorf("run with bad flags: exit %d, want 2", code)
	}
}

// fakeMetad is a metad gRPC server that records registrations and
// heartbeats and knows only registered nodes.
type fakeMetad struct {
	metadatapb.UnimplementedMetadataServer
	mu         sync.Mutex
	nodes      map[string]*metadatapb.Node
	registered chan *metadatapb.Node
	beats      chan *metadatapb.HeartbeatRequest
}

func (m *fakeMetad) RegisterNode(ctx context.Context, req *metadatapb.RegisterNodeRequest) (*metadatapb.RegisterNodeResponse, error) {
	m.mu.Lock()
	m.nodes[req.GetNode().GetId()] = req.GetNode()
	m.mu.Unlock()
	m.registered <- req.GetNode()
	return &metadatapb.RegisterNodeResponse{}, nil
}

func (m *fakeMetad) Heartbeat(ctx context.Context, req *metadatapb.HeartbeatRequest) (*metadatapb.HeartbeatResponse, error) {
	m.mu.Lock()
	_, ok := m.nodes[req.GetId()]
	m.mu.Unlock()
	if !ok {
		return nil, metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchNode, "node %q", req.GetId()))
	}
	select {
	case m.beats <- req:
	default:
	}
	return &metadatapb.HeartbeatResponse{}, nil
}

func (m *fakeMetad) forget(id string) {
	m.mu.Lock()
	delete(m.nodes, id)
	m.mu.Unlock()
}

func startFakeMetad(t *testing.T) (*fakeMetad, string) {
	m := &fakeMetad{nodes: map[string]*metadatapb.Node{}, registered: make(chan *metadatapb.Node, 10), beats: make(chan *metadatapb.HeartbeatRequest, 100)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	metadatapb.RegisterMetadataServer(gs, m)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return m, ln.Addr().String()
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for %s", what)
		panic("unreachable")
	}
}

// blobd end to end: registers with metad through metaclient, heartbeats,
// registers again when metad forgets it, and exits 0 when its context ends.
func TestRunRegistersAndHeartbeats(t *testing.T) {
	md, mdAddr := startFakeMetad(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--id=b7", "--data-dir=" + filepath.Join(t.TempDir(), "d"), "--addr=127.0.0.1:0",
			"--metad=" + mdAddr, "--zone=z2", "--rack=r3", "--capacity=1G", "--heartbeat-interval=10ms",
			"--log-level=warn"}, t.Output())
	}()
	n := await(t, md.registered, "registration")
	if n.GetId() != "b7" || n.GetZone() != "z2" || n.GetRack() != "r3" || n.GetCapacityBytes() != 1<<30 {
		t.Fatalf("registered %v", n)
	}
	if _, _, err := net.SplitHostPort(n.GetAddress()); err != nil || strings.HasSuffix(n.GetAddress(), ":0") {
		t.Fatalf("registered address %q", n.GetAddress())
	}
	hb := await(t, md.beats, "heartbeat")
	if hb.GetId() != "b7" || hb.GetCapacityBytes() != 1<<30 {
		t.Fatalf("heartbeat %v", hb)
	}
	// The node serves chunks at the address it registered.
	c := blob.NewClient(blob.ClientConfig{})
	defer c.Close()
	if _, _, err := c.List(ctx, n.GetAddress(), "", 1); err != nil {
		t.Fatalf("List at the registered address: %v", err)
	}

	md.forget("b7")
	await(t, md.registered, "registration after metad forgot the node")

	cancel()
	if code := await(t, done, "run to return"); code != 0 {
		t.Fatalf("run exited %d", code)
	}
}
