package object

import (
	"io"
	"net"
	"sync"
)

// chunkPipe carries one shard's chunk from the encoder's shard writer (Write,
// CloseWrite) to its upload (Read or WriteTo, CloseRead), as io.Pipe does:
// a Write returns once its bytes have been consumed, and never before the
// reader is done with its slice. Unlike io.Pipe, the reader can write the
// writer's slices straight to a connection (WriteTo), so an upload's blocks
// go from the encoder's stripe buffer to the socket without a copy buffer in
// between, and Read fills the caller's buffer completely (short only at the
// end).
//
// Both matter to the blob client's transport: it sends a body one Read at a
// time, and the encoder writes each block and then its 4-byte checksum, so
// one Write per Read sent every checksum (and the 36-byte chunk header) as a
// TCP segment of its own — 384 tiny sends per 64 MiB segment at 4+2, each a
// syscall and a wakeup on both ends. WriteTo gathers such small writes in a
// small stage and sends them with the next block: in one writev when the
// destination is a vectorWriter, else with the block's head copied into the
// stage.
type chunkPipe struct {
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte // what is left of the pending Write
	busy bool   // WriteTo is writing from buf outside mu
	werr error  // writer closed: io.EOF, or why it aborted
	rerr error  // reader closed, or WriteTo's destination failed
}

func newChunkPipe() *chunkPipe {
	p := &chunkPipe{}
	p.cond.L = &p.mu
	return p
}

// stageSize bounds the small writes WriteTo gathers before sending them with
// the next block's first bytes: far above a header or checksum, far below a
// block (256 KiB at 4+2), and held by every upload in flight.
const stageSize = 4 << 10

var stages = sync.Pool{New: func() any { return new([stageSize]byte) }}

// Write hands p to the reader and waits until it has been consumed or the
// reader is gone.
func (p *chunkPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return 0, io.ErrClosedPipe
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if len(b) == 0 {
		return 0, nil
	}
	p.buf = b
	p.cond.Broadcast()
	// Even a reader that closes waits here until WriteTo is off b: the
	// caller reuses b as soon as Write returns.
	for p.busy || len(p.buf) > 0 && p.rerr == nil {
		p.cond.Wait()
	}
	n := len(b) - len(p.buf)
	var err error
	if len(p.buf) > 0 {
		err = p.rerr
	}
	p.buf = nil
	return n, err
}

// CloseWrite ends the stream: the reader sees io.EOF (err nil) or err.
func (p *chunkPipe) CloseWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.cond.Broadcast()
}

// CloseRead fails the writer's pending and further writes with err
// (io.ErrClosedPipe if nil).
func (p *chunkPipe) CloseRead(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.cond.Broadcast()
}

// next waits for bytes to consume. With none, it returns the error that ends
// the stream (io.EOF at its end). Called with mu held.
func (p *chunkPipe) next() error {
	for len(p.buf) == 0 && p.werr == nil && p.rerr == nil {
		p.cond.Wait()
	}
	switch {
	case p.rerr != nil:
		return io.ErrClosedPipe
	case len(p.buf) == 0:
		return p.werr
	}
	return nil
}

// Read fills b completely unless the stream ends first.
func (p *chunkPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(b) {
		if err := p.next(); err != nil {
			if n > 0 && err != io.ErrClosedPipe {
				return n, nil // the end again on the next Read
			}
			return n, err
		}
		k := copy(b[n:], p.buf)
		p.buf = p.buf[k:]
		n += k
		if len(p.buf) == 0 {
			p.cond.Broadcast()
		}
	}
	return n, nil
}

// WriteTo writes the stream to w until the writer closes it, each large
// Write straight from the writer's slice. It returns nil at the stream's
// end, the writer's error if it aborted, or w's error (which the writer then
// gets too).
func (p *chunkPipe) WriteTo(w io.Writer) (int64, error) {
	stageBuf := stages.Get().(*[stageSize]byte)
	defer stages.Put(stageBuf)
	stage := stageBuf[:0]
	var total int64
	write := func(b []byte) error {
		n, err := w.Write(b)
		total += int64(n)
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if err := p.next(); err != nil {
			if err != io.EOF {
				return total, err
			}
			if len(stage) > 0 {
				// The writer is done and waits for nothing:
				// send the tail without holding mu.
				p.mu.Unlock()
				err = write(stage)
				p.mu.Lock()
				return total, err
			}
			return total, nil
		}
		b := p.buf
		if len(stage)+len(b) <= cap(stage) {
			stage = append(stage, b...)
			p.buf = nil
			p.cond.Broadcast()
			continue
		}
		p.busy = true
		p.mu.Unlock()
		var err error
		if vw, ok := w.(vectorWriter); ok && len(stage) > 0 {
			// The staged bytes and the whole block in one call
			// (writev): no copy of the block's head into the stage
			// and no small write of its own.
			bufs := net.Buffers{stage, b}
			var n int64
			n, err = vw.WriteVectors(&bufs)
			total += n
			stage, b = stage[:0], nil
		} else if len(stage) > 0 {
			k := cap(stage) - len(stage)
			stage = append(stage, b[:k]...)
			b = b[k:]
			err = write(stage)
			stage = stage[:0]
		}
		if err == nil && len(b) > 0 {
			if len(b) < cap(stage) {
				stage = append(stage, b...) // a tail: on with the next write
			} else {
				err = write(b)
			}
		}
		p.mu.Lock()
		p.busy = false
		if err != nil {
			// Nothing further reaches w: fail the writer's pending
			// and later writes instead of leaving them waiting.
			if p.rerr == nil {
				p.rerr = err
			}
			p.cond.Broadcast()
			return total, err
		}
		p.buf = nil
		p.cond.Broadcast()
	}
}

// vectorWriter is a destination that can send several slices with one
// call (writev on a connection), as the blob client's upload connections
// can. WriteVectors consumes bufs as net.Buffers.WriteTo does.
type vectorWriter interface {
	WriteVectors(bufs *net.Buffers) (int64, error)
}

var (
	_ io.WriterTo = (*chunkPipe)(nil)
	_ io.Reader   = (*chunkPipe)(nil)
	_ io.Writer   = (*chunkPipe)(nil)
)
