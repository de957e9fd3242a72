//go:build unix

package blob

import (
	"fmt"
	"syscall"
)

// setRecvBuffer returns a net.Dialer Control that sets SO_RCVBUF to n on
// every connection it dials.
func setRecvBuffer(n int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); err != nil {
			return fmt.Errorf("set SO_RCVBUF on %s: %w", address, err)
		}
		if serr != nil {
			return fmt.Errorf("set SO_RCVBUF on %s: %w", address, serr)
		}
		return nil
	}
}
