package gateway

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/checksum"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/internal/sha256lanes"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// MaxPutSize is the largest object a single PUT (or part) may carry: 5 GiB.
const MaxPutSize = 5 << 30

// body is a request body on its way into the object layer, with everything
// that must be verified about it once it has been read in full: the
// payload SHA-256 the signature covers, Content-MD5, x-amz-checksum-*
// (from headers or aws-chunked trailers) and, for aws-chunked bodies, the
// chunk and trailer signatures. Nothing is committed unless finish
// succeeds, so a body that fails any check stores nothing.
type body struct {
	r    io.Reader // what the object layer reads
	size int64     // decoded size; -1 when unknown

	src     io.Reader // the decoded stream, drained by finish
	sha     hash.Hash // payload SHA-256, when the signature covers one
	shaWant []byte
	md5Want []byte // Content-MD5, decoded

	sums    *checksums
	chunked *awschunked.Reader // the aws-chunked decoder, if any
}

// openBody prepares r's body for an object write.
func (d *routerDeps) openBody(r *http.Request) (*body, error) {
	return d.openBodyLimit(r, MaxPutSize, bodyChecksums{fallback: checksum.DefaultObject, typ: checksum.FullObject.String()})
}

// openPartBody prepares a part's body: the upload's checksum algorithm is
// computed even when the request names none, and the default one
// (partAlgorithm) in an upload that has none.
func (d *routerDeps) openPartBody(r *http.Request, up *pb.MultipartUpload) (*body, error) {
	return d.openBodyLimit(r, MaxPutSize, bodyChecksums{fallback: partAlgorithm(up), required: uploadAlgorithm(up)})
}

// bodyChecksums says what a body's x-amz-checksum-* headers mean.
type bodyChecksums struct {
	// fallback is computed when the request names no algorithm: an
	// object's default (checksum.DefaultObject), or a multipart
	// upload's algorithm, so that every part has the checksum Complete
	// combines.
	fallback checksum.Algorithm
	// required, unless None, is the only algorithm the request may name
	// (a part of an upload that has one).
	required checksum.Algorithm
	// typ is the type stored with the checksum (FULL_OBJECT for an
	// object, "" for a part).
	typ string
	// notOfBody: the headers describe something else (Complete's name
	// the whole object's checksum), so none is computed over the body.
	notOfBody bool
}

// openBodyLimit is openBody for a body of at most limit bytes; a body of
// unknown length (no Content-Length, not aws-chunked) is accepted only when
// limit is small (an XML document).
func (d *routerDeps) openBodyLimit(r *http.Request, limit int64, bc bodyChecksums) (*body, error) {
	st := stateOf(r)
	b := &body{size: r.ContentLength}
	var src io.Reader = r.Body
	payload := anonymousPayload(r)
	if st.auth != nil {
		payload = st.auth.Payload
	}
	if strings.HasPrefix(payload, "STREAMING-") {
		dec, size, err := d.openChunked(r, st, payload)
		if err != nil {
			return nil, err
		}
		src, b.size, b.chunked = dec, size, dec
	} else if r.ContentLength < 0 && limit > maxXMLBody {
		return nil, s3err.MissingContentLength
	}
	if b.size > limit {
		if limit == MaxPutSize {
			return nil, s3err.New(s3err.EntityTooLarge, "Your proposed upload exceeds the maximum allowed size of %d bytes.", int64(MaxPutSize))
		}
		return nil, s3err.MaxMessageLengthExceeded
	}
	if v := r.Header.Get("Content-MD5"); v != "" {
		sum, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(sum) != md5.Size {
			return nil, s3err.InvalidDigest
		}
		b.md5Want = sum
	}
	if st.auth != nil {
		if want, ok := st.auth.PayloadHash(); ok {
			var release func()
			b.sha, release = newPayloadHash(b.size)
			// Not on the request's context: it also ends when the
			// client goes away, while the handler may still be
			// writing to the hash.
			st.afterHandler = append(st.afterHandler, release)
			b.shaWant = want[:]
			src = io.TeeReader(src, b.sha)
		}
	}
	if !bc.notOfBody {
		sums, err := newChecksums(r, bc)
		if err != nil {
			return nil, err
		}
		b.sums = sums
		if sums != nil {
			src = io.TeeReader(src, sums)
		}
	}
	if b.size < 0 {
		// No declared length (aws-chunked without
		// x-amz-decoded-content-length): enforce the limit as it streams.
		src = &limitReader{r: src, left: limit}
	}
	b.src = &clientReader{r: src}
	b.r = b.src
	return b, nil
}

