package gateway

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/internal/xmlstrict"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// S3 bucket versioning. metad keeps the versions (metadata/versioning.go:
// a bucket's status, each key's noncurrent versions and delete markers);
// the gateway sets and reports the status (Put/GetBucketVersioning),
// names versions in requests (versionId, x-amz-copy-source's ?versionId=,
// DeleteObjects' VersionId) and answers the version ids S3 answers:
// x-amz-version-id on writes, reads and deletes of a bucket whose
// versioning was ever set ("null" for an object written while it was
// not enabled), none in a bucket never versioned.

// versioningConfiguration is PutBucketVersioning's body and
// GetBucketVersioning's answer.
type versioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	NS        string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

// errVersioningConfig is a configuration S3 would refuse as MalformedXML.
var errVersioningConfig = errors.New("invalid versioning configuration")

// errMFADelete is a configuration asking for MFA delete.
var errMFADelete = errors.New("MFA delete is not implemented")

// versioningNames are the statuses as S3 names them.
var versioningNames = map[pb.VersioningStatus]string{
	pb.VersioningStatus_VERSIONING_STATUS_ENABLED:   "Enabled",
	pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED: "Suspended",
}

// parseVersioningConfiguration reads a PutBucketVersioning body: the
// status to set, ENABLED or SUSPENDED, or UNSET when the document names
// none (S3's Status is optional: the bucket's status stays as it is).
// MfaDelete may only be Disabled.
func parseVersioningConfiguration(body []byte) (pb.VersioningStatus, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var c versioningConfiguration
	if err := dec.Decode(&c); err != nil {
		return 0, fmt.Errorf("%w: %v", errVersioningConfig, err)
	}
	if err := xmlstrict.TrailingSpaceOnly(dec); err != nil {
		return 0, fmt.Errorf("%w: %v", errVersioningConfig, err)
	}
	switch mfa := strings.TrimSpace(c.MfaDelete); mfa {
	case "", "Disabled":
	case "Enabled":
		return 0, errMFADelete
	default:
		return 0, fmt.Errorf("%w: unknown MfaDelete %q", errVersioningConfig, mfa)
	}
	switch st := strings.TrimSpace(c.Status); st {
	case "":
		return pb.VersioningStatus_VERSIONING_STATUS_UNSET, nil
	case "Enabled":
		return pb.VersioningStatus_VERSIONING_STATUS_ENABLED, nil
	case "Suspended":
		return pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED, nil
	default:
		return 0, fmt.Errorf("%w: unknown Status %q", errVersioningConfig, st)
	}
}

