package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// preconditions are the four conditional headers of a read (or, with the
// x-amz-copy-source- prefix, of a copy's source).
type preconditions struct {
	ifMatch, ifNoneMatch               string
	ifModifiedSince, ifUnmodifiedSince string
}

func readPreconditions(h http.Header, prefix string) preconditions {
	return preconditions{
		ifMatch:           h.Get(prefix + "If-Match"),
		ifNoneMatch:       h.Get(prefix + "If-None-Match"),
		ifModifiedSince:   h.Get(prefix + "If-Modified-Since"),
		ifUnmodifiedSince: h.Get(prefix + "If-Unmodified-Since"),
	}
}

// check evaluates the conditions against an object's ETag (unquoted) and
// modification time in RFC 9110's order, which is S3's: If-Match (when
// present If-Unmodified-Since is not evaluated), then If-Unmodified-Since,
// then If-None-Match (when present If-Modified-Since is not evaluated),
// then If-Modified-Since. A failed If-Match/If-Unmodified-Since is
// PreconditionFailed; a failed If-None-Match/If-Modified-Since is
// notModified (304 on GET and HEAD; copies pass PreconditionFailed). An
// unparsable date is ignored, as HTTP says.
func (p preconditions) check(etag string, modified time.Time, notModified error) error {
	modified = modified.Truncate(time.Second)
	if p.ifMatch != "" {
		if !etagListMatches(p.ifMatch, etag) {
			return s3err.PreconditionFailed
		}
	} else if t, ok := parseHTTPTime(p.ifUnmodifiedSince); ok && modified.After(t) {
		return s3err.PreconditionFailed
	}
	if p.ifNoneMatch != "" {
		if etagListMatches(p.ifNoneMatch, etag) {
			return notModified
		}
	} else if t, ok := parseHTTPTime(p.ifModifiedSince); ok && !modified.After(t) {
		return notModified
	}
	return nil
}

// etagListMatches reports whether a comma-separated list of entity tags
// (quoted or not, weak or not) or "*" contains etag.
func etagListMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if trimETag(t) == etag {
			return true
		}
	}
	return false
}

// trimETag removes the quotes (and a weak W/ prefix) of an entity tag.
func trimETag(t string) string {
	t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
	return strings.Trim(t, `"`)
}

func parseHTTPTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, false
		}
	}
	return t, true
}