// clientReader reports a body cut short by the client as errClientGone
// (wrapping the original error), so it is answered as a timeout rather
// than an internal error.
type clientReader struct{ r io.Reader }

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		var se *s3err.Error
		var code s3err.Code
		if !errors.As(err, &se) && !errors.As(err, &code) {
			err = fmt.Errorf("%w: %w", errClientGone, err)
		}
	}
	return n, err
}

// finish drains what is left of the body (nothing, for a body of the
// declared size; an aws-chunked body still has its final chunk and its
// trailers) and verifies it: the ETag md5 (hex) against Content-MD5, the
// payload hash, the chunk signatures and the checksums. It returns the
// checksums to store.
func (b *body) finish(md5hex string) ([]*pb.Checksum, error) {
	var one [1]byte
	for {
		n, err := b.src.Read(one[:])
		if n > 0 {
			return nil, s3err.New(s3err.IncompleteBody, "The body is longer than its declared length.")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if b.md5Want != nil {
		got, err := hex.DecodeString(md5hex)
		if err != nil || !bytes.Equal(got, b.md5Want) {
			return nil, s3err.BadDigest
		}
	}
	if b.sha != nil && !bytes.Equal(b.sha.Sum(nil), b.shaWant) {
		return nil, s3err.XAmzContentSHA256Mismatch
	}
	if b.sums == nil {
		return nil, nil
	}
	var trailers map[string]string
	if b.chunked != nil {
		trailers = b.chunked.Trailers()
	}
	return b.sums.verify(trailers)
}

// decodedLength reads x-amz-decoded-content-length (-1 when absent).
func decodedLength(r *http.Request) (int64, error) {
	v := r.Header.Get("x-amz-decoded-content-length")
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, s3err.New(s3err.InvalidArgument, "x-amz-decoded-content-length is not a valid length.")
	}
	return n, nil
}

// readSmallBody reads a request body that is not object data (an XML
// document) in full, verified like object data: Content-MD5, payload hash,
// checksums, aws-chunked signatures.
func (d *routerDeps) readSmallBody(r *http.Request) ([]byte, error) {
	return d.readXMLBody(r, bodyChecksums{})
}

// readCompleteBody is readSmallBody for CompleteMultipartUpload, whose
// x-amz-checksum-* headers are the object's checksum, not the body's
// (checkDeclaredComplete compares them).
func (d *routerDeps) readCompleteBody(r *http.Request) ([]byte, error) {
	return d.readXMLBody(r, bodyChecksums{notOfBody: true})
}

func (d *routerDeps) readXMLBody(r *http.Request, bc bodyChecksums) ([]byte, error) {
	b, err := d.openBodyLimit(r, maxXMLBody, bc)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(b.r, maxXMLBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxXMLBody {
		return nil, s3err.MaxMessageLengthExceeded
	}
	sum := md5.Sum(data)
	if _, err := b.finish(hex.EncodeToString(sum[:])); err != nil {
		return nil, err
	}
	return data, nil
}

// limitReader fails with EntityTooLarge once more than left bytes arrive.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, s3err.New(s3err.EntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
	}
	return n, err
}

// The payload SHA-256 (x-amz-content-sha256, which the server must check
// over every byte) was the gateway's largest cost on large PUTs even with
// SHA-NI: ~38% of its CPU. With AVX-512, sha256lanes compresses 16 streams
// at once, ~2.2× SHA-NI's bytes per CPU second when its lanes are full,
// and much less when they are not (one busy lane: a seventh of SHA-NI);
// it copies every byte into a buffer of the stream's own to gather them.
// So, as object/md5.go does for the ETag's MD5, a body goes through the
// lanes only while enough other large bodies are being hashed for them to
// fill; otherwise crypto/sha256. The choice holds for the body's whole
// length.
//
// aws-chunked bodies keep crypto/sha256 for their chunk signatures: each
// chunk's hash is needed as soon as the chunk ends (64 KiB for most SDKs),
// before bytes of many streams could gather.
const (
	// shaLanesMinStreams: large bodies being hashed at once, this one
	// included, from which the lanes are used. Below ~7 busy lanes a
	// kernel call costs more than SHA-NI on the same bytes
	// (sha256lanes.BenchmarkKernel).
	shaLanesMinStreams = 8
	// shaLanesMaxStreams: beyond this many, bodies use crypto/sha256
	// again. Each stream in the lanes holds a buffer of up to 1 MiB; 32
	// fill the lanes twice over, and 64 uploads in flight (the memory
	// check) must not add 64 MiB.
	shaLanesMaxStreams = 32
)

