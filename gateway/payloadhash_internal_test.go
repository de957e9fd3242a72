package gateway

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/cairnstore/cairn/internal/sha256lanes"
)

// A large body's payload hash is chosen at its first bytes, not when it is
// opened: one opened alone that starts writing once enough others have been
// opened goes through the lanes, one that writes while alone does not, and
// both sums are SHA-256's.
func TestPayloadHashChosenAtFirstWrite(t *testing.T) {
	if !sha256lanes.Available() {
		t.Skip("no AVX-512: every payload gets crypto/sha256")
	}
	if n := shaStreams.Load(); n != 0 {
		t.Fatalf("%d payloads counted before the test", n)
	}
	data := make([]byte, 5<<20+3)
	for i := range data {
		data[i] = byte(i*5 + i>>9)
	}
	want := sha256.Sum256(data)
	write := func(h any) []byte {
		w := h.(interface {
			Write([]byte) (int, error)
			Sum([]byte) []byte
		})
		for off := 0; off < len(data); off += 100 << 10 {
			w.Write(data[off:min(off+100<<10, len(data))])
		}
		return w.Sum(nil)
	}

	alone, releaseAlone := newPayloadHash(int64(len(data)))
	if got := write(alone); !bytes.Equal(got, want[:]) {
		t.Fatalf("alone: %x, want %x", got, want)
	}
	if alone.(*payloadHash).lanes != nil {
		t.Error("a payload written while alone went through the lanes")
	}
	releaseAlone()

	first, releaseFirst := newPayloadHash(int64(len(data)))
	var releases []func()
	for range shaLanesMinStreams - 1 {
		_, r := newPayloadHash(-1)
		releases = append(releases, r)
	}
	if got := write(first); !bytes.Equal(got, want[:]) {
		t.Fatalf("first of %d: %x, want %x", shaLanesMinStreams, got, want)
	}
	if first.(*payloadHash).lanes == nil {
		t.Errorf("a payload opened alone and written with %d in flight did not go through the lanes", shaLanesMinStreams)
	}
	releaseFirst()
	for _, r := range releases {
		r()
	}
	if n := shaStreams.Load(); n != 0 {
		t.Errorf("%d payloads counted after every release", n)
	}
}
