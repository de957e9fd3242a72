package object

import (
	"crypto/md5"
	"hash"
	"sync"
	"sync/atomic"

	md5simd "github.com/minio/md5-simd"
)

// The ETag is the MD5 of the body, and MD5 was the gateway's largest cost
// on large PUTs (39% of its CPU in the first profiles): crypto/md5 is
// inherently serial, one 64-byte block after another, ~0.9 GB/s per core.
// github.com/minio/md5-simd hashes up to 16 independent streams at once in
// the lanes of AVX-512 (8 with AVX2) registers, from one server goroutine
// that gathers the next block of every stream writing to it. Measured here
// (BenchmarkMD5Streams, CPU per MiB hashed): 16 concurrent bodies cost
// 0.24 ms/MiB against crypto/md5's 1.35, 8 cost 0.39, 4 cost 0.66; but 1 or
// 2 bodies cost ~1.75, more than crypto/md5, since lanes run empty and each
// 32 KiB goes through the server's channels.
//
// So a body is hashed by the shared server only when enough other large
// bodies are being hashed at the same time for the lanes to fill; a lone
// PUT keeps crypto/md5. The choice is made when the body starts and holds
// for its whole length (an MD5 state cannot move between the two).
const (
	// simdMinStreams is the number of large bodies being hashed at once,
	// this one included, from which md5-simd pays.
	simdMinStreams = 3
	// simdMinSize is the smallest body (when its size is known) worth the
	// server's round trips; smaller ones always use crypto/md5.
	simdMinSize = 256 << 10
)

// md5Server is the process's md5-simd server, started on first use. It is
// shared by every Store in the process on purpose: the more streams it
// sees, the fuller its lanes. It holds no state between hashes, so sharing
// it couples nothing else; it lives as long as the process (one goroutine
// waiting on a channel when idle).
var md5Server = sync.OnceValue(md5simd.NewServer)

// md5Streams counts the large bodies being hashed now, by either hash.
var md5Streams atomic.Int64

// newETagHash returns the MD5 to hash a body of the given size (-1 when
// unknown) with, and a release to call once its Sum has been taken.
func newETagHash(size int64) (hash.Hash, func()) {
	if size >= 0 && size < simdMinSize {
		return md5.New(), func() {}
	}
	n := md5Streams.Add(1)
	if n < simdMinStreams {
		return md5.New(), func() { md5Streams.Add(-1) }
	}
	h := md5Server().NewHash()
	return h, func() {
		// Close unregisters the stream from the server; the server
		// would otherwise keep it forever.
		h.Close()
		md5Streams.Add(-1)
	}
}
