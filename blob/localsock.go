package blob

// Same-host traffic over a Unix socket.
//
// A blob node serves its HTTP API on a Unix socket as well as on TCP
// (Config.LocalSocket). On this host's loopback the TCP hop between the
// gateway and the blob nodes was a large part of the CPU of both GET and
// PUT; a Unix stream socket moved the same bytes at about half the CPU per
// byte (docs/perf/get-path.md). The HTTP protocol is the same on both; only
// the transport under it changes.
//
// A client with ClientConfig.LocalSockets learns per node address whether
// the node is on its host: it asks GET /local over TCP once (the node's id
// and socket name), dials the socket and checks that the node answering
// there has that id. Every connection dialed to the socket later is checked
// the same way before it carries a request, so a socket name reused by
// another node can never receive a chunk meant for this one. A socket that
// cannot be dialed, or answers with another id, sends the address back to
// TCP until localRetry has passed, after which it is asked again.
//
// Only addresses that can be on this host are asked: a loopback address,
// an unspecified one, or one of this host's interface addresses (a name is
// resolved once, and counts as local if any of its addresses does). A
// gateway on a host without blob nodes would otherwise send every node a
// probe per address, and another every localRetry after a new connection,
// for an answer that can only be "not here".

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// LocalSocketOff is the Config.LocalSocket that serves TCP only.
const LocalSocketOff = "off"

// localSocketPrefix starts the abstract socket name a node derives from
// its TCP listener's address. The kernel lets only one socket hold that
// address in a network namespace, and abstract names live in the network
// namespace too, so two live nodes cannot derive the same name; and an
// abstract name goes with the socket, so no file is left behind.
const localSocketPrefix = "@cairn-blobd/"

// maxAbstractName is the longest abstract socket name with its "@"
// (sun_path is 108 bytes, the first of them the NUL that "@" stands for).
const maxAbstractName = 108

// localPath is the blob API route that says who serves an address.
const localPath = "/local"

// localInfo is the JSON body of GET /local.
type localInfo struct {
	// Node is the node's id.
	Node string `json:"node"`
	// Socket is the Unix socket the node also serves on, "" when none.
	Socket string `json:"socket"`
}

// localSendBuffer is SO_SNDBUF of both ends of a local-socket connection
// (the kernel doubles it, and caps it at net.core.wmem_max). A Unix stream
// socket queues only what its sender's buffer holds, whatever the
// receiver's says, and the default (net.core.wmem_default, 208 KiB here)
// made a blob node's sendfile of a stripe range, and the gateway's write
// of a 256 KiB block, stop and wait for the reader several times per MiB.
// The kernel allocates it only for data sent and not yet read.
const localSendBuffer = 1 << 20

// localRetry is how long an address stays on TCP after its node turned
// out not to be reachable over a Unix socket (no socket, another host, a
// dial that failed, another node answering) before the client asks again.
const localRetry = 30 * time.Second

// localRouter decides, per node address, whether a connection goes over the
// node's Unix socket, and dials it. Safe for concurrent use.
type localRouter struct {
	timeout time.Duration // bounds each probe and each socket dial with its check
	retry   time.Duration
	probe   *http.Client // plain TCP, no connection kept

	ctx    context.Context // ends with Close: probes still running stop
	cancel context.CancelFunc

	// lookup resolves a host name, hostIPs lists this host's interface
	// addresses (net.DefaultResolver and net.InterfaceAddrs; tests name
	// other hosts without resolving or reaching them).
	lookup  func(ctx context.Context, host string) ([]net.IPAddr, error)
	hostIPs func() ([]net.IP, error)

	mu     sync.Mutex
	routes map[string]*localRoute
}

// localRoute is what the router knows of one address.
type localRoute struct {
	node, socket string // socket "" means TCP
	retryAt      time.Time
	// local: the address can be on this host; remote: it cannot, and is
	// never asked. Each is told once.
	local, remote bool
	probing       bool
	answered      chan struct{} // closed when the first probe has ended
	hasAnswer     bool
}

func newLocalRouter(timeout time.Duration) *localRouter {
	ctx, cancel := context.WithCancel(context.Background())
	return &localRouter{
		timeout: timeout,
		retry:   localRetry,
		probe: &http.Client{Transport: &http.Transport{
			DialContext:        (&net.Dialer{Timeout: timeout}).DialContext,
			DisableKeepAlives:  true,
			DisableCompression: true,
		}},
		ctx:     ctx,
		cancel:  cancel,
		lookup:  net.DefaultResolver.LookupIPAddr,
		hostIPs: interfaceIPs,
		routes:  make(map[string]*localRoute),
	}
}

func (l *localRouter) close() { l.cancel() }

// dial returns a checked connection to the Unix socket of the node at
// addr, or nil when the connection should go over TCP. Only the first
// connection to an address waits for the node to be asked; later probes
// run in the background while TCP carries the traffic.
func (l *localRouter) dial(ctx context.Context, addr string) net.Conn {
	node, socket := l.route(ctx, addr)
	if socket == "" {
		return nil
	}
	c, err := dialLocal(ctx, socket, node, l.timeout)
	if err != nil {
		l.fallBack(addr, socket)
		return nil
	}
	return c
}

