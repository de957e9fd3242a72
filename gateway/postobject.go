package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/cairnstore/cairn/gateway/checksum"
	"github.com/cairnstore/cairn/gateway/postpolicy"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// Limits on a POST form's fields (the file is streamed, not held). They
// are read before the policy's signature can be checked, so they bound
// what an anonymous client can make the gateway hold.
const (
	maxPostField      = 64 << 10
	maxPostFieldBytes = 1 << 20 // all fields together
	maxPostFieldCount = 1000
)

// isPostForm matches a browser-based upload: a POST to a bucket with a
// multipart/form-data body.
func isPostForm(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// postForm is what a POST upload's form says: its fields (lower-case
// names, the values as sent) and the file, which comes last.
type postForm struct {
	fields   map[string]string
	file     *multipart.Part
	filename string
}

// readPostForm reads the fields of a POST upload up to its file field.
// Fields after the file are not read, as S3 ignores them. The body is
// read through clientReader, so a cut connection is answered as a
// timeout rather than as a malformed form.
func readPostForm(r *http.Request) (*postForm, error) {
	r.Body = struct {
		io.Reader
		io.Closer
	}{&clientReader{r: r.Body}, r.Body}
	malformed := func(err error) error {
		if errors.Is(err, errClientGone) {
			return err
		}
		return s3err.New(s3err.MalformedPOSTRequest, "The body of your POST request is not well-formed multipart/form-data: %v.", err)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, malformed(err)
	}
	f := &postForm{fields: map[string]string{}}
	total := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, s3err.New(s3err.InvalidArgument, "POST requires exactly one file upload per request.")
		}
		if err != nil {
			return nil, malformed(err)
		}
		name := strings.ToLower(p.FormName())
		if name == "file" {
			// FileName drops a path; old browsers send a Windows one.
			filename := p.FileName()
			if i := strings.LastIndexByte(filename, '\\'); i >= 0 {
				filename = filename[i+1:]
			}
			f.file, f.filename = p, filename
			return f, nil
		}
		if name == "" {
			return nil, s3err.New(s3err.MalformedPOSTRequest, "The body of your POST request has a part without a field name; the file's field must be named 'file'.")
		}
		v, err := io.ReadAll(io.LimitReader(p, maxPostField+1))
		if err != nil {
			return nil, malformed(err)
		}
		total += len(name) + len(v)
		if len(v) > maxPostField || total > maxPostFieldBytes || len(f.fields) >= maxPostFieldCount {
			return nil, s3err.New(s3err.MaxMessageLengthExceeded, "The form fields of your POST request exceed %d bytes or %d fields.", maxPostFieldBytes, maxPostFieldCount)
		}
		if _, dup := f.fields[name]; dup {
			return nil, s3err.New(s3err.InvalidArgument, "The form field %q is given more than once.", name)
		}
		f.fields[name] = string(v)
	}
}

