package sha256lanes

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/hashtest"
)

func needKernel(t testing.TB) {
	if !Available() {
		t.Skip("no AVX-512 on this machine: the lanes are never used")
	}
}

func TestKTable(t *testing.T) {
	// FIPS 180-4's first, a middle and the last constants.
	for i, want := range map[int]uint32{0: 0x428a2f98, 1: 0x71374491, 31: 0x14292967, 63: 0xc67178f2} {
		if got := kTable[i]; got != want {
			t.Errorf("K[%d] = %08x, want %08x", i, got, want)
		}
	}
}

// laneStart returns a chaining value to start a lane from: the state after
// one random block, so that no two lanes start alike.
func laneStart(rng *rand.Rand) [8]uint32 {
	var d Digest
	d.Reset()
	first := make([]byte, 64)
	for j := range first {
		first[j] = byte(rng.Uint32())
	}
	d.soloBlocks(first)
	return d.h
}

// checkKernel runs one kernel call on in from the given states and
// compares every lane's state with crypto/sha256's after the same blocks.
func checkKernel(t *testing.T, what string, start *[lanes][8]uint32, in *[lanes][]byte) {
	t.Helper()
	var state [8 * lanes]uint32
	var want [lanes][8]uint32
	for i := range in {
		for j, w := range start[i] {
			state[j*lanes+i] = w
		}
		d := Digest{h: start[i]}
		d.soloBlocks(in[i])
		want[i] = d.h
	}
	var masks [pieceBlocks]uint16
	block16(&state, masks[:], in)
	for i := range in {
		for j := range 8 {
			if got := state[j*lanes+i]; got != want[i][j] {
				t.Fatalf("%s: lane %d (%d blocks) word %d: %08x, want %08x", what, i, len(in[i])/64, j, got, want[i][j])
			}
		}
	}
}

// The kernel on its own: lanes of every length (none included) in one call,
// each from a state of its own, against crypto/sha256's state after the
// same blocks; the lanes with fewer blocks (and the empty ones) must keep
// their state through the rounds they sit out.
func TestKernelAgainstCryptoSHA256(t *testing.T) {
	needKernel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		var in [lanes][]byte
		var start [lanes][8]uint32
		for i := range in {
			n := rng.IntN(40)
			if trial%7 == 0 {
				n = 40 // all lanes equal
			}
			in[i] = make([]byte, n*64)
			for j := range in[i] {
				in[i][j] = byte(rng.Uint32())
			}
			start[i] = laneStart(rng)
		}
		checkKernel(t, fmt.Sprintf("trial %d", trial), &start, &in)
	}
}

// Every number of busy lanes, 1 to 16, in every position: the busy lanes
// (chosen at random) have uneven block counts, the others none.
func TestKernelLaneCounts(t *testing.T) {
	needKernel(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for busy := 1; busy <= lanes; busy++ {
		for trial := range 20 {
			var in [lanes][]byte
			var start [lanes][8]uint32
			for k, i := range rng.Perm(lanes)[:busy] {
				n := 1 + rng.IntN(20)
				if k == 0 {
					n = 20 // one lane runs every round
				}
				in[i] = make([]byte, n*64)
				for j := range in[i] {
					in[i][j] = byte(rng.Uint32())
				}
			}
			for i := range start {
				start[i] = laneStart(rng)
			}
			checkKernel(t, fmt.Sprintf("%d busy, trial %d", busy, trial), &start, &in)
		}
	}
}

// The kernel reads exactly its lanes' blocks: input slices that end at a
// page the process cannot read would fault otherwise. Here, each lane's
// input is followed by bytes that would change its hash if read as a
// block, and inputs alias one buffer at odd offsets.
func TestKernelReadsOnlyItsBlocks(t *testing.T) {
	needKernel(t)
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 64*64+17)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	var in [lanes][]byte
	var start [lanes][8]uint32
	for i := range in {
		off := i*3 + 1 // unaligned, overlapping the others
		in[i] = buf[off : off+64*(i%5)]
		start[i] = laneStart(rng)
	}
	checkKernel(t, "aliased", &start, &in)
}

// Many streams at once through one server, each written in odd-sized
// pieces from a buffer it overwrites as soon as Write returns (as the
// gateway reuses its read buffers): every sum must be crypto/sha256's.
func TestConcurrentStreamsReusedBuffers(t *testing.T) {
	for _, streams := range []int{1, 3, 16, 17, 40} {
		t.Run(fmt.Sprint(streams), func(t *testing.T) {
			testStreams(t, NewServer(), streams, 3<<20)
		})
	}
}

