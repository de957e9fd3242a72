package object

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// chunkWrites is how the encoder writes a chunk: a 36-byte header, then each
// block followed by its 4-byte checksum, the last block short.
func chunkWrites(blocks, blockSize, last int) [][]byte {
	r := rand.NewChaCha8([32]byte{byte(blocks), byte(blockSize), byte(last)})
	piece := func(n int) []byte {
		b := make([]byte, n)
		r.Read(b)
		return b
	}
	ws := [][]byte{piece(36)}
	for i := range blocks {
		n := blockSize
		if i == blocks-1 {
			n = last
		}
		ws = append(ws, piece(n), piece(4))
	}
	return ws
}

// feed writes ws into p from its own goroutine, as a shard writer does, and
// closes it with closeErr (nil: the end). It reports Write's errors.
func feed(p *chunkPipe, ws [][]byte, closeErr error) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for _, w := range ws {
			n, err := p.Write(w)
			if err != nil {
				errc <- err
				return
			}
			if n != len(w) {
				errc <- io.ErrShortWrite
				return
			}
		}
		p.CloseWrite(closeErr)
		errc <- nil
	}()
	return errc
}

// recorder keeps every Write's slice as given (not copied), so the test can
// tell a block written from the writer's own buffer.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(b))
	return len(b), nil
}

// aliasRecorder records whether each write's slice is one of the writer's.
type aliasRecorder struct {
	recorder
	src    [][]byte
	direct int
}

func (r *aliasRecorder) Write(b []byte) (int, error) {
	for _, s := range r.src {
		if len(b) > 0 && len(s) >= len(b) && &s[len(s)-1] == &b[len(b)-1] {
			r.direct++
		}
	}
	return r.recorder.Write(b)
}

// writeToCases are the chunks (chunkWrites' arguments) both WriteTo tests
// send, to a plain writer and to one with WriteVectors.
var writeToCases = []struct {
	name                   string
	blocks, blockSize, end int
}{
	{"4+2 blocks", 5, 256 << 10, 1000},
	{"small chunk", 1, 100, 100},
	{"blocks just over the stage", 4, stageSize + 1, stageSize - 40},
	{"empty last block", 3, 64 << 10, 0},
}

func TestChunkPipeWriteTo(t *testing.T) {
	for _, tc := range writeToCases {
		t.Run(tc.name, func(t *testing.T) {
			ws := chunkWrites(tc.blocks, tc.blockSize, tc.end)
			want := bytes.Join(ws, nil)
			p := newChunkPipe()
			errc := feed(p, ws, nil)
			rec := &aliasRecorder{src: ws}
			n, err := p.WriteTo(rec)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(want))
			}
			if err := <-errc; err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := bytes.Join(rec.writes, nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("WriteTo wrote %d bytes, want %d (equal length: %v)", len(got), len(want), len(got) == len(want))
			}
			// No write goes out smaller than the stage but the last: the
			// header and checksums travel with block data.
			for i, w := range rec.writes[:len(rec.writes)-1] {
				if len(w) < stageSize {
					t.Errorf("write %d of %d is %d bytes, below the %d-byte stage", i, len(rec.writes), len(w), stageSize)
				}
			}
			// Blocks go out from the writer's own slices, not through a
			// copy: all but a head that tops up the stage, and a tail
			// shorter than the stage.
			direct, most := 0, 0
			for _, w := range ws {
				if len(w) >= 2*stageSize {
					direct++
				}
				if len(w) > stageSize {
					most++
				}
			}
			if rec.direct < direct || rec.direct > most {
				t.Errorf("%d writes straight from the writer's slices, want %d to %d", rec.direct, direct, most)
			}
			// A second WriteTo (net/http drains a body past its length
			// this way) finds the end.
			if n, err := p.WriteTo(io.Discard); n != 0 || err != nil {
				t.Fatalf("WriteTo after the end = %d, %v", n, err)
			}
		})
	}
}

func TestChunkPipeReadFills(t *testing.T) {
	ws := chunkWrites(3, 100<<10, 777)
	want := bytes.Join(ws, nil)
	p := newChunkPipe()
	errc := feed(p, ws, nil)
	var got []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		// Full reads, so the transport never sends a checksum alone.
		if n != len(buf) && len(got) != len(want) {
			t.Fatalf("Read returned %d of %d bytes at offset %d, before the end", n, len(buf), len(got)-n)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read %d bytes, want %d", len(got), len(want))
	}
}

func TestChunkPipeWriterAborts(t *testing.T) {
	abort := errors.New("segment write aborted")
	ws := chunkWrites(2, 64<<10, 10)
	for _, via := range []string{"WriteTo", "Read"} {
		t.Run(via, func(t *testing.T) {
			p := newChunkPipe()
			errc := feed(p, ws, abort)
			var err error
			if via == "WriteTo" {
				_, err = p.WriteTo(io.Discard)
			} else {
				_, err = io.Copy(io.Discard, struct{ io.Reader }{p})
			}
			if !errors.Is(err, abort) {
				t.Fatalf("%s after the writer aborted: err = %v, want %v", via, err, abort)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Write: %v", err)
			}
		})
	}
}

