// Package sse is server-side encryption for the gateway: sealing each
// object's own data key under a master key (SSE-S3) or under the key a
// client sends (SSE-C), and encrypting and decrypting object bytes with
// it, whole or any byte range of them.
//
// The stored bytes are DARE 2.0 streams (github.com/minio/sio): the
// plaintext cut into 64 KiB packages, each sealed with AES-256-GCM under
// its sequence number, the last one marked final. A range is read by
// fetching only the packages that cover it and decrypting them from their
// sequence number, so a ranged GET of a large object costs no more than
// its range. An object written in one PUT is one stream (number 0); a
// multipart object is one stream per part (the part's number), each under
// its own key derived from the data key, so parts are encrypted and
// stored independently as they arrive.
package sse

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/minio/sio"
)

// KeySize is the size of every key here: data keys, master keys and the
// keys SSE-C clients send.
const KeySize = 32

// DataKey is one object's own key. It is stored only sealed.
type DataKey [KeySize]byte

// NewDataKey returns a random data key.
func NewDataKey() (DataKey, error) {
	var k DataKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("make a data key: %w", err)
	}
	return k, nil
}

// ErrSealedKey is a sealed data key that the key given does not open: the
// wrong master or client key, or a damaged record.
var ErrSealedKey = errors.New("sealed data key does not open with this key")

// sealedVersion is the first byte of a sealed key; another layout would
// use another.
const sealedVersion = 1

// Seal encrypts dk under kek (a master key or a client's key) with
// AES-256-GCM. context binds the sealed key to what it protects (the
// kind of encryption): a key sealed for one context does not open in
// another.
func Seal(kek []byte, dk DataKey, context string) ([]byte, error) {
	aead, err := newGCM(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+KeySize+aead.Overhead())
	out[0] = sealedVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal a data key: %w", err)
	}
	return aead.Seal(out, out[1:], dk[:], []byte(context)), nil
}

// Open decrypts a key sealed by Seal under kek and context.
func Open(kek, sealed []byte, context string) (DataKey, error) {
	var dk DataKey
	aead, err := newGCM(kek)
	if err != nil {
		return dk, err
	}
	ns := aead.NonceSize()
	if len(sealed) != 1+ns+KeySize+aead.Overhead() || sealed[0] != sealedVersion {
		return dk, fmt.Errorf("%w: %d bytes, not a sealed key", ErrSealedKey, len(sealed))
	}
	plain, err := aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(context))
	if err != nil {
		return dk, ErrSealedKey
	}
	copy(dk[:], plain)
	return dk, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key of %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// streamKey is the key of one stream of an object: parts of a multipart
// object are separate streams, each under its own key, so no two streams
// of an object share a key even when their random nonces would collide.
func streamKey(dk DataKey, stream uint32) []byte {
	m := hmac.New(sha256.New, dk[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], stream)
	m.Write([]byte("cairn sse stream"))
	m.Write(n[:])
	return m.Sum(nil)
}

func config(dk DataKey, stream uint32) sio.Config {
	return sio.Config{
		MinVersion:   sio.Version20,
		MaxVersion:   sio.Version20,
		CipherSuites: []byte{sio.AES_256_GCM},
		Key:          streamKey(dk, stream),
	}
}

