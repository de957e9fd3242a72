package blob

import (
	"errors"
	"fmt"
	"io"

	"github.com/cairnstore/cairn/chunk"
)

// verifyingReader passes a chunk upload through while chunk.Verify checks
// it in step: the header (which must name the id the chunk is stored
// under), every block's checksum, and a length a chunk can have. The end of
// the stream is reported only if all of that holds; otherwise Read returns
// the verification error (chunk.ErrCorrupt, chunk.ErrVersion) instead of
// io.EOF, so the store discards the upload.
//
// Verify runs in its own goroutine, fed through a pipe: it holds one block
// in memory, whatever the chunk's size.
type verifyingReader struct {
	r    io.Reader
	id   chunk.ID
	pw   *io.PipeWriter
	done chan error // the verifier's result, sent once
	err  error      // the result, once received
	got  bool
}

// errVerifierStopped closes the pipe's read side when Verify returns, so a
// write after it (a chunk longer than its framing allows) fails at once.
var errVerifierStopped = errors.New("verifier stopped")

func newVerifyingReader(r io.Reader, id chunk.ID) *verifyingReader {
	pr, pw := io.Pipe()
	v := &verifyingReader{r: r, id: id, pw: pw, done: make(chan error, 1)}
	go func() {
		h, _, err := chunk.Verify(pr)
		if err == nil && h.ID() != id {
			err = fmt.Errorf("chunk header names chunk %s: %w", h.ID(), chunk.ErrCorrupt)
		}
		pr.CloseWithError(errVerifierStopped)
		v.done <- err
	}()
	return v
}

// result waits for the verifier.
func (v *verifyingReader) result() error {
	if !v.got {
		v.err = <-v.done
		v.got = true
	}
	return v.err
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.got {
		// Verification is over: it failed, or the stream already ended.
		if v.err != nil {
			return 0, v.err
		}
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	if n > 0 {
		if _, werr := v.pw.Write(p[:n]); werr != nil {
			// The verifier stopped before the end of the upload: it
			// found the chunk bad, or too long.
			if verr := v.result(); verr != nil {
				return 0, verr
			}
			return 0, fmt.Errorf("data after the end of chunk %s: %w", v.id, chunk.ErrCorrupt)
		}
	}
	switch {
	case err == io.EOF:
		v.pw.Close()
		if verr := v.result(); verr != nil {
			return 0, verr
		}
		return n, io.EOF
	case err != nil:
		v.pw.CloseWithError(err)
		v.result()
		return n, err
	}
	return n, nil
}

// Close stops the verifier if the upload ended before its stream did (a
// failed store write). It must be called; it is safe after EOF.
func (v *verifyingReader) Close() {
	v.pw.CloseWithError(errors.New("upload abandoned"))
	v.result()
}

// incompleteReader marks read errors of a request body (a dropped
// connection, a malformed chunked encoding) as ErrIncomplete, telling them
// apart from the store's own failures.
type incompleteReader struct{ r io.Reader }

func (b incompleteReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read upload: %w: %w", ErrIncomplete, err)
	}
	return n, err
}
