// Package httpstatus wraps an http.ResponseWriter to remember what a
// handler answered: the status code and the body bytes written, for the
// gateway's access log and metrics and for tests that check what a
// client was told.
package httpstatus

import "net/http"

// Writer records the first status a handler set (200 once it writes a
// body without one) and the bytes of body written.
type Writer struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.Bytes += int64(n)
	return n, err
}

// Flush passes a flush on when the wrapped writer can.
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Code is the status the client got: 200 when the handler set none.
func (w *Writer) Code() int {
	if w.Status == 0 {
		return http.StatusOK
	}
	return w.Status
}
