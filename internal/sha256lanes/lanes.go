// Package sha256lanes hashes many concurrent SHA-256 streams together, 16 at
// a time, in the lanes of AVX-512 registers.
//
// The gateway verifies the SHA-256 of every signed payload, and with
// SHA-NI that was still ~38% of its CPU on large PUTs: SHA-256 is serial
// within a stream, one 64-byte block after another. Independent streams
// can be compressed side by side, one per 32-bit lane (the kernel of
// github.com/minio/sha256-simd, copied into kernel_amd64.s): ~2.4× SHA-NI's
// bytes per CPU second with all 16 lanes busy, a seventh of it with one.
// That module's own server could not be used: its Write returns before the
// caller's bytes are hashed, reading them later from the caller's buffer
// (which the gateway reuses), and it waits on a fresh 1 µs timer per
// message.
//
// Lanes only fill if many streams have bytes waiting at the same moment,
// and a gateway's uploads do not hash at the same moments: each hashes a
// socket read (up to ~1 MiB) at a time, a fraction of a millisecond in
// every few. So a Digest copies what it is given into a ring buffer of its
// own (Write returns as soon as the copy is made; the caller's buffer is
// never read afterwards) and the bytes wait there until enough streams
// have some for a kernel call to pay. There is no server goroutine and no
// timer: whichever writer finds enough lanes ready runs kernel calls for
// all of them (the combiner) while there are; a writer whose ring is full,
// or a Sum, hashes its own bytes — in the lanes with the others if enough
// are ready, with crypto/sha256 otherwise.
//
// The chaining value is all that the lanes compute; the partial block, the
// padding and the length go through crypto/sha256 on the same state (via
// its MarshalBinary format), so the result is crypto/sha256's by
// construction.
package sha256lanes

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/internal/chainstate"
)

// Available reports whether this machine has the 16-lane kernel. Without
// it, Digests still work (every block through crypto/sha256), but there is
// no reason to use them.
func Available() bool { return hasKernel }

const (
	lanes = 16
	// pieceBytes is the most a lane hashes per kernel call (256 blocks).
	// Calls are where lanes change hands; a call lasts as long as its
	// longest piece, so lanes with less to hash sit idle for the rest.
	pieceBytes  = 16 << 10
	pieceBlocks = pieceBytes / 64
)

var (
	// kernelMinLanes: lanes' worth of bytes (in pieces) from which a
	// kernel call costs less than crypto/sha256 on the same bytes.
	// BenchmarkKernel here: one busy lane 0.27 GB/s, sixteen 4.4 GB/s,
	// crypto/sha256 (SHA-NI) 1.83 GB/s on cached bytes and 1.17 GB/s on
	// bytes from memory, so 7 is break-even or better.
	kernelMinLanes = 7
	// startLanes: lanes' worth ready from which a writer, having copied
	// its bytes, runs the lanes for everyone.
	startLanes = 16
	// stopLanes: such a writer stops once fewer lanes' worth than this
	// are ready, leaving the rest to wait for fuller calls. In the
	// gateway (PUT 64 MiB, 16 uploads) 12/12 gave 11.3 lanes per round
	// and 7% of the blocks to crypto/sha256, 16/14 12.9 and 4.5%, 16/16
	// 12.7 and 7%.
	stopLanes = 14
	// drainBytes is how much room a writer whose ring is full makes
	// before copying on: draining more takes more from the other
	// streams' rings too and leaves fewer lanes ready for the next
	// call.
	drainBytes = 64 << 10
)

// ringBytes is a stream's buffer (less for a stream whose size is known to
// be smaller, NewSized): how far its writer can run ahead of the lanes.
// The gateway's socket reads hand over up to ~1 MiB at once, and lanes
// fill only if many streams still hold bytes when one needs room, so it is
// that large; smaller rings left more to crypto/sha256 (see
// docs/perf/put-path.md).
const ringBytes = 1 << 20

