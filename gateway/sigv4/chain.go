package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// Chain is the signature chain of a streaming (aws-chunked) upload
// (sigv4-streaming, sigv4-streaming-trailers): every chunk's signature
// covers the previous signature, starting from the request's seed
// signature, so chunks can be neither altered, dropped nor reordered.
//
// A chunk's string to sign is
//
//	AWS4-HMAC-SHA256-PAYLOAD \n X-Amz-Date \n scope \n previous-signature \n
//	hex(SHA-256("")) \n hex(SHA-256(chunk data))
//
// and the trailer's (signed trailer mode) is
//
//	AWS4-HMAC-SHA256-TRAILER \n X-Amz-Date \n scope \n previous-signature \n
//	hex(SHA-256(trailer headers as "name:value\n" lines))
//
// A Chain is not safe for concurrent use.
type Chain struct {
	mac     hash.Hash // HMAC-SHA256 keyed with the signing key
	amzDate string
	scope   string
	prev    [2 * sha256.Size]byte // previous signature, hex
	buf     []byte
	sum     [2 * sha256.Size]byte
}

// NewChain starts a chain from a signing key, the request's X-Amz-Date,
// its credential scope and its (seed) signature in hex.
func NewChain(signingKey []byte, amzDate, scope, seed string) *Chain {
	c := &Chain{mac: hmac.New(sha256.New, signingKey), amzDate: amzDate, scope: scope}
	copy(c.prev[:], seed)
	return c
}

var emptyHashHex = []byte(EmptySHA256)

// sign computes the next signature for a string to sign of the given
// algorithm and hash lines, in hex, into c.sum.
func (c *Chain) sign(algorithm string, lines ...[]byte) []byte {
	b := c.buf[:0]
	b = append(b, algorithm...)
	b = append(b, '\n')
	b = append(b, c.amzDate...)
	b = append(b, '\n')
	b = append(b, c.scope...)
	b = append(b, '\n')
	b = append(b, c.prev[:]...)
	for _, l := range lines {
		b = append(b, '\n')
		b = append(b, l...)
	}
	c.buf = b
	c.mac.Reset()
	c.mac.Write(b)
	var raw [sha256.Size]byte
	hex.Encode(c.sum[:], c.mac.Sum(raw[:0]))
	return c.sum[:]
}

func hexOf(sum []byte) []byte {
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

// VerifyChunk checks the signature (hex, as sent) of the next chunk whose
// data hashes to dataSHA256, and advances the chain when it matches.
func (c *Chain) VerifyChunk(dataSHA256 []byte, signature []byte) bool {
	want := c.sign("AWS4-HMAC-SHA256-PAYLOAD", emptyHashHex, hexOf(dataSHA256))
	if !hmac.Equal(want, signature) {
		return false
	}
	c.prev = c.sum
	return true
}

// VerifyTrailer checks the signature of the trailing headers whose
// canonical form hashes to trailerSHA256, and advances the chain.
func (c *Chain) VerifyTrailer(trailerSHA256 []byte, signature []byte) bool {
	want := c.sign("AWS4-HMAC-SHA256-TRAILER", hexOf(trailerSHA256))
	if !hmac.Equal(want, signature) {
		return false
	}
	c.prev = c.sum
	return true
}

// SignChunk returns the signature of the next chunk, in hex, and advances
// the chain. It is the client side of VerifyChunk.
func (c *Chain) SignChunk(dataSHA256 []byte) string {
	s := string(c.sign("AWS4-HMAC-SHA256-PAYLOAD", emptyHashHex, hexOf(dataSHA256)))
	c.prev = c.sum
	return s
}

// SignTrailer returns the trailer signature, in hex, and advances the chain.
func (c *Chain) SignTrailer(trailerSHA256 []byte) string {
	s := string(c.sign("AWS4-HMAC-SHA256-TRAILER", hexOf(trailerSHA256)))
	c.prev = c.sum
	return s
}
