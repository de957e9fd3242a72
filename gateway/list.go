package gateway

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// MaxKeys is the default and the cap of max-keys, max-uploads and
// max-parts.
const MaxKeys = 1000

// listHandlers serve ListObjects (V1) and ListObjectsV2.
type listHandlers struct{ d *routerDeps }

// listParams are the parameters common to both listings.
type listParams struct {
	prefix, delimiter string
	maxKeys           int
	urlEncode         bool
}

func readListParams(q url.Values, maxName string) (listParams, error) {
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), maxKeys: MaxKeys}
	if v, ok := q[maxName]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return p, s3err.New(s3err.InvalidArgument, "Provided %s not an integer or within integer range", maxName)
		}
		p.maxKeys = min(n, MaxKeys)
	}
	switch e := q.Get("encoding-type"); e {
	case "":
	case "url":
		p.urlEncode = true
	default:
		return p, s3err.New(s3err.InvalidArgument, "Invalid Encoding Method specified in Request")
	}
	return p, nil
}

// encode applies encoding-type=url to a name in a listing.
func (p listParams) encode(s string) string {
	if !p.urlEncode {
		return s
	}
	return s3URLEncode(s)
}

// s3URLEncode encodes as S3 does for encoding-type=url: form encoding
// (space as '+'), with '/' left as is. Every SDK decodes it with a
// query-unescape.
func s3URLEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// list asks metad for one page; maxKeys 0 is an empty, complete page.
func (h *listHandlers) list(r *http.Request, p listParams, after string) (*pb.ListObjectsResponse, error) {
	bucket := stateOf(r).target.bucket
	if p.maxKeys == 0 {
		// metad reads 0 as the default; S3 answers an empty page (after
		// checking that the bucket exists).
		_, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: bucket})
		return &pb.ListObjectsResponse{}, err
	}
	return h.d.meta.ListObjects(r.Context(), &pb.ListObjectsRequest{
		Bucket:     bucket,
		Prefix:     p.prefix,
		Delimiter:  p.delimiter,
		StartAfter: after,
		MaxKeys:    int32(p.maxKeys),
	})
}

func (p listParams) entries(resp *pb.ListObjectsResponse, owner bool) ([]objectEntry, []commonPrefix) {
	var contents []objectEntry
	for _, o := range resp.GetObjects() {
		e := objectEntry{
			Key:          p.encode(o.GetKey()),
			LastModified: fmtXMLTime(lastModified(o)),
			ETag:         quoteETag(o.GetEtag()),
			Size:         o.GetSize(),
			StorageClass: storageClassOf(o.GetHeaders()),
		}
		for _, c := range o.GetChecksums() {
			e.ChecksumAlgorithm = append(e.ChecksumAlgorithm, c.GetAlgorithm())
			e.ChecksumType = c.GetType()
		}
		if owner {
			e.Owner = &rootOwner
		}
		contents = append(contents, e)
	}
	var prefixes []commonPrefix
	for _, cp := range resp.GetCommonPrefixes() {
		prefixes = append(prefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	return contents, prefixes
}

// encodeToken and decodeToken make the opaque continuation token: the
// base64 of the key or common prefix the page ended with.
func encodeToken(after string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after))
}

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || tok == "" {
		return "", s3err.New(s3err.InvalidArgument, "The continuation token provided is incorrect")
	}
	return string(b), nil
}

// listV2 is ListObjectsV2.
func (h *listHandlers) listV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	startAfter := q.Get("start-after")
	after := startAfter
	token, hasToken := q["continuation-token"]
	if hasToken {
		if after, err = decodeToken(token[0]); err != nil {
			return err
		}
	}
	resp, err := h.list(r, p, after)
	if err != nil {
		return err
	}
	contents, prefixes := p.entries(resp, q.Get("fetch-owner") == "true")
	out := listBucketResultV2{
		NS:             s3NS,
		Name:           stateOf(r).target.bucket,
		Prefix:         p.encode(p.prefix),
		Delimiter:      p.encode(p.delimiter),
		StartAfter:     p.encode(startAfter),
		MaxKeys:        p.maxKeys,
		KeyCount:       len(contents) + len(prefixes),
		IsTruncated:    resp.GetIsTruncated(),
		Contents:       contents,
		CommonPrefixes: prefixes,
	}
	if hasToken {
		out.ContinuationToken = token[0]
	}
	if p.urlEncode {
		out.EncodingType = "url"
	}
	if resp.GetIsTruncated() {
		out.NextContinuationToken = encodeToken(resp.GetNextStartAfter())
	}
	return writeXML(w, out)
}

// listV1 is ListObjects (version 1). NextMarker is sent only with a
// delimiter, as S3 does; without one, clients continue from the last key.
func (h *listHandlers) listV1(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	marker := q.Get("marker")
	resp, err := h.list(r, p, marker)
	if err != nil {
		return err
	}
	contents, prefixes := p.entries(resp, true)
	out := listBucketResultV1{
		NS:             s3NS,
		Name:           stateOf(r).target.bucket,
		Prefix:         p.encode(p.prefix),
		Marker:         p.encode(marker),
		Delimiter:      p.encode(p.delimiter),
		MaxKeys:        p.maxKeys,
		IsTruncated:    resp.GetIsTruncated(),
		Contents:       contents,
		CommonPrefixes: prefixes,
	}
	if p.urlEncode {
		out.EncodingType = "url"
	}
	if resp.GetIsTruncated() && p.delimiter != "" {
		out.NextMarker = p.encode(resp.GetNextStartAfter())
	}
	return writeXML(w, out)
}

