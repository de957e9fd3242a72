// Package sha256lanes hashes many concurrent SHA-256 streams together, 16 at
// a time, in the lanes of AVX-512 registers.
//
// The gateway verifies the SHA-256 of every signed payload, and with
// SHA-NI that was still ~38% of its CPU on large PUTs: SHA-256 is serial
// within a stream, one 64-byte block after another. Independent streams
// can be compressed side by side, one per 32-bit lane (the kernel of
// github.com/minio/sha256-simd, copied into kernel_amd64.s). That module's
// own server could not be used: its Write returns before the caller's bytes
// are hashed (the gateway reuses its buffers) and it waits on a fresh 1 µs
// timer per message.
//
// Here a Write does not return before its bytes are compressed, so the
// caller's buffer is read in place, never copied. There is no server
// goroutine: writers queue, and one of them at a time (the combiner) runs
// the lanes for everyone queued; the others sleep until their data is
// hashed, or until the combiner, done with its own data, hands the lanes
// over to one of them. While the combiner works, other writers arrive and
// take the next free lanes, so the lanes fill as far as the concurrency
// allows, without any timer. When too few lanes are busy for the kernel to
// beat SHA-NI, the combiner hashes each stream's next piece with
// crypto/sha256 instead.
//
// Only whole 64-byte blocks go through the lanes; the head and tail of a
// Write, and the final padding, go through crypto/sha256 on the same state
// (via its MarshalBinary format), so the result is crypto/sha256's by
// construction.
package sha256lanes

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
)

// Available reports whether this machine has the 16-lane kernel. Without
// it, Digests still work (every block through crypto/sha256), but there is
// no reason to use them.
func Available() bool { return hasKernel }

const (
	lanes = 16
	// pieceBlocks is how many 64-byte blocks a lane gets per kernel call
	// (16 KiB). Calls are where lanes change hands: shorter pieces let a
	// newly queued stream start sooner and waste less when lanes' lengths
	// differ; longer ones spend less on building the mask.
	pieceBlocks = 256
	// minLaneBlocks: a Write with fewer whole blocks than this hashes them
	// itself with crypto/sha256; queueing costs more than it saves.
	minLaneBlocks = 16
)

// kernelMinLanes is the number of busy lanes from which a kernel call
// costs less than hashing the same pieces one after another with
// crypto/sha256 (SHA-NI where the CPU has it). Measured here
// (BenchmarkKernel vs BenchmarkSHANI): the kernel's call costs the same
// whatever the number of busy lanes.
var kernelMinLanes = 7

// Server schedules the lanes. The zero value is not usable; use NewServer.
// A Server may be shared by any number of goroutines: the more streams
// write to it at once, the fuller its lanes.
type Server struct {
	mu      sync.Mutex
	queue   []*Digest // waiting for a lane
	running bool      // a combiner holds the lanes

	// Owned by the combiner.
	lane    [lanes]*Digest
	state   [512]byte
	scratch [512]byte
	mask    [pieceBlocks]uint64
	done    []*Digest

	stats Stats
}

// Stats counts what a Server did, for benchmarks and tuning.
type Stats struct {
	KernelCalls  atomic.Int64 // kernel calls
	KernelBlocks atomic.Int64 // blocks hashed by the kernel
	KernelRounds atomic.Int64 // block rounds run (×16 = lane slots, busy or not)
	SoloBlocks   atomic.Int64 // blocks hashed with crypto/sha256 by the combiner
}

// NewServer returns a Server with empty lanes.
func NewServer() *Server { return &Server{} }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Digest is one SHA-256 stream hashed through a Server. It is a hash.Hash
// and, like any, not safe for concurrent use by itself.
type Digest struct {
	s   *Server
	h   [8]uint32
	x   [64]byte // a partial block
	nx  int
	len uint64

	// While queued or in a lane: the whole blocks still to hash.
	p    []byte
	wake chan bool // false: p is hashed; true: take over the lanes

	solo    hash.Hash // crypto/sha256, for blocks outside the lanes
	marshal [4 + 32 + 64 + 8]byte
}

var _ hash.Hash = (*Digest)(nil)

// New returns a SHA-256 hash whose whole blocks are compressed in s's lanes.
func (s *Server) New() *Digest {
	d := &Digest{s: s, wake: make(chan bool, 1)}
	d.Reset()
	return d
}

var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

func (d *Digest) Reset() {
	d.h = iv
	d.nx = 0
	d.len = 0
}

func (d *Digest) Size() int      { return sha256.Size }
func (d *Digest) BlockSize() int { return sha256.BlockSize }

func (d *Digest) Write(p []byte) (int, error) {
	n := len(p)
	d.len += uint64(n)
	if d.nx > 0 {
		c := copy(d.x[d.nx:], p)
		d.nx += c
		p = p[c:]
		if d.nx < len(d.x) {
			return n, nil
		}
		d.soloBlocks(d.x[:])
		d.nx = 0
	}
	if whole := len(p) &^ 63; whole > 0 {
		if whole/64 >= minLaneBlocks && hasKernel {
			d.s.hash(d, p[:whole])
		} else {
			d.soloBlocks(p[:whole])
		}
		p = p[whole:]
	}
	d.nx = copy(d.x[:], p)
	return n, nil
}

// Sum appends the hash of what was written so far; d can go on being
// written to.
func (d *Digest) Sum(in []byte) []byte {
	h := d.toSolo(d.len)
	return h.Sum(in)
}

