package s3bench

import (
	"bytes"
	"io"
	"testing"
)

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPatternBodies(t *testing.T) {
	p := NewPattern(1, 4<<10)
	if p.Len() != minPatternSize {
		t.Fatalf("pattern for 4 KiB objects is %d bytes, want %d", p.Len(), minPatternSize)
	}
	if q := NewPattern(1, 4<<10); !bytes.Equal(p.Bytes(), q.Bytes()) {
		t.Fatal("same seed, different patterns")
	}
	if q := NewPattern(2, 4<<10); bytes.Equal(p.Bytes()[:64], q.Bytes()[:64]) {
		t.Fatal("different seeds, same pattern")
	}
	a1 := readAll(t, p.Body("a", 4096))
	a2 := readAll(t, p.Body("a", 4096))
	b := readAll(t, p.Body("b", 4096))
	if len(a1) != 4096 || !bytes.Equal(a1, a2) {
		t.Fatalf("body of a: %d bytes, reproducible %v", len(a1), bytes.Equal(a1, a2))
	}
	if bytes.Equal(a1, b) {
		t.Fatal("keys a and b have the same body")
	}
	if big := NewPattern(1, 1<<30); big.Len() != MaxPatternSize {
		t.Fatalf("pattern for 1 GiB objects is %d bytes, want the %d cap", big.Len(), MaxPatternSize)
	}
}

func TestBodyLargerThanPatternWraps(t *testing.T) {
	p := NewPattern(3, 1)
	size := int64(3*p.Len() + 123)
	body := readAll(t, p.Body("k", size))
	if int64(len(body)) != size {
		t.Fatalf("body is %d bytes, want %d", len(body), size)
	}
	// The body is the pattern as a ring from the key's offset.
	off := int(p.offset("k"))
	for _, i := range []int{0, 1, p.Len() - off - 1, p.Len() - off, p.Len(), 2*p.Len() + 7, int(size) - 1} {
		if want := p.Bytes()[(off+i)%p.Len()]; body[i] != want {
			t.Fatalf("byte %d = %d, want %d", i, body[i], want)
		}
	}
	// Seekable, as the SDK needs to rewind: a second read after Seek(0)
	// is the same.
	r := p.Body("k", size)
	_, _ = io.CopyN(io.Discard, r, 1000)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if again := readAll(t, r); !bytes.Equal(again, body) {
		t.Fatal("body differs after Seek(0)")
	}
}

func TestVerifier(t *testing.T) {
	p := NewPattern(1, 1)
	size := int64(p.Len() + 5000)
	body := readAll(t, p.Body("x", size))
	write := func(v *Verifier, b []byte, chunk int) {
		for len(b) > 0 {
			n := min(chunk, len(b))
			_, _ = v.Write(b[:n])
			b = b[n:]
		}
	}
	for _, chunk := range []int{1 << 20, 4096, 777} {
		v := p.Verifier("x")
		write(v, body, chunk)
		if err := v.Check(size); err != nil {
			t.Errorf("chunk %d: intact body: %v", chunk, err)
		}
	}
	bad := bytes.Clone(body)
	bad[p.Len()+10] ^= 1
	v := p.Verifier("x")
	write(v, bad, 4096)
	if err := v.Check(size); err == nil {
		t.Error("flipped byte not found")
	}
	v = p.Verifier("x")
	write(v, body[:size-1], 4096)
	if err := v.Check(size); err == nil {
		t.Error("short body passed")
	}
	v = p.Verifier("y")
	write(v, body, 4096)
	if err := v.Check(size); err == nil {
		t.Error("another key's body passed")
	}
}
