//go:build !linux

package s3bench

// oDirect is 0 where direct I/O has no open flag: the disk ceiling then
// writes through the page cache, as the blob node does there.
const oDirect = 0
