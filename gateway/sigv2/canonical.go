package sigv2

import (
	"net/http"
	"sort"
	"strings"

	"github.com/cairnstore/cairn/gateway/sigv4"
)

// The StringToSign of Signature Version 2 ("Signing and authenticating
// REST requests", S3 developer guide):
//
//	HTTP-Verb \n Content-MD5 \n Content-Type \n Date \n
//	CanonicalizedAmzHeaders CanonicalizedResource
//
// Content-MD5 and Content-Type are the header values (empty when absent);
// Date is the Date header, empty when x-amz-date is present, or the Expires
// parameter of a presigned URL. CanonicalizedAmzHeaders is one
// "name:value\n" line per x-amz-* header, names lower-cased and sorted,
// values trimmed and several values of one name joined with ','.
// CanonicalizedResource is "/bucket" for a virtual-host-style request, then
// the path as sent, then "?" and the sub-resources present, sorted by name,
// "name" or "name=value" with the value decoded.

// subresourceNames are the query parameters that are part of the
// CanonicalizedResource: the documented list (acl, lifecycle, location,
// logging, notification, partNumber, policy, requestPayment, torrent,
// uploadId, uploads, versionId, versioning, versions, website, delete, the
// response-* overrides) and the ones botocore's HmacV1Auth adds (cors,
// tagging, restore and the newer S3 features), so that what botocore signs
// is what is verified. Every other parameter is left out.
var subresourceNames = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true,
	"defaultObjectAcl": true, "delete": true, "inventory": true,
	"lifecycle": true, "location": true, "logging": true, "metrics": true,
	"notification": true, "object-lock": true, "partNumber": true,
	"policy": true, "replication": true, "requestPayment": true,
	"restore": true, "select": true, "select-type": true,
	"storageClass": true, "tagging": true, "torrent": true, "uploadId": true,
	"uploads": true, "versionId": true, "versioning": true, "versions": true,
	"website":                      true,
	"response-cache-control":       true,
	"response-content-disposition": true,
	"response-content-encoding":    true,
	"response-content-language":    true,
	"response-content-type":        true,
	"response-expires":             true,
}

// request is what the StringToSign of a request is made of.
type request struct {
	method, md5, typ string
	// date is the Date header, or the Expires parameter when expires.
	date    string
	expires bool
	amz     []header // sorted by name
	// paths are the resource path candidates ("/bucket" prefix included).
	paths []string
	// resources are the sub-resource suffix candidates ("?acl&versionId=v"),
	// or one "" when there are none.
	resources []string
}

// header is one canonical x-amz-* header.
type header struct{ name, value string }

// stringToSign assembles one StringToSign.
func stringToSign(method, md5, typ, date string, amz []header, path, resource string) string {
	var b strings.Builder
	b.Grow(len(method) + len(md5) + len(typ) + len(date) + len(path) + len(resource) + 64)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(md5)
	b.WriteByte('\n')
	b.WriteString(typ)
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	for _, h := range amz {
		b.WriteString(h.name)
		b.WriteByte(':')
		b.WriteString(h.value)
		b.WriteByte('\n')
	}
	b.WriteString(path)
	b.WriteString(resource)
	return b.String()
}

// candidates returns every StringToSign the request may have been signed
// with, the documented one first. They differ only in how a header-signed
// request with x-amz-date places its time, and in the path encoding:
//
//   - x-amz-date: the documentation's rule leaves the Date line empty and
//     signs x-amz-date among the x-amz-* headers; its worked example
//     (Delete, whose published signature checks) instead puts the
//     x-amz-date value on the Date line and leaves it out of the headers;
//     botocore (and MinIO) keep the Date header on the Date line and sign
//     x-amz-date among the headers. All three cover the x-amz-date value,
//     the time whose skew is checked.
//   - the path exactly as sent, then, when it differs, the decoded path
//     encoded as the AWS SDKs encode it (as package sigv4 does). Both name
//     the same object.
//   - a sub-resource sent with '=' and no value ("?uploads="): botocore
//     signs it as sent, minio-go (and MinIO) without the '=' ("?uploads").
func (q request) candidates() []string {
	type variant struct {
		date string
		amz  []header
	}
	variants := []variant{{q.date, q.amz}}
	if xdate, i := findHeader(q.amz, "x-amz-date"); !q.expires && i >= 0 {
		without := append(append([]header(nil), q.amz[:i]...), q.amz[i+1:]...)
		variants = []variant{{"", q.amz}, {xdate, without}}
		if q.date != "" {
			variants = append(variants, variant{q.date, q.amz})
		}
	}
	var out []string
	for _, res := range q.resources {
		for _, p := range q.paths {
			for _, v := range variants {
				out = append(out, stringToSign(q.method, q.md5, q.typ, v.date, v.amz, p, res))
			}
		}
	}
	return out
}

