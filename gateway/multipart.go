package gateway

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sse"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// Multipart limits, as S3's.
const (
	maxPartNumber = 10000
	// MinPartSize is the smallest a part other than the last may be.
	MinPartSize = 5 << 20
)

// multipartHandlers serve the multipart upload operations.
type multipartHandlers struct{ d *routerDeps }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUploadID makes an upload id (48 hex digits) that sorts by when it
// was made: the time in nanoseconds, then 16 random bytes. metad lists a
// key's uploads in id order, which is then S3's: by initiation (as this
// gateway's clock tells it; uploads begun through two gateways within
// their clocks' skew may list either way).
func newUploadID(now time.Time) string {
	return fmt.Sprintf("%016x", uint64(now.UnixNano())) + randomHex(16)
}

// create is CreateMultipartUpload.
func (h *multipartHandlers) create(w http.ResponseWriter, r *http.Request) error {
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
	alg, typ, err := uploadChecksumMode(r.Header)
	if err != nil {
		return err
	}
	ssep, err := h.d.writeEncryption(r, t.bucket)
	if err != nil {
		return err
	}
	// The lock is kept on the upload and given to the object at Complete.
	lock, err := h.d.writeLock(r.Context(), t.bucket, r.Header)
	if err != nil {
		return err
	}
	// The upload's data key is made now: every part is encrypted with
	// it (each as its own stream), and the object keeps it.
	enc, _, err := h.d.newEncryption(ssep)
	if err != nil {
		return err
	}
	resp, err := h.d.meta.CreateMultipart(r.Context(), &pb.CreateMultipartRequest{Upload: &pb.MultipartUpload{
		Bucket:            t.bucket,
		Key:               t.key,
		UploadId:          newUploadID(h.d.now()),
		ContentType:       attrs.contentType,
		Headers:           attrs.headers,
		UserMetadata:      attrs.userMetadata,
		ChecksumAlgorithm: alg,
		ChecksumType:      typ,
		Tags:              attrs.tags,
		Encryption:        enc,
		Retention:         lock.retention,
		LegalHold:         lock.legalHold,
		LegalHoldSet:      lock.holdSet,
	}})
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), enc)
	if alg != "" {
		w.Header().Set("x-amz-checksum-algorithm", alg)
		w.Header().Set("x-amz-checksum-type", typ)
	}
	h.d.setAbortDate(r.Context(), w.Header(), t.bucket, t.key, unixTime(resp.GetUpload().GetInitiatedUnixNano()))
	return writeXML(w, initiateMultipartUploadResult{NS: s3NS, Bucket: t.bucket, Key: t.key, UploadID: resp.GetUpload().GetUploadId()})
}

// partNumber reads the partNumber query parameter: 1..10000.
func partNumber(q url.Values) (int32, error) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxPartNumber {
		return 0, s3err.New(s3err.InvalidArgument, "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
	}
	return int32(n), nil
}

// upload finds the upload a part request names (NoSuchUpload before any
// data moves).
func (h *multipartHandlers) upload(r *http.Request) (*pb.MultipartUpload, error) {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return nil, err
	}
	resp, err := h.d.meta.GetMultipart(r.Context(), &pb.GetMultipartRequest{Bucket: t.bucket, Key: t.key, UploadId: r.URL.Query().Get("uploadId")})
	if err != nil {
		return nil, err
	}
	return resp.GetUpload(), nil
}

// uploadWithKey is upload with the upload's data key when it is
// encrypted: a part of an SSE-C upload must bring the upload's key.
func (h *multipartHandlers) uploadWithKey(r *http.Request) (*pb.MultipartUpload, *sse.DataKey, error) {
	key, err := h.d.parseClientKey(r, requestPrefix)
	if err != nil {
		return nil, nil, err
	}
	up, err := h.upload(r)
	if err != nil {
		return nil, nil, err
	}
	if err := checkPartSSEHeaders(r.Header, up); err != nil {
		return nil, nil, err
	}
	dk, err := h.d.dataKey(up.GetEncryption(), key)
	if err != nil {
		return nil, nil, err
	}
	return up, dk, nil
}

