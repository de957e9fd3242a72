package blob

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// listenLocal listens on the node's Unix socket: name, or with name ""
// the abstract name derived from tcpAddr, the address of the node's TCP
// listener. It returns the socket's name, or "" and a nil listener when
// the socket is off.
func listenLocal(name, tcpAddr string) (string, net.Listener, error) {
	switch name {
	case LocalSocketOff:
		return "", nil, nil
	case "":
		name = localSocketPrefix + tcpAddr
	}
	ln, err := net.Listen("unix", name)
	if err != nil {
		return "", nil, fmt.Errorf("listen on local socket %s: %w", name, err)
	}
	return name, sendfileListener{ln.(*net.UnixListener)}, nil
}

// sendfileListener hands out connections whose ReadFrom sends files with
// sendfile, as *net.TCPConn's does.
type sendfileListener struct{ *net.UnixListener }

func (l sendfileListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	// Best effort: the default buffer only costs CPU, and an error here
	// would stop the server accepting on the socket.
	c.SetWriteBuffer(localSendBuffer)
	return sendfileConn{c}, nil
}

// sendfileConn is a Unix connection with an io.ReaderFrom. net/http sends
// a response body through the connection's ReadFrom when it has one, and
// *net.UnixConn has none (its ReadFrom is the datagram one): a chunk GET
// would copy every byte through a 32 KiB user-space buffer, two copies
// where *net.TCPConn makes none. Here a body that is a file, or a file
// behind an io.LimitedReader (io.CopyN's), goes with sendfile(2) from the
// page cache.
type sendfileConn struct{ *net.UnixConn }

func (c sendfileConn) ReadFrom(r io.Reader) (int64, error) {
	lr, limited := r.(*io.LimitedReader)
	src, remain := r, int64(1<<62)
	if limited {
		src, remain = lr.R, lr.N
	}
	f, ok := src.(*os.File)
	if !ok {
		return io.Copy(struct{ io.Writer }{c.UnixConn}, r)
	}
	n, err := sendFile(c.UnixConn, f, remain)
	if limited {
		lr.N -= n
	}
	return n, err
}

// sendFile sends up to n bytes of f, from its offset (which it advances),
// to c; it stops early, without an error, at the end of the file.
func sendFile(c *net.UnixConn, f *os.File, n int64) (int64, error) {
	dst, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("sendfile: %w", err)
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("sendfile: %w", err)
	}
	var sent int64
	var serr error
	rerr := src.Read(func(sfd uintptr) bool {
		werr := dst.Write(func(dfd uintptr) bool {
			for sent < n {
				m, err := syscall.Sendfile(int(dfd), int(sfd), nil, int(min(n-sent, 1<<30)))
				if m > 0 {
					sent += int64(m)
				}
				switch {
				case err == syscall.EAGAIN:
					return false // the poller waits until the socket takes more
				case err == syscall.EINTR:
					continue
				case err != nil:
					serr = err
					return true
				case m == 0:
					return true // end of file
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
		return true
	})
	if serr == nil {
		serr = rerr
	}
	if serr != nil {
		return sent, fmt.Errorf("sendfile: %w", serr)
	}
	return sent, nil
}
