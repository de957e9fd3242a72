package gateway

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/checksum"
	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// storedHeaders are the request headers an object keeps and returns on
// GET and HEAD (besides Content-Type), in canonical form.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// MaxUserMetadata is S3's limit on x-amz-meta-* headers: 2 KB, counted as
// the UTF-8 bytes of every name (without the prefix) and value.
const MaxUserMetadata = 2 << 10

// objectAttrs are the attributes a request gives an object.
type objectAttrs struct {
	contentType  string
	headers      map[string]string
	userMetadata map[string]string
	tags         map[string]string // x-amz-tagging (tagging.go)
}

// readObjectAttrs reads Content-Type, the stored headers and the user
// metadata of a PutObject, CopyObject (REPLACE) or CreateMultipartUpload.
// "aws-chunked" is a transfer detail and is dropped from Content-Encoding.
func readObjectAttrs(h http.Header) (objectAttrs, error) {
	a := objectAttrs{contentType: h.Get("Content-Type"), headers: map[string]string{}, userMetadata: map[string]string{}}
	for _, name := range storedHeaders {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = stripAWSChunked(v)
		}
		if v != "" {
			a.headers[name] = v
		}
	}
	labelStorageClass(a.headers, h)
	size := 0
	for name, vs := range h {
		lower := strings.ToLower(name)
		meta, ok := strings.CutPrefix(lower, "x-amz-meta-")
		if !ok {
			continue
		}
		v := strings.Join(vs, ",")
		a.userMetadata[meta] = v
		size += len(meta) + len(v)
	}
	if size > MaxUserMetadata {
		return a, s3err.New(s3err.MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size (%d of %d bytes).", size, MaxUserMetadata)
	}
	if v := h.Get("x-amz-tagging"); v != "" {
		tags, err := parseTaggingHeader(v)
		if err != nil {
			return a, err
		}
		a.tags = tags
	}
	return a, nil
}

func stripAWSChunked(v string) string {
	var keep []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e != "" && !strings.EqualFold(e, "aws-chunked") {
			keep = append(keep, e)
		}
	}
	return strings.Join(keep, ",")
}

// quoteETag renders a stored ETag as S3 sends it: in double quotes.
func quoteETag(etag string) string { return `"` + etag + `"` }

func lastModified(o *pb.Object) time.Time { return unixTime(o.GetModifiedUnixNano()) }

// setValidators sets ETag and Last-Modified (also answered with 304).
func setValidators(h http.Header, o *pb.Object) {
	h.Set("ETag", quoteETag(o.GetEtag()))
	h.Set("Last-Modified", lastModified(o).Format(http.TimeFormat))
}

// setObjectHeaders sets the headers of a GET or HEAD answer: validators,
// content headers, user metadata and, when asked for, checksums.
func setObjectHeaders(h http.Header, o *pb.Object, withChecksums bool) {
	setValidators(h, o)
	ct := o.GetContentType()
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	for name, v := range o.GetHeaders() {
		h.Set(name, v)
	}
	for name, v := range o.GetUserMetadata() {
		h["X-Amz-Meta-"+name] = []string{v}
	}
	h.Set("Accept-Ranges", "bytes")
	if n := len(o.GetParts()); n > 0 {
		h.Set("x-amz-mp-parts-count", strconv.Itoa(n))
	}
	if n := len(o.GetTags()); n > 0 {
		h.Set("x-amz-tagging-count", strconv.Itoa(n))
	}
	if withChecksums {
		setChecksumHeaders(h, o.GetChecksums())
	}
	setSSEHeaders(h, o.GetEncryption())
}

// setChecksumHeaders sets x-amz-checksum-<alg> (base64, "-N" for a
// composite multipart checksum) and x-amz-checksum-type.
func setChecksumHeaders(h http.Header, cs []*pb.Checksum) {
	for _, c := range cs {
		h.Set("x-amz-checksum-"+strings.ToLower(c.GetAlgorithm()), checksumValue(c))
		if c.GetType() != "" {
			h.Set("x-amz-checksum-type", c.GetType())
		}
	}
}

// checksumValue is a stored checksum as S3 renders it.
func checksumValue(c *pb.Checksum) string {
	v := base64.StdEncoding.EncodeToString(c.GetValue())
	if c.GetType() == "COMPOSITE" && c.GetParts() > 0 {
		v += "-" + strconv.Itoa(int(c.GetParts()))
	}
	return v
}

// xmlChecksums fills the Checksum* elements of an XML answer.
func xmlChecksums(cs []*pb.Checksum) (f checksumFields, typ string) {
	return checksumElements(cs, checksumValue)
}

// checksumElements fills the Checksum* elements with each checksum as
// value renders it.
func checksumElements(cs []*pb.Checksum, value func(*pb.Checksum) string) (f checksumFields, typ string) {
	for _, c := range cs {
		a, _ := checksum.Parse(c.GetAlgorithm())
		if p := f.field(a); p != nil {
			*p = value(c)
		}
		typ = c.GetType()
	}
	return f, typ
}

// responseOverrides are the query parameters of a GET that replace
// response headers.
var responseOverrides = map[string]string{
	"response-content-type":        "Content-Type",
	"response-content-language":    "Content-Language",
	"response-expires":             "Expires",
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
}

func applyResponseOverrides(h http.Header, q url.Values) {
	for param, header := range responseOverrides {
		if v := q.Get(param); v != "" {
			h.Set(header, v)
		}
	}
}
