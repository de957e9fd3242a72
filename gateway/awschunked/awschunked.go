// Package awschunked decodes the aws-chunked content encoding of streaming
// S3 uploads as a stream, verifying chunk and trailer signatures on the way.
//
// Formats (S3 API reference: sigv4-streaming, sigv4-streaming-trailers,
// and the SDKs' encoders, which this decoder was checked against):
//
//	Signed (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
//	  <hex-size>;chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n\r\n
//	SignedTrailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER): the same
//	  chunks, then after the zero chunk the trailer lines and a signature:
//	  x-amz-checksum-crc32c:<b64>\r\nx-amz-trailer-signature:<sig>\r\n\r\n
//	UnsignedTrailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER):
//	  <hex-size>\r\n<data>\r\n ... 0\r\n<name>:<value>\r\n ... \r\n
//
// What is verified:
//   - Every chunk signature, as a chain from the request's seed signature
//     (a ChainVerifier, sigv4.Chain in the gateway), including the final
//     zero-size chunk's; a mismatch is SignatureDoesNotMatch.
//   - The trailer signature (AWS4-HMAC-SHA256-TRAILER over the SHA-256 of
//     the trailer lines as "name:value\n") in SignedTrailer mode.
//   - The decoded length equals x-amz-decoded-content-length when known;
//     otherwise IncompleteBody. A chunk that would exceed it is refused
//     before any of its bytes are returned.
//   - Every trailer named by x-amz-trailer is present; no other trailer is
//     accepted (MalformedTrailerError).
//
// Tolerated quirks of real clients: chunk extensions other than
// chunk-signature are ignored; lines may end in a bare "\n" (minio-go ends
// trailer lines that way, and puts an empty line before
// x-amz-trailer-signature); the final empty line may be missing; bytes
// after the end of the encoding are not read.
//
// Memory is bounded by one read buffer: chunk data is hashed as it passes
// through and a chunk's signature is checked when its last byte has been
// read. So the data of a chunk with a bad signature may already have been
// returned by Read before Read returns the error. The consumer must treat
// any error from Read as the failure of the whole request and keep nothing
// of it (the gateway commits an object only after a clean io.EOF).
// Framing bytes are never returned as data.
package awschunked

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Mode is the kind of aws-chunked body.
type Mode int

const (
	// Signed chunks, no trailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD.
	Signed Mode = iota + 1
	// SignedTrailer: signed chunks and a signed trailer:
	// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.
	SignedTrailer
	// UnsignedTrailer: plain chunks and an unsigned trailer:
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	UnsignedTrailer
)

// ModeOf maps an x-amz-content-sha256 value to its Mode.
func ModeOf(contentSHA256 string) (Mode, bool) {
	switch contentSHA256 {
	case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
		return Signed, true
	case "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER":
		return SignedTrailer, true
	case "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
		return UnsignedTrailer, true
	}
	return 0, false
}

func (m Mode) signed() bool  { return m == Signed || m == SignedTrailer }
func (m Mode) trailer() bool { return m == SignedTrailer || m == UnsignedTrailer }

// ChainVerifier checks the chained signatures of a signed body. The
// signatures are passed as sent: lower-case hex.
type ChainVerifier interface {
	VerifyChunk(dataSHA256, signature []byte) bool
	VerifyTrailer(trailerSHA256, signature []byte) bool
}

// Options describe what the request headers promise about the body.
type Options struct {
	// DecodedLength is x-amz-decoded-content-length; negative when absent.
	DecodedLength int64
	// Trailers are the lower-cased names x-amz-trailer declares.
	Trailers []string
}

