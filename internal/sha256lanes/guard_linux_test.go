package sha256lanes

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// Every lane's input ends where an unreadable page begins, and lanes stop
// after different numbers of blocks: a kernel that read one byte past a
// lane's last block, or read for a lane that sits out a round, would
// fault.
func TestKernelStopsAtGuardPage(t *testing.T) {
	needKernel(t)
	page := syscall.Getpagesize()
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 20 {
		var in [lanes][]byte
		var start [lanes][8]uint32
		for i := range in {
			n := rng.IntN(page/64 + 1) // 0 to a page's worth of blocks
			mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				t.Fatalf("map guard pages: %v", err)
			}
			defer syscall.Munmap(mem)
			if err := syscall.Mprotect(mem[page:], syscall.PROT_NONE); err != nil {
				t.Fatalf("protect guard page: %v", err)
			}
			in[i] = mem[page-64*n : page]
			for j := range in[i] {
				in[i][j] = byte(rng.Uint32())
			}
			start[i] = laneStart(rng)
		}
		checkKernel(t, fmt.Sprintf("trial %d", trial), &start, &in)
	}
}
