package gateway

import (
	"net/http"

	"github.com/cairnstore/cairn/gateway/awschunked"
	"github.com/cairnstore/cairn/gateway/s3err"
)

// openChunked decodes an aws-chunked body (the signature said
// STREAMING-*): chunk signatures are checked against the request's seed
// signature as the data streams, trailers once the last chunk is read. It
// returns the decoder and the decoded size (-1 when the client did not say).
func (d *routerDeps) openChunked(r *http.Request, st *reqState, payload string) (*awschunked.Reader, int64, error) {
	mode, ok := awschunked.ModeOf(payload)
	if !ok {
		return nil, 0, s3err.New(s3err.NotImplemented, "The payload mode %q is not implemented.", payload)
	}
	if st.auth == nil && mode != awschunked.UnsignedTrailer {
		return nil, 0, s3err.New(s3err.InvalidRequest, "An unsigned request may send an aws-chunked body only as %s.", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	}
	size, err := decodedLength(r)
	if err != nil {
		return nil, 0, err
	}
	var v awschunked.ChainVerifier
	if mode != awschunked.UnsignedTrailer {
		v = st.auth.Chain()
	}
	dec, err := awschunked.NewReader(r.Body, mode, v, awschunked.Options{
		DecodedLength: size,
		Trailers:      awschunked.ParseTrailerHeader(r.Header.Get("x-amz-trailer")),
	})
	if err != nil {
		return nil, 0, err
	}
	return dec, size, nil
}
