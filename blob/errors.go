package blob

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnstore/cairn/chunk"
)

// The one table between errors and the HTTP API: the server picks a status
// and a code for an error, and the client turns the code back into the
// error, so errors.Is(err, blob.ErrNotFound) works across the network.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ErrNotFound, "NotFound", http.StatusNotFound},
	{chunk.ErrBadID, "BadID", http.StatusBadRequest},
	{ErrBadRange, "BadRange", http.StatusRequestedRangeNotSatisfiable},
	// Before Incomplete: an upload found corrupt was also cut short.
	{chunk.ErrCorrupt, "Corrupt", http.StatusUnprocessableEntity},
	{chunk.ErrVersion, "Version", http.StatusUnprocessableEntity},
	{ErrIncomplete, "Incomplete", http.StatusBadRequest},
	{ErrFull, "Full", http.StatusInsufficientStorage},
}

// errBadRequest is a malformed request that is none of the above.
var errBadRequest = errors.New("bad request")

// errorCodeHeader carries the code too, for HEAD responses, which have no
// body.
const errorCodeHeader = "X-Cairn-Error"

// errorBody is the JSON body of every error response.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusOf returns the HTTP status and code for an error.
func statusOf(err error) (int, string) {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.status, e.code
		}
	}
	if errors.Is(err, errBadRequest) {
		return http.StatusBadRequest, "BadRequest"
	}
	return http.StatusInternalServerError, "Internal"
}

// ResponseError is an error response from a blob node. errors.Is matches it
// against the error its code names (ErrNotFound, chunk.ErrCorrupt, ...).
type ResponseError struct {
	Status  int
	Code    string
	Message string
}

func (e *ResponseError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("blob node: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("blob node: %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *ResponseError) Unwrap() error {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}