// shaLanesMinSize: smaller bodies (of known size) always use
// crypto/sha256; the lanes were measured only on 64 MiB bodies, and a small
// body spends little on its hash next to its per-request costs. A variable
// for tests.
var shaLanesMinSize int64 = 4 << 20

// shaLanes is shared by every gateway in the process: the more streams, the
// fuller its lanes. It has no goroutine; it keeps a list of the streams
// with bytes waiting.
var shaLanes = sync.OnceValue(sha256lanes.NewServer)

// shaStreams counts the large payloads being hashed now, by either hash.
var shaStreams atomic.Int64

// newPayloadHash returns the SHA-256 to verify a payload of the given size
// (-1 when unknown) with, and a release to call once the request is over.
//
// The body counts as being hashed from now on, but which hash it gets is
// decided at its first bytes: s3bench's 16 workers, and any set of clients
// started together, finish their PUTs at about the same time and open the
// next ones in a burst, so at the moment a body's headers are read fewer
// than shaLanesMinStreams others may have been opened yet, while by its
// first bytes (after the object layer's bucket check, a metadata round
// trip) the whole burst is. Deciding at the headers left whole bodies to
// crypto/sha256: 0.4–1.5 s of the gateway's ~22 s of CPU in PUT 64 MiB
// runs (docs/perf/put-path.md, h-s7put).
func newPayloadHash(size int64) (hash.Hash, func()) {
	if !sha256lanes.Available() || (size >= 0 && size < shaLanesMinSize) {
		return sha256.New(), func() {}
	}
	shaStreams.Add(1)
	h := &payloadHash{size: size}
	return h, func() {
		if h.lanes != nil {
			// Takes the stream off the server's list (a body that
			// was not read to its end leaves bytes in its ring).
			// The handler has returned: nothing writes to h any
			// more.
			h.lanes.Close()
		}
		shaStreams.Add(-1)
	}
}

// payloadHash is a large payload's SHA-256, which chooses between the
// lanes and crypto/sha256 when it is first written to (or summed).
type payloadHash struct {
	hash.Hash // nil until chosen
	lanes     *sha256lanes.Digest
	size      int64
}

func (p *payloadHash) choose() {
	if n := shaStreams.Load(); n >= shaLanesMinStreams && n <= shaLanesMaxStreams {
		p.lanes = shaLanes().NewSized(p.size)
		p.Hash = p.lanes
		return
	}
	p.Hash = sha256.New()
}

func (p *payloadHash) Write(b []byte) (int, error) {
	if p.Hash == nil {
		p.choose()
	}
	return p.Hash.Write(b)
}

func (p *payloadHash) Sum(in []byte) []byte {
	if p.Hash == nil {
		p.choose()
	}
	return p.Hash.Sum(in)
}

func (p *payloadHash) Reset() {
	if p.Hash != nil {
		p.Hash.Reset()
	}
}

func (p *payloadHash) Size() int      { return sha256.Size }
func (p *payloadHash) BlockSize() int { return sha256.BlockSize }

// anonymousPayload is the payload mode of an unsigned request (one a
// bucket policy lets write): an aws-chunked body can only be the unsigned
// one, with trailers; any other x-amz-content-sha256 is not checked, as
// nothing signs it.
func anonymousPayload(r *http.Request) string {
	v := r.Header.Get("x-amz-content-sha256")
	switch {
	case strings.HasPrefix(v, "STREAMING-"):
		return v // openChunked refuses a mode needing a signature
	case strings.Contains(strings.ToLower(r.Header.Get("Content-Encoding")), "aws-chunked"):
		return "STREAMING-" // framing of no known mode: refused, never stored
	}
	return ""
}