// OpaqueETag is the ETag of an object (or part) whose plaintext's MD5 must
// not be shown, as S3 does not show it for SSE-C objects: that MD5
// encrypted under a key derived from the data key. It is stable for the
// object and changes with its contents, as an ETag must.
func OpaqueETag(dk DataKey, plainMD5 []byte) (string, error) {
	m := hmac.New(sha256.New, dk[:])
	m.Write([]byte("cairn sse etag"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return "", err
	}
	if len(plainMD5) != block.BlockSize() {
		return "", fmt.Errorf("an MD5 of %d bytes", len(plainMD5))
	}
	out := make([]byte, block.BlockSize())
	block.Encrypt(out, plainMD5)
	return hex.EncodeToString(out), nil
}

// PackageOverhead is what encryption adds to every 64 KiB of plaintext
// (and to a shorter stream): a package's header and tag.
const PackageOverhead = 32

const (
	packagePayload = 64 << 10                         // plaintext bytes per package
	packageSize    = packagePayload + PackageOverhead // with its header and tag
	// MaxPlainSize is the largest stream DARE takes; far above the
	// largest object or part S3 allows (5 GiB).
	MaxPlainSize = int64(1) << 40
)

// EncryptedSize is the size of the stream that encrypts plain bytes.
func EncryptedSize(plain int64) int64 {
	n := plain / packagePayload * packageSize
	if rest := plain % packagePayload; rest > 0 {
		n += rest + packageSize - packagePayload
	}
	return n
}

// Encrypt returns the stream encrypting everything r yields, as stream
// number stream of the object whose data key is dk.
func Encrypt(r io.Reader, dk DataKey, stream uint32) (io.Reader, error) {
	er, err := sio.EncryptReader(r, config(dk, stream))
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return er, nil
}

// Span is where bytes [off, off+n) of a stream's plaintext are in the
// stream: the packages holding them, cipher bytes [CipherOff,
// CipherOff+CipherLen), and where in those packages' plaintext the range
// begins.
type Span struct {
	CipherOff, CipherLen int64
	seq                  uint32
	skip, n              int64
	plainSize, off       int64 // the stream's size and the range's start
}

// Len is the number of plaintext bytes in the span.
func (s Span) Len() int64 { return s.n }

// ToPackageEnd is how many of the span's bytes after its first k lie in
// the package that holds byte k: 0 when byte k starts a package.
func (s Span) ToPackageEnd(k int64) int64 {
	if r := (s.off + k) % packagePayload; r != 0 {
		return min(packagePayload-r, s.n-k)
	}
	return 0
}

// Rest is the span of the plaintext after the span's first k bytes.
func (s Span) Rest(k int64) Span { return SpanOf(s.plainSize, s.off+k, s.n-k) }

// SpanOf is the span of plaintext bytes [off, off+n) in a stream of
// plainSize plaintext bytes. The range must lie within the stream.
func SpanOf(plainSize, off, n int64) Span {
	if n == 0 {
		return Span{}
	}
	first := off / packagePayload
	last := (off + n - 1) / packagePayload
	end := min((last+1)*packagePayload, plainSize)
	return Span{
		CipherOff: first * packageSize,
		CipherLen: EncryptedSize(end) - first*packageSize,
		seq:       uint32(first),
		skip:      off - first*packagePayload,
		n:         n,
		plainSize: plainSize,
		off:       off,
	}
}

// Decrypt returns the plaintext of the span, given a reader of exactly its
// cipher bytes. A package that does not authenticate (wrong key, damaged
// or substituted bytes) fails the read: no wrong byte is ever returned.
func (s Span) Decrypt(cipherBytes io.Reader, dk DataKey, stream uint32) (io.Reader, error) {
	if s.n == 0 {
		return eof{}, nil
	}
	if s.CipherLen <= packageSize {
		// One package (every small object): decrypted whole through
		// DecryptTo, whose package buffer goes back to sio's pool, where
		// a reader's stays out of it unless it is read to its end — a
		// 64 KiB allocation per small GET (8% of the gateway's CPU on
		// GET 4 KiB with SSE-S3).
		c := make([]byte, s.CipherLen)
		if _, err := io.ReadFull(cipherBytes, c); err != nil {
			return nil, fmt.Errorf("decrypt: read %d bytes: %w", s.CipherLen, err)
		}
		var plain bytes.Buffer
		plain.Grow(int(s.n))
		if _, err := s.DecryptTo(&plain, bytes.NewReader(c), dk, stream); err != nil {
			return nil, err
		}
		return &plain, nil
	}
	cfg := config(dk, stream)
	cfg.SequenceNumber = s.seq
	dr, err := sio.DecryptReader(cipherBytes, cfg)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if s.skip > 0 {
		if _, err := io.CopyN(io.Discard, dr, s.skip); err != nil {
			return nil, fmt.Errorf("decrypt: %w", err)
		}
	}
	return &exactReader{r: dr, left: s.n}, nil
}

// DecryptTo writes the plaintext of the span to w, given a reader of
// exactly its cipher bytes, and returns how many bytes it wrote. It is
// Decrypt for a caller that writes on: the ciphertext is decrypted as it
// is written into the decrypter (a reader with WriteTo, such as the object
// layer's, keeps its own fast path and read-ahead), package by package,
// with no buffer of the plaintext in between.
func (s Span) DecryptTo(w io.Writer, cipherBytes io.Reader, dk DataKey, stream uint32) (int64, error) {
	if s.n == 0 {
		return 0, nil
	}
	cfg := config(dk, stream)
	cfg.SequenceNumber = s.seq
	rw := &rangeWriter{w: w, skip: s.skip, left: s.n}
	dw, err := sio.DecryptWriter(rw, cfg)
	if err != nil {
		return 0, fmt.Errorf("decrypt: %w", err)
	}
	_, err = io.Copy(dw, cipherBytes)
	if cerr := dw.Close(); err == nil {
		err = cerr
	}
	if err == nil && rw.left > 0 {
		err = fmt.Errorf("decrypt: stream ended %d bytes early: %w", rw.left, io.ErrUnexpectedEOF)
	}
	if err != nil && rw.werr == nil {
		err = fmt.Errorf("decrypt: %w", err)
	}
	return rw.written, err
}

// rangeWriter passes on the left bytes of what is written to it after
// the first skip, and drops the rest (the ends of the first and last
// packages outside the range).
type rangeWriter struct {
	w          io.Writer
	skip, left int64
	written    int64
	werr       error // the error of w, passed on as it is
}

func (r *rangeWriter) Write(p []byte) (int, error) {
	n := len(p)
	if r.skip > 0 {
		d := min(r.skip, int64(len(p)))
		p, r.skip = p[d:], r.skip-d
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	if len(p) > 0 {
		m, err := r.w.Write(p)
		r.written += int64(m)
		r.left -= int64(m)
		if err != nil {
			r.werr = err
			return 0, err
		}
	}
	return n, nil
}

// exactReader yields exactly left bytes of r: an r that ends sooner is an
// error, never a short plaintext that looks whole.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = fmt.Errorf("decrypt: stream ended %d bytes early: %w", e.left, io.ErrUnexpectedEOF)
	}
	if err == nil && e.left == 0 {
		err = io.EOF
	}
	return n, err
}

// Stream is one encrypted stream of an object: its number (0 for an
// object written in one PUT, the part number in a multipart object) and
// the size of its plaintext.
type Stream struct {
	Number    uint32
	PlainSize int64
}

// Piece is the share of a plaintext range that lies in one stream of an
// object whose streams are stored one after another.
type Piece struct {
	Stream uint32
	// Base is where the stream begins in the object's stored bytes: the
	// piece's cipher bytes are [Base+Span.CipherOff, +Span.CipherLen).
	Base int64
	Span Span
}

// Pieces cuts plaintext bytes [off, off+n) of an object made of streams
// into the pieces each stream holds, in order.
func Pieces(streams []Stream, off, n int64) []Piece {
	var out []Piece
	var plainAt, base int64
	for _, s := range streams {
		if n == 0 {
			break
		}
		if off < plainAt+s.PlainSize {
			within := off - plainAt
			take := min(n, s.PlainSize-within)
			out = append(out, Piece{Stream: s.Number, Base: base, Span: SpanOf(s.PlainSize, within, take)})
			off += take
			n -= take
		}
		plainAt += s.PlainSize
		base += EncryptedSize(s.PlainSize)
	}
	return out
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }
