package gateway

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// objectHandlers serve the single-object operations.
type objectHandlers struct{ d *routerDeps }

// writeCondition turns If-None-Match / If-Match on a write into the
// metadata commit's condition. S3 supports only "*" for If-None-Match.
func writeCondition(h http.Header) (*pb.Condition, error) {
	inm, im := h.Get("If-None-Match"), h.Get("If-Match")
	if inm == "" && im == "" {
		return nil, nil
	}
	c := &pb.Condition{}
	if inm != "" {
		if inm != "*" {
			return nil, s3err.New(s3err.NotImplemented, "If-None-Match on a write supports only '*'.")
		}
		c.MustNotExist = true
	}
	if im != "" {
		c.IfMatchEtag = trimETag(im)
		if c.IfMatchEtag == "*" {
			return nil, s3err.New(s3err.NotImplemented, "If-Match on a write needs an ETag.")
		}
	}
	return c, nil
}

// put is PutObject.
func (h *objectHandlers) put(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	if err := checkWriteHeaders(r.Header); err != nil {
		return err
	}
	attrs, err := readObjectAttrs(r.Header)
	if err != nil {
		return err
	}
	cond, err := writeCondition(r.Header)
	if err != nil {
		return err
	}
	ssep, err := h.d.writeEncryption(r, t.bucket)
	if err != nil {
		return err
	}
	lock, err := h.d.writeLock(r.Context(), t.bucket, r.Header)
	if err != nil {
		return err
	}
	b, err := h.d.openBody(r)
	if err != nil {
		return err
	}
	if err := h.d.checkRoom(r.Context(), t.bucket, t.key, b.size); err != nil {
		return err
	}
	enc, dk, err := h.d.newEncryption(ssep)
	if err != nil {
		return err
	}
	eb, err := encryptWith(enc, dk, b.r, b.size, 0)
	if err != nil {
		return err
	}
	defer eb.close()
	stored, storedSize := eb.stored(b.r, b.size)
	o, err := h.d.objects.Put(r.Context(), t.bucket, t.key, stored, storedSize, eb.putOptions(object.PutOptions{
		ContentType:  attrs.contentType,
		Headers:      attrs.headers,
		UserMetadata: attrs.userMetadata,
		Condition:    cond,
		BeforeCommit: func(o *pb.Object) error {
			plainMD5, err := eb.sealObject(o)
			if err != nil {
				return err
			}
			cs, err := b.finish(plainMD5)
			if err != nil {
				return err
			}
			o.Checksums, o.Tags = cs, attrs.tags
			lock.apply(o)
			return nil
		},
	}))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", quoteETag(o.GetEtag()))
	setChecksumHeaders(w.Header(), o.GetChecksums())
	setSSEHeaders(w.Header(), o.GetEncryption())
	setVersionID(w.Header(), h.d.answeredVersionID(r.Context(), t.bucket, o))
	h.d.setExpiration(r.Context(), w.Header(), t.bucket, o)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// get is GetObject and HeadObject.
func (h *objectHandlers) get(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	q := r.URL.Query()
	versionID, err := versionIDParam(q)
	if err != nil {
		return err
	}
	if err := checkReadHeaders(r.Header); err != nil {
		return err
	}
	key, err := h.d.parseClientKey(r, requestPrefix)
	if err != nil {
		return err
	}
	hdr := w.Header()
	o, err := h.d.readVersion(r, hdr, t, versionID)
	if err != nil {
		return err
	}
	dk, err := h.d.dataKey(o.GetEncryption(), key)
	if err != nil {
		return err
	}
	if err := readPreconditions(r.Header, "").check(o.GetEtag(), lastModified(o), s3err.NotModified); err != nil {
		if errors.Is(err, s3err.NotModified) {
			setValidators(hdr, o)
		}
		return err
	}
	// The object's checksums describe the whole object: never sent with a
	// range of it, which a client would otherwise validate against them.
	// A part (partNumber) is answered with its own, as S3 does.
	withSums := r.Header.Get("x-amz-checksum-mode") == "ENABLED"
	whole := q.Get("partNumber") == "" && r.Header.Get("Range") == ""
	setObjectHeaders(hdr, o, whole && withSums)
	setLockHeaders(r, hdr, o)
	if versionID == "" || o.GetIsLatest() {
		h.d.setExpiration(r.Context(), hdr, t.bucket, o)
	}
	applyResponseOverrides(hdr, q)

	off, n, status := int64(0), o.GetSize(), http.StatusOK
	if pn := q.Get("partNumber"); pn != "" {
		var part *pb.PartInfo
		var ok bool
		if off, n, part, ok = partRange(o, pn); !ok {
			return s3err.New(s3err.InvalidPart, "The requested partnumber is not satisfiable.")
		}
		if withSums && part != nil {
			setChecksumHeaders(hdr, part.GetChecksums())
		} else if withSums {
			setChecksumHeaders(hdr, o.GetChecksums()) // part 1 of a single-part object: all of it
		}
		if part != nil {
			status = http.StatusPartialContent
			hdr.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10)+"/"+strconv.FormatInt(o.GetSize(), 10))
		}
	} else if rh := r.Header.Get("Range"); rh != "" {
		br, res := parseRange(rh, o.GetSize())
		switch res {
		case rangeUnsatisfiable:
			hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(o.GetSize(), 10))
			return s3err.InvalidRange
		case rangeOK:
			off, n, status = br.start, br.length, http.StatusPartialContent
			hdr.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10)+"/"+strconv.FormatInt(o.GetSize(), 10))
		}
	}
	hdr.Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rc, err := h.d.openObject(r.Context(), o, dk, off, n)
	if err != nil {
		// Nothing was written yet: a clean error answer is possible,
		// but not with the object's headers.
		clearObjectHeaders(hdr)
		return err
	}
	defer rc.Close()
	// Read the first bytes before committing to a status: a range whose
	// chunks cannot be read then gets a clean error answer instead of a
	// connection cut before any response (which clients retry blindly).
	// The first Read fetches and checks the whole first stripe, so a few
	// KiB settle it (and hold an inline object whole); the rest goes out
	// through io.Copy, which hands it to the object reader's WriteTo. 64 KiB
	// here was the largest allocation of a 1 MiB GET.
	first := make([]byte, min(n, 4<<10))
	if _, err := io.ReadFull(rc, first); err != nil {
		clearObjectHeaders(hdr)
		return err
	}
	w.WriteHeader(status)
	if _, err := w.Write(first); err != nil {
		stateOf(r).err = err
		panic(http.ErrAbortHandler)
	}
	if _, err := io.Copy(w, rc); err != nil {
		// Headers are gone; the only honest signal left is to cut the
		// connection so the client sees a short body.
		stateOf(r).err = err
		panic(http.ErrAbortHandler)
	}
	return nil
}

