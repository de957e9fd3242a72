package s3bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Disk ceilings: on a machine whose disk is slower than its CPUs, a PUT is
// bound by what the disk takes, not by the CPU path put-path-4+2 derives.
const (
	// CeilingDiskWrite is the disk's write throughput in the blob nodes'
	// pattern: a file per chunk, written in 4 MiB direct writes (through
	// the page cache where the filesystem refuses O_DIRECT) and synced
	// before it counts.
	CeilingDiskWrite = "disk-write"
	// CeilingPutDisk derives from disk-write the most object data a 4+2
	// PUT can store per second: every byte is written 1.5 times.
	CeilingPutDisk = "put-disk-4+2"
)

// diskWriteBuf is the size of each write, blob.directBufSize's.
const diskWriteBuf = 4 << 20

var diskCeilingSeq atomic.Uint64

// measureDiskWrite writes files of fileSize bytes in dir from c goroutines
// for d, syncing and removing each, and returns the MiB/s of the files
// synced and whether the writes were direct.
func measureDiskWrite(ctx context.Context, dir string, fileSize int64, c int, d time.Duration) (float64, bool, error) {
	fileSize = max(fileSize&^(directAlignment-1), directAlignment)
	var direct atomic.Bool
	direct.Store(oDirect != 0)
	// One buffer for every writer: writes only read it, and filling one
	// per file would put that work inside the measurement.
	buf := alignedBuf(min(int64(diskWriteBuf), fileSize))
	mib, err := measureLoop(ctx, c, d, func() (int64, error) {
		return writeSyncedFile(dir, fileSize, buf, &direct)
	})
	return mib, direct.Load(), err
}

// directAlignment is what O_DIRECT needs of buffers, offsets and lengths
// on the filesystems we run on.
const directAlignment = 4096

func alignedBuf(n int64) []byte {
	b := make([]byte, n+directAlignment)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlignment - 1))
	b = b[off : off+int(n) : off+int(n)]
	for i := range b {
		b[i] = byte(i*7 + i>>12) // not zeros: no filesystem may skip them
	}
	return b
}

// writeSyncedFile writes one file of size bytes from buf, syncs it and
// removes it. direct is cleared, for this and later files, when the
// filesystem refuses O_DIRECT.
func writeSyncedFile(dir string, size int64, buf []byte, direct *atomic.Bool) (int64, error) {
	name := filepath.Join(dir, fmt.Sprintf("disk-ceiling-%d-%d", os.Getpid(), diskCeilingSeq.Add(1)))
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if direct.Load() {
		flags |= oDirect
	}
	f, err := os.OpenFile(name, flags, 0o600)
	if err != nil && direct.Load() && errors.Is(err, syscall.EINVAL) {
		direct.Store(false)
		f, err = os.OpenFile(name, flags&^oDirect, 0o600)
	}
	if err != nil {
		return 0, fmt.Errorf("disk ceiling: %w", err)
	}
	defer os.Remove(name)
	defer f.Close()
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			return 0, fmt.Errorf("disk ceiling: write %s: %w", name, err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("disk ceiling: sync %s: %w", name, err)
	}
	return size, nil
}

// PutDiskCeiling derives put-disk-4+2 from the disk-write ceiling measured
// at the highest concurrency: a 4+2 PUT writes 1.5 times its bytes.
func PutDiskCeiling(cs []Ceiling) (Ceiling, bool) {
	disk, ok := highestCeiling(cs, CeilingDiskWrite)
	if !ok || disk.MiBPerSec <= 0 {
		return Ceiling{}, false
	}
	return Ceiling{
		Name:        CeilingPutDisk,
		What:        fmt.Sprintf("derived: %s c%d / 1.5, a 4+2 PUT writes 1.5x its bytes", disk.Name, disk.Concurrency),
		Concurrency: disk.Concurrency,
		MiBPerSec:   disk.MiBPerSec / 1.5,
		LoadAvg:     disk.LoadAvg,
	}, true
}
