package blob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// Chunks are written in aligned buffers with direct I/O and a buffered
// tail: every length around the buffer and alignment boundaries, read in
// pieces of every kind, must come back byte for byte, with and without a
// declared size.
func TestStorePutLengths(t *testing.T) {
	s := openTestStore(t, 0)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*directBufSize+directAlign+7)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, directAlign - 1, directAlign, directAlign + 1, 3*directAlign + 17,
		256<<10 - 1, 256 << 10, 256<<10 + 1, 1<<20 - 1, 1 << 20, 1<<20 + directAlign + 5,
		directBufSize - 1, directBufSize, directBufSize + 1, directBufSize + directAlign,
		2*directBufSize + directAlign - 3, len(data)}
	readers := map[string]func([]byte) io.Reader{
		"whole":   func(b []byte) io.Reader { return bytes.NewReader(b) },
		"half":    func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"one":     func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b[:min(len(b), 3*directAlign)])) },
		"dataEOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for _, size := range sizes {
		for name, mk := range readers {
			for _, declared := range []bool{true, false} {
				want := data[:size]
				if name == "one" {
					want = want[:min(size, 3*directAlign)]
				}
				id := randomID(t, 1)
				declaredSize := int64(-1)
				if declared {
					declaredSize = int64(len(want))
				}
				what := fmt.Sprintf("%d bytes, %s reads, declared %v", len(want), name, declared)
				n, err := s.Put(ctx, id, mk(want), declaredSize)
				if err != nil || n != int64(len(want)) {
					t.Fatalf("%s: Put = %d, %v", what, n, err)
				}
				f, info, err := s.Open(ctx, id)
				if err != nil {
					t.Fatalf("%s: Open: %v", what, err)
				}
				got, err := io.ReadAll(f)
				f.Close()
				if err != nil || info.Size != int64(len(want)) || !bytes.Equal(got, want) {
					t.Fatalf("%s: read back %d bytes (info %d), equal %v, %v", what, len(got), info.Size, bytes.Equal(got, want), err)
				}
			}
		}
	}
}

// On Linux, a filesystem that takes O_DIRECT (the test's temporary
// directory, normally) gets the upload with direct I/O: the flag is on the
// temporary file's descriptor while the upload streams.
func TestStorePutUsesDirectIO(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("direct I/O is wired up on Linux only")
	}
	s := openTestStore(t, 0)
	if probe, err := os.OpenFile(s.tmpDir+"/probe", os.O_CREATE|os.O_WRONLY|oDirect, 0o600); err != nil {
		t.Skipf("this filesystem refuses O_DIRECT: %v", err)
	} else {
		probe.Close()
		os.Remove(probe.Name())
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), randomID(t, 2), pr, 3*directBufSize)
		done <- err
	}()
	// One whole buffer makes it to the file before the upload stalls.
	if _, err := pw.Write(make([]byte, directBufSize+10)); err != nil {
		t.Fatal(err)
	}
	flags, err := tempFileFlags(t, s.tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	pw.CloseWithError(errDisk)
	if err := <-done; err == nil {
		t.Fatal("a failed upload was stored")
	}
	if flags&oDirect == 0 {
		t.Errorf("temporary chunk file open with flags %#o, no O_DIRECT (%#o)", flags, oDirect)
	}
}

// tempFileFlags finds the descriptor this process holds on the one file in
// dir and returns its open flags from /proc/self/fdinfo.
func tempFileFlags(t *testing.T, dir string) (int64, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			return 0, err
		}
		for line := range strings.Lines(string(info)) {
			var flags int64
			if _, err := fmt.Sscanf(line, "flags: %o", &flags); err == nil {
				return flags, nil
			}
		}
		return 0, fmt.Errorf("no flags in fdinfo of %s", target)
	}
	return 0, fmt.Errorf("no open file in %s", dir)
}

// A chunk gets the smallest buffer class that holds its declared size, and
// no more than largeBufLimit uploads hold a largest-class buffer at once.
func TestTempChunkBufferClasses(t *testing.T) {
	dir := t.TempDir()
	open := func(size int64) *tempChunk {
		t.Helper()
		cf, _, err := createTempChunk(dir, randomID(t, 1), size, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cf.f.Close() })
		return cf
	}
	for _, c := range []struct {
		size int64
		want int
	}{{0, 256 << 10}, {4097, 256 << 10}, {256 << 10, 256 << 10}, {256<<10 + 1, 1 << 20}, {1 << 20, 1 << 20},
		{1<<20 + 1, directBufSize}, {64 << 20, directBufSize}, {-1, directBufSize}} {
		cf := open(c.size)
		if len(cf.buf) != c.want {
			t.Errorf("size %d: %d-byte buffer, want %d", c.size, len(cf.buf), c.want)
		}
		cf.release()
	}
	base := largeBufsInUse.Load()
	var held []*tempChunk
	for range largeBufLimit + 4 {
		held = append(held, open(-1))
	}
	large := 0
	for _, cf := range held {
		if len(cf.buf) == directBufSize {
			large++
		} else if len(cf.buf) != 1<<20 {
			t.Errorf("past the limit: %d-byte buffer, want 1 MiB", len(cf.buf))
		}
	}
	if want := largeBufLimit - int(base); large != want {
		t.Errorf("%d uploads got a %d-byte buffer, want %d", large, directBufSize, want)
	}
	for _, cf := range held {
		cf.release()
	}
	if n := largeBufsInUse.Load(); n != base {
		t.Errorf("%d large buffers in use after every release, want %d", n, base)
	}
}
