package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/cairnstore/cairn/internal/bodyconn"
)

// writerToBody is a chunk body that can write itself, in pieces, and
// counts how it was consumed.
type writerToBody struct {
	data    []byte
	piece   int
	reads   int
	writeTo int
}

func (b *writerToBody) Read(p []byte) (int, error) {
	b.reads++
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
		n, err := w.Write(b.data[:min(b.piece, len(b.data))])
		total += int64(n)
		b.data = b.data[n:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// An upload whose body is an io.WriterTo writes itself to the connection
// (no copy buffer in between), and what it writes is stored whole.
func TestPutWriterToBody(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	for _, payload := range []int{1, 5000, 3<<20 + 7} {
		id := randomID(t, 2)
		data := makeChunk(t, id, payload)
		body := &writerToBody{data: bytes.Clone(data), piece: 64<<10 + 3}
		if err := n.client.Put(ctx, n.Addr(), id, body, int64(len(data))); err != nil {
			t.Fatalf("Put of %d bytes: %v", len(data), err)
		}
		if body.writeTo == 0 || body.reads != 0 {
			t.Errorf("Put of %d bytes: body read %d times and written %d times; want it to write itself", len(data), body.reads, body.writeTo)
		}
		mustEqualBytes(t, "Get", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id))), data)
	}
}

// A body that writes itself must still match its declared length: longer
// fails the upload without spilling into the connection's next request,
// shorter fails it and stores nothing.
func TestPutWriterToBodyWrongLength(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	id := randomID(t, 4)
	data := makeChunk(t, id, 100000)

	long := &writerToBody{data: append(bytes.Clone(data), "next request"...), piece: 40000}
	if err := n.client.Put(ctx, n.Addr(), id, long, int64(len(data))); !errors.Is(err, bodyconn.ErrBodyTooLong) {
		t.Fatalf("Put of a body longer than declared: err = %v, want %v", err, bodyconn.ErrBodyTooLong)
	}

	short := &writerToBody{data: bytes.Clone(data[:len(data)-100]), piece: 40000}
	id2 := randomID(t, 4)
	if err := n.client.Put(ctx, n.Addr(), id2, short, int64(len(data))); err == nil {
		t.Fatal("Put of a body shorter than declared succeeded")
	}
	if _, err := n.Store().Stat(ctx, id2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a short body: Stat err = %v, want ErrNotFound", err)
	}

	// The client goes on working (pooled connections were not left
	// mid-request).
	id3 := randomID(t, 4)
	good := makeChunk(t, id3, 70000)
	for range 3 {
		if err := n.client.Put(ctx, n.Addr(), id3, &writerToBody{data: bytes.Clone(good), piece: 1 << 20}, int64(len(good))); err != nil {
			t.Fatalf("Put after the failed ones: %v", err)
		}
	}
	mustEqualBytes(t, "Get", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id3))), good)
}

// vectorBody writes itself as the object layer's chunk pipe does when the
// destination has WriteVectors: a few bytes and the piece after them in
// one call.
type vectorBody struct {
	data    []byte
	head    int // bytes sent ahead of each piece in the same call
	piece   int
	vectors int
}

func (b *vectorBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *vectorBody) WriteTo(w io.Writer) (int64, error) {
	vw, ok := w.(interface {
		WriteVectors(*net.Buffers) (int64, error)
	})
	if !ok {
		n, err := w.Write(b.data)
		b.data = b.data[n:]
		return int64(n), err
	}
	var total int64
	for len(b.data) > 0 {
		h := min(b.head, len(b.data))
		p := min(h+b.piece, len(b.data))
		bufs := net.Buffers{b.data[:h], b.data[h:p]}
		b.vectors++
		n, err := vw.WriteVectors(&bufs)
		total += n
		b.data = b.data[n:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Vectored writes reach the node whole, and still may not run past the
// declared length.
func TestPutVectorBody(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	for _, payload := range []int{1, 5000, 3<<20 + 7} {
		id := randomID(t, 2)
		data := makeChunk(t, id, payload)
		body := &vectorBody{data: bytes.Clone(data), head: 4, piece: 256 << 10}
		if err := n.client.Put(ctx, n.Addr(), id, body, int64(len(data))); err != nil {
			t.Fatalf("Put of %d bytes: %v", len(data), err)
		}
		if payload > 1<<20 && body.vectors == 0 {
			t.Fatalf("Put of %d bytes: no vectored write", len(data))
		}
		mustEqualBytes(t, "Get", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id))), data)
	}
	id := randomID(t, 4)
	data := makeChunk(t, id, 100000)
	long := &vectorBody{data: append(bytes.Clone(data), "next request"...), head: 36, piece: 40000}
	if err := n.client.Put(ctx, n.Addr(), id, long, int64(len(data))); !errors.Is(err, bodyconn.ErrBodyTooLong) {
		t.Fatalf("Put of a body longer than declared: err = %v, want %v", err, bodyconn.ErrBodyTooLong)
	}
	id2 := randomID(t, 4)
	good := makeChunk(t, id2, 70000)
	if err := n.client.Put(ctx, n.Addr(), id2, &vectorBody{data: bytes.Clone(good), head: 4, piece: 1 << 20}, int64(len(good))); err != nil {
		t.Fatalf("Put after the failed one: %v", err)
	}
	mustEqualBytes(t, "Get", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id2))), good)
}
