package object

import (
	"crypto/md5"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/internal/md5lanes"
)

// The ETag is the MD5 of the body, and MD5 was the gateway's largest cost
// on large PUTs (39% of its CPU in the first profiles): crypto/md5 is
// inherently serial, one 64-byte block after another, ~0.86 GB/s per core.
// internal/md5lanes hashes up to 16 independent streams at once in the
// lanes of AVX-512 registers: a kernel call costs the same with 1 busy lane
// as with 16 (0.69 and 9.3 GB/s, BenchmarkKernel). Its writers wait for
// their bytes to be hashed, and whoever runs the lanes hashes every
// waiting writer's next piece in each call, straight from their buffers.
// Before, github.com/minio/md5-simd did this from a server goroutine fed
// 32 KiB copies through channels; under PUT 64 MiB its copy, scheduling
// and scalar fallback cost about as much as its kernel
// (docs/perf/put-path.md, h-s7put).
//
// A lone body keeps crypto/md5: with no other writer to share the calls
// with, the lanes would only add their bookkeeping. The choice is made
// when the body starts and holds for its whole length.
const (
	// md5MinStreams is the number of large bodies being hashed at once,
	// this one included, from which the lanes are used.
	md5MinStreams = 2
	// md5MinSize is the smallest body (when its size is known) worth the
	// lanes; smaller ones always use crypto/md5.
	md5MinSize = 256 << 10
)

// md5Lanes is the process's lanes scheduler, shared by every Store in the
// process on purpose: the more writers it sees, the fuller its lanes. It
// has no goroutine and holds no buffers.
var md5Lanes = sync.OnceValue(md5lanes.NewServer)

// md5Streams counts the large bodies being hashed now, by either hash.
var md5Streams atomic.Int64

// NewETagHash returns the MD5 to hash a body of the given size (-1 when
// unknown) with, and a release to call once its Sum has been taken (or the
// body abandoned). The gateway hashes the plaintext of encrypted bodies
// with it, sharing the lanes with the object layer's bodies.
func NewETagHash(size int64) (hash.Hash, func()) {
	if !md5lanes.Available() || (size >= 0 && size < md5MinSize) {
		return md5.New(), func() {}
	}
	release := func() { md5Streams.Add(-1) }
	if md5Streams.Add(1) < md5MinStreams {
		return md5.New(), release
	}
	return md5Lanes().New(), release
}