// ParseTrailerHeader splits an x-amz-trailer value into lower-cased names.
func ParseTrailerHeader(v string) []string {
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// Limits on framing, so no line read is unbounded.
const (
	maxLineLen      = 4096     // a chunk header or trailer line
	maxTrailerBytes = 16 << 10 // all trailer lines together
	bufferSize      = 64 << 10 // the one read buffer
	maxSizeDigits   = 16       // hex digits of a chunk size
	sigLen          = 64       // hex digits of a signature
	trailerSigName  = "x-amz-trailer-signature"
	chunkSigExt     = "chunk-signature="
)

type state int

const (
	stHeader state = iota // before a chunk-size line
	stData                // inside chunk data
	stDone                // after the end of the encoding
)

// Reader decodes an aws-chunked body. It is not safe for concurrent use.
type Reader struct {
	br       *bufio.Reader
	mode     Mode
	v        ChainVerifier
	opts     Options
	state    state
	left     int64 // data bytes left in the current chunk
	total    int64 // data bytes returned so far
	h        hash.Hash
	sig      [sigLen]byte // signature of the current chunk
	sum      [sha256.Size]byte
	trailers map[string]string
	err      error
}

// NewReader returns a Reader decoding body. v is required for the signed
// modes and ignored for UnsignedTrailer.
func NewReader(body io.Reader, mode Mode, v ChainVerifier, opts Options) (*Reader, error) {
	switch mode {
	case Signed, SignedTrailer:
		if v == nil {
			return nil, errors.New("awschunked: signed mode without a ChainVerifier")
		}
	case UnsignedTrailer:
	default:
		return nil, errors.New("awschunked: unknown mode")
	}
	if mode == Signed && len(opts.Trailers) > 0 {
		return nil, s3err.New(s3err.InvalidRequest, "x-amz-trailer is not allowed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
	}
	r := &Reader{br: bufio.NewReaderSize(body, bufferSize), mode: mode, v: v, opts: opts}
	if mode.signed() {
		r.h = sha256.New()
	}
	return r, nil
}

// Trailers returns the trailing headers, lower-cased name to value, once
// Read has returned io.EOF; nil before.
func (r *Reader) Trailers() map[string]string {
	if r.state != stDone {
		return nil
	}
	return r.trailers
}

// Read returns decoded data. See the package comment for when signature
// errors are reported.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch r.state {
		case stDone:
			r.err = io.EOF
			return 0, io.EOF
		case stHeader:
			if err := r.readHeader(); err != nil {
				r.err = err
				return 0, err
			}
		case stData:
			if int64(len(p)) > r.left {
				p = p[:r.left]
			}
			n, err := r.br.Read(p)
			if r.h != nil {
				r.h.Write(p[:n])
			}
			r.left -= int64(n)
			r.total += int64(n)
			if r.left == 0 {
				err = r.endChunk()
			} else if errors.Is(err, io.EOF) {
				err = incomplete("the body ended inside a chunk")
			}
			if err != nil {
				r.err = err
			}
			return n, err
		}
	}
}

func incomplete(msg string) error {
	return s3err.New(s3err.IncompleteBody, "%s", msg)
}

func malformed(msg string) error {
	return s3err.New(s3err.InvalidRequest, "malformed aws-chunked encoding: %s", msg)
}

func malformedTrailer(msg string) error {
	return s3err.New(s3err.MalformedTrailerError, "%s", msg)
}

var errSignature = &s3err.Error{Code: s3err.SignatureDoesNotMatch}

// readLine reads one line of at most maxLineLen bytes and returns it
// without its "\r\n" or "\n". At the end of the body it returns what it has
// with atEOF set.
func (r *Reader) readLine() (line []byte, atEOF bool, err error) {
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if len(b) > maxLineLen {
			return nil, false, malformed("line too long")
		}
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
		return b, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, false, malformed("line too long")
	default:
		return nil, false, err
	}
	if len(b) > maxLineLen {
		return nil, false, malformed("line too long")
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b, false, nil
}