// putVersioning is PutBucketVersioning: Enabled or Suspended (a bucket
// never returns to unversioned, as on S3; one with object lock is never
// Suspended: InvalidBucketState). MFA delete is not implemented.
func (h *bucketHandlers) putVersioning(w http.ResponseWriter, r *http.Request) error {
	bucket := stateOf(r).target.bucket
	if _, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: bucket}); err != nil {
		return err
	}
	if r.Header.Get("x-amz-mfa") != "" {
		return s3err.New(s3err.NotImplemented, "MFA delete is not implemented (x-amz-mfa).")
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	status, err := parseVersioningConfiguration(body)
	switch {
	case errors.Is(err, errMFADelete):
		return s3err.New(s3err.NotImplemented, "MFA delete is not implemented.")
	case err != nil:
		return &s3err.Error{Code: s3err.MalformedXML, Err: err}
	}
	if status != pb.VersioningStatus_VERSIONING_STATUS_UNSET {
		if _, err := h.d.meta.SetBucketVersioning(r.Context(), &pb.SetBucketVersioningRequest{Name: bucket, Status: status}); err != nil {
			if isMeta(err, metaerr.ErrInvalidBucketState) {
				// Suspending the versioning of a bucket with object lock.
				return &s3err.Error{Code: s3err.InvalidBucketState, Message: "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.", BucketName: bucket, Err: err}
			}
			return err
		}
		h.d.bucketCache.forget(bucket)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// getVersioning is GetBucketVersioning: the bucket's status, or an empty
// configuration for a bucket whose versioning was never set, as S3
// answers.
func (h *bucketHandlers) getVersioning(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	return writeXML(w, versioningConfiguration{NS: s3NS, Status: versioningNames[resp.GetBucket().GetVersioning()]})
}

// maxVersionIDLen bounds the version ids a request may name: Cairn's
// are 24 or 32 hex digits.
const maxVersionIDLen = 64

// wellFormedVersionID reports whether id could name a version: "null",
// or lower-case hex digits, the only version ids Cairn makes (objects'
// and uploads' random ids, delete markers' ids from metad). S3 answers
// InvalidArgument for an id it could not have made, and NoSuchVersion for
// one it could have but did not.
func wellFormedVersionID(id string) bool {
	if id == "null" {
		return true
	}
	if id == "" || len(id) > maxVersionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkVersionID refuses an empty or malformed version id as S3 does.
func checkVersionID(id string) error {
	if id == "" {
		return s3err.New(s3err.InvalidArgument, "Version id cannot be the empty string").With("ArgumentName", "versionId").With("ArgumentValue", "")
	}
	if !wellFormedVersionID(id) {
		return s3err.New(s3err.InvalidArgument, "Invalid version id specified").With("ArgumentName", "versionId").With("ArgumentValue", id)
	}
	return nil
}

// versionIDParam is the versionId query parameter of an object request,
// "" without one.
func versionIDParam(q url.Values) (string, error) {
	vs, ok := q["versionId"]
	if !ok {
		return "", nil
	}
	return vs[0], checkVersionID(vs[0])
}

// versionsSupported are the operations that take a versionId parameter.
// Any other naming a version other than "null" is NotImplemented (route),
// rather than applied to the current object.
var versionsSupported = map[string]bool{
	"GetObject": true, "HeadObject": true, "DeleteObject": true,
	"GetObjectTagging": true, "PutObjectTagging": true, "DeleteObjectTagging": true,
	"GetObjectAttributes": true, "GetObjectAcl": true, "PutObjectAcl": true,
	"GetObjectRetention": true, "PutObjectRetention": true,
	"GetObjectLegalHold": true, "PutObjectLegalHold": true,
	"NotImplemented": true, "MethodNotAllowed": true,
}

// versionIDUnsupported reports whether r names a version, other than
// "null", that op cannot take.
func versionIDUnsupported(op string, r *http.Request) bool {
	if versionsSupported[op] {
		return false
	}
	vs, ok := r.URL.Query()["versionId"]
	return ok && vs[0] != "null"
}

// answeredVersionID is the x-amz-version-id S3 answers for o, a current
// object of bucket: its own id when it was written with versioning
// enabled, "null" when the bucket's versioning was ever set (as read
// within bucketSettingsTTL: a bucket whose versioning another gateway
// set a moment ago may go without the header), "" otherwise.
func (d *routerDeps) answeredVersionID(ctx context.Context, bucket string, o *pb.Object) string {
	if o.GetVersioned() {
		return o.GetVersionId()
	}
	s, err := d.bucketSettings(ctx, bucket)
	if err != nil || s.versioning == pb.VersioningStatus_VERSIONING_STATUS_UNSET {
		return ""
	}
	return "null"
}

// setVersionID sets x-amz-version-id, unless id is "".
func setVersionID(h http.Header, id string) {
	if id != "" {
		h.Set("x-amz-version-id", id)
	}
}

// readVersion reads the version of t's object that versionID names, or
// its current object, for a read (GET, HEAD, GetObjectAttributes,
// GetObjectTagging, GetObjectAcl), and sets the headers S3 answers with
// it, whether the read succeeds or not: x-amz-version-id, and for a
// delete marker x-amz-delete-marker. A delete marker named by its id is
// MethodNotAllowed (with its Last-Modified); a key whose latest version
// is a delete marker is NoSuchKey.
func (d *routerDeps) readVersion(r *http.Request, h http.Header, t target, versionID string) (*pb.Object, error) {
	ctx := r.Context()
	o, err := d.objects.HeadVersion(ctx, t.bucket, t.key, object.HeadOptions{VersionID: versionID, IncludeDeleteMarker: versionID == ""})
	if err != nil {
		return nil, err
	}
	if o.GetDeleteMarker() {
		h.Set("x-amz-delete-marker", "true")
		h.Set("x-amz-version-id", object.VersionID(o))
		if versionID == "" {
			return nil, s3err.NoSuchKey
		}
		h.Set("Last-Modified", lastModified(o).Format(http.TimeFormat))
		return nil, s3err.New(s3err.MethodNotAllowed, "The specified method is not allowed against this resource.").
			With("Method", r.Method).With("ResourceType", "DeleteMarker")
	}
	if versionID != "" {
		h.Set("x-amz-version-id", versionID)
	} else {
		setVersionID(h, d.answeredVersionID(ctx, t.bucket, o))
	}
	return o, nil
}