// The upload ending (its reader closing) fails the writer's pending and
// later writes, so the shard writer does not wait forever.
func TestChunkPipeReaderCloses(t *testing.T) {
	gone := errors.New("chunk upload ended")
	p := newChunkPipe()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 1<<20)) // nobody reads it
		errc <- err
	}()
	p.CloseRead(gone)
	if err := <-errc; !errors.Is(err, gone) {
		t.Fatalf("pending Write after CloseRead: err = %v, want %v", err, gone)
	}
	if _, err := p.Write([]byte("more")); !errors.Is(err, gone) {
		t.Fatalf("Write after CloseRead: err = %v, want %v", err, gone)
	}
}

// failingWriter fails once it has taken limit bytes.
type failingWriter struct{ limit int }

var errConnBroke = errors.New("connection broke")

func (f *failingWriter) Write(b []byte) (int, error) {
	if len(b) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errConnBroke
	}
	f.limit -= len(b)
	return len(b), nil
}

func TestChunkPipeDestinationFails(t *testing.T) {
	ws := chunkWrites(4, 64<<10, 64<<10)
	p := newChunkPipe()
	errc := feed(p, ws, nil)
	n, err := p.WriteTo(&failingWriter{limit: 100 << 10})
	if !errors.Is(err, errConnBroke) || n != 100<<10 {
		t.Fatalf("WriteTo into a failing writer = %d, %v; want %d, %v", n, err, 100<<10, errConnBroke)
	}
	if err := <-errc; !errors.Is(err, errConnBroke) {
		t.Fatalf("the writer got %v, want %v", err, errConnBroke)
	}
}

// blockingWriter holds a write until released, and checks on the way out
// that the slice was left alone while it was being written.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	inWrite atomic.Bool
	changed atomic.Bool
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	if len(b) < stageSize {
		return len(b), nil
	}
	w.inWrite.Store(true)
	defer w.inWrite.Store(false)
	before := bytes.Clone(b)
	w.once.Do(func() { close(w.entered) })
	<-w.release
	// Give a Write that returned too early the chance to reuse b.
	for range 100 {
		runtime.Gosched()
	}
	if !bytes.Equal(before, b) {
		w.changed.Store(true)
	}
	return len(b), nil
}

// A Write never returns while WriteTo still sends its slice, even when the
// reader closes meanwhile: the encoder reuses its stripe buffers.
func TestChunkPipeWriteWaitsForTheSocket(t *testing.T) {
	p := newChunkPipe()
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	block := bytes.Repeat([]byte{0xAB}, 64<<10)
	early := make(chan bool, 1)
	go func() {
		_, _ = p.Write(block)
		e := w.inWrite.Load()
		// Reuse the buffer at once, as the encoder would.
		clear(block)
		early <- e
	}()
	wt := make(chan error, 1)
	go func() {
		_, err := p.WriteTo(w)
		wt <- err
	}()
	<-w.entered
	p.CloseRead(errors.New("upload ended"))
	close(w.release)
	if <-early {
		t.Fatal("Write returned while WriteTo was still writing its slice")
	}
	if w.changed.Load() {
		t.Fatal("the writer reused its slice while WriteTo was still writing it")
	}
	if err := <-wt; err == nil {
		t.Fatal("WriteTo after CloseRead returned nil")
	}
}

// vectorRecorder is a destination with writev: it records each call's
// slices, and whether a block went out from the writer's own slice.
type vectorRecorder struct {
	aliasRecorder
	calls [][][]byte
}

func (r *vectorRecorder) WriteVectors(bufs *net.Buffers) (int64, error) {
	var call [][]byte
	var n int64
	for _, b := range *bufs {
		if _, err := r.aliasRecorder.Write(b); err != nil {
			return n, err
		}
		call = append(call, b)
		n += int64(len(b))
	}
	*bufs = nil
	r.calls = append(r.calls, call)
	return n, nil
}

func TestChunkPipeWriteToVectors(t *testing.T) {
	for _, tc := range writeToCases {
		t.Run(tc.name, func(t *testing.T) {
			ws := chunkWrites(tc.blocks, tc.blockSize, tc.end)
			want := bytes.Join(ws, nil)
			p := newChunkPipe()
			errc := feed(p, ws, nil)
			rec := &vectorRecorder{aliasRecorder: aliasRecorder{src: ws}}
			n, err := p.WriteTo(rec)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(want))
			}
			if err := <-errc; err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := bytes.Join(rec.writes, nil); !bytes.Equal(got, want) {
				t.Fatalf("WriteTo wrote %d bytes, want %d", len(got), len(want))
			}
			// Every block larger than the stage goes out whole from the
			// writer's slice, with the header or checksum before it in
			// the same call.
			big := 0
			for _, w := range ws {
				if len(w) > stageSize {
					big++
				}
			}
			if rec.direct != big {
				t.Errorf("%d blocks sent from the writer's slices, want %d", rec.direct, big)
			}
			if len(rec.calls) != big {
				t.Errorf("%d vectored writes for %d blocks", len(rec.calls), big)
			}
			for i, c := range rec.calls {
				if len(c) != 2 || len(c[0]) > stageSize {
					t.Errorf("vectored write %d: %d slices, first %d bytes", i, len(c), len(c[0]))
				}
			}
		})
	}
}
