package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/cairnstore/cairn/metadata/metaerr"
)

type doc struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	Key        string
	BucketName string
	Resource   string
	Region     string
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		err        error
		wantStatus int
		want       doc
	}{
		{"bare code", "GET", "/b/k", NoSuchBucket, 404,
			doc{Code: "NoSuchBucket", Message: NoSuchBucket.Message, Resource: "/b/k"}},
		{"key and bucket", "GET", "/b/k", &Error{Code: NoSuchKey, BucketName: "b", Key: "k<&>"}, 404,
			doc{Code: "NoSuchKey", Message: NoSuchKey.Message, Key: "k<&>", BucketName: "b"}},
		{"wrapped error", "PUT", "/b/k", fmt.Errorf("put: %w", &Error{Code: BadDigest}), 400,
			doc{Code: "BadDigest", Message: BadDigest.Message, Resource: "/b/k"}},
		{"message override and field", "GET", "/", New(AuthorizationHeaderMalformed, "wrong region").With("Region", "us-east-1"), 400,
			doc{Code: "AuthorizationHeaderMalformed", Message: "wrong region", Region: "us-east-1", Resource: "/"}},
		{"metadata error", "DELETE", "/b", fmt.Errorf("delete bucket: %w", metaerr.ErrBucketNotEmpty), 409,
			doc{Code: "BucketNotEmpty", Message: BucketNotEmpty.Message, Resource: "/b"}},
		{"not leader", "GET", "/b", &metaerr.NotLeaderError{}, 503,
			doc{Code: "ServiceUnavailable", Message: ServiceUnavailable.Message, Resource: "/b"}},
		{"internal error hides cause", "GET", "/b", errors.New("disk on fire"), 500,
			doc{Code: "InternalError", Message: InternalError.Message, Resource: "/b"}},
		{"range", "GET", "/b/k", InvalidRange, 416,
			doc{Code: "InvalidRange", Message: InvalidRange.Message, Resource: "/b/k"}},
		{"quotes", "POST", "/b", New(AccessDenied, `Policy Condition failed: ["eq", "$key", "it's"]`), 403,
			doc{Code: "AccessDenied", Message: `Policy Condition failed: ["eq", "$key", "it's"]`, Resource: "/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://s3.local"+tt.path, nil)
			w := httptest.NewRecorder()
			w.Header().Set("x-amz-id-2", "host-id")
			WriteError(w, r, tt.err, "0123456789ABCDEF")
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/xml" {
				t.Errorf("Content-Type %q", ct)
			}
			if id := w.Header().Get("x-amz-request-id"); id != "0123456789ABCDEF" {
				t.Errorf("x-amz-request-id %q", id)
			}
			// Character data carries quotes as they are, as S3's does.
			if raw := regexp.MustCompile(`<Message>(.*)</Message>`).FindStringSubmatch(w.Body.String()); raw == nil || raw[1] != tt.want.Message {
				t.Errorf("raw message %q, want %q", raw, tt.want.Message)
			}
			var got doc
			if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			tt.want.XMLName = got.XMLName
			tt.want.RequestID = "0123456789ABCDEF"
			tt.want.HostID = "host-id"
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestWriteErrorNoBody(t *testing.T) {
	for _, tc := range []struct {
		method string
		err    error
		status int
	}{
		{http.MethodHead, NoSuchKey, 404},
		{http.MethodGet, NotModified, 304},
		{http.MethodHead, &Error{Code: PreconditionFailed}, 412},
	} {
		r := httptest.NewRequest(tc.method, "/b/k", nil)
		w := httptest.NewRecorder()
		WriteError(w, r, tc.err, "ID")
		if w.Code != tc.status || w.Body.Len() != 0 {
			t.Errorf("%s %v: status %d body %q", tc.method, tc.err, w.Code, w.Body.String())
		}
	}
}

func TestIs(t *testing.T) {
	err := fmt.Errorf("x: %w", &Error{Code: NoSuchUpload, Message: "gone"})
	if !errors.Is(err, NoSuchUpload) {
		t.Error("errors.Is(*Error, its code) = false")
	}
	if errors.Is(err, NoSuchKey) {
		t.Error("errors.Is(*Error, other code) = true")
	}
	if !errors.Is(fmt.Errorf("y: %w", SlowDown), SlowDown) {
		t.Error("errors.Is(bare code) = false")
	}
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range All {
		if seen[c.Name] {
			t.Errorf("duplicate %s", c.Name)
		}
		seen[c.Name] = true
		if c.Status < 300 || c.Status > 599 || c.Message == "" {
			t.Errorf("%s: status %d message %q", c.Name, c.Status, c.Message)
		}
		if got, ok := Lookup(c.Name); !ok || got != c {
			t.Errorf("Lookup(%s) = %v %v", c.Name, got, ok)
		}
	}
	// Statuses S3 documents for the codes clients depend on.
	for c, want := range map[Code]int{
		AccessDenied: 403, SignatureDoesNotMatch: 403, RequestTimeTooSkewed: 403,
		InvalidAccessKeyID: 403, AuthorizationHeaderMalformed: 400, MissingContentLength: 411,
		BucketNotEmpty: 409, BucketAlreadyOwnedByYou: 409, InvalidRange: 416,
		PreconditionFailed: 412, NotModified: 304, MethodNotAllowed: 405,
		NotImplemented: 501, SlowDown: 503, InternalError: 500, ConditionalRequestConflict: 409,
	} {
		if c.Status != want {
			t.Errorf("%s: status %d, want %d", c.Name, c.Status, want)
		}
	}
	// Every metadata condition that is an S3 condition maps onto its code.
	for _, me := range []*metaerr.Error{metaerr.ErrNoSuchBucket, metaerr.ErrNoSuchKey, metaerr.ErrNoSuchUpload,
		metaerr.ErrBucketAlreadyExists, metaerr.ErrBucketAlreadyOwnedByYou, metaerr.ErrBucketNotEmpty,
		metaerr.ErrPreconditionFailed, metaerr.ErrInvalidPart, metaerr.ErrInvalidPartOrder, metaerr.ErrInvalidArgument} {
		if got := From(me).Code.Name; got != me.Reason {
			t.Errorf("From(%s) = %s", me.Reason, got)
		}
	}
}

func TestRequestID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-F]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := RequestID()
		if !re.MatchString(id) {
			t.Fatalf("RequestID() = %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}
