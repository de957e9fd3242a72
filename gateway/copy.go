package gateway

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sse"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// MaxCopySize is the largest source CopyObject and UploadPartCopy accept.
const MaxCopySize = 5 << 30

// parseCopySource splits x-amz-copy-source ("bucket/key", URL-encoded,
// maybe with a leading "/" and "?versionId=") into bucket, key and
// version id ("" for none).
func parseCopySource(v string) (bucket, key, versionID string, err error) {
	bad := s3err.New(s3err.InvalidArgument, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	path, query, hasQuery := strings.Cut(v, "?")
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", "", "", bad
		}
		if versionID, err = versionIDParam(q); err != nil {
			return "", "", "", err
		}
	}
	path, err = url.PathUnescape(path)
	if err != nil {
		return "", "", "", bad
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, ok := strings.Cut(path, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", "", bad
	}
	if err := checkKey(key); err != nil {
		return "", "", "", err
	}
	return bucket, key, versionID, nil
}

// copySource is the source of a copy, resolved and checked.
type copySource struct {
	o *pb.Object
	// key is the source's data key when it is encrypted.
	key *sse.DataKey
	// versionID is the x-amz-copy-source-version-id to answer ("":
	// none, the source bucket was never versioned).
	versionID string
	// named: the request named the source's version.
	named bool
}

// copySource resolves and checks the source of a copy: it exists (the
// current object, or the version ?versionId= names, which may not be a
// delete marker), its x-amz-copy-source-if-* conditions hold (a failure
// of any is PreconditionFailed) and it is not larger than a copy may be.
//
// It also reads the source's data key when it is encrypted: an SSE-C
// source needs its key in x-amz-copy-source-server-side-encryption-
// customer-*.
func (d *routerDeps) copySource(ctx context.Context, r *http.Request) (copySource, error) {
	sb, sk, vid, err := parseCopySource(r.Header.Get("x-amz-copy-source"))
	if err != nil {
		return copySource{}, err
	}
	action := "s3:GetObject"
	if vid != "" {
		action = "s3:GetObjectVersion"
	}
	if err := d.authorize(r, access{need: needRead, action: action, bucket: sb, key: sk}); err != nil {
		return copySource{}, err
	}
	key, err := d.parseClientKey(r, copySourcePrefix)
	if err != nil {
		return copySource{}, err
	}
	src, err := d.objects.HeadVersion(ctx, sb, sk, object.HeadOptions{VersionID: vid})
	if err != nil {
		switch {
		case isMeta(err, metaerr.ErrNoSuchKey):
			return copySource{}, &s3err.Error{Code: s3err.NoSuchKey, BucketName: sb, Key: sk, Err: err}
		case isMeta(err, metaerr.ErrNoSuchVersion):
			return copySource{}, &s3err.Error{Code: s3err.NoSuchVersion, Message: "The specified version of the copy source does not exist.", BucketName: sb, Key: sk, Err: err}
		case isMeta(err, metaerr.ErrNoSuchBucket):
			return copySource{}, &s3err.Error{Code: s3err.NoSuchBucket, BucketName: sb, Err: err}
		}
		return copySource{}, err
	}
	if src.GetDeleteMarker() {
		return copySource{}, s3err.New(s3err.InvalidRequest, "The source of a copy request may not specifically refer to a delete marker by version id.")
	}
	cs := copySource{o: src, versionID: vid, named: vid != ""}
	if vid == "" {
		cs.versionID = d.answeredVersionID(ctx, sb, src)
	}
	if cs.key, err = d.dataKey(src.GetEncryption(), key); err != nil {
		return copySource{}, err
	}
	if err := readPreconditions(r.Header, "x-amz-copy-source-").check(src.GetEtag(), lastModified(src), s3err.PreconditionFailed); err != nil {
		return copySource{}, err
	}
	return cs, nil
}

