package gateway

import (
	"encoding/xml"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Object tags (S3 object tagging): given on a write in x-amz-tagging
// (PutObject, CreateMultipartUpload, CopyObject with
// x-amz-tagging-directive REPLACE; a copy keeps its source's tags
// otherwise), set and read with Put/Get/DeleteObjectTagging, counted in
// x-amz-tagging-count on GET and HEAD. They are stored on the object in
// metad; changing them changes neither the ETag nor Last-Modified.

// S3's limits on tags.
const (
	maxObjectTags = 10
	maxBucketTags = 50
	maxTagKey     = 128 // characters
	maxTagValue   = 256
)

// parseTaggingHeader reads x-amz-tagging: tags as URL query parameters.
func parseTaggingHeader(v string) (map[string]string, error) {
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, s3err.New(s3err.InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	tags := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, s3err.New(s3err.InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
		}
		tags[k] = vs[0]
	}
	return tags, checkTags(tags, maxObjectTags)
}

// checkTags applies S3's rules: at most most tags, keys of 1 to 128 and
// values of at most 256 characters, made of letters, digits, spaces and
// + - = . _ : / @.
func checkTags(tags map[string]string, most int) error {
	if len(tags) > most {
		if most == maxBucketTags {
			return s3err.New(s3err.InvalidTag, "Bucket tags cannot be greater than %d", most)
		}
		return s3err.New(s3err.BadRequest, "Object tags cannot be greater than %d", most)
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > maxTagKey || !tagText(k) {
			return s3err.New(s3err.InvalidTag, "The TagKey you have provided is invalid (%q).", k)
		}
		if utf8.RuneCountInString(v) > maxTagValue || !tagText(v) {
			return s3err.New(s3err.InvalidTag, "The TagValue you have provided is invalid (%q).", v)
		}
		if strings.HasPrefix(k, "aws:") {
			return s3err.New(s3err.InvalidTag, "Your TagKey cannot be prefixed with aws: (%q).", k)
		}
	}
	return nil
}

func tagText(s string) bool {
	// Invalid UTF-8 ranges as U+FFFD, which is none of these.
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) && !strings.ContainsRune("+-=._:/@", r) {
			return false
		}
	}
	return true
}

type taggingDoc struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// getObjectTagging is GetObjectTagging.
func (h *configHandlers) getObjectTagging(w http.ResponseWriter, r *http.Request) error {
	o, err := h.headObject(r, w.Header())
	if err != nil {
		return err
	}
	return writeXML(w, tagSetDoc(o.GetTags()))
}

// putObjectTagging is PutObjectTagging: the object's tags become the
// document's.
func (h *configHandlers) putObjectTagging(w http.ResponseWriter, r *http.Request) error {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	tags, err := parseTaggingXML(body, maxObjectTags)
	if err != nil {
		return err
	}
	return h.setObjectTags(w, r, t, versionID, tags, http.StatusOK)
}

// parseTaggingXML reads a Tagging document (PutObjectTagging's and
// PutBucketTagging's body, a POST form's tagging field) of at most most
// tags.
func parseTaggingXML(body []byte, most int) (map[string]string, error) {
	var doc taggingDoc
	if err := decodeXML(body, &doc); err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(doc.TagSet))
	for _, tg := range doc.TagSet {
		if _, dup := tags[tg.Key]; dup {
			return nil, s3err.New(s3err.InvalidTag, "Cannot provide multiple Tags with the same key (%q).", tg.Key)
		}
		tags[tg.Key] = tg.Value
	}
	return tags, checkTags(tags, most)
}

// tagSetDoc is tags as a Tagging document, in key order.
func tagSetDoc(tags map[string]string) taggingDoc {
	doc := taggingDoc{NS: s3NS, TagSet: []tagXML{}}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		doc.TagSet = append(doc.TagSet, tagXML{Key: k, Value: tags[k]})
	}
	return doc
}

// getBucketTagging is GetBucketTagging (NoSuchTagSet without tags).
func (h *configHandlers) getBucketTagging(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	if len(resp.GetBucket().GetTags()) == 0 {
		return s3err.NoSuchTagSet
	}
	return writeXML(w, tagSetDoc(resp.GetBucket().GetTags()))
}

// putBucketTagging is PutBucketTagging: the bucket's tags become the
// document's (at most 50).
func (h *configHandlers) putBucketTagging(w http.ResponseWriter, r *http.Request) error {
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	tags, err := parseTaggingXML(body, maxBucketTags)
	if err != nil {
		return err
	}
	if _, err := h.d.meta.SetBucketTags(r.Context(), &pb.SetBucketTagsRequest{Name: stateOf(r).target.bucket, Tags: tags}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteBucketTagging is DeleteBucketTagging.
func (h *configHandlers) deleteBucketTagging(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.d.meta.SetBucketTags(r.Context(), &pb.SetBucketTagsRequest{Name: stateOf(r).target.bucket}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteObjectTagging is DeleteObjectTagging.
func (h *configHandlers) deleteObjectTagging(w http.ResponseWriter, r *http.Request) error {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return err
	}
	return h.setObjectTags(w, r, t, versionID, nil, http.StatusNoContent)
}

// setObjectTags sets the tags of the current object, or of the version
// versionID names (a delete marker: MethodNotAllowed), and answers that
// version's S3 version id, as metad answers it ("" in a bucket never
// versioned).
func (h *configHandlers) setObjectTags(w http.ResponseWriter, r *http.Request, t target, versionID string, tags map[string]string, status int) error {
	resp, err := h.d.meta.SetObjectTags(r.Context(), &pb.SetObjectTagsRequest{Bucket: t.bucket, Key: t.key, Tags: tags, VersionId: versionID})
	if err != nil {
		return err
	}
	if versionID == "" {
		versionID = resp.GetVersionId()
	}
	setVersionID(w.Header(), versionID)
	w.WriteHeader(status)
	return nil
}