// Server schedules the lanes. The zero value is not usable; use NewServer.
// A Server may be shared by any number of goroutines: the more streams
// write to it at once, the fuller its lanes.
type Server struct {
	mu      sync.Mutex
	idle    sync.Cond // broadcast when running goes false, or a call ends
	running bool      // someone is hashing streams' rings
	streams []*Digest // streams with a ring

	// Owned by whoever set running.
	state   [512]byte
	scratch [512]byte
	mask    [pieceBlocks]uint64

	stats Stats
}

// Stats counts what a Server did, for benchmarks and tuning.
type Stats struct {
	KernelCalls  atomic.Int64 // kernel calls
	KernelBlocks atomic.Int64 // blocks hashed by the kernel
	KernelRounds atomic.Int64 // block rounds run (×16 = lane slots, busy or not)
	SoloBlocks   atomic.Int64 // ring blocks hashed with crypto/sha256
}

// NewServer returns a Server with no streams.
func NewServer() *Server {
	s := &Server{}
	s.idle.L = &s.mu
	return s
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Digest is one SHA-256 stream hashed through a Server. It is a hash.Hash
// and, like any, not safe for concurrent use by itself. Close it (or take
// its Sum) when done: until then the Server keeps it on its list.
type Digest struct {
	s *Server

	// The owner's: the partial block and the length written.
	blocks chainstate.Blocks

	// The chaining value: changed only by whoever set s.running, or by
	// the owner while the stream has no ring.
	h [8]uint32

	// ring[head%len(ring) : tail%len(ring)] (wrapping) are whole blocks
	// written and not yet hashed. head and tail only grow, under s.mu;
	// the owner copies into the free part outside it, the lanes read
	// the written part outside it.
	ring       []byte
	ringSize   int // len(ring), once allocated
	head, tail uint64
	listed     bool // in s.streams
	idx        int  // in s.streams
	urgent     bool // its owner waits for its ring to drain

	solo    hash.Hash             // crypto/sha256, for the final block and solo hashing
	marshal [4 + 32 + 64 + 8]byte // chainstate.Size(8)
}

var _ hash.Hash = (*Digest)(nil)

// New returns a SHA-256 hash whose whole blocks are compressed in s's lanes.
func (s *Server) New() *Digest { return s.NewSized(-1) }

// NewSized is New for a stream of about size bytes (-1: unknown), whose
// ring need not be larger than that.
func (s *Server) NewSized(size int64) *Digest {
	d := &Digest{s: s, ringSize: ringBytes}
	if size >= 0 && size < ringBytes {
		// Whole pieces, so a piece never wraps.
		d.ringSize = int(max(pieceBytes, (size+pieceBytes-1)/pieceBytes*pieceBytes))
	}
	d.Reset()
	return d
}

var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// Reset drops whatever was written and starts a new hash.
func (d *Digest) Reset() {
	d.Close()
	d.h = iv
	d.blocks.Reset()
}

func (d *Digest) Size() int      { return sha256.Size }
func (d *Digest) BlockSize() int { return sha256.BlockSize }

func (d *Digest) Write(p []byte) (int, error) {
	d.blocks.Write(p, d.push)
	return len(p), nil
}

// Sum appends the hash of what was written so far; d can go on being
// written to.
func (d *Digest) Sum(in []byte) []byte {
	d.Close() // hashes what is in the ring first
	return d.toSolo(d.blocks.Partial(), d.blocks.Len()).Sum(in)
}

// Close hashes what d's ring holds into its chaining value, takes d off
// the Server's list and gives its ring back. d stays usable: the next
// Write puts it back. Close must not run concurrently with a Write to d.
func (d *Digest) Close() {
	if !d.listed {
		return
	}
	s := d.s
	s.mu.Lock()
	s.drainLocked(d, 0)
	// Whoever runs the lanes now will not pick d, which has nothing
	// left to hash, and no call in progress reads it (head moves only
	// after a call): d can leave.
	last := len(s.streams) - 1
	s.streams[d.idx] = s.streams[last]
	s.streams[d.idx].idx = d.idx
	s.streams[last] = nil
	s.streams = s.streams[:last]
	d.listed = false
	s.mu.Unlock()
	if len(d.ring) == ringBytes {
		// A fresh 1 MiB per upload made the gateway's peak RSS 40–50
		// MiB higher than pooled rings (PUT 64 MiB, 16 uploads), for
		// the same CPU. The ring is empty, d is off the list, and no
		// kernel call reads it (see above); only a Write racing this
		// Close — a data race on d in any case — could touch it now.
		ringPool.Put((*[ringBytes]byte)(d.ring))
		d.ring = nil
	}
}

// ringPool holds full-size rings of closed streams.
var ringPool = sync.Pool{New: func() any { return new([ringBytes]byte) }}

// push queues whole blocks p in d's ring, hashing what has to be hashed to
// make room, and returns once p is copied.
func (d *Digest) push(p []byte) {
	if !hasKernel {
		d.soloBlocks(p)
		return
	}
	s := d.s
	if d.ring == nil {
		if d.ringSize == ringBytes {
			d.ring = ringPool.Get().(*[ringBytes]byte)[:]
		} else {
			d.ring = make([]byte, d.ringSize)
		}
	}
	s.mu.Lock()
	if !d.listed {
		d.head, d.tail = 0, 0
		d.idx = len(s.streams)
		d.listed = true
		s.streams = append(s.streams, d)
	}
	for len(p) > 0 {
		size := len(d.ring)
		free := size - d.pending()
		if free == 0 {
			s.drainLocked(d, max(0, size-drainBytes))
			continue
		}
		off := int(d.tail % uint64(size))
		n := min(len(p), free, size-off)
		s.mu.Unlock()
		// The lanes read only [head, tail): this part is d's alone.
		copy(d.ring[off:off+n], p[:n])
		p = p[n:]
		s.mu.Lock()
		d.tail += uint64(n)
		if !s.running && s.readyLanes() >= startLanes {
			s.running = true
			s.combineLocked(nil, 0)
		}
	}
	s.mu.Unlock()
}

// pending is the number of bytes in d's ring not yet hashed.
func (d *Digest) pending() int { return int(d.tail - d.head) }

// readyLanes is how many lanes' worth of pieces the streams hold (a
// stream with less than a piece counts for its share of one). Called with
// s.mu held.
func (s *Server) readyLanes() int {
	total := 0
	for _, d := range s.streams {
		total += min(d.pending(), pieceBytes)
	}
	return total / pieceBytes
}

// drainLocked hashes d's ring until at most keep bytes are left in it,
// with s.mu held (it is released while hashing).
func (s *Server) drainLocked(d *Digest, keep int) {
	for d.pending() > keep {
		if s.running {
			// Whoever runs the lanes picks d first (urgent) in its
			// next call, or stops and lets d take over.
			d.urgent = true
			s.idle.Wait()
			continue
		}
		d.urgent = false
		s.running = true
		if s.readyLanes() >= kernelMinLanes {
			s.combineLocked(d, keep)
			continue
		}
		// Too few streams have bytes waiting: hash d's alone.
		off := int(d.head % uint64(len(d.ring)))
		n := min(d.pending()-keep, len(d.ring)-off) // whole blocks, as all of these are
		s.mu.Unlock()
		d.soloBlocks(d.ring[off : off+n])
		s.stats.SoloBlocks.Add(int64(n / 64))
		s.mu.Lock()
		d.head += uint64(n)
		s.running = false
		s.idle.Broadcast()
	}
}

// combineLocked runs kernel calls for the streams with bytes waiting (must
// among them if not nil) until fewer than stopLanes lanes' worth are
// ready, or with must until must has at most keep bytes left or fewer than
// kernelMinLanes lanes' worth are ready; then it clears running.
// Called with s.mu held and running set by the caller; returns with s.mu
// held.
func (s *Server) combineLocked(must *Digest, keep int) {
	var lane [lanes]*Digest
	var in [lanes][]byte
	stop := stopLanes
	if must != nil {
		// must's owner waits: go on while a call still beats
		// crypto/sha256.
		stop = kernelMinLanes
	}
	for {
		if must != nil && must.pending() <= keep {
			break
		}
		if s.readyLanes() < stop {
			break
		}
		picked := s.pick(&lane, must)
		for i := range lane {
			in[i] = nil
			if i >= picked {
				lane[i] = nil
				continue
			}
			d := lane[i]
			off := int(d.head % uint64(len(d.ring)))
			n := min(d.pending(), pieceBytes, len(d.ring)-off)
			in[i] = d.ring[off : off+n]
		}
		s.mu.Unlock()
		s.kernelCall(&lane, &in)
		s.mu.Lock()
		for i, d := range lane[:picked] {
			d.head += uint64(len(in[i]))
		}
		// Writers waiting for room see it now.
		s.idle.Broadcast()
	}
	s.running = false
	s.idle.Broadcast()
}

// pick fills lane with the streams that have bytes waiting, must first,
// then those whose owners wait for them, then the fullest, and returns how
// many it picked.
func (s *Server) pick(lane *[lanes]*Digest, must *Digest) int {
	n := 0
	if must != nil {
		lane[0] = must
		n = 1
	}
	if len(s.streams) <= lanes {
		for _, d := range s.streams {
			if d != must && d.pending() > 0 {
				lane[n] = d
				n++
			}
		}
		return n
	}
	// More streams than lanes: the fullest rings go first, so that the
	// calls run full pieces and writers blocked on a full ring move.
	cand := make([]*Digest, 0, len(s.streams))
	for _, d := range s.streams {
		if d != must && d.pending() > 0 {
			cand = append(cand, d)
		}
	}
	slices.SortFunc(cand, func(a, b *Digest) int {
		if a.urgent != b.urgent {
			if a.urgent {
				return -1
			}
			return 1
		}
		return b.pending() - a.pending()
	})
	for _, d := range cand {
		if n == lanes {
			break
		}
		lane[n] = d
		n++
	}
	return n
}

// kernelCall compresses in[i] (whole blocks, at most a piece) into lane[i]'s
// chaining value for every non-nil lane, in one call.
func (s *Server) kernelCall(lane *[lanes]*Digest, in *[lanes][]byte) {
	rounds := 0
	active := uint64(0)
	total := 0
	for i, d := range lane {
		if d == nil {
			continue
		}
		rounds = max(rounds, len(in[i])/64)
		total += len(in[i]) / 64
		active |= 1 << i
		for j, w := range d.h {
			binary.LittleEndian.PutUint32(s.state[(j*lanes+i)*4:], w)
		}
	}
	if rounds == 0 {
		return
	}
	mask := s.mask[:rounds]
	for r := range mask {
		mask[r] = active
	}
	for i := range lane {
		if b := len(in[i]) / 64; active&(1<<i) != 0 && b < rounds {
			// A lane with fewer blocks than the longest sits out the
			// remaining rounds (its state is left alone).
			for r := b; r < rounds; r++ {
				mask[r] &^= 1 << i
			}
		}
	}
	block16(&s.state, &s.scratch, mask, in)
	s.stats.KernelCalls.Add(1)
	s.stats.KernelBlocks.Add(int64(total))
	s.stats.KernelRounds.Add(int64(rounds))
	for i, d := range lane {
		if d == nil {
			continue
		}
		for j := range d.h {
			d.h[j] = binary.LittleEndian.Uint32(s.state[(j*lanes+i)*4:])
		}
	}
}

// toSolo loads d's chaining value, with partial block x and length, into
// the crypto/sha256 hash d keeps for what the lanes do not hash.
func (d *Digest) toSolo(x []byte, length uint64) hash.Hash {
	if d.solo == nil {
		d.solo = sha256.New()
	}
	if err := chainstate.Load(d.solo, "sha\x03", d.h[:], x, length, d.marshal[:]); err != nil {
		// The format is crypto/sha256's own; it can only fail if Go
		// changed it, which the tests would catch first.
		panic("sha256lanes: " + err.Error())
	}
	return d.solo
}

// soloBlocks compresses whole blocks p into d's chaining value with
// crypto/sha256. The length given to it only has to be a multiple of 64 (no
// partial block); d.blocks keeps the real one.
func (d *Digest) soloBlocks(p []byte) {
	h := d.toSolo(nil, 0)
	h.Write(p)
	if err := chainstate.Read(h, d.h[:], d.marshal[:]); err != nil {
		panic("sha256lanes: " + err.Error())
	}
}
