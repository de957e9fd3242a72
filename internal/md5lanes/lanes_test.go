package md5lanes

import (
	"bytes"
	"crypto/md5"
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
	// RFC 1321's first, a middle and last constants.
	for i, want := range map[int]uint32{0: 0xd76aa478, 1: 0xe8c7b756, 31: 0x8d2a4c8a, 63: 0xeb86d391} {
		if got := kTable[i]; got != want {
			t.Errorf("K[%d] = %08x, want %08x", i, got, want)
		}
	}
}

// The kernel on its own: lanes of every length (none included) in one call,
// each from a state of its own, against crypto/md5's state after the same
// blocks; the lanes with fewer blocks (and the empty ones) must keep their
// state through the rounds they sit out.
func TestKernelAgainstCryptoMD5(t *testing.T) {
	needKernel(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		var in [lanes][]byte
		var start [lanes][4]uint32
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

// The kernel reads exactly its lanes' blocks: input slices that end at a
// page the process cannot read would fault otherwise. Here, each lane's
// input is followed by bytes that would change its hash if read as a
// block, and inputs alias one buffer at odd offsets.
func TestKernelReadsOnlyItsBlocks(t *testing.T) {
	needKernel(t)
	buf := make([]byte, 64*64+17)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	var in [lanes][]byte
	var start [lanes][4]uint32
	for i := range in {
		off := i*3 + 1 // unaligned, overlapping the others
		in[i] = buf[off : off+64*(i%5)]
		var d Digest
		d.Reset()
		start[i] = d.h
	}
	checkKernel(t, "aliased", &start, &in)
}

// checkKernel runs one kernel call on in, lane i starting from start[i],
// and compares every lane with crypto/md5's state after the same blocks.
func checkKernel(t *testing.T, what string, start *[lanes][4]uint32, in *[lanes][]byte) {
	t.Helper()
	var state [4 * lanes]uint32
	var want [lanes][4]uint32
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
		for j := range 4 {
			if got := state[j*lanes+i]; got != want[i][j] {
				t.Fatalf("%s: lane %d (%d blocks) word %d: %08x, want %08x", what, i, len(in[i])/64, j, got, want[i][j])
			}
		}
	}
}

// laneStart returns a chaining value to start a lane from: the state after
// one random block, so that no two lanes start alike.
func laneStart(rng *rand.Rand) [4]uint32 {
	var d Digest
	d.Reset()
	first := make([]byte, 64)
	for j := range first {
		first[j] = byte(rng.Uint32())
	}
	d.soloBlocks(first)
	return d.h
}

// Many streams at once through one server, each written in odd-sized
// pieces from a buffer it overwrites as soon as Write returns (as the
// gateway reuses its read buffers): every sum must be crypto/md5's.
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
			want := md5.New()
			total := size + rng.IntN(4096)
			d := s.New()
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

// Every length around the block and piece boundaries, in one Write and
// in pieces, and Reset.
func TestLengths(t *testing.T) {
	s := NewServer()
	data := make([]byte, 3*pieceBytes+3*64)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	d := s.New()
	for n := 0; n <= len(data); n++ {
		near := func(m int) bool { return n >= m-130 && n <= m+130 }
		if n > 300 && n%4093 != 0 && !near(pieceBytes) && !near(2*pieceBytes) && !near(len(data)) {
			continue
		}
		want := md5.Sum(data[:n])
		d.Reset()
		d.Write(data[:n])
		if got := d.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%d bytes in one write: %x, want %x", n, got, want)
		}
		d.Reset()
		for i := 0; i < n; {
			k := min(n-i, 1+i%97)
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
	defer func(k int) { kernelMinLanes = k }(kernelMinLanes)
	for _, min := range []int{1, lanes + 1} {
		kernelMinLanes = min
		s := NewServer()
		testStreams(t, s, 8, 1<<20)
		st := s.Stats()
		t.Logf("kernelMinLanes %d: %d kernel calls, %d kernel blocks in %d rounds, %d solo blocks",
			min, st.KernelCalls.Load(), st.KernelBlocks.Load(), st.KernelRounds.Load(), st.SoloBlocks.Load())
		if min == 1 && (st.KernelBlocks.Load() == 0 || st.SoloBlocks.Load() != 0) {
			t.Error("blocks went through crypto/md5 with the kernel always on")
		}
		if min > lanes && (st.KernelBlocks.Load() != 0 || st.SoloBlocks.Load() == 0) {
			t.Error("blocks went through the kernel with the kernel off")
		}
	}
}

// Writers that wait for each other share kernel calls: with 16 writers
// released together, most blocks go through calls of several lanes.
func TestWritersShareCalls(t *testing.T) {
	needKernel(t)
	s := NewServer()
	testStreams(t, s, 16, 4<<20)
	st := s.Stats()
	r := st.KernelRounds.Load()
	t.Logf("%d kernel calls, %d kernel blocks in %d rounds, %d solo blocks", st.KernelCalls.Load(), st.KernelBlocks.Load(), r, st.SoloBlocks.Load())
	if r == 0 || st.KernelBlocks.Load() < 2*r {
		t.Errorf("%d blocks in %d rounds: writers did not share calls", st.KernelBlocks.Load(), r)
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
		want := md5.Sum(data)
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

// Streams that Reset half-way and start again leave the others' sums
// right, and nothing waits once every writer has returned.
func TestReset(t *testing.T) {
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
			d.Reset()
			want := md5.New()
			for range 5 {
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				n := 1 + rng.IntN(len(buf))
				d.Write(buf[:n])
				want.Write(buf[:n])
			}
			if got, w := d.Sum(nil), want.Sum(nil); !bytes.Equal(got, w) {
				t.Errorf("stream %d after Reset: %x, want %x", g, got, w)
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) != 0 || s.running {
		t.Errorf("after every writer returned: %d waiting, running %v", len(s.waiting), s.running)
	}
}
