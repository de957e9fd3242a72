// Package s3err is the gateway's one table of S3 errors: every S3 error code
// the gateway answers with, its HTTP status and default message (codes.go),
// the *Error value that carries a code with request details, and WriteError,
// which renders any error as S3's XML error document.
//
// Handlers never invent codes inline: they return a Code (s3err.NoSuchKey),
// an *Error when details matter (&s3err.Error{Code: s3err.NoSuchKey, Key: k}),
// or a metadata error (metaerr), which WriteError translates through this
// table. Anything else is an InternalError whose text never reaches the
// client.
//
// The error document follows the "Error responses" page of the Amazon S3 API
// reference:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<Error><Code>NoSuchKey</Code><Message>...</Message><Key>k</Key>
//	<BucketName>b</BucketName><RequestId>...</RequestId><HostId>...</HostId></Error>
//
// HEAD requests and 304 answers carry the status only, no body.
package s3err

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Error is a Code with the details of one occurrence. The zero values of the
// optional fields are left out of the XML document.
type Error struct {
	Code Code
	// Message replaces Code.Message when not empty.
	Message string
	// Resource, BucketName and Key name what the request addressed. When all
	// three are empty, WriteError uses the request path as Resource.
	Resource   string
	BucketName string
	Key        string
	// Fields are extra elements S3 adds for some codes, in order: Region for
	// AuthorizationHeaderMalformed, RequestTime/ServerTime for
	// RequestTimeTooSkewed, StringToSign/CanonicalRequest for
	// SignatureDoesNotMatch, HeadersNotSigned for AccessDenied...
	Fields []Field
	// Err is the internal cause, for logs only; it never reaches the client.
	Err error
}

// Field is one extra element of an error document.
type Field struct{ Name, Value string }

// New returns an *Error for c with a message replacing the default one.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.Name)
	b.WriteString(": ")
	b.WriteString(e.message())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) message() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Code.Message
}

// Is makes errors.Is(err, s3err.SomeCode) true for an *Error of that code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// With returns a copy of e with one more extra field.
func (e *Error) With(name, value string) *Error {
	c := *e
	c.Fields = append(append([]Field(nil), e.Fields...), Field{name, value})
	return &c
}

// From turns any error into the *Error WriteError would render: an *Error
// found in the chain as is; a bare Code; a metadata condition (metaerr)
// through the table; anything else as InternalError carrying err as its
// internal cause.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var c Code
	if errors.As(err, &c) {
		return &Error{Code: c}
	}
	var me *metaerr.Error
	if errors.As(err, &me) {
		return &Error{Code: fromMeta(me), Err: err}
	}
	return &Error{Code: InternalError, Err: err}
}

// fromMeta maps a metadata condition to its S3 code. The metadata reasons
// that are S3 conditions carry the S3 code name as their reason.
func fromMeta(me *metaerr.Error) Code {
	switch me {
	case metaerr.ErrNotLeader:
		return ServiceUnavailable
	case metaerr.ErrNoSuchNode:
		return InternalError
	}
	if c, ok := Lookup(me.Reason); ok {
		return c
	}
	return InternalError
}

// WriteError writes err as an S3 error response: the status of its code,
// Content-Type application/xml, the x-amz-request-id header, and the XML
// document (none for HEAD requests and for 304). HostId is taken from the
// x-amz-id-2 response header when the caller has set one.
func WriteError(w http.ResponseWriter, r *http.Request, err error, requestID string) {
	e := From(err)
	h := w.Header()
	if requestID != "" {
		h.Set("x-amz-request-id", requestID)
	}
	if e.Code.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead || e.Code.Status == http.StatusNotModified {
		w.WriteHeader(e.Code.Status)
		return
	}
	body := e.document(r, requestID, h.Get("x-amz-id-2"))
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Code.Status)
	_, _ = w.Write(body)
}

// document renders the XML error document.
func (e *Error) document(r *http.Request, requestID, hostID string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error>")
	elem(&b, "Code", e.Code.Name)
	elem(&b, "Message", e.message())
	resource := e.Resource
	if resource == "" && e.BucketName == "" && e.Key == "" && r != nil && r.URL != nil {
		resource = r.URL.Path
	}
	if e.Key != "" {
		elem(&b, "Key", e.Key)
	}
	if e.BucketName != "" {
		elem(&b, "BucketName", e.BucketName)
	}
	if resource != "" {
		elem(&b, "Resource", resource)
	}
	for _, f := range e.Fields {
		elem(&b, f.Name, f.Value)
	}
	elem(&b, "RequestId", requestID)
	if hostID != "" {
		elem(&b, "HostId", hostID)
	}
	b.WriteString("</Error>")
	return []byte(b.String())
}

func elem(b *strings.Builder, name, value string) {
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	escapeText(b, value)
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// escapeText escapes XML character data; characters XML 1.0 cannot carry
// are replaced by U+FFFD so the document always parses. Quotes need no
// escape in character data and S3 leaves them as they are (clients match
// messages such as 'Policy Condition failed: ["eq", "$key", "a"]').
func escapeText(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
}

// RequestID returns a new request id shaped like S3's: 16 upper-case hex
// digits. Ids are unique enough to find a request in logs; they are not
// secrets.
func RequestID() string {
	const hexdigits = "0123456789ABCDEF"
	var buf [16]byte
	v := rand.Uint64()
	for i := len(buf) - 1; i >= 0; i-- {
		buf[i] = hexdigits[v&0xF]
		v >>= 4
	}
	return string(buf[:])
}
