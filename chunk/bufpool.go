package chunk

import (
	"sync"

	"github.com/klauspost/reedsolomon"
)

// BlockPool recycles the block buffers of Readers and Rebuilds. A GET of a
// small object otherwise allocates (and the runtime zeroes) K blocks of
// BlockSize+ChecksumSize for one stripe and drops them: at 1 MiB objects
// that was an eighth of the gateway's CPU. A pool belongs to whoever makes
// the Readers (one per object layer), not to the package, so two nodes in
// one process share nothing. The zero value is not usable; nil is, and
// means no pooling. Safe for concurrent use.
type BlockPool struct {
	mu    sync.Mutex
	pools map[int]*sync.Pool // by buffer length: one per block size in use
}

// NewBlockPool returns an empty pool.
func NewBlockPool() *BlockPool { return &BlockPool{pools: make(map[int]*sync.Pool)} }

func (p *BlockPool) pool(n int) *sync.Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.pools[n]
	if !ok {
		sp = new(sync.Pool)
		p.pools[n] = sp
	}
	return sp
}

// get returns a buffer of length n, aligned for the SIMD kernels. Its
// contents are whatever the last user left: every caller overwrites the
// bytes it uses (a block is read in full or rebuilt in full).
func (p *BlockPool) get(n int) []byte {
	if p != nil {
		if b, ok := p.pool(n).Get().(*[]byte); ok {
			return (*b)[:n]
		}
	}
	return reedsolomon.AllocAligned(1, n)[0]
}

// put hands back a buffer get returned, at the length get gave it. The
// caller must not touch b afterwards.
func (p *BlockPool) put(b []byte) {
	if p == nil || b == nil {
		return
	}
	p.pool(len(b)).Put(&b)
}
