//go:build linux

package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// localClient is a client that uses local sockets, closed with the test
// (before the nodes started earlier stop).
func localClient(t *testing.T) *Client {
	c := NewClient(ClientConfig{LocalSockets: true})
	t.Cleanup(c.Close)
	return c
}

func conns(t *testing.T, n *testNode, transport string) float64 {
	t.Helper()
	return counterValue(t, n, "cairn_blob_connections_total", "transport", transport)
}

// roundTrip puts, reads (whole, a range, stripes), stats and deletes a
// chunk on addr through c, checking every answer.
func roundTrip(t *testing.T, c *Client, addr string) {
	t.Helper()
	ctx := context.Background()
	id := randomID(t, 2)
	data := makeChunk(t, id, 3<<20+5)
	if err := c.Put(ctx, addr, id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	mustEqualBytes(t, "Get", readAllClose(t, must(c.Get(ctx, addr, id))), data)
	mustEqualBytes(t, "GetRange", readAllClose(t, must(c.GetRange(ctx, addr, id, 1000, 1<<20))), data[1000:1000+1<<20])
	fr, err := chunk.FramingFromChunkSize(testBlockSize, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	mustEqualBytes(t, "GetStripes", readAllClose(t, must(c.GetStripes(ctx, addr, id, 1, 2))), data[fr.StripeOffset(1):fr.StripeOffset(2)])
	if info, err := c.Stat(ctx, addr, id); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, len(data))
	}
	if err := c.Delete(ctx, addr, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Stat(ctx, addr, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
}

// TestLocalSocketRoundTrip: a client with LocalSockets sends everything
// but its one probe over the node's Unix socket.
func TestLocalSocketRoundTrip(t *testing.T) {
	n := startNode(t, Config{})
	if want := localSocketPrefix + n.Addr(); n.LocalSocket() != want {
		t.Fatalf("LocalSocket() = %q, want %q", n.LocalSocket(), want)
	}
	c := localClient(t)
	roundTrip(t, c, n.Addr())
	if got := conns(t, n, "tcp"); got != 1 {
		t.Errorf("%v TCP connections, want 1 (the probe)", got)
	}
	// The probe's check, and at least one connection for the requests.
	if got := conns(t, n, "unix"); got < 2 {
		t.Errorf("%v Unix connections, want at least 2", got)
	}
}

// TestLocalSocketSendBuffer: a local-socket connection has the send
// buffer asked for (the kernel doubles it, up to twice net.core.wmem_max).
func TestLocalSocketSendBuffer(t *testing.T) {
	wmemMax := procSysInt(t, "/proc/sys/net/core/wmem_max")
	n := startNode(t, Config{})
	c, err := dialLocal(context.Background(), n.LocalSocket(), n.cfg.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, exp := sockoptInt(t, c.(*net.UnixConn), syscall.SO_SNDBUF), 2*min(localSendBuffer, wmemMax); got != exp {
		t.Fatalf("SO_SNDBUF %d, want %d (asked %d, wmem_max %d)", got, exp, localSendBuffer, wmemMax)
	}
}

// TestLocalSocketsOff: without LocalSockets (and with a Transport) the
// client never dials the socket, though the node serves one.
func TestLocalSocketsOff(t *testing.T) {
	n := startNode(t, Config{})
	roundTrip(t, n.client, n.Addr())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	withTransport := NewClient(ClientConfig{LocalSockets: true, Transport: tr})
	defer withTransport.Close()
	if withTransport.local != nil {
		t.Fatal("a client with a Transport has a local router")
	}
	roundTrip(t, withTransport, n.Addr())
	if got := conns(t, n, "unix"); got != 0 {
		t.Fatalf("%v Unix connections, want 0", got)
	}
	if got := conns(t, n, "tcp"); got < 2 {
		t.Fatalf("%v TCP connections, want at least 2", got)
	}
}

// TestLocalSocketNoneServed: a node without a socket answers the probe
// with none, and the client stays on TCP.
func TestLocalSocketNoneServed(t *testing.T) {
	n := startNode(t, Config{LocalSocket: LocalSocketOff})
	if n.LocalSocket() != "" {
		t.Fatalf("LocalSocket() = %q with the socket off", n.LocalSocket())
	}
	c := localClient(t)
	roundTrip(t, c, n.Addr())
	if got := conns(t, n, "tcp"); got < 2 {
		t.Fatalf("%v TCP connections, want the probe's and the requests'", got)
	}
	c.local.mu.Lock()
	r := c.local.routes[n.Addr()]
	c.local.mu.Unlock()
	if r == nil || r.socket != "" || r.retryAt.IsZero() {
		t.Fatalf("route %+v, want TCP with a time to ask again", r)
	}
}

// TestLocalSocketOtherNode: an address whose node names a socket that
// another node serves (a name reused) is reached over TCP; no request
// reaches the other node.
func TestLocalSocketOtherNode(t *testing.T) {
	other := startNode(t, Config{ID: "other", LocalSocket: "@cairn-test/" + strconv.Itoa(os.Getpid()) + "/" + t.Name()})
	st, err := OpenStore(StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A real node's API that claims the other node's socket as its own.
	liar := httptest.NewServer(NewHandler(st, HandlerConfig{Node: "liar", LocalSocket: other.LocalSocket(), Registry: prometheus.NewRegistry()}))
	defer liar.Close()
	addr := liar.Listener.Addr().String()

	c := localClient(t)
	roundTrip(t, c, addr)
	id := randomID(t, 1)
	data := makeChunk(t, id, 1000)
	if err := c.Put(context.Background(), addr, id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(context.Background(), id); err != nil {
		t.Fatalf("the chunk is not on the node asked for: %v", err)
	}
	if _, err := other.Store().Stat(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the chunk reached the other node: %v", err)
	}
	for _, op := range []string{"put", "get", "head", "delete"} {
		if got := counterValue(t, other, "cairn_blob_requests_total", "op", op); got != 0 {
			t.Fatalf("the other node served %v %s requests", got, op)
		}
	}
	if got := conns(t, other, "unix"); got != 1 {
		t.Fatalf("%v Unix connections to the other node, want 1 (the probe's check)", got)
	}
	if _, err := dialLocal(context.Background(), other.LocalSocket(), "liar", time.Minute); !errors.Is(err, errOtherNode) {
		t.Fatalf("dialLocal to another node's socket: %v, want errOtherNode", err)
	}
}

// TestLocalSocketGone: a node restarted without its socket is reached
// over TCP; restarted with it again, the client comes back to the socket
// once it asks again.
func TestLocalSocketGone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, Config{DataDir: dir})
	addr := n.Addr()
	c := localClient(t)
	c.local.retry = 10 * time.Millisecond
	id := randomID(t, 0)
	data := makeChunk(t, id, 100<<10)
	if err := c.Put(ctx, addr, id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if conns(t, n, "unix") == 0 {
		t.Fatal("the first node was not reached over its socket")
	}
	n.stop()

	n = startNode(t, Config{DataDir: dir, Addr: addr, LocalSocket: LocalSocketOff})
	// The pooled connections broke with the old node; GETs are retried on
	// a new one, which goes over TCP.
	mustEqualBytes(t, "Get", readAllClose(t, must(c.Get(ctx, addr, id))), data)
	if got := conns(t, n, "unix"); got != 0 {
		t.Fatalf("%v Unix connections to a node without a socket", got)
	}
	n.stop()

	n = startNode(t, Config{DataDir: dir, Addr: addr})
	deadline := time.Now().Add(30 * time.Second)
	for conns(t, n, "unix") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client did not come back to the socket within 30s")
		}
		// A new connection is what asks again; the pooled ones stay.
		c.hc.CloseIdleConnections()
		mustEqualBytes(t, "Get", readAllClose(t, must(c.Get(ctx, addr, id))), data)
	}
}

// TestLocalSocketRemoteNotAsked: an address that cannot be on this host
// (not loopback, not one of its interface addresses, or a name resolving
// to neither) is never asked for a socket, however many connections go to
// it; the others are asked as before, and a name is resolved once. The
// router's probes and lookups go to recorders here: nothing leaves the
// host, and the host's addresses are the test's.
func TestLocalSocketRemoteNotAsked(t *testing.T) {
	c := localClient(t)
	l := c.local
	l.retry = 0 // every new connection would ask again
	var mu sync.Mutex
	probed, lookups := map[string]int{}, map[string]int{}
	l.probe = &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		mu.Lock()
		probed[addr]++
		mu.Unlock()
		return nil, errors.New("test: probes are recorded, not sent")
	}}}
	names := map[string]string{"localhost": "127.0.0.1", "blob7.test": "192.0.2.7", "blob8.test": "198.51.100.1"}
	l.lookup = func(_ context.Context, host string) ([]net.IPAddr, error) {
		mu.Lock()
		lookups[host]++
		mu.Unlock()
		ip, ok := names[host]
		if !ok {
			return nil, fmt.Errorf("test: no such host %s", host)
		}
		return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
	}
	l.hostIPs = func() ([]net.IP, error) {
		return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("198.51.100.1"), net.ParseIP("2001:db8::9")}, nil
	}
	local := []string{"127.0.0.2:9000", "[::1]:9000", "0.0.0.0:9000", "198.51.100.1:9000", "[2001:db8::9]:9000", "localhost:9000", "blob8.test:9000",
		"nosuch.test:9000"} // cannot be told: asked, as without the check
	remote := []string{"192.0.2.1:9000", "[2001:db8::1]:9000", "blob7.test:9000"}
	for range 3 {
		for _, addr := range append(slices.Clone(local), remote...) {
			if conn := l.dial(context.Background(), addr); conn != nil {
				conn.Close()
				t.Fatalf("dial %s gave a local connection", addr)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range local {
		if probed[addr] == 0 {
			t.Errorf("%s was not asked", addr)
		}
	}
	for _, addr := range remote {
		if probed[addr] != 0 {
			t.Errorf("%s, not on this host, was asked %d times", addr, probed[addr])
		}
	}
	for _, host := range []string{"localhost", "blob7.test", "blob8.test"} {
		if lookups[host] != 1 {
			t.Errorf("%s resolved %d times, want once", host, lookups[host])
		}
	}
}

// TestLocalSocketShutdown: stopping a node closes its socket too.
func TestLocalSocketShutdown(t *testing.T) {
	n := startNode(t, Config{})
	socket := n.LocalSocket()
	if c, err := net.Dial("unix", socket); err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	} else {
		c.Close()
	}
	n.stop()
	if c, err := net.Dial("unix", socket); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after the node stopped", socket)
	}
}

