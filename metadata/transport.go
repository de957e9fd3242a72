package metadata

import (
	"context"
	"net"
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