// checkPartSSEHeaders refuses encryption headers on a part other than a
// client's key (dataKey checks it) and a repeat of its upload's SSE-S3
// (minio-go sends the upload's x-amz-server-side-encryption with each
// part): a part is encrypted as its upload is.
func checkPartSSEHeaders(h http.Header, up *pb.MultipartUpload) error {
	if v := h.Get(sseHeader); v != "" && (v != sseAES256 || up.GetEncryption().GetMode() != pb.EncryptionMode_ENCRYPTION_MODE_SSE_S3) {
		return s3err.New(s3err.InvalidArgument, "x-amz-server-side-encryption %q is not the upload's encryption: a part is encrypted as its upload is.", v)
	}
	h = h.Clone()
	h.Del(sseHeader)
	return checkReadHeaders(h)
}

// uploadPart is UploadPart.
func (h *multipartHandlers) uploadPart(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	num, err := partNumber(r.URL.Query())
	if err != nil {
		return err
	}
	up, dk, err := h.uploadWithKey(r)
	if err != nil {
		return err
	}
	b, err := h.d.openPartBody(r, up)
	if err != nil {
		return err
	}
	if err := h.d.checkPartRoom(r.Context(), t.bucket, t.key, up.GetUploadId(), num, b.size); err != nil {
		return err
	}
	eb, err := encryptWith(up.GetEncryption(), dk, b.r, b.size, uint32(num))
	if err != nil {
		return err
	}
	defer eb.close()
	stored, storedSize := eb.stored(b.r, b.size)
	p, err := h.d.objects.PutPart(r.Context(), t.bucket, t.key, up.GetUploadId(), num, stored, storedSize, eb.partOptions(object.PartOptions{BeforeCommit: func(p *pb.Part) error {
		plainMD5, err := eb.sealPart(p)
		if err != nil {
			return err
		}
		cs, err := b.finish(plainMD5)
		if err != nil {
			return err
		}
		p.Checksums = cs
		return nil
	}}))
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), up.GetEncryption())
	w.Header().Set("ETag", quoteETag(p.GetEtag()))
	setChecksumHeaders(w.Header(), p.GetChecksums())
	w.Header().Del("x-amz-checksum-type")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// parseCopyRange reads x-amz-copy-source-range ("bytes=first-last", both
// required) against a source of size bytes.
func parseCopyRange(v string, size int64) (off, n int64, err error) {
	if v == "" {
		return 0, size, nil
	}
	bad := s3err.New(s3err.InvalidArgument, "Range specified is not valid for source object of size: %d", size)
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok {
		return 0, 0, bad
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, bad
	}
	first, err1 := parseDigits(a)
	last, err2 := parseDigits(b)
	if err1 != nil || err2 != nil || first > last || last >= size {
		return 0, 0, bad
	}
	return first, last - first + 1, nil
}

// uploadPartCopy is UploadPartCopy: a part whose bytes are a range of an
// existing object.
func (h *multipartHandlers) uploadPartCopy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := stateOf(r).target
	num, err := partNumber(r.URL.Query())
	if err != nil {
		return err
	}
	up, dk, err := h.uploadWithKey(r)
	if err != nil {
		return err
	}
	cs, err := h.d.copySource(ctx, r)
	if err != nil {
		return err
	}
	src, srcKey := cs.o, cs.key
	off, n, err := parseCopyRange(r.Header.Get("x-amz-copy-source-range"), src.GetSize())
	if err != nil {
		return err
	}
	if n > MaxCopySize {
		return s3err.New(s3err.InvalidRequest, "The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(MaxCopySize))
	}
	if err := h.d.checkPartRoom(ctx, t.bucket, t.key, up.GetUploadId(), num, n); err != nil {
		return err
	}
	rc, err := h.d.openObject(ctx, src, srcKey, off, n)
	if err != nil {
		return err
	}
	defer rc.Close()
	sums := partCopyChecksums(up)
	var body io.Reader = rc
	if sums != nil {
		body = io.TeeReader(rc, sums)
	}
	eb, err := encryptWith(up.GetEncryption(), dk, body, n, uint32(num))
	if err != nil {
		return err
	}
	defer eb.close()
	body, size := eb.stored(body, n)
	p, err := h.d.objects.PutPart(ctx, t.bucket, t.key, up.GetUploadId(), num, body, size, eb.partOptions(object.PartOptions{BeforeCommit: func(p *pb.Part) error {
		if _, err := eb.sealPart(p); err != nil {
			return err
		}
		if sums == nil {
			return nil
		}
		cs, err := sums.verify(nil)
		p.Checksums = cs
		return err
	}}))
	if err != nil {
		return err
	}
	setSSEHeaders(w.Header(), up.GetEncryption())
	setCopySourceVersionID(w.Header(), cs.versionID)
	f, _ := xmlChecksums(p.GetChecksums())
	return writeXML(w, copyPartResult{NS: s3NS, ETag: quoteETag(p.GetEtag()), LastModified: fmtXMLTime(h.d.now()), checksumFields: f})
}

