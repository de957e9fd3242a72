// Package faultnet puts a narrow seam between processes for fault tests: a
// TCP proxy in front of a listener that can cut every connection through it
// (and refuse new ones) and later let traffic through again, and a Net that
// dials on behalf of named nodes so that links between two nodes can be cut
// in both directions. Production code never imports it; tests and the
// in-process cluster hand its Dial functions to the servers' dial seams.
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ErrCut is returned when dialing across a cut link.
var ErrCut = errors.New("faultnet: link cut")

// Net tracks connections dialed between named nodes and cuts them on
// demand. The zero value is not usable; call NewNet.
type Net struct {
	mu    sync.Mutex
	owner map[string]string // listen address -> node name
	cut   map[string]bool   // node name -> cut off from everyone
	conns map[*trackedConn]struct{}
}

// NewNet returns a network with every link up.
func NewNet() *Net {
	return &Net{owner: map[string]string{}, cut: map[string]bool{}, conns: map[*trackedConn]struct{}{}}
}

// Own declares that node listens on addr, so that dials to addr count as
// links to node.
func (n *Net) Own(node, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.owner[addr] = node
}

// Dialer returns the dial function node uses: it fails with ErrCut when
// either end is cut off, and remembers the connection so that cutting
// either end later closes it.
func (n *Net) Dialer(node string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		n.mu.Lock()
		to := n.owner[addr]
		blocked := n.cut[node] || (to != "" && n.cut[to])
		n.mu.Unlock()
		if blocked {
			return nil, fmt.Errorf("dial %s from %s: %w", addr, node, ErrCut)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, n: n, from: node, to: to}
		n.mu.Lock()
		if n.cut[node] || (to != "" && n.cut[to]) { // cut while dialing
			n.mu.Unlock()
			c.Close()
			return nil, fmt.Errorf("dial %s from %s: %w", addr, node, ErrCut)
		}
		n.conns[tc] = struct{}{}
		n.mu.Unlock()
		return tc, nil
	}
}

// Cut isolates node: its open links are closed and new ones refused, in
// both directions, until Heal.
func (n *Net) Cut(node string) {
	n.mu.Lock()
	n.cut[node] = true
	var doomed []*trackedConn
	for c := range n.conns {
		if c.from == node || c.to == node {
			doomed = append(doomed, c)
		}
	}
	n.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Heal lets node talk to everyone again.
func (n *Net) Heal(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, node)
}

type trackedConn struct {
	net.Conn
	n        *Net
	from, to string
	once     sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.n.mu.Lock()
		delete(c.n.conns, c)
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}

// Proxy forwards TCP connections from its own address to a target and can
// cut them all. It stands in front of a server whose clients cannot be
// given a dial function (HTTP clients of a blob node, say).
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on 127.0.0.1:0 and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy for %s: %w", target, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is where clients should connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections go (a restarted server may come
// back on another port).
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Cut closes every connection through the proxy and refuses new ones
// until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut, target := p.cut, p.target
		p.mu.Unlock()
		if cut {
			in.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(in, target)
		}()
	}
}

func (p *Proxy) pipe(in net.Conn, target string) {
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on so request/response protocols finish.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go copyHalf(out, in)
	go copyHalf(in, out)
	<-done
	<-done
	in.Close()
	out.Close()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}
