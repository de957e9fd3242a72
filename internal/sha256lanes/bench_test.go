package sha256lanes

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
	"syscall"
	"testing"
	"time"
)

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKernel: one kernel call on 16 KiB per lane, busy lanes 1..16,
// against crypto/sha256 on the same bytes (one lane's worth per op). The
// ratio sets kernelMinLanes.
func BenchmarkKernel(b *testing.B) {
	needKernel(b)
	var in [lanes][]byte
	for i := range in {
		in[i] = make([]byte, pieceBlocks*64)
		for j := range in[i] {
			in[i][j] = byte(i + j)
		}
	}
	var state [8 * lanes]uint32
	var masks [pieceBlocks]uint16
	for _, busy := range []int{1, 2, 4, 6, 7, 8, 12, 16} {
		b.Run(fmt.Sprintf("lanes=%d", busy), func(b *testing.B) {
			var use [lanes][]byte
			copy(use[:busy], in[:busy])
			b.SetBytes(int64(busy) * pieceBlocks * 64)
			for b.Loop() {
				block16(&state, masks[:], &use)
			}
		})
	}
	b.Run("crypto-sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(pieceBlocks * 64)
		for b.Loop() {
			h.Write(in[0])
		}
	})
}

// BenchmarkKernelCold is BenchmarkKernel on bytes that have left the
// caches, as the rings' bytes mostly have by the time the lanes read them
// in the gateway: each lane walks its own 64 MiB of a 1 GiB buffer, 16 KiB
// per call.
func BenchmarkKernelCold(b *testing.B) {
	needKernel(b)
	const region = 64 << 20
	buf := make([]byte, lanes*region)
	for i := range buf {
		buf[i] = byte(i)
	}
	var state [8 * lanes]uint32
	var masks [pieceBlocks]uint16
	for _, busy := range []int{1, 8, 16} {
		b.Run(fmt.Sprintf("lanes=%d", busy), func(b *testing.B) {
			b.SetBytes(int64(busy) * pieceBytes)
			off := 0
			for b.Loop() {
				var use [lanes][]byte
				for i := range busy {
					use[i] = buf[i*region+off : i*region+off+pieceBytes]
				}
				block16(&state, masks[:], &use)
				off = (off + pieceBytes) % region
			}
		})
	}
	b.Run("crypto-sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(pieceBytes)
		off := 0
		for b.Loop() {
			h.Write(buf[off : off+pieceBytes])
			off = (off + pieceBytes) % len(buf)
		}
	})
}

// BenchmarkStreams: n goroutines each hashing a 16 MiB body in 256 KiB
// writes, crypto/sha256 per stream vs one shared Server. cpu-ms/MiB is the
// process's CPU per MiB hashed. The streams do nothing else, so they write
// all the time and the lanes fill as they never do in the gateway, where
// each upload hashes between socket reads and other work: the lanes' figure
// is a bound, not a forecast (docs/perf/put-path.md has the gateway's).
func BenchmarkStreams(b *testing.B) {
	const body = 16 << 20
	const write = 256 << 10
	impls := []struct {
		name string
		new  func(s *Server) hash.Hash
	}{
		{"crypto-sha256", func(*Server) hash.Hash { return sha256.New() }},
		{"lanes", func(s *Server) hash.Hash { return s.New() }},
	}
	for _, impl := range impls {
		for _, n := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/streams=%d", impl.name, n), func(b *testing.B) {
				s := NewServer()
				bufs := make([][]byte, n)
				for i := range bufs {
					bufs[i] = make([]byte, 4*write)
					for j := range bufs[i] {
						bufs[i][j] = byte(i*3 + j)
					}
				}
				b.SetBytes(int64(n) * body)
				cpu := processCPU(b)
				for b.Loop() {
					var wg sync.WaitGroup
					for i := range n {
						wg.Go(func() {
							h := impl.new(s)
							for off := 0; off < body; off += write {
								o := off % len(bufs[i])
								h.Write(bufs[i][o : o+write])
							}
							h.Sum(nil)
						})
					}
					wg.Wait()
				}
				mib := float64(b.N) * float64(n) * body / (1 << 20)
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(time.Millisecond)/mib, "cpu-ms/MiB")
				st := s.Stats()
				if r := st.KernelRounds.Load(); r > 0 {
					b.ReportMetric(float64(st.KernelBlocks.Load())/float64(r), "lanes/round")
				}
				if k, so := st.KernelBlocks.Load(), st.SoloBlocks.Load(); k+so > 0 {
					b.ReportMetric(float64(k)/float64(k+so), "kernel-share")
				}
			})
		}
	}
}