// parseCompleteRequest decodes CompleteMultipartUpload's body: at least
// one part, numbers in 1..10000 in ascending order.
func parseCompleteRequest(body []byte) (*completeMultipartUpload, error) {
	var req completeMultipartUpload
	if err := decodeXML(body, &req); err != nil {
		return nil, err
	}
	if len(req.Parts) == 0 {
		return nil, &s3err.Error{Code: s3err.MalformedXML, Message: "The XML you provided was not well-formed or did not validate against our published schema: no parts."}
	}
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxPartNumber {
			return nil, s3err.New(s3err.InvalidArgument, "Part number must be an integer between 1 and %d, inclusive", maxPartNumber)
		}
		if i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
			return nil, s3err.InvalidPartOrder
		}
	}
	return &req, nil
}

// complete is CompleteMultipartUpload. The gateway builds the object from
// the chosen parts — their segments in order, their boundaries in
// Object.parts, the ETag as the MD5 of the part MD5s suffixed "-N", the
// checksum the upload asked for — and commits it in one metadata call that
// moves no data; metad re-checks that the parts are still those.
func (h *multipartHandlers) complete(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	uploadID := r.URL.Query().Get("uploadId")
	cond, err := writeCondition(r.Header)
	if err != nil {
		return err
	}
	body, err := h.d.readCompleteBody(r)
	if err != nil {
		return err
	}
	req, err := parseCompleteRequest(body)
	if err != nil {
		return err
	}
	up, parts, err := h.allParts(r, t, uploadID)
	if errors.Is(err, metaerr.ErrNoSuchUpload) {
		return h.completedAlready(w, r, t, req, err)
	}
	if err != nil {
		return err
	}
	o := &pb.Object{
		Bucket:       t.bucket,
		Key:          t.key,
		VersionId:    randomHex(16),
		ContentType:  up.GetContentType(),
		Headers:      up.GetHeaders(),
		UserMetadata: up.GetUserMetadata(),
		Tags:         up.GetTags(),
		Encryption:   up.GetEncryption(),
		Retention:    up.GetRetention(),
		LegalHold:    up.GetLegalHold(),
		LegalHoldSet: up.GetLegalHoldSet(),
	}
	chosen := make([]*pb.Part, 0, len(req.Parts))
	etags := md5.New()
	for _, cp := range req.Parts {
		if p := parts[cp.PartNumber]; p == nil || p.GetEtag() != trimETag(cp.ETag) {
			return s3err.New(s3err.InvalidPart, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag. (part %d)", cp.PartNumber)
		}
	}
	for i, cp := range req.Parts {
		p := parts[cp.PartNumber]
		if i < len(req.Parts)-1 && p.GetSize() < MinPartSize {
			return &s3err.Error{Code: s3err.EntityTooSmall, Fields: []s3err.Field{
				{Name: "ProposedSize", Value: strconv.FormatInt(p.GetSize(), 10)},
				{Name: "MinSizeAllowed", Value: strconv.Itoa(MinPartSize)},
				{Name: "PartNumber", Value: strconv.Itoa(int(cp.PartNumber))},
				{Name: "ETag", Value: p.GetEtag()},
			}}
		}
		sum, err := hex.DecodeString(p.GetEtag())
		if err != nil {
			return fmt.Errorf("part %d has a malformed ETag %q: %w", cp.PartNumber, p.GetEtag(), err)
		}
		etags.Write(sum)
		chosen = append(chosen, p)
		o.Size += p.GetSize()
		o.Segments = append(o.Segments, p.GetSegments()...)
		o.Parts = append(o.Parts, &pb.PartInfo{Number: p.GetNumber(), Size: p.GetSize(), Etag: p.GetEtag(), Checksums: p.GetChecksums()})
	}
	o.Etag = hex.EncodeToString(etags.Sum(nil)) + "-" + strconv.Itoa(len(chosen))
	if o.Checksums, err = completeChecksums(up, chosen, req.Parts); err != nil {
		return err
	}
	if err := checkDeclaredComplete(r.Header, up, o); err != nil {
		return err
	}
	completeParts := make([]*pb.CompletePart, len(chosen))
	for i, p := range chosen {
		completeParts[i] = &pb.CompletePart{Number: p.GetNumber(), Etag: p.GetEtag()}
	}
	resp, err := h.d.meta.CompleteMultipart(ctx, &pb.CompleteMultipartRequest{UploadId: uploadID, Parts: completeParts, Object: o, Condition: cond})
	if errors.Is(err, metaerr.ErrNoSuchUpload) {
		return h.completedAlready(w, r, t, req, err)
	}
	if err != nil {
		return err
	}
	return h.writeCompleteResult(w, r, t, resp.GetObject(), resp.GetVersionId())
}

// completedAlready answers a Complete whose upload no longer exists. When
// the object at the key is made of exactly the parts this Complete lists
// (numbers and ETags, in order), the upload was completed — most likely by
// this same request, retried by a client that lost the first answer (a
// timeout, or a 500 "commit outcome unknown" when metad lost its leader
// mid-commit) — and the answer is the success it missed, as S3 answers a
// repeated Complete. Otherwise it is notFound (NoSuchUpload).
func (h *multipartHandlers) completedAlready(w http.ResponseWriter, r *http.Request, t target, req *completeMultipartUpload, notFound error) error {
	o, err := h.d.objects.Head(r.Context(), t.bucket, t.key)
	if err != nil || len(o.GetParts()) != len(req.Parts) || len(req.Parts) == 0 {
		return notFound
	}
	for i, cp := range req.Parts {
		if p := o.GetParts()[i]; p.GetNumber() != cp.PartNumber || p.GetEtag() != trimETag(cp.ETag) {
			return notFound
		}
	}
	return h.writeCompleteResult(w, r, t, o, h.d.answeredVersionID(r.Context(), t.bucket, o))
}

// writeCompleteResult answers a Complete that made o, whose S3 version id
// is versionID ("": none, in a bucket never versioned).
func (h *multipartHandlers) writeCompleteResult(w http.ResponseWriter, r *http.Request, t target, o *pb.Object, versionID string) error {
	setSSEHeaders(w.Header(), o.GetEncryption())
	setVersionID(w.Header(), versionID)
	h.d.setExpiration(r.Context(), w.Header(), t.bucket, o)
	f, typ := xmlChecksums(o.GetChecksums())
	return writeXML(w, completeMultipartUploadResult{
		NS:             s3NS,
		Location:       objectLocation(r, t),
		Bucket:         t.bucket,
		Key:            t.key,
		ETag:           quoteETag(o.GetEtag()),
		ChecksumType:   typ,
		checksumFields: f,
	})
}

// objectLocation is the object's URL, for CompleteMultipartUploadResult
// and a POST upload's answer.
func objectLocation(r *http.Request, t target) string {
	scheme := "http"
	if stateOf(r).client.secure {
		scheme = "https"
	}
	if t.vhost {
		return scheme + "://" + r.Host + "/" + escapeKey(t.key)
	}
	return scheme + "://" + r.Host + "/" + t.bucket + "/" + escapeKey(t.key)
}

func escapeKey(k string) string {
	return strings.ReplaceAll(url.PathEscape(k), "%2F", "/")
}

// allParts lists every part of an upload, with segments, by number.
func (h *multipartHandlers) allParts(r *http.Request, t target, uploadID string) (*pb.MultipartUpload, map[int32]*pb.Part, error) {
	parts := map[int32]*pb.Part{}
	var up *pb.MultipartUpload
	marker := int32(0)
	for {
		resp, err := h.d.meta.ListParts(r.Context(), &pb.ListPartsRequest{
			Bucket: t.bucket, Key: t.key, UploadId: uploadID,
			PartNumberMarker: marker, MaxParts: MaxKeys, WithSegments: true,
		})
		if err != nil {
			return nil, nil, err
		}
		up = resp.GetUpload()
		for _, p := range resp.GetParts() {
			parts[p.GetNumber()] = p
		}
		if !resp.GetIsTruncated() || resp.GetNextPartNumberMarker() <= marker {
			return up, parts, nil
		}
		marker = resp.GetNextPartNumberMarker()
	}
}

// abort is AbortMultipartUpload.
func (h *multipartHandlers) abort(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	if _, err := h.d.meta.AbortMultipart(r.Context(), &pb.AbortMultipartRequest{Bucket: t.bucket, Key: t.key, UploadId: r.URL.Query().Get("uploadId")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listParts is ListParts.
func (h *multipartHandlers) listParts(w http.ResponseWriter, r *http.Request) error {
	t := stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return err
	}
	q := r.URL.Query()
	maxParts := MaxKeys
	if v, ok := q["max-parts"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return s3err.New(s3err.InvalidArgument, "Provided max-parts not an integer or within integer range")
		}
		maxParts = min(n, MaxKeys)
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3err.New(s3err.InvalidArgument, "Provided part-number-marker not an integer or within integer range")
		}
		marker = min(n, maxPartNumber)
	}
	uploadID := q.Get("uploadId")
	out := listPartsResult{
		NS: s3NS, Bucket: t.bucket, Key: t.key, UploadID: uploadID,
		Initiator: rootOwner, Owner: rootOwner, StorageClass: "STANDARD",
		PartNumberMarker: int32(marker), MaxParts: int32(maxParts),
	}
	var resp *pb.ListPartsResponse
	var err error
	if maxParts == 0 {
		var g *pb.GetMultipartResponse
		g, err = h.d.meta.GetMultipart(r.Context(), &pb.GetMultipartRequest{Bucket: t.bucket, Key: t.key, UploadId: uploadID})
		resp = &pb.ListPartsResponse{Upload: g.GetUpload()}
	} else {
		resp, err = h.d.meta.ListParts(r.Context(), &pb.ListPartsRequest{
			Bucket: t.bucket, Key: t.key, UploadId: uploadID,
			PartNumberMarker: int32(marker), MaxParts: int32(maxParts),
		})
	}
	if err != nil {
		return err
	}
	out.StorageClass = storageClassOf(resp.GetUpload().GetHeaders())
	out.ChecksumAlgorithm = resp.GetUpload().GetChecksumAlgorithm()
	out.ChecksumType = resp.GetUpload().GetChecksumType()
	out.IsTruncated = resp.GetIsTruncated()
	out.NextPartNumberMarker = resp.GetNextPartNumberMarker()
	for _, p := range resp.GetParts() {
		f, _ := xmlChecksums(p.GetChecksums())
		out.Parts = append(out.Parts, partEntry{
			PartNumber:     p.GetNumber(),
			LastModified:   fmtXMLTime(unixTime(p.GetModifiedUnixNano())),
			ETag:           quoteETag(p.GetEtag()),
			Size:           p.GetSize(),
			checksumFields: f,
		})
	}
	if len(out.Parts) > 0 && !out.IsTruncated {
		out.NextPartNumberMarker = out.Parts[len(out.Parts)-1].PartNumber
	}
	if at := resp.GetUpload().GetInitiatedUnixNano(); at != 0 {
		h.d.setAbortDate(r.Context(), w.Header(), t.bucket, t.key, unixTime(at))
	}
	return writeXML(w, out)
}

// listUploads is ListMultipartUploads.
func (h *multipartHandlers) listUploads(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := readListParams(q, "max-uploads")
	if err != nil {
		return err
	}
	bucket := stateOf(r).target.bucket
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	out := listMultipartUploadsResult{
		NS: s3NS, Bucket: bucket,
		KeyMarker: p.encode(keyMarker), UploadIDMarker: idMarker,
		Prefix: p.encode(p.prefix), Delimiter: p.encode(p.delimiter),
		MaxUploads: p.maxKeys,
	}
	if p.urlEncode {
		out.EncodingType = "url"
	}
	if p.maxKeys == 0 {
		if _, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: bucket}); err != nil {
			return err
		}
		return writeXML(w, out)
	}
	resp, err := h.d.meta.ListMultipartUploads(r.Context(), &pb.ListMultipartUploadsRequest{
		Bucket: bucket, Prefix: p.prefix, Delimiter: p.delimiter,
		KeyMarker: keyMarker, UploadIdMarker: idMarker, MaxUploads: int32(p.maxKeys),
	})
	if err != nil {
		return err
	}
	out.IsTruncated = resp.GetIsTruncated()
	if out.IsTruncated {
		out.NextKeyMarker = p.encode(resp.GetNextKeyMarker())
		out.NextUploadIDMarker = resp.GetNextUploadIdMarker()
	}
	for _, u := range resp.GetUploads() {
		out.Uploads = append(out.Uploads, uploadEntry{
			Key: p.encode(u.GetKey()), UploadID: u.GetUploadId(),
			Initiator: rootOwner, Owner: rootOwner, StorageClass: storageClassOf(u.GetHeaders()),
			Initiated:         fmtXMLTime(unixTime(u.GetInitiatedUnixNano())),
			ChecksumAlgorithm: u.GetChecksumAlgorithm(),
			ChecksumType:      u.GetChecksumType(),
		})
	}
	for _, cp := range resp.GetCommonPrefixes() {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	return writeXML(w, out)
}