// toSolo loads d's state (chaining value, partial block, length) into the
// crypto/sha256 hash d keeps for the blocks outside the lanes.
func (d *Digest) toSolo(length uint64) hash.Hash {
	if d.solo == nil {
		d.solo = sha256.New()
	}
	b := d.marshal[:0]
	b = append(b, "sha\x03"...)
	for _, w := range d.h {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	b = append(b, d.x[:d.nx]...)
	b = append(b, make([]byte, 64-d.nx)...)
	b = binary.BigEndian.AppendUint64(b, length)
	if err := d.solo.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		// The format is crypto/sha256's own; it can only fail if Go
		// changed it, which the tests would catch first.
		panic("sha256lanes: loading state into crypto/sha256: " + err.Error())
	}
	return d.solo
}

// soloBlocks compresses whole blocks p into d's chaining value with
// crypto/sha256. The length given to it only has to be a multiple of 64
// (the partial block is empty); d.len is kept apart.
func (d *Digest) soloBlocks(p []byte) {
	saved := d.nx
	d.nx = 0
	h := d.toSolo(0)
	d.nx = saved
	h.Write(p)
	b, err := h.(encoding.BinaryAppender).AppendBinary(d.marshal[:0])
	if err != nil {
		panic("sha256lanes: reading state from crypto/sha256: " + err.Error())
	}
	for i := range d.h {
		d.h[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
}

// hash compresses p (whole blocks) into d's chaining value through the
// lanes, and returns once it is done: p is never read afterwards.
func (s *Server) hash(d *Digest, p []byte) {
	d.p = p
	s.mu.Lock()
	s.queue = append(s.queue, d)
	if s.running {
		s.mu.Unlock()
		if !<-d.wake {
			return
		}
		// The previous combiner handed the lanes over.
	} else {
		s.running = true
		s.mu.Unlock()
	}
	s.combine(d)
}

// combine runs the lanes until me's blocks are hashed, then hands them to
// another writer that still has blocks to hash, if any.
func (s *Server) combine(me *Digest) {
	for {
		busy, taken := 0, 0
		s.mu.Lock()
		for i := range s.lane {
			if s.lane[i] == nil && taken < len(s.queue) {
				s.lane[i] = s.queue[taken]
				taken++
			}
			if s.lane[i] != nil {
				busy++
			}
		}
		n := copy(s.queue, s.queue[taken:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.mu.Unlock()

		if busy >= kernelMinLanes {
			s.kernelStep()
		} else {
			s.soloStep()
		}

		meDone := false
		for _, d := range s.done {
			if d == me {
				meDone = true
				continue
			}
			d.wake <- false
		}
		clear(s.done)
		s.done = s.done[:0]
		if !meDone {
			continue
		}
		s.mu.Lock()
		var next *Digest
		for _, d := range s.lane {
			if d != nil {
				next = d
				break
			}
		}
		if next == nil && len(s.queue) > 0 {
			next = s.queue[0]
		}
		if next == nil {
			s.running = false
		}
		s.mu.Unlock()
		if next != nil {
			next.wake <- true
		}
		return
	}
}

// soloStep hashes the next piece of every busy lane with crypto/sha256.
func (s *Server) soloStep() {
	for i, d := range s.lane {
		if d == nil {
			continue
		}
		n := min(len(d.p), pieceBlocks*64)
		d.soloBlocks(d.p[:n])
		s.stats.SoloBlocks.Add(int64(n / 64))
		s.advance(i, n)
	}
}

// kernelStep hashes the next piece of every busy lane in one kernel call.
func (s *Server) kernelStep() {
	var in [lanes][]byte
	var blocks [lanes]int
	rounds := 0
	active := uint64(0)
	for i, d := range s.lane {
		if d == nil {
			continue
		}
		n := min(len(d.p), pieceBlocks*64)
		in[i] = d.p[:n]
		blocks[i] = n / 64
		rounds = max(rounds, blocks[i])
		active |= 1 << i
		for j, w := range d.h {
			binary.LittleEndian.PutUint32(s.state[(j*lanes+i)*4:], w)
		}
	}
	mask := s.mask[:rounds]
	for r := range mask {
		mask[r] = active
	}
	total := 0
	for i, b := range blocks {
		total += b
		if active&(1<<i) != 0 && b < rounds {
			// A lane with fewer blocks than the longest sits out the
			// remaining rounds (its state is left alone).
			for r := b; r < rounds; r++ {
				mask[r] &^= 1 << i
			}
		}
	}
	block16(&s.state, &s.scratch, mask, &in)
	s.stats.KernelCalls.Add(1)
	s.stats.KernelBlocks.Add(int64(total))
	s.stats.KernelRounds.Add(int64(rounds))
	for i, d := range s.lane {
		if d == nil {
			continue
		}
		for j := range d.h {
			d.h[j] = binary.LittleEndian.Uint32(s.state[(j*lanes+i)*4:])
		}
		s.advance(i, blocks[i]*64)
	}
}

// advance moves lane i's stream n bytes on, and frees the lane once its
// stream has no blocks left.
func (s *Server) advance(i, n int) {
	d := s.lane[i]
	d.p = d.p[n:]
	if len(d.p) == 0 {
		d.p = nil
		s.lane[i] = nil
		s.done = append(s.done, d)
	}
}
