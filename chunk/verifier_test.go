package chunk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// verifyStream runs a Verifier over b, cut into writes by split.
func verifyStream(b []byte, split func(left int) int) (Header, Framing, error) {
	v := NewVerifier()
	for len(b) > 0 {
		n := min(max(split(len(b)), 1), len(b))
		if _, err := v.Write(b[:n]); err != nil {
			// Close must repeat the verdict.
			if _, _, cerr := v.Close(); cerr != err {
				return Header{}, Framing{}, errors.Join(err, errors.New("Close gave another error"), cerr)
			}
			return Header{}, Framing{}, err
		}
		b = b[n:]
	}
	return v.Close()
}

// sameVerdict fails unless the Verifier, fed b in pieces of many sizes,
// agrees with Verify: both pass with the same header and framing, or both
// fail with the same kind of error.
func sameVerdict(t *testing.T, what string, b []byte) {
	t.Helper()
	wh, wf, werr := Verify(bytes.NewReader(b))
	rng := rand.New(rand.NewPCG(uint64(len(b)), 1))
	splits := map[string]func(int) int{
		"whole":   func(left int) int { return left },
		"bytes":   func(int) int { return 1 },
		"threes":  func(int) int { return 3 },
		"random":  func(left int) int { return 1 + rng.IntN(left) },
		"smalls":  func(int) int { return 1 + rng.IntN(6) },
		"frame-1": func(int) int { return 10 + ChecksumSize - 1 },
	}
	for name, split := range splits {
		gh, gf, gerr := verifyStream(b, split)
		switch {
		case (werr == nil) != (gerr == nil):
			t.Fatalf("%s, %s writes: Verifier = %v, Verify = %v", what, name, gerr, werr)
		case werr == nil && (gh != wh || gf != wf):
			t.Fatalf("%s, %s writes: Verifier = %+v %+v, Verify = %+v %+v", what, name, gh, gf, wh, wf)
		case werr != nil && (errors.Is(werr, ErrCorrupt) != errors.Is(gerr, ErrCorrupt) || errors.Is(werr, ErrVersion) != errors.Is(gerr, ErrVersion)):
			t.Fatalf("%s, %s writes: Verifier = %v, Verify = %v", what, name, gerr, werr)
		}
	}
}

func TestVerifierAgreesWithVerify(t *testing.T) {
	p := Params{Scheme{3, 2}, 10}
	c := mustCodec(t, p)
	for _, size := range []int{0, 1, 12, 29, 30, 31, 95} {
		for i, ch := range encodeBytes(t, c, SegmentID{7}, randBytes(3, size)) {
			if _, _, err := verifyStream(ch, func(int) int { return 1 }); err != nil {
				t.Fatalf("size %d shard %d: %v", size, i, err)
			}
			sameVerdict(t, "whole chunk", ch)
			for at := range ch {
				bad := bytes.Clone(ch)
				bad[at] ^= 1 << (at % 8)
				sameVerdict(t, "flipped byte", bad)
			}
			for n := range len(ch) {
				sameVerdict(t, "truncated", ch[:n])
			}
			sameVerdict(t, "trailing byte", append(bytes.Clone(ch), 0))
			sameVerdict(t, "trailing frame", append(bytes.Clone(ch), ch[HeaderSize:]...))
		}
	}
}

func TestVerifierFailsOnce(t *testing.T) {
	c := mustCodec(t, Params{Scheme{2, 1}, 8})
	ch := encodeBytes(t, c, SegmentID{1}, randBytes(1, 40))[1]
	ch[HeaderSize+2] ^= 0xff
	v := NewVerifier()
	_, err := v.Write(ch)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Write of a corrupt chunk = %v", err)
	}
	if _, err2 := v.Write([]byte{1}); err2 != err {
		t.Errorf("Write after failure = %v, want %v", err2, err)
	}
	if _, _, err2 := v.Close(); err2 != err {
		t.Errorf("Close after failure = %v, want %v", err2, err)
	}
}

func FuzzVerifier(f *testing.F) {
	c := mustCodec(f, Params{Scheme{2, 1}, 16})
	for _, size := range []int{0, 1, 33, 64} {
		for _, ch := range encodeBytes(f, c, SegmentID{2}, randBytes(uint64(size), size)) {
			f.Add(ch, uint8(7))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		wh, wf, werr := Verify(bytes.NewReader(b))
		gh, gf, gerr := verifyStream(b, func(int) int { return int(step) })
		if (werr == nil) != (gerr == nil) || werr == nil && (gh != wh || gf != wf) {
			t.Fatalf("Verifier = %+v %+v %v; Verify = %+v %+v %v", gh, gf, gerr, wh, wf, werr)
		}
	})
}

func BenchmarkVerifier(b *testing.B) {
	p := DefaultParams(DefaultScheme())
	c := mustCodec(b, p)
	ch := encodeBytes(b, c, SegmentID{}, randBytes(1, benchSegment))[0]
	b.Run("Verify", func(b *testing.B) {
		b.SetBytes(int64(len(ch)))
		for b.Loop() {
			if _, _, err := Verify(bytes.NewReader(ch)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verifier-64KiB-writes", func(b *testing.B) {
		b.SetBytes(int64(len(ch)))
		for b.Loop() {
			if _, _, err := verifyStream(ch, func(int) int { return 64 << 10 }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
