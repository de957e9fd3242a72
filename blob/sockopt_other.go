//go:build !unix

package blob

import "syscall"

// setRecvBuffer leaves the receive buffer to the system where setting it
// is not wired up.
func setRecvBuffer(int) func(network, address string, c syscall.RawConn) error { return nil }