func findHeader(hs []header, name string) (string, int) {
	for i, h := range hs {
		if h.name == name {
			return h.value, i
		}
	}
	return "", -1
}

// amzHeaders returns the canonical x-amz-* headers of h, sorted by name.
// For a presigned request, params holds the query, whose x-amz-*
// parameters count as headers of that name when no such header was sent.
func amzHeaders(h http.Header, params []queryParam) []header {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic when two keys differ only in case
	byName := make(map[string][]string)
	for _, k := range names {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") {
			continue
		}
		for _, v := range h[k] {
			byName[lk] = append(byName[lk], strings.TrimSpace(unfold(v)))
		}
	}
	fromHeaders := len(byName)
	if params != nil {
		seen := make(map[string]bool, fromHeaders)
		for n := range byName {
			seen[n] = true
		}
		for _, p := range params {
			ln := strings.ToLower(p.name)
			if strings.HasPrefix(ln, "x-amz-") && !seen[ln] {
				byName[ln] = append(byName[ln], strings.TrimSpace(p.value))
			}
		}
	}
	out := make([]header, 0, len(byName))
	for n, vs := range byName {
		out = append(out, header{n, strings.Join(vs, ",")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// unfold replaces line breaks (folded header lines) with spaces.
func unfold(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(v)
}

// resourcePaths returns the CanonicalizedResource path candidates: the
// path as sent, then the AWS encoding of the decoded path when different;
// each after "/bucket" for a virtual-host-style request.
func resourcePaths(r *http.Request, vhostBucket string) []string {
	prefix := ""
	if vhostBucket != "" {
		prefix = "/" + vhostBucket
	}
	aws := sigv4.EncodePath(r.URL.Path)
	sent := sentPath(r)
	if sent == "" || sent == aws {
		return []string{prefix + aws}
	}
	return []string{prefix + sent, prefix + aws}
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

// subresources renders the signed sub-resources of a query: "?" and the
// parameters S3 signs, sorted by name (stably: repeated names keep their
// order), "name" when sent without '=', else "name=value" with the value
// decoded. "" when there are none.
func subresources(params []queryParam) []string {
	var subs []queryParam
	emptyValue := false
	for _, p := range params {
		if subresourceNames[p.name] {
			subs = append(subs, p)
			emptyValue = emptyValue || (p.hasValue && p.value == "")
		}
	}
	if len(subs) == 0 {
		return []string{""}
	}
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	write := func(keepEmpty bool) string {
		var b strings.Builder
		b.WriteByte('?')
		for i, p := range subs {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(p.name)
			if p.hasValue && (p.value != "" || keepEmpty) {
				b.WriteByte('=')
				b.WriteString(p.value)
			}
		}
		return b.String()
	}
	if !emptyValue {
		return []string{write(true)}
	}
	return []string{write(true), write(false)}
}

// queryParam is one decoded query parameter.
type queryParam struct {
	name, value string
	hasValue    bool // the pair had '='
}

// parseQuery splits a raw query the way net/url does for the handlers:
// pairs separated by '&', name and value split at the first '=', '+'
// meaning space, %XX decoded. A malformed escape is kept literally (net/url
// drops such pairs, so a handler never sees what was not signed).
func parseQuery(raw string) []queryParam {
	var params []queryParam
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		name, value, eq := strings.Cut(pair, "=")
		params = append(params, queryParam{sigv4.UnescapeQuery(name), sigv4.UnescapeQuery(value), eq})
	}
	return params
}
