// Package bodyconn lets an HTTP request body that can write itself do so
// on the client's connection.
//
// net/http sends a body of known length as io.LimitReader(body,
// ContentLength), which hides the body's WriteTo, and the connection's
// ReadFrom then copies it through a fresh 32 KiB buffer per request: one
// more copy of every byte sent, and 32 KiB held by every request in
// flight. A transport whose DialContext returns its connections wrapped in
// Conn sends such bodies straight from the body's own memory. The bytes
// on the wire are the same.
package bodyconn

import (
	"errors"
	"io"
	"net"
)

// Conn is a client connection whose ReadFrom hands a length-limited
// io.WriterTo body a writer onto the connection.
type Conn struct{ net.Conn }

// ReadFrom implements io.ReaderFrom for net/http's body writer.
func (c Conn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if wt, ok := lr.R.(io.WriterTo); ok {
			n, err := wt.WriteTo(&limitedWriter{w: c.Conn, n: lr.N})
			lr.N -= n
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r) // keeps sendfile/splice for files and sockets
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// ErrBodyTooLong is returned by a body that writes more than its declared
// length.
var ErrBodyTooLong = errors.New("request body longer than its Content-Length")

// limitedWriter passes on at most n bytes: a body longer than its declared
// length must not spill into the connection's next request.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		n, err := l.w.Write(p[:l.n])
		l.n -= int64(n)
		if err == nil {
			err = ErrBodyTooLong
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	return n, err
}

// WriteVectors sends bufs with one writev where the connection has it
// (for example a small header together with the block after it: one
// syscall, and one wakeup of the receiver, instead of two). It consumes
// bufs as net.Buffers.WriteTo does.
func (l *limitedWriter) WriteVectors(bufs *net.Buffers) (int64, error) {
	var size int64
	for _, b := range *bufs {
		size += int64(len(b))
	}
	if size > l.n {
		// Longer than declared: Write stops at the limit and says so.
		var total int64
		for len(*bufs) > 0 {
			b := (*bufs)[0]
			*bufs = (*bufs)[1:]
			n, err := l.Write(b)
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}
	n, err := bufs.WriteTo(l.w)
	l.n -= n
	return n, err
}
