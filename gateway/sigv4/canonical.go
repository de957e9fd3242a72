package sigv4

import (
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
)

// The canonical request of AWS Signature Version 4, as S3 computes it
// ("Create a canonical request", IAM user guide; "Signature Calculations for
// the Authorization Header", S3 API reference):
//
//	HTTPMethod \n CanonicalURI \n CanonicalQueryString \n
//	CanonicalHeaders \n SignedHeaders \n HashedPayload
//
// S3 differs from the other services in two ways: the path is URI-encoded
// once, not twice, and it is not normalised ("." and ".." segments and
// repeated slashes stay as they are).

// canonicalRequest joins the six parts of a canonical request.
func canonicalRequest(method, uri, query, headers string, signed []string, payload string) string {
	var b strings.Builder
	b.Grow(len(method) + len(uri) + len(query) + len(headers) + len(payload) + 64)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	b.WriteString(headers)
	b.WriteByte('\n')
	for i, h := range signed {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(h)
	}
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String()
}

// unreserved reports whether c is in RFC 3986's unreserved set, the only
// bytes SigV4 leaves unencoded: A-Z a-z 0-9 - _ . ~
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

const upperhex = "0123456789ABCDEF"

// uriEncode appends s encoded the SigV4 way: unreserved bytes as they are,
// every other byte as %XX with upper-case hex (a space is %20, never +).
// With keepSlash, '/' is kept, as in the canonical URI.
func uriEncode(b *strings.Builder, s string, keepSlash bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperhex[c>>4])
		b.WriteByte(upperhex[c&15])
	}
}

// EncodePath returns the canonical URI of a decoded path: each segment
// URI-encoded once, slashes kept. This is how the AWS SDKs, boto3 and
// minio-go encode an object key in the request line and in the signature.
func EncodePath(path string) string {
	if path == "" {
		return "/"
	}
	var b strings.Builder
	b.Grow(len(path) + len(path)/2)
	uriEncode(&b, path, true)
	return b.String()
}

// canonicalURIs returns the canonical URI candidates for r: first the AWS
// encoding of the decoded path (what the SDKs sign), then, when it differs,
// the path exactly as the client sent it (clients that sign the request
// line they send, e.g. with '+', '=' or ';' left unencoded, or '%2F' inside
// a key). Both name the same resource: the second decodes to the first's
// path, so accepting either grants nothing the client did not sign.
func canonicalURIs(r *http.Request) []string {
	aws := EncodePath(r.URL.Path)
	sent := sentPath(r)
	if sent == "" || sent == aws {
		return []string{aws}
	}
	return []string{aws, sent}
}

// sentPath is the path of the request line as received.
func sentPath(r *http.Request) string {
	if u := r.RequestURI; strings.HasPrefix(u, "/") {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	return r.URL.EscapedPath()
}

// queryParam is one decoded query parameter.
type queryParam struct{ name, value string }

// parseQuery splits a raw query string the way net/url does for the
// handlers (so the signature covers exactly what a handler reading
// r.URL.Query() sees): pairs separated by '&', name and value split at the
// first '=', '+' meaning space, %XX decoded. Unlike url.ParseQuery it keeps
// pairs containing ';' and pairs with malformed escapes (taken literally):
// those are still covered by the signature, and net/url drops them, so
// keeping them never lets a handler see something unsigned.
func parseQuery(raw string) []queryParam {
	var params []queryParam
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		params = append(params, queryParam{UnescapeQuery(name), UnescapeQuery(value)})
	}
	return params
}

// UnescapeQuery decodes %XX and '+' in a query name or value; a malformed
// escape is kept literally. sigv2 reads queries the same way.
func UnescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// canonicalQuery encodes every parameter except the one named skip (the
// presigned URL's X-Amz-Signature), sorts by encoded name then encoded
// value (SigV4 sorts after encoding), and joins them as name=value with
// '&'. A parameter without a value is "name=".
func canonicalQuery(params []queryParam, skip string) string {
	enc := make([]queryParam, 0, len(params))
	for _, p := range params {
		if skip != "" && p.name == skip {
			continue
		}
		var n, v strings.Builder
		uriEncode(&n, p.name, false)
		uriEncode(&v, p.value, false)
		enc = append(enc, queryParam{n.String(), v.String()})
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].name != enc[j].name {
			return enc[i].name < enc[j].name
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// canonicalHeaders renders the signed headers as "name:value\n" lines, in
// the order of the SignedHeaders list. Values are trimmed and inner runs
// of spaces collapsed; several values of one header are joined with ','.
// A signed header missing from the request has an empty value.
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range headerValues(r, name) {
			if i > 0 {
				b.WriteByte(',')
			}
			trimAll(&b, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// headerValues returns the values of a lower-cased header name, including
// the ones net/http moves out of Header on the server side.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		if r.Host != "" {
			return []string{r.Host}
		}
		return []string{r.URL.Host}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	if v, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v
	}
	for k, v := range r.Header { // a Header built by hand, not canonicalised
		if strings.EqualFold(k, name) {
			return v
		}
	}
	if name == "content-length" && r.ContentLength >= 0 {
		return []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	return nil
}

// trimAll writes v without leading and trailing whitespace and with every
// run of spaces inside collapsed to one space.
func trimAll(b *strings.Builder, v string) {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
}