// partRange is the byte range of part pn ("1".."10000") of o. An object
// that was not uploaded in parts has one part, the whole object.
func partRange(o *pb.Object, pn string) (off, n int64, part *pb.PartInfo, ok bool) {
	num, err := strconv.Atoi(pn)
	if err != nil || num < 1 || num > maxPartNumber {
		return 0, 0, nil, false
	}
	parts := o.GetParts()
	if len(parts) == 0 {
		return 0, o.GetSize(), nil, num == 1
	}
	if num > len(parts) {
		return 0, 0, nil, false
	}
	for _, p := range parts[:num-1] {
		off += p.GetSize()
	}
	return off, parts[num-1].GetSize(), parts[num-1], true
}

func clearObjectHeaders(h http.Header) {
	for name := range h {
		switch http.CanonicalHeaderKey(name) {
		case "X-Amz-Request-Id", "X-Amz-Id-2", "Server":
		default:
			delete(h, name)
		}
	}
}

// delete is DeleteObject: 204 whether or not the key (or version)
// existed. Without a version id, a bucket with versioning gets a delete
// marker (x-amz-delete-marker, and its id in x-amz-version-id); with one,
// that version goes for good (x-amz-delete-marker when it was a marker),
// unless its object lock forbids it (AccessDenied; a GOVERNANCE
// retention yields to x-amz-bypass-governance-retention).
func (h *objectHandlers) delete(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	versionID, err := versionIDParam(r.URL.Query())
	if err != nil {
		return err
	}
	bypass, err := h.d.authorizeBypass(r, t.bucket, t.key)
	if err != nil {
		return err
	}
	var cond *pb.Condition
	if im := r.Header.Get("If-Match"); im != "" {
		cond = &pb.Condition{IfMatchEtag: trimETag(im)}
	}
	resp, err := h.d.meta.DeleteObject(r.Context(), &pb.DeleteObjectRequest{Bucket: t.bucket, Key: t.key, Condition: cond, VersionId: versionID, BypassGovernance: bypass})
	if err != nil && !errors.Is(err, metaerr.ErrNoSuchKey) {
		return err
	}
	if err != nil && cond != nil {
		return s3err.PreconditionFailed
	}
	setDeleteHeaders(w.Header(), versionID, resp)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setDeleteHeaders sets what S3 answers a DeleteObject of versionID (""
// for none) with: x-amz-version-id, the id of the version deleted (the
// one asked for, whether or not it existed) or of the delete marker
// added, and x-amz-delete-marker when either is a marker.
func setDeleteHeaders(h http.Header, versionID string, resp *pb.DeleteObjectResponse) {
	id := resp.GetVersionId()
	if versionID != "" {
		id = versionID
	}
	setVersionID(h, id)
	if resp.GetDeleteMarker() {
		h.Set("x-amz-delete-marker", "true")
	}
}
