package object

import (
	"crypto/md5"
	"fmt"
	"hash"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/md5lanes"
	md5simd "github.com/minio/md5-simd"
)

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMD5Streams: n bodies hashed at once, as n concurrent PUTs do,
// 64 KiB writes (about what one socket read returns). cpu-ms/MiB is the CPU
// the process spent per MiB hashed, the figure that matters on a machine
// whose cores are all busy.
func BenchmarkMD5Streams(b *testing.B) {
	const body = 16 << 20
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	srv := md5simd.NewServer()
	defer srv.Close()
	lanes := md5lanes.NewServer()
	impls := []struct {
		name string
		new  func() (hash.Hash, func())
	}{
		{"crypto-md5", func() (hash.Hash, func()) { return md5.New(), func() {} }},
		{"md5-simd", func() (hash.Hash, func()) { h := srv.NewHash(); return h, h.Close }},
		{"md5lanes", func() (hash.Hash, func()) { return lanes.New(), func() {} }},
	}
	for _, impl := range impls {
		for _, n := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/streams=%d", impl.name, n), func(b *testing.B) {
				b.SetBytes(int64(n) * body)
				cpu := processCPU(b)
				for b.Loop() {
					var wg sync.WaitGroup
					for range n {
						wg.Go(func() {
							h, done := impl.new()
							defer done()
							for off := 0; off < body; off += len(buf) {
								h.Write(buf)
							}
							h.Sum(nil)
						})
					}
					wg.Wait()
				}
				mib := float64(b.N) * float64(n) * body / (1 << 20)
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(time.Millisecond)/mib, "cpu-ms/MiB")
			})
		}
	}
}

// Bodies hashed while others are in flight go to the lanes, a lone or
// small one to crypto/md5; either way the sum is MD5.
func TestETagHash(t *testing.T) {
	if !md5lanes.Available() {
		t.Skip("no AVX-512: every body gets crypto/md5")
	}
	const n = 6
	hs := make([]hash.Hash, n)
	releases := make([]func(), n)
	for i := range n {
		hs[i], releases[i] = NewETagHash(-1)
	}
	inLanes := 0
	for i, h := range hs {
		if _, ok := h.(*md5lanes.Digest); ok {
			inLanes++
		} else if i >= md5MinStreams-1 {
			t.Errorf("body %d of %d in flight did not get the lanes", i+1, n)
		}
	}
	if inLanes == 0 {
		t.Fatal("no body got the lanes")
	}
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			data := make([]byte, 3<<20+i*1000+7)
			for j := range data {
				data[j] = byte(j*7 + i)
			}
			// Odd-sized writes, as socket reads come, from a buffer
			// overwritten after each (as the encoder's stripes are).
			buf := make([]byte, 70000)
			for off := 0; off < len(data); {
				end := min(off+1+(off*13)%70000, len(data))
				n := copy(buf, data[off:end])
				h.Write(buf[:n])
				clear(buf[:n])
				off = end
			}
			if got, want := h.Sum(nil), md5.Sum(data); string(got) != string(want[:]) {
				t.Errorf("body %d: sum %x, want %x", i, got, want)
			}
		})
	}
	wg.Wait()
	for _, r := range releases {
		r()
	}
	if md5Streams.Load() != 0 {
		t.Errorf("%d bodies still counted after release", md5Streams.Load())
	}
	if h, release := NewETagHash(100 << 10); true {
		if _, ok := h.(*md5lanes.Digest); ok {
			t.Error("a 100 KiB body got the lanes")
		}
		release()
	}
}
