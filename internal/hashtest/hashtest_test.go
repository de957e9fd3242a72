package hashtest

import (
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"testing"
)

// lateHash reads the bytes it is given only at Sum, as a lane that kept
// the caller's buffer would.
type lateHash struct {
	hash.Hash
	held [][]byte
}

func (l *lateHash) Write(p []byte) (int, error) {
	l.held = append(l.held, p)
	return len(p), nil
}

func (l *lateHash) Sum(b []byte) []byte {
	for _, p := range l.held {
		l.Hash.Write(p)
	}
	l.held = nil
	return l.Hash.Sum(b)
}

func TestWriteStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if err := WriteStream(rng, 1<<20, sha256.New(), sha256.New()); err != nil {
		t.Fatalf("the same hash twice: %v", err)
	}
	if err := WriteStream(rng, 1<<20, &lateHash{Hash: sha256.New()}, sha256.New()); err == nil {
		t.Fatal("a hash that reads the buffer after Write returned passed")
	}
}