// readHeader reads a chunk-size line and its extensions.
func (r *Reader) readHeader() error {
	line, atEOF, err := r.readLine()
	if err != nil {
		return err
	}
	if atEOF {
		return incomplete("the body ended before the final chunk")
	}
	sizeField, exts, _ := cutByte(line, ';')
	sizeField = trimSpace(sizeField)
	if len(sizeField) == 0 || len(sizeField) > maxSizeDigits {
		return malformed("bad chunk size")
	}
	var size uint64
	for _, c := range sizeField {
		d, ok := hexDigit(c)
		if !ok {
			return malformed("chunk size is not hexadecimal")
		}
		size = size<<4 | uint64(d)
	}
	if size > 1<<62 {
		return malformed("chunk size too large")
	}
	var sig []byte
	for len(exts) > 0 {
		var ext []byte
		ext, exts, _ = cutByte(exts, ';')
		ext = trimSpace(ext)
		if v, ok := cutPrefix(ext, chunkSigExt); ok {
			sig = v
		}
	}
	if r.mode.signed() {
		if len(sig) != sigLen {
			return malformed("missing or malformed chunk-signature")
		}
		copy(r.sig[:], sig)
	}
	if d := r.opts.DecodedLength; d >= 0 && int64(size) > d-r.total {
		return incomplete("the chunks exceed x-amz-decoded-content-length")
	}
	if size > 0 {
		r.left = int64(size)
		r.state = stData
		if r.h != nil {
			r.h.Reset()
		}
		return nil
	}
	// The final, zero-size chunk.
	if r.mode.signed() {
		empty := sha256.Sum256(nil)
		if !r.v.VerifyChunk(empty[:], r.sig[:]) {
			return errSignature
		}
	}
	if r.mode.trailer() {
		if err := r.readTrailers(); err != nil {
			return err
		}
	} else if err := r.readFinalCRLF(); err != nil {
		return err
	}
	if d := r.opts.DecodedLength; d >= 0 && r.total != d {
		return incomplete("the decoded length differs from x-amz-decoded-content-length")
	}
	r.state = stDone
	return nil
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (r *Reader) endChunk() error {
	c, err := r.br.ReadByte()
	if err == nil && c == '\r' {
		c, err = r.br.ReadByte()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return incomplete("the body ended after chunk data")
		}
		return err
	}
	if c != '\n' {
		return malformed("chunk data is longer than its size")
	}
	r.state = stHeader
	if r.h != nil && !r.v.VerifyChunk(r.h.Sum(r.sum[:0]), r.sig[:]) {
		return errSignature
	}
	return nil
}

// readFinalCRLF reads the empty line ending a body without trailers; its
// absence is tolerated.
func (r *Reader) readFinalCRLF() error {
	line, _, err := r.readLine()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return malformed("data after the final chunk")
	}
	return nil
}

// readTrailers reads trailer lines up to the empty line (or the end of the
// body) and, in SignedTrailer mode, checks the trailer signature.
func (r *Reader) readTrailers() error {
	r.trailers = make(map[string]string, len(r.opts.Trailers))
	var canon []byte
	signed := r.mode == SignedTrailer
	sawSig := false
	read := 0
	for {
		line, atEOF, err := r.readLine()
		if err != nil {
			return err
		}
		read += len(line) + 2
		if read > maxTrailerBytes {
			return malformedTrailer("the trailer is too large")
		}
		if len(line) == 0 {
			if signed && !sawSig {
				if atEOF {
					return incomplete("the body ended before x-amz-trailer-signature")
				}
				continue // minio-go puts an empty line before the signature
			}
			break
		}
		name, value, ok := cutByte(line, ':')
		if !ok {
			return malformedTrailer("a trailer line has no ':'")
		}
		n := strings.ToLower(string(trimSpace(name)))
		value = trimSpace(value)
		switch {
		case sawSig:
			return malformedTrailer("a trailer follows x-amz-trailer-signature")
		case n == trailerSigName:
			if !signed {
				return malformedTrailer("x-amz-trailer-signature in an unsigned trailer")
			}
			sum := sha256.Sum256(canon)
			if len(value) != sigLen || !r.v.VerifyTrailer(sum[:], value) {
				return errSignature
			}
			sawSig = true
		default:
			if !declared(r.opts.Trailers, n) {
				return malformedTrailer("trailer " + n + " was not declared in x-amz-trailer")
			}
			if _, dup := r.trailers[n]; dup {
				return malformedTrailer("trailer " + n + " is repeated")
			}
			r.trailers[n] = string(value)
			canon = append(canon, n...)
			canon = append(canon, ':')
			canon = append(canon, value...)
			canon = append(canon, '\n')
		}
		if atEOF {
			if signed && !sawSig {
				return incomplete("the body ended before x-amz-trailer-signature")
			}
			break
		}
	}
	for _, n := range r.opts.Trailers {
		if _, ok := r.trailers[n]; !ok {
			return malformedTrailer("the declared trailer " + n + " is missing")
		}
	}
	return nil
}

func declared(names []string, n string) bool {
	for _, d := range names {
		if d == n {
			return true
		}
	}
	return false
}

func cutByte(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return nil, false
	}
	return b[len(prefix):], true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
