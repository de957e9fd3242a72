package sigv2

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signer signs requests with SigV2 the documented way, for tests and
// tools. vhostBucket is the bucket a virtual-host-style request names in
// its Host ("" for path style).
type Signer struct {
	AccessKey string
	SecretKey string
}

// Sign sets Date to t (unless x-amz-date is set, which then stands for the
// time) and the Authorization header of r. The path is signed as
// r.URL.EscapedPath(), which is what the request line will carry.
func (s Signer) Sign(r *http.Request, vhostBucket string, t time.Time) {
	if r.Header.Get("X-Amz-Date") == "" {
		r.Header.Set("Date", t.UTC().Format(http.TimeFormat))
	}
	q := request{
		method:    r.Method,
		md5:       r.Header.Get("Content-MD5"),
		typ:       r.Header.Get("Content-Type"),
		date:      r.Header.Get("Date"),
		amz:       amzHeaders(r.Header, nil),
		paths:     []string{clientPath(r, vhostBucket)},
		resources: subresources(parseQuery(r.URL.RawQuery)),
	}
	sts := q.candidates()[0]
	r.Header.Set("Authorization", Scheme+" "+s.AccessKey+":"+Sign(s.SecretKey, sts))
}

// Presign adds AWSAccessKeyId, Expires and Signature to r's query, valid
// until expires. Headers of r (Content-Type, Content-MD5, x-amz-*) are
// signed and must be sent with the URL.
func (s Signer) Presign(r *http.Request, vhostBucket string, expires time.Time) {
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := request{
		method:    r.Method,
		md5:       r.Header.Get("Content-MD5"),
		typ:       r.Header.Get("Content-Type"),
		date:      exp,
		expires:   true,
		amz:       amzHeaders(r.Header, nil),
		paths:     []string{clientPath(r, vhostBucket)},
		resources: subresources(parseQuery(r.URL.RawQuery)),
	}
	sig := Sign(s.SecretKey, q.candidates()[0])
	add := "AWSAccessKeyId=" + queryEscape(s.AccessKey) + "&Expires=" + exp + "&Signature=" + queryEscape(sig)
	if r.URL.RawQuery != "" {
		r.URL.RawQuery += "&" + add
	} else {
		r.URL.RawQuery = add
	}
}

func clientPath(r *http.Request, vhostBucket string) string {
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	if vhostBucket != "" {
		p = "/" + vhostBucket + p
	}
	return p
}

// queryEscape percent-encodes everything but RFC 3986's unreserved bytes.
func queryEscape(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}