// copy is CopyObject. The bytes pass through the gateway (read from the
// source's chunks, written as a new object), which keeps the source and
// the copy independent for garbage collection.
func (h *objectHandlers) copy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	if err := checkWriteHeaders(r.Header); err != nil {
		return err
	}
	directive := r.Header.Get("x-amz-metadata-directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return s3err.New(s3err.InvalidArgument, "Unknown metadata directive.")
	}
	tagging := r.Header.Get("x-amz-tagging-directive")
	if tagging != "" && tagging != "COPY" && tagging != "REPLACE" {
		return s3err.New(s3err.InvalidArgument, "Unknown tagging directive.")
	}
	ssep, err := h.d.parseSSEWrite(r)
	if err != nil {
		return err
	}
	// The copy's lock is the one its own headers ask for (or the
	// bucket's default), never its source's, as on S3.
	lock, err := h.d.writeLock(ctx, t.bucket, r.Header)
	if err != nil {
		return err
	}
	cs, err := h.d.copySource(ctx, r)
	if err != nil {
		return err
	}
	src, srcKey := cs.o, cs.key
	// A copy onto itself must change something: its metadata, storage
	// class or encryption (a new SSE-C key, or decrypting it). Copying an
	// older version over the current one restores it.
	sameEncryption := ssep.mode == 0 && src.GetEncryption() == nil
	itself := src.GetBucket() == t.bucket && src.GetKey() == t.key && (!cs.named || src.GetIsLatest())
	if itself && directive != "REPLACE" && r.Header.Get(storageClassHeader) == "" && sameEncryption {
		return s3err.New(s3err.InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	if src.GetSize() > MaxCopySize {
		return s3err.New(s3err.InvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(MaxCopySize))
	}
	if err := h.d.checkRoom(ctx, t.bucket, t.key, src.GetSize()); err != nil {
		return err
	}
	// The source's headers, but not its storage class: a copy is STANDARD
	// unless the request names another, as on S3.
	headers := maps.Clone(src.GetHeaders())
	if headers == nil {
		headers = map[string]string{}
	}
	delete(headers, storageClassHeader)
	labelStorageClass(headers, r.Header)
	attrs := objectAttrs{contentType: src.GetContentType(), headers: headers, userMetadata: src.GetUserMetadata()}
	if directive == "REPLACE" {
		if attrs, err = readObjectAttrs(r.Header); err != nil {
			return err
		}
	}
	// Tags are copied unless the tagging directive replaces them, apart
	// from the metadata directive, as on S3.
	tags := src.GetTags()
	if tagging == "REPLACE" {
		if tags, err = parseTaggingHeader(r.Header.Get("x-amz-tagging")); err != nil {
			return err
		}
	}
	cond, err := writeCondition(r.Header)
	if err != nil {
		return err
	}
	// The copy is encrypted as the request asks, else as the
	// destination bucket's default, never as its source was, as on S3.
	if ssep, err = h.d.orBucketDefault(ctx, ssep, t.bucket); err != nil {
		return err
	}
	enc, dk, err := h.d.newEncryption(ssep)
	if err != nil {
		return err
	}
	rc, err := h.d.openObject(ctx, src, srcKey, 0, src.GetSize())
	if err != nil {
		return err
	}
	defer rc.Close()
	sums, err := copyChecksums(r.Header, src)
	if err != nil {
		return err
	}
	var body io.Reader = rc
	if sums != nil {
		body = io.TeeReader(rc, sums)
	}
	eb, err := encryptWith(enc, dk, body, src.GetSize(), 0)
	if err != nil {
		return err
	}
	defer eb.close()
	body, size := eb.stored(body, src.GetSize())
	o, err := h.d.objects.Put(ctx, t.bucket, t.key, body, size, eb.putOptions(object.PutOptions{
		ContentType:  attrs.contentType,
		Headers:      attrs.headers,
		UserMetadata: attrs.userMetadata,
		Condition:    cond,
		BeforeCommit: func(o *pb.Object) error {
			plainMD5, err := eb.sealObject(o)
			if err != nil {
				return err
			}
			// A single-PUT source's ETag is its MD5 (unless its key is
			// the client's): the copy must match.
			if !strings.Contains(src.GetEtag(), "-") && src.GetEncryption().GetMode() != pb.EncryptionMode_ENCRYPTION_MODE_SSE_C && plainMD5 != src.GetEtag() {
				return s3err.New(s3err.InternalError, "The copied bytes do not match the source's ETag.")
			}
			o.Tags = tags
			lock.apply(o)
			return sums.store(o)
		},
	}))
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), o.GetEncryption())
	setVersionID(w.Header(), h.d.answeredVersionID(ctx, t.bucket, o))
	h.d.setExpiration(ctx, w.Header(), t.bucket, o)
	setCopySourceVersionID(w.Header(), cs.versionID)
	f, typ := xmlChecksums(o.GetChecksums())
	return writeXML(w, copyObjectResult{
		NS:             s3NS,
		ETag:           quoteETag(o.GetEtag()),
		LastModified:   fmtXMLTime(lastModified(o)),
		ChecksumType:   typ,
		checksumFields: f,
	})
}

// setCopySourceVersionID sets x-amz-copy-source-version-id, unless id is
// "".
func setCopySourceVersionID(h http.Header, id string) {
	if id != "" {
		h.Set("x-amz-copy-source-version-id", id)
	}
}