func testStreams(t *testing.T, s *Server, streams, size int) {
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for g := range streams {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			want := sha256.New()
			total := size + rng.IntN(4096)
			var d *Digest
			switch g % 3 {
			case 0:
				d = s.New()
			case 1:
				d = s.NewSized(int64(total))
			case 2:
				// A small ring (the size is only a hint).
				d = s.NewSized(int64(1 + rng.IntN(100<<10)))
			}
			if err := hashtest.WriteStream(rng, total, d, want); err != nil {
				errs <- fmt.Errorf("stream %d: %w", g, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Every length around the block and lane boundaries, in one Write and
// byte by byte, and Reset.
func TestLengths(t *testing.T) {
	s := NewServer()
	data := make([]byte, ringBytes+pieceBytes+3*64)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	d := s.New()
	for n := 0; n <= len(data); n++ {
		near := func(m int) bool { return n >= m-130 && n <= m+130 }
		if n > 300 && n%4093 != 0 && !near(pieceBytes) && !near(ringBytes) && !near(len(data)) {
			continue
		}
		want := sha256.Sum256(data[:n])
		d.Reset()
		d.Write(data[:n])
		if got := d.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%d bytes in one write: %x, want %x", n, got, want)
		}
		d.Reset()
		for i := 0; i < n; {
			// Pieces of up to 4 KiB, then of up to 97 bytes over the
			// last 4 KiB, which is where n sits near a piece or the
			// ring's end: 97-byte pieces all the way took ~20,000
			// writes per n near the ring's 1 MiB, most of this test's
			// time under -race.
			k := min(n-i, 1+i%97)
			if n-i > 4096 {
				k = 1 + i%4093
			}
			d.Write(data[i : i+k])
			i += k
		}
		if got := d.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%d bytes in pieces: %x, want %x", n, got, want)
		}
	}
}

// The kernel path is taken, and the solo path too, when the lanes are
// forced either way.
func TestBothPaths(t *testing.T) {
	needKernel(t)
	defer func(k, s int) { kernelMinLanes, startLanes = k, s }(kernelMinLanes, startLanes)
	for _, min := range []int{1, lanes + 1} {
		kernelMinLanes, startLanes = min, min
		s := NewServer()
		testStreams(t, s, 8, 1<<20)
		st := s.Stats()
		t.Logf("kernelMinLanes %d: %d kernel calls, %d kernel blocks in %d rounds, %d solo blocks",
			min, st.KernelCalls.Load(), st.KernelBlocks.Load(), st.KernelRounds.Load(), st.SoloBlocks.Load())
		if min == 1 && st.KernelBlocks.Load() == 0 {
			t.Error("no block went through the kernel")
		}
		if min > lanes && (st.KernelBlocks.Load() != 0 || st.SoloBlocks.Load() == 0) {
			t.Error("blocks went through the kernel with the kernel off")
		}
	}
}

func FuzzWrites(f *testing.F) {
	f.Add([]byte("abc"), uint16(1), uint16(5000))
	f.Add(make([]byte, 1000), uint16(64), uint16(1024))
	s := NewServer()
	f.Fuzz(func(t *testing.T, seed []byte, a, b uint16) {
		// A body built from the seed, written in pieces of sizes a, b,
		// a, b, ...
		data := bytes.Repeat(append(seed, byte(a), byte(b)), 1+int(a%40))
		want := sha256.Sum256(data)
		d := s.New()
		sizes := [2]int{1 + int(a)%20000, 1 + int(b)%20000}
		for i, k := 0, 0; i < len(data); k++ {
			n := min(len(data)-i, sizes[k%2])
			d.Write(data[i : i+n])
			i += n
		}
		if got := d.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%x, want %x", got, want)
		}
	})
}

// Concurrent streams of random lengths, each written in random splits, as
// the fuzzer picks them; with the lanes' thresholds lowered half the time,
// so that the kernel also hashes the small inputs a fuzzer makes.
func FuzzConcurrentStreams(f *testing.F) {
	f.Add(uint64(1), uint8(16), uint32(100<<10), false)
	f.Add(uint64(2), uint8(3), uint32(5000), true)
	f.Add(uint64(3), uint8(40), uint32(70<<10), true)
	f.Fuzz(func(t *testing.T, seed uint64, streams uint8, maxLen uint32, eager bool) {
		n := 1 + int(streams)%40
		maxLen = 1 + maxLen%(512<<10)
		if eager {
			defer func(k, s int) { kernelMinLanes, startLanes = k, s }(kernelMinLanes, startLanes)
			kernelMinLanes, startLanes = 1, 2
		}
		s := NewServer()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for g := range n {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(seed, uint64(g)))
				data := make([]byte, rng.IntN(int(maxLen)+1))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				var d *Digest
				if rng.IntN(2) == 0 {
					d = s.New()
				} else {
					d = s.NewSized(int64(rng.IntN(len(data) + 1)))
				}
				buf := make([]byte, 0, len(data))
				for i := 0; i < len(data); {
					k := min(len(data)-i, 1+rng.IntN(1+rng.IntN(70<<10)))
					// The caller's buffer is overwritten once Write
					// returns.
					buf = append(buf[:0], data[i:i+k]...)
					d.Write(buf)
					clear(buf)
					i += k
				}
				if got, want := d.Sum(nil), sha256.Sum256(data); !bytes.Equal(got, want[:]) {
					errs <- fmt.Errorf("stream %d (%d bytes): %x, want %x", g, len(data), got, want)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// Streams that stop half-way (Close, or Reset and start again) leave the
// others' sums right and the server's list empty.
func TestCloseAndReset(t *testing.T) {
	s := NewServer()
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			buf := make([]byte, 100<<10)
			d := s.New()
			for range 10 {
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				d.Write(buf)
			}
			switch g % 3 {
			case 0:
				d.Close() // abandoned
				return
			case 1:
				d.Reset()
			}
			want := sha256.New()
			for range 5 {
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				n := 1 + rng.IntN(len(buf))
				d.Write(buf[:n])
				want.Write(buf[:n])
			}
			if g%3 == 1 {
				if got, w := d.Sum(nil), want.Sum(nil); !bytes.Equal(got, w) {
					t.Errorf("stream %d after Reset: %x, want %x", g, got, w)
				}
			} else {
				d.Close()
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.streams) != 0 || s.running {
		t.Errorf("after every stream closed: %d listed, running %v", len(s.streams), s.running)
	}
}
