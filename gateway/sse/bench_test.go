package sse

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkEncrypt is the gateway's added CPU per byte of an encrypted
// PUT: sealing a 16 MiB body into a stream.
func BenchmarkEncrypt(b *testing.B) {
	dk := DataKey{1}
	plain := make([]byte, 16<<20)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		r, err := Encrypt(bytes.NewReader(plain), dk, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt is the same for a GET of the whole stream.
func BenchmarkDecrypt(b *testing.B) {
	dk := DataKey{1}
	plain := make([]byte, 16<<20)
	r, _ := Encrypt(bytes.NewReader(plain), dk, 0)
	c, _ := io.ReadAll(r)
	sp := SpanOf(int64(len(plain)), 0, int64(len(plain)))
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		pr, err := sp.Decrypt(bytes.NewReader(c), dk, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, pr); err != nil {
			b.Fatal(err)
		}
	}
}