// authenticatePost checks the form's signature over its policy (SigV4
// fields, or SigV2's AWSAccessKeyId and signature) and the policy's
// conditions, and returns the policy. A form with neither a policy nor a
// signature is anonymous, as on S3: the bucket's policy must allow
// s3:PutObject of the key to anyone, and the upload has no conditions
// (nil policy). Either way the key authorized is the one stored, with
// ${filename} already replaced, so that a Deny of some keys cannot be
// passed by naming the file.
func (d *routerDeps) authenticatePost(r *http.Request, f *postForm, bucket string) (*postpolicy.Policy, error) {
	fv := f.fields
	key := postKey(fv["key"], f.filename)
	encoded := fv["policy"]
	if encoded == "" {
		if fv["x-amz-signature"] != "" || fv["x-amz-credential"] != "" || fv["signature"] != "" || fv["awsaccesskeyid"] != "" {
			return nil, s3err.New(s3err.AccessDenied, "A signed POST upload needs its policy: the form has a signature but no policy field.")
		}
		stateOf(r).auth = nil
		return nil, d.authorize(postAsHeaders(r, fv), access{need: needWrite, action: "s3:PutObject", bucket: bucket, key: key})
	}
	var auth *sigv4.Auth
	var err error
	switch {
	case fv["x-amz-signature"] != "":
		if alg := fv["x-amz-algorithm"]; alg != sigv4.Algorithm {
			return nil, s3err.New(s3err.InvalidArgument, "x-amz-algorithm must be %s, not %q.", sigv4.Algorithm, alg)
		}
		auth, err = d.verifier.VerifyPostPolicy(r.Context(), fv["x-amz-credential"], fv["x-amz-date"], encoded, fv["x-amz-signature"])
	case fv["signature"] != "" && fv["awsaccesskeyid"] != "":
		a, err2 := d.v2.VerifyPostPolicy(r.Context(), fv["awsaccesskeyid"], encoded, fv["signature"])
		if err2 == nil {
			auth = &sigv4.Auth{AccessKey: a.AccessKey, Payload: sigv4.UnsignedPayload}
		}
		err = err2
	default:
		return nil, s3err.New(s3err.AccessDenied, "A POST upload needs x-amz-signature (or SigV2's AWSAccessKeyId and signature) over its policy.")
	}
	if err != nil {
		return nil, err
	}
	stateOf(r).auth = auth
	if err := d.authorize(postAsHeaders(r, fv), access{need: needWrite, action: "s3:PutObject", bucket: bucket, key: key}); err != nil {
		return nil, err
	}
	doc, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, s3err.New(s3err.InvalidPolicyDocument, "The policy is not base64: %v.", err)
	}
	p, err := postpolicy.Parse(doc)
	if err != nil {
		return nil, s3err.New(s3err.InvalidPolicyDocument, "Invalid Policy: %v.", err)
	}
	if err := p.Check(fv, bucket, d.now()); err != nil {
		return nil, s3err.New(s3err.AccessDenied, "%s", err.Error())
	}
	return p, nil
}

// postAsHeaders is r as a bucket policy sees a PutObject of the form's
// fields: what the form says of the object (encryption, ACL, storage
// class, object lock, tags) in the headers a PUT would carry them in, so
// that a policy's conditions on them (a Deny of uploads without
// server-side encryption) judge a POST upload as they judge a PUT. The
// form's tagging field, a Tagging document, becomes x-amz-tagging's query
// form; one that does not parse is left out (postObject refuses it).
func postAsHeaders(r *http.Request, fields map[string]string) *http.Request {
	v := r.Clone(r.Context())
	v.Header = r.Header.Clone()
	for name, values := range postFormHeaders(fields) {
		v.Header[name] = values
	}
	v.Header.Del("X-Amz-Tagging")
	if doc := fields["tagging"]; doc != "" {
		if tags, err := parseTaggingXML([]byte(doc), maxObjectTags); err == nil {
			q := url.Values{}
			for k, t := range tags {
				q.Set(k, t)
			}
			v.Header.Set("X-Amz-Tagging", q.Encode())
		}
	}
	return v
}

// postKey is the key a form's key field names for a file of this name.
func postKey(field, filename string) string {
	return strings.ReplaceAll(field, "${filename}", filename)
}

// postFormHeaders are the form fields that stand for request headers of a
// PutObject: the object's attributes, checksums, encryption and object
// lock, and the feature headers checkWriteHeaders refuses.
func postFormHeaders(fields map[string]string) http.Header {
	h := http.Header{}
	for name, v := range fields {
		switch {
		case name == "content-type", name == "cache-control", name == "content-disposition",
			name == "content-encoding", name == "expires", name == "acl", name == "tagging",
			name == "x-amz-storage-class", name == "x-amz-website-redirect-location",
			strings.HasPrefix(name, "x-amz-meta-"), strings.HasPrefix(name, "x-amz-checksum-"),
			strings.HasPrefix(name, "x-amz-server-side-encryption"), strings.HasPrefix(name, "x-amz-object-lock-"):
			switch name {
			case "acl":
				name = "x-amz-acl"
			case "tagging":
				name = "x-amz-tagging"
			}
			h.Set(textproto.CanonicalMIMEHeaderKey(name), v)
		}
	}
	return h
}

