package bodyconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// writerToBody is a body that writes itself, in pieces of at most piece
// bytes, counting how often it was asked to.
type writerToBody struct {
	data    []byte
	piece   int
	writeTo int
}

func (b *writerToBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *writerToBody) WriteTo(w io.Writer) (int64, error) {
	b.writeTo++
	var total int64
	for len(b.data) > 0 {
		p := b.data[:min(b.piece, len(b.data))]
		n, err := w.Write(p)
		total += int64(n)
		b.data = b.data[n:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// TestConnReadFrom sends bodies through Conn.ReadFrom as net/http does (a
// LimitedReader of the declared length) and checks what reaches the peer.
func TestConnReadFrom(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	tests := []struct {
		name     string
		data     []byte
		declared int64
		wantSent int
		wantErr  error
		writerTo bool
	}{
		{"exact length writes itself", body, int64(len(body)), len(body), nil, true},
		{"longer than declared stops at the limit", body, 1000, 1000, ErrBodyTooLong, true},
		{"plain reader is copied", body, int64(len(body)), len(body), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(server)
				got <- b
			}()
			wt := &writerToBody{data: bytes.Clone(tc.data), piece: 5000}
			var r io.Reader = wt
			if !tc.writerTo {
				r = struct{ io.Reader }{wt}
			}
			lr := &io.LimitedReader{R: r, N: tc.declared}
			n, err := Conn{Conn: client}.ReadFrom(lr)
			_ = client.Close()
			sent := <-got
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ReadFrom error = %v, want %v", err, tc.wantErr)
			}
			if int(n) != tc.wantSent || len(sent) != tc.wantSent {
				t.Fatalf("ReadFrom = %d, peer got %d bytes, want %d", n, len(sent), tc.wantSent)
			}
			if !bytes.Equal(sent, tc.data[:tc.wantSent]) {
				t.Fatal("peer got other bytes than the body's")
			}
			if lr.N != tc.declared-n {
				t.Fatalf("LimitedReader.N = %d after %d bytes of %d", lr.N, n, tc.declared)
			}
			if tc.writerTo && wt.writeTo != 1 {
				t.Fatalf("body's WriteTo called %d times, want 1", wt.writeTo)
			}
			if !tc.writerTo && wt.writeTo != 0 {
				t.Fatal("a body hidden behind a plain Reader had its WriteTo called")
			}
		})
	}
}

// TestWriteVectorsLimit: vectors within the declared length go out whole;
// beyond it, only up to the limit, with ErrBodyTooLong.
func TestWriteVectorsLimit(t *testing.T) {
	var out bytes.Buffer
	l := &limitedWriter{w: &out, n: 10}
	bufs := net.Buffers{[]byte("abc"), []byte("defg")}
	if n, err := l.WriteVectors(&bufs); err != nil || n != 7 || out.String() != "abcdefg" {
		t.Fatalf("WriteVectors within limit = %d, %v, %q", n, err, out.String())
	}
	bufs = net.Buffers{[]byte("hi"), []byte("jklm")}
	n, err := l.WriteVectors(&bufs)
	if !errors.Is(err, ErrBodyTooLong) || n != 3 || out.String() != "abcdefghij" {
		t.Fatalf("WriteVectors past limit = %d, %v, %q; want 3, ErrBodyTooLong, %q", n, err, out.String(), "abcdefghij")
	}
}
