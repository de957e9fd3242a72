package gateway

import (
	"io"
	"net/http"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// openChunked decodes an aws-chunked body. Not yet wired: waits for
// package awschunked.
func (d *routerDeps) openChunked(r *http.Request, st *reqState) (io.Reader, int64, error) {
	return nil, 0, s3err.New(s3err.NotImplemented, "aws-chunked uploads are not supported yet.")
}
