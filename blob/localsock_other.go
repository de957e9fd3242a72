//go:build !linux

package blob

import (
	"errors"
	"net"
)

// listenLocal serves no Unix socket: abstract sockets are Linux's, and a
// socket file would need a place and its cleanup.
func listenLocal(name, _ string) (string, net.Listener, error) {
	if name == "" || name == LocalSocketOff {
		return "", nil, nil
	}
	return "", nil, errors.New("local sockets (abstract Unix sockets) need Linux")
}