// listVersions is ListObjectVersions: every version of the keys, key by
// key in UTF-8 binary order, each key's versions and delete markers
// newest first, as metad lists them (metadata/list_versions.go). A bucket
// never versioned lists each object as its one version, "null", the
// latest. A page continues after key-marker (after all its versions, or
// after its version version-id-marker).
func (h *listHandlers) listVersions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	keyMarker, idMarker := q.Get("key-marker"), q.Get("version-id-marker")
	if idMarker != "" && keyMarker == "" {
		return s3err.New(s3err.InvalidArgument, "A version-id marker cannot be specified without a key marker.")
	}
	if idMarker != "" && !wellFormedVersionID(idMarker) {
		return s3err.New(s3err.InvalidArgument, "Invalid version id specified")
	}
	bucket := stateOf(r).target.bucket
	resp, err := h.versionPage(r, p, keyMarker, idMarker)
	if err != nil {
		return err
	}
	out := listVersionsResult{
		NS:              s3NS,
		Name:            bucket,
		Prefix:          p.encode(p.prefix),
		KeyMarker:       p.encode(keyMarker),
		VersionIDMarker: idMarker,
		MaxKeys:         p.maxKeys,
		Delimiter:       p.encode(p.delimiter),
		IsTruncated:     resp.GetIsTruncated(),
	}
	for _, o := range resp.GetVersions() {
		out.Entries = append(out.Entries, p.versionEntry(o))
	}
	for _, cp := range resp.GetCommonPrefixes() {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: p.encode(cp)})
	}
	if p.urlEncode {
		out.EncodingType = "url"
	}
	if resp.GetIsTruncated() {
		out.NextKeyMarker = p.encode(resp.GetNextKeyMarker())
		out.NextVersionIDMarker = resp.GetNextVersionIdMarker() // "" after a common prefix
	}
	return writeXML(w, out)
}

// versionPage asks metad for one page of versions; maxKeys 0 is an empty,
// complete page.
func (h *listHandlers) versionPage(r *http.Request, p listParams, keyMarker, idMarker string) (*pb.ListObjectVersionsResponse, error) {
	bucket := stateOf(r).target.bucket
	if p.maxKeys == 0 {
		// metad reads 0 as the default; S3 answers an empty page.
		_, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: bucket})
		return &pb.ListObjectVersionsResponse{}, err
	}
	resp, err := h.d.meta.ListObjectVersions(r.Context(), &pb.ListObjectVersionsRequest{
		Bucket:          bucket,
		Prefix:          p.prefix,
		Delimiter:       p.delimiter,
		KeyMarker:       keyMarker,
		VersionIdMarker: idMarker,
		MaxKeys:         int32(p.maxKeys),
	})
	if status.Code(err) == codes.Unimplemented {
		// A metad from before versioning: no bucket is versioned there.
		return h.nullVersionPage(r, p, keyMarker)
	}
	return resp, err
}

// nullVersionPage lists a page of a bucket without versions from
// ListObjects: each object is its one version, "null". A key-marker
// continues after that key (its one version comes before any
// version-id-marker).
func (h *listHandlers) nullVersionPage(r *http.Request, p listParams, keyMarker string) (*pb.ListObjectVersionsResponse, error) {
	resp, err := h.list(r, p, keyMarker)
	if err != nil {
		return nil, err
	}
	out := &pb.ListObjectVersionsResponse{Versions: resp.GetObjects(), CommonPrefixes: resp.GetCommonPrefixes(), IsTruncated: resp.GetIsTruncated()}
	for _, o := range out.Versions {
		o.IsLatest = true
	}
	if next := resp.GetNextStartAfter(); resp.GetIsTruncated() {
		out.NextKeyMarker = next
		if objs := resp.GetObjects(); len(objs) > 0 && objs[len(objs)-1].GetKey() == next {
			out.NextVersionIdMarker = "null" // the page ended with a version, not a common prefix
		}
	}
	return out, nil
}

// versionEntry is o as ListObjectVersions lists it: a Version, or a
// DeleteMarker.
func (p listParams) versionEntry(o *pb.Object) versionEntry {
	e := versionEntry{
		Key:          p.encode(o.GetKey()),
		VersionID:    object.VersionID(o),
		IsLatest:     o.GetIsLatest(),
		LastModified: fmtXMLTime(lastModified(o)),
		Owner:        &rootOwner,
	}
	if o.GetDeleteMarker() {
		e.XMLName.Local = "DeleteMarker"
		return e
	}
	e.XMLName.Local = "Version"
	e.ETag = quoteETag(o.GetEtag())
	size := o.GetSize()
	e.Size = &size
	e.StorageClass = storageClassOf(o.GetHeaders())
	for _, c := range o.GetChecksums() {
		e.ChecksumAlgorithm = append(e.ChecksumAlgorithm, c.GetAlgorithm())
		e.ChecksumType = c.GetType()
	}
	return e
}