// route returns the node id and socket to use for addr ("" for TCP).
func (l *localRouter) route(ctx context.Context, addr string) (node, socket string) {
	l.mu.Lock()
	r := l.routes[addr]
	if r == nil {
		r = &localRoute{answered: make(chan struct{})}
		l.routes[addr] = r
	}
	if !r.probing && !r.remote && r.socket == "" && !time.Now().Before(r.retryAt) {
		r.probing = true
		go l.ask(addr, r)
	}
	answered := r.answered
	l.mu.Unlock()
	select {
	case <-answered:
	case <-ctx.Done():
		return "", ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return r.node, r.socket
}

// ask probes addr and records the answer in r.
func (l *localRouter) ask(addr string, r *localRoute) {
	// Not the dialing request's context: the answer serves every later
	// connection, and a request given up on must not decide it.
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	defer cancel()
	var node, socket string // stay "" for an address on another host
	var err error
	if !l.isRemote(ctx, addr, r) {
		node, socket, err = l.probeAddr(ctx, addr)
		if err == nil && socket != "" {
			// Dial it once now: a node on another host names a socket this
			// host does not have, and then every dial would fail first.
			var c net.Conn
			if c, err = dialLocal(ctx, socket, node, l.timeout); err == nil {
				c.Close()
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.probing = false
	if err != nil || socket == "" {
		r.node, r.socket = "", ""
		r.retryAt = time.Now().Add(l.retry)
	} else {
		r.node, r.socket = node, socket
	}
	if !r.hasAnswer {
		r.hasAnswer = true
		close(r.answered)
	}
}

// isRemote tells, once per address, whether addr cannot be on this host.
// An address that cannot be told (a name that does not resolve) is asked,
// as it would be without the check, and told again with its next probe.
func (l *localRouter) isRemote(ctx context.Context, addr string, r *localRoute) bool {
	l.mu.Lock()
	told, remote := r.local || r.remote, r.remote
	l.mu.Unlock()
	if told {
		return remote
	}
	local, err := l.mayBeLocal(ctx, addr)
	if err != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.local, r.remote = local, !local
	return !local
}

// mayBeLocal reports whether the node at addr can be on this host: its
// host is a loopback or unspecified address or one of this host's
// interface addresses, or a name one of whose addresses is.
func (l *localRouter) mayBeLocal(ctx context.Context, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("address %q: %w", addr, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		addrs, err := l.lookup(ctx, host)
		if err != nil {
			return false, fmt.Errorf("resolve %s: %w", host, err)
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	var own []net.IP // read only when some address is not obviously local
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsUnspecified() {
			return true, nil
		}
		if own == nil {
			if own, err = l.hostIPs(); err != nil {
				return false, fmt.Errorf("list this host's addresses: %w", err)
			}
		}
		for _, o := range own {
			if o.Equal(ip) {
				return true, nil
			}
		}
	}
	return false, nil
}

// interfaceIPs lists the addresses of this host's interfaces (in its
// network namespace, the one abstract sockets live in).
func interfaceIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		switch a := a.(type) {
		case *net.IPNet:
			ips = append(ips, a.IP)
		case *net.IPAddr:
			ips = append(ips, a.IP)
		}
	}
	return ips, nil
}

// fallBack sends addr back to TCP after its socket failed.
func (l *localRouter) fallBack(addr, socket string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.routes[addr]; r != nil && r.socket == socket {
		r.node, r.socket = "", ""
		r.retryAt = time.Now().Add(l.retry)
	}
}

// probeAddr asks the node at addr, over TCP, for its id and socket.
func (l *localRouter) probeAddr(ctx context.Context, addr string) (node, socket string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+localPath, nil)
	if err != nil {
		return "", "", fmt.Errorf("ask %s for its local socket: %w", addr, err)
	}
	resp, err := l.probe.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("ask %s for its local socket: %w", addr, err)
	}
	defer resp.Body.Close()
	info, err := readLocalInfo(resp)
	if err != nil {
		return "", "", fmt.Errorf("ask %s for its local socket: %w", addr, err)
	}
	return info.Node, info.Socket, nil
}

func readLocalInfo(resp *http.Response) (localInfo, error) {
	var info localInfo
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("status %d", resp.StatusCode)
	}
	const max = 4 << 10
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return info, err
	}
	if len(b) > max {
		return info, fmt.Errorf("%s answer longer than %d bytes", localPath, max)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("decode %s answer: %w", localPath, err)
	}
	if info.Node == "" {
		return info, fmt.Errorf("%s answer names no node", localPath)
	}
	return info, nil
}

// errOtherNode is a Unix socket served by another node than the one asked
// for.
var errOtherNode = errors.New("another node serves the socket")

// dialLocal connects to socket and checks, on that very connection, that
// node serves it: GET /local must name node. The connection is then handed
// over with nothing left unread, at a request boundary, as if just dialed.
func dialLocal(ctx context.Context, socket, node string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("dial local socket %s of %s: %w", socket, node, err)
	}
	// Best effort: the default buffer only costs CPU.
	c.(*net.UnixConn).SetWriteBuffer(localSendBuffer)
	if err := checkLocal(ctx, c, node, timeout); err != nil {
		c.Close()
		return nil, fmt.Errorf("check local socket %s of %s: %w", socket, node, err)
	}
	return c, nil
}

func checkLocal(ctx context.Context, c net.Conn, node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c, "GET "+localPath+" HTTP/1.1\r\nHost: local\r\n\r\n"); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	info, err := readLocalInfo(resp)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.Close:
		return errors.New("the node closes the connection after its answer")
	case br.Buffered() > 0:
		// The server sends nothing unasked; bytes past the answer would
		// be lost with this reader and desynchronise the connection.
		return fmt.Errorf("%d bytes after the answer", br.Buffered())
	case info.Node != node:
		return fmt.Errorf("node %q answers, want %q: %w", info.Node, node, errOtherNode)
	}
	if !stop() {
		return ctx.Err()
	}
	return c.SetDeadline(time.Time{})
}

// local answers GET /local: who this node is and the socket it serves on.
func (h *handler) local(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(localInfo{Node: h.node, Socket: h.localSocket}); err != nil {
		h.log.Warn("send local info", "remote", r.RemoteAddr, "err", err)
	}
}
