package blob

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cairnstore/cairn/chunk"
)

// Chunk uploads are written with direct I/O (O_DIRECT) where the
// filesystem allows it: the disk reads the data straight from the upload's
// buffer, so no copy into the page cache is made. That copy was the blob
// node's largest cost on PUT: measured under scripts/bench on this VM,
// copy_folio_from_iter_atomic (the kernel copying write() data into new
// page-cache pages) took 31% of the whole machine's CPU during a 64 MiB PUT
// run, more than the gateway's MD5 and SHA-256 together, because every
// chunk written lands in page-cache pages never touched before (see
// /tmp/perf-notes-put.md). Chunks are written once and read rarely, so
// caching them on the way in buys little; reads still go through the page
// cache.
//
// Direct I/O needs the buffer's address, the file offset and the length to
// be multiples of the logical block size. Uploads are gathered into
// directBufSize buffers (aligned to directAlign) and written whole; the
// last, partial buffer is written with direct I/O up to its last whole
// directAlign bytes and the rest through the page cache (O_DIRECT cleared
// on the descriptor). The fsync before the answer is unchanged: direct
// I/O alone does not flush the disk's cache or the file's size.
//
// The buffer is 4 MiB, not 1: each direct write blocks its thread until
// the device has the data, and the Go runtime answers a blocked call with
// scheduling work (sysmon polling every 20 µs and taking the P away,
// another thread woken for it, the writer's thread parked when the call
// returns); in a blob node's profile under PUT, context switches took more
// samples than the socket copy. A quarter of the writes took 11-19% off the
// node's CPU per MiB of PUT 64 MiB (2 MiB buffers: 8-12%;
// docs/perf/put-path.md, "h-blobput"). The price is memory: 4 MiB per
// large upload in flight. A chunk whose declared size fits a smaller
// buffer class gets that instead, so a node taking many small chunks at
// once (small objects, the tail segments of large ones) does not hold
// 4 MiB for each; and at most largeBufLimit uploads hold a 4 MiB buffer
// at a time, the others 1 MiB ones, so many concurrent large uploads cost
// at most 48 MiB more than they did with 1 MiB buffers throughout (64
// uploads: ~335 MiB of RSS per node without the limit).
const (
	directAlign   = 4096
	directBufSize = 4 << 20 // the largest class
)

// largeBufLimit is how many uploads may hold a buffer of the largest class
// at once.
const largeBufLimit = 16

// largeBufsInUse counts the largest-class buffers handed out.
var largeBufsInUse atomic.Int32

// directBufSizes are the buffer classes, smallest first.
var directBufSizes = [...]int{256 << 10, 1 << 20, directBufSize}

var directBufPools [len(directBufSizes)]sync.Pool

func init() {
	for i, n := range directBufSizes {
		directBufPools[i].New = func() any {
			b := make([]byte, n+directAlign)
			off := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
			b = b[off : off+n : off+n]
			return &b
		}
	}
}

// directBufClass is the smallest buffer class that holds size bytes whole;
// the largest for a bigger or unknown (negative) size.
func directBufClass(size int64) int {
	for i, n := range directBufSizes {
		if size >= 0 && size <= int64(n) {
			return i
		}
	}
	return len(directBufSizes) - 1
}

// tempSeq makes temporary file names unique within the process; the
// process id keeps two processes on one directory (never meant to happen,
// the data directory is locked) from colliding anyway.
var tempSeq atomic.Uint64

// tempChunk is a chunk being written to a temporary file.
type tempChunk struct {
	f      *os.File
	direct bool   // O_DIRECT is set on f
	buf    []byte // one of directBufSizes, aligned; buf[:n] not yet written
	n      int
	bufp   *[]byte
	class  int // bufp's index in directBufPools
}

// createTempChunk creates a temporary file for chunk id in dir, with direct
// I/O unless noDirect is set or the filesystem refuses it (reported back
// through refused, so the store stops asking). size is the chunk's
// declared length (-1 if unknown); it picks the buffer.
func createTempChunk(dir string, id chunk.ID, size int64, noDirect bool) (cf *tempChunk, refused bool, err error) {
	name := filepath.Join(dir, id.String()+"."+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(tempSeq.Add(1), 10))
	const flags = os.O_RDWR | os.O_CREATE | os.O_EXCL
	var f *os.File
	direct := false
	if !noDirect && oDirect != 0 {
		f, err = os.OpenFile(name, flags|oDirect, 0o600)
		if err == nil {
			direct = true
		} else if errors.Is(err, syscall.EINVAL) {
			refused = true
		} else {
			return nil, false, err
		}
	}
	if f == nil {
		if f, err = os.OpenFile(name, flags, 0o600); err != nil {
			return nil, refused, err
		}
	}
	class := directBufClass(size)
	if class == len(directBufSizes)-1 && largeBufsInUse.Add(1) > largeBufLimit {
		largeBufsInUse.Add(-1)
		class--
	}
	bufp := directBufPools[class].Get().(*[]byte)
	return &tempChunk{f: f, direct: direct, buf: *bufp, bufp: bufp, class: class}, refused, nil
}

// readFrom copies r to the file to r's end, in whole buffers.
func (c *tempChunk) readFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		m, err := r.Read(c.buf[c.n:])
		c.n += m
		total += int64(m)
		if c.n == len(c.buf) {
			if werr := c.write(c.buf); werr != nil {
				return total, werr
			}
			c.n = 0
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// finish writes what is left in the buffer and syncs the file.
func (c *tempChunk) finish() error {
	if c.n > 0 {
		whole := c.n &^ (directAlign - 1)
		if whole > 0 {
			if err := c.write(c.buf[:whole]); err != nil {
				return err
			}
		}
		if whole < c.n {
			if err := c.setDirect(false); err != nil {
				return err
			}
			if err := c.write(c.buf[whole:c.n]); err != nil {
				return err
			}
		}
		c.n = 0
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// write writes b at the file's end. A filesystem that accepted O_DIRECT at
// open but refuses the write gets it again through the page cache.
func (c *tempChunk) write(b []byte) error {
	_, err := c.f.Write(b)
	if err != nil && c.direct && errors.Is(err, syscall.EINVAL) {
		if err = c.setDirect(false); err == nil {
			_, err = c.f.Write(b)
		}
	}
	return err
}

func (c *tempChunk) setDirect(on bool) error {
	if c.direct == on {
		return nil
	}
	if err := setDirectIO(c.f, on); err != nil {
		return fmt.Errorf("set direct I/O %v: %w", on, err)
	}
	c.direct = on
	return nil
}

// release returns the buffer; the caller closes (or removes) the file.
func (c *tempChunk) release() {
	if c.bufp != nil {
		directBufPools[c.class].Put(c.bufp)
		if c.class == len(directBufSizes)-1 {
			largeBufsInUse.Add(-1)
		}
		c.bufp, c.buf = nil, nil
	}
}