type postResponse struct {
	XMLName  xml.Name `xml:"PostResponse"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// postObject is PostObject: a browser-based upload. An HTML form posted
// as multipart/form-data carries the key, the object's headers and a
// policy signed with the owner's key (which stands in for a signed
// request), then the file. The file is streamed into the object as a
// PutObject body would be; the policy's content-length-range is enforced
// before the object is committed.
func (h *objectHandlers) postObject(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	f, err := readPostForm(r)
	if err != nil {
		return err
	}
	policy, err := h.d.authenticatePost(r, f, t.bucket)
	if err != nil {
		return err
	}
	if f.fields["key"] == "" {
		return s3err.New(s3err.InvalidArgument, "Bucket POST must contain a field named 'key'.")
	}
	key := postKey(f.fields["key"], f.filename)
	if err := checkKey(key); err != nil {
		return err
	}
	t.key = key
	stateOf(r).target.key = key
	hdr := postFormHeaders(f.fields)
	if err := checkWriteHeaders(hdr); err != nil {
		return err
	}
	// A form's tagging field is a Tagging document, not a query.
	tagging := hdr.Get("x-amz-tagging")
	hdr.Del("x-amz-tagging")
	attrs, err := readObjectAttrs(hdr)
	if err != nil {
		return err
	}
	if tagging != "" {
		if attrs.tags, err = parseTaggingXML([]byte(tagging), maxObjectTags); err != nil {
			return err
		}
	}
	if attrs.contentType == "" {
		attrs.contentType = "binary/octet-stream"
	}
	sums, err := newChecksums(&http.Request{Header: hdr}, bodyChecksums{fallback: checksum.DefaultObject, typ: checksum.FullObject.String()})
	if err != nil {
		return err
	}
	lo, hi, ranged := policy.SizeRange()
	if !ranged || hi > MaxPutSize {
		hi = MaxPutSize
	}
	body := &limitReader{r: f.file, left: hi}
	var src io.Reader = body
	if sums != nil {
		src = io.TeeReader(body, sums)
	}
	// The form's encryption fields stand for the request's headers.
	// With r's context: the request's state says whether it came over TLS.
	ssep, err := h.d.parseSSEWrite((&http.Request{Header: hdr}).WithContext(r.Context()))
	if err != nil {
		return err
	}
	if ssep, err = h.d.orBucketDefault(r.Context(), ssep, t.bucket); err != nil {
		return err
	}
	// The form's x-amz-object-lock-* fields, which its policy's
	// conditions must allow as any field.
	lock, err := h.d.writeLock(r.Context(), t.bucket, hdr)
	if err != nil {
		return err
	}
	enc, dk, err := h.d.newEncryption(ssep)
	if err != nil {
		return err
	}
	eb, err := encryptWith(enc, dk, src, -1, 0)
	if err != nil {
		return err
	}
	defer eb.close()
	src, _ = eb.stored(src, -1)
	o, err := h.d.objects.Put(r.Context(), t.bucket, key, src, -1, eb.putOptions(object.PutOptions{
		ContentType:  attrs.contentType,
		Headers:      attrs.headers,
		UserMetadata: attrs.userMetadata,
		BeforeCommit: func(o *pb.Object) error {
			if n := hi - body.left; ranged && n < lo {
				return s3err.New(s3err.EntityTooSmall, "Your proposed upload is smaller than the minimum allowed size (%d of at least %d bytes).", n, lo)
			}
			if _, err := eb.sealObject(o); err != nil {
				return err
			}
			o.Tags = attrs.tags
			lock.apply(o)
			return sums.store(o)
		},
	}))
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), o.GetEncryption())
	setVersionID(w.Header(), h.d.answeredVersionID(r.Context(), t.bucket, o))
	h.d.setExpiration(r.Context(), w.Header(), t.bucket, o)
	etag := quoteETag(o.GetEtag())
	loc := objectLocation(r, t)
	if redirect := f.fields["success_action_redirect"]; redirect != "" {
		if u, err := url.Parse(redirect); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("bucket", t.bucket)
			q.Set("key", key)
			q.Set("etag", etag)
			u.RawQuery = q.Encode()
			w.Header().Set("Location", u.String())
			w.WriteHeader(http.StatusSeeOther)
			return nil
		}
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Location", loc)
	setChecksumHeaders(w.Header(), o.GetChecksums())
	switch f.fields["success_action_status"] {
	case "200":
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	case "201":
		return writeXMLStatus(w, http.StatusCreated, postResponse{Location: loc, Bucket: t.bucket, Key: key, ETag: etag})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
