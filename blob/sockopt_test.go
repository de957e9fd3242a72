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
	rmemMax := procSysInt(t, "/proc/sys/net/core/rmem_max")
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
	if got, exp := sockoptInt(t, c.(*net.TCPConn), syscall.SO_RCVBUF), 2*min(want, rmemMax); got != exp {
		t.Fatalf("SO_RCVBUF %d, want %d (asked %d, rmem_max %d)", got, exp, want, rmemMax)
	}
}

// procSysInt reads a number from /proc/sys, skipping the test without it.
func procSysInt(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s to compare with: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sockoptInt reads the SOL_SOCKET option opt of c.
func sockoptInt(t *testing.T, c syscall.Conn, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt: %v %v", err, serr)
	}
	return got
}
