//go:build linux

package blob

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSetRecvBuffer: a connection dialed with setRecvBuffer has the
// receive buffer asked for (the kernel doubles it, up to twice
// net.core.rmem_max).
func TestSetRecvBuffer(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max to compare with: %v", err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	const want = 1 << 20
	d := net.Dialer{Control: setRecvBuffer(want)}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt: %v %v", err, serr)
	}
	if exp := 2 * min(want, rmemMax); got != exp {
		t.Fatalf("SO_RCVBUF %d, want %d (asked %d, rmem_max %d)", got, exp, want, rmemMax)
	}
}
