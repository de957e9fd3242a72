package awschunked

import (
	"crypto/sha256"
	"io"
	"strconv"
	"strings"
)

// ChainSigner is the client side of ChainVerifier (sigv4.Chain is one).
type ChainSigner interface {
	SignChunk(dataSHA256 []byte) string
	SignTrailer(trailerSHA256 []byte) string
}

// Trailer is one trailing header.
type Trailer struct{ Name, Value string }

// Encode writes data as an aws-chunked body of the given mode the way the
// AWS documentation describes it, in chunks of chunkSize bytes (the last
// may be shorter), followed by the trailers. s is needed for the signed
// modes. It is meant for tests and tools.
func Encode(w io.Writer, data []byte, chunkSize int, mode Mode, s ChainSigner, trailers []Trailer) error {
	var b strings.Builder
	chunk := func(d []byte) {
		b.WriteString(strconv.FormatInt(int64(len(d)), 16))
		if mode.signed() {
			sum := sha256.Sum256(d)
			b.WriteString(";" + chunkSigExt + s.SignChunk(sum[:]))
		}
		b.WriteString("\r\n")
		b.Write(d)
		if len(d) > 0 {
			b.WriteString("\r\n")
		}
	}
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		chunk(data[:n])
		data = data[n:]
	}
	chunk(nil)
	if mode.trailer() {
		var canon strings.Builder
		for _, t := range trailers {
			canon.WriteString(strings.ToLower(t.Name) + ":" + t.Value + "\n")
			b.WriteString(t.Name + ":" + t.Value + "\r\n")
		}
		if mode.signed() {
			sum := sha256.Sum256([]byte(canon.String()))
			b.WriteString(trailerSigName + ":" + s.SignTrailer(sum[:]) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}
