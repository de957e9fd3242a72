package metadata

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is a raft.StreamLayer over a listener bound before Raft
// starts, so a member (or a test cluster on 127.0.0.1:0) knows its address
// first. raft.NewTCPTransport binds for itself and cannot do that.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	// dial replaces the plain TCP dial when set (Config.RaftDial).
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Dial implements raft.StreamLayer.
func (l *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if l.dial != nil {
		return l.dial(ctx, string(addr))
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", string(addr))
}

// Addr implements net.Listener: the address peers are told to dial.
func (l *streamLayer) Addr() net.Addr { return l.advertise }

// configuredAddr is a net.Addr that is exactly the string it was configured
// as, so the address Raft advertises matches --initial-cluster even when it
// is a host name.
type configuredAddr string

func (a configuredAddr) Network() string { return "tcp" }
func (a configuredAddr) String() string  { return string(a) }

// raftTransport is raft's NetworkTransport with pipelines that cannot
// deadlock (see drainedPipeline).
type raftTransport struct {
	*raft.NetworkTransport
}

// AppendEntriesPipeline implements raft.Transport.
func (t *raftTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return newDrainedPipeline(p), nil
}

// drainedPipeline reads the responses of a NetworkTransport pipeline as
// they come, whether or not Raft still does, and hands them to Raft in
// order.
//
// hashicorp/raft (v1.8.0) can deadlock a leader's replication to a
// follower, and with it Raft's Shutdown, which waits for that goroutine:
// with the default MaxRPCsInFlight of 2 the pipeline's hand-off channels
// are unbuffered. When a response fails (the follower has a newer term,
// after a leadership transfer or an election, or rejects the entries),
// Raft's decoder (pipelineDecode) returns and nothing reads the pipeline's
// responses any more; its sender (pipelineReplicate) notices only at its
// next select, where a ready trigger (a new entry, the commit timeout) may
// win, and it sends once more. The transport's decoder then blocks handing
// over the next response, the sender blocks handing it the request, and
// neither select watches Raft's shutdown: the pipeline is closed only when
// the sender returns, which it never does. The old leader looks healthy
// (its heartbeat goroutine runs on), and Shutdown blocks for ever.
//
// Read here, the transport's decoder never blocks on Raft, so a send waits
// at most for the network (the transport's timeout). Responses Raft no
// longer reads pile up until the sender sees that its decoder returned;
// each of its selects picks that with probability at least one half, so
// the pile stays a few futures long.
type drainedPipeline struct {
	raft.AppendPipeline
	out    chan raft.AppendFuture
	closed chan struct{}
	once   sync.Once
}

func newDrainedPipeline(p raft.AppendPipeline) *drainedPipeline {
	d := &drainedPipeline{AppendPipeline: p, out: make(chan raft.AppendFuture), closed: make(chan struct{})}
	go d.forward(p.Consumer())
	return d
}

func (d *drainedPipeline) forward(in <-chan raft.AppendFuture) {
	var queue []raft.AppendFuture
	for {
		var out chan raft.AppendFuture
		var next raft.AppendFuture
		if len(queue) > 0 {
			out, next = d.out, queue[0]
		}
		select {
		case f := <-in:
			queue = append(queue, f)
		case out <- next:
			queue[0] = nil
			queue = queue[1:]
		case <-d.closed:
			return
		}
	}
}

// Consumer implements raft.AppendPipeline.
func (d *drainedPipeline) Consumer() <-chan raft.AppendFuture { return d.out }

// Close implements raft.AppendPipeline.
func (d *drainedPipeline) Close() error {
	d.once.Do(func() { close(d.closed) })
	return d.AppendPipeline.Close()
}
