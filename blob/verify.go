package blob

import (
	"fmt"
	"io"

	"github.com/cairnstore/cairn/chunk"
)

// verifyingReader passes a chunk upload through while a chunk.Verifier
// checks it in step: the header (which must name the id the chunk is stored
// under), every block's checksum, and a length a chunk can have. The end of
// the stream is reported only if all of that holds; otherwise Read returns
// the verification error (chunk.ErrCorrupt, chunk.ErrVersion) instead of
// io.EOF, so the store discards the upload.
//
// The check runs on the bytes Read has just placed in the caller's buffer,
// while they are in cache: no copy, no second buffer, no goroutine. (It
// used to run chunk.Verify in a goroutine fed through an io.Pipe, which
// copied every byte once more and cost two goroutine hand-offs per read.)
type verifyingReader struct {
	r      io.Reader
	id     chunk.ID
	v      *chunk.Verifier
	err    error // the verdict once the stream has ended or failed
	idDone bool
}

func newVerifyingReader(r io.Reader, id chunk.ID) *verifyingReader {
	return &verifyingReader{r: r, id: id, v: chunk.NewVerifier()}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if n > 0 {
		if _, verr := v.v.Write(p[:n]); verr != nil {
			v.err = verr
			return 0, verr
		}
		if !v.idDone {
			if h, ok := v.v.Header(); ok {
				v.idDone = true
				if h.ID() != v.id {
					// Fail before the rest of the chunk is stored.
					v.err = fmt.Errorf("chunk header names chunk %s: %w", h.ID(), chunk.ErrCorrupt)
					return 0, v.err
				}
			}
		}
	}
	switch {
	case err == io.EOF:
		if _, _, verr := v.v.Close(); verr != nil {
			v.err = verr
			return 0, verr
		}
		v.err = io.EOF
		return n, io.EOF
	case err != nil:
		v.err = err
		return n, err
	}
	return n, nil
}

// Close releases the reader. Nothing runs in the background any more, so
// it does nothing; it stays so callers need not know that.
func (v *verifyingReader) Close() {}

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