// TestLocalSocketTaken: a name asked for that is taken fails the start; a
// derived one would not be (it follows the TCP port).
func TestLocalSocketTaken(t *testing.T) {
	name := "@cairn-test/" + strconv.Itoa(os.Getpid()) + "/" + t.Name()
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = NewServer(Config{ID: "n", DataDir: t.TempDir(), Addr: "127.0.0.1:0", LocalSocket: name})
	if err == nil {
		t.Fatal("NewServer on a taken socket name succeeded")
	}
}

// TestSendfileConn: a file, whole or behind an io.LimitedReader, goes to
// the Unix connection from the file's offset, which advances.
func TestSendfileConn(t *testing.T) {
	data := randomBytes(3<<20 + 11)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		off, lim int64 // lim < 0: no limit
		want     []byte
	}{
		{"whole", 0, -1, data},
		{"limited", 4096, 1<<20 + 3, data[4096 : 4096+1<<20+3]},
		{"past the end", 3 << 20, 1 << 20, data[3<<20:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@cairn-test/" + strconv.Itoa(os.Getpid()) + "/" + t.Name(), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				b, _ := io.ReadAll(c)
				got <- b
			}()
			uc, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Seek(tc.off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			var r io.Reader = f
			lr := &io.LimitedReader{R: f, N: tc.lim}
			if tc.lim >= 0 {
				r = lr
			}
			n, err := sendfileConn{uc}.ReadFrom(r)
			uc.Close()
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("ReadFrom = %d, %v; want %d", n, err, len(tc.want))
			}
			if tc.lim >= 0 && lr.N != tc.lim-n {
				t.Fatalf("LimitedReader left with %d, want %d", lr.N, tc.lim-n)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != tc.off+n {
				t.Fatalf("file offset %d, want %d", pos, tc.off+n)
			}
			mustEqualBytes(t, "received", <-got, tc.want)
		})
	}
}
