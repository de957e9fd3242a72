package gateway

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/gateway/bucketpolicy"
	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy,
// GetBucketPolicyStatus, and the anonymous requests a policy lets in.
// Only policies granting (or denying) anonymous clients the read
// operations are accepted (gateway/bucketpolicy); a policy is stored on
// its bucket in metad and read again for every anonymous request, so a
// change applies to the next one.

// putPolicy is PutBucketPolicy.
func (h *configHandlers) putPolicy(w http.ResponseWriter, r *http.Request) error {
	bucket := stateOf(r).target.bucket
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	doc, err := bucketpolicy.Normalize(bucket, body)
	if errors.Is(err, bucketpolicy.ErrUnsupported) {
		return s3err.New(s3err.NotImplemented, "Policy: %v.", err)
	}
	if err != nil {
		return s3err.New(s3err.MalformedPolicy, "Policy: %v.", err)
	}
	if _, err := h.d.meta.SetBucketPolicy(r.Context(), &pb.SetBucketPolicyRequest{Name: bucket, Policy: doc}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// storedPolicy is the bucket's policy document, or NoSuchBucketPolicy.
func (h *configHandlers) storedPolicy(r *http.Request) (string, error) {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return "", err
	}
	if p := resp.GetBucket().GetPolicy(); p != "" {
		return p, nil
	}
	return "", s3err.NoSuchBucketPolicy
}

// getPolicy is GetBucketPolicy: the document as put (compacted).
func (h *configHandlers) getPolicy(w http.ResponseWriter, r *http.Request) error {
	doc, err := h.storedPolicy(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write([]byte(doc))
	return err
}

// deletePolicy is DeleteBucketPolicy (a bucket without one is a no-op).
func (h *configHandlers) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.d.meta.SetBucketPolicy(r.Context(), &pb.SetBucketPolicyRequest{Name: stateOf(r).target.bucket}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// policyStatus is GetBucketPolicyStatus: public when the policy allows
// anything (every grant is to anonymous clients).
func (h *configHandlers) policyStatus(w http.ResponseWriter, r *http.Request) error {
	doc, err := h.storedPolicy(r)
	if err != nil {
		return err
	}
	p, err := bucketpolicy.Parse(stateOf(r).target.bucket, []byte(doc))
	if err != nil {
		return err // stored only after parsing: not the client's doing
	}
	return writeXML(w, policyStatus{NS: s3NS, IsPublic: p.Grants()})
}

type policyStatus struct {
	XMLName  xml.Name `xml:"PolicyStatus"`
	NS       string   `xml:"xmlns,attr"`
	IsPublic bool     `xml:"IsPublic"`
}

// anonymousReadParams are the query parameters a read may carry and stay
// the plain read a policy grants (GetObject, ListObjects); any other
// names a subresource, which stays signed-only.
var anonymousReadParams = map[string]bool{
	// GetObject/HeadObject
	"partNumber": true, "versionId": true, "response-content-type": true,
	"response-content-language": true, "response-expires": true,
	"response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true,
	// ListObjects (V1 and V2)
	"list-type": true, "prefix": true, "delimiter": true, "marker": true,
	"max-keys": true, "continuation-token": true, "start-after": true,
	"encoding-type": true, "fetch-owner": true,
	// The operation name the AWS SDKs add.
	"x-id": true,
}

// anonymousAction is the policy action an unsigned request asks for, if
// it is one a policy can grant.
func anonymousAction(r *http.Request, t target) (string, bool) {
	if t.bucket == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return "", false
	}
	q := r.URL.Query()
	if t.key == "" && r.Method == http.MethodGet && len(q) == 1 && q.Has("location") {
		return bucketpolicy.GetBucketLocation, true
	}
	for name := range q {
		if !anonymousReadParams[name] {
			return "", false
		}
	}
	if v := q.Get("versionId"); v != "" && v != "null" {
		return "", false
	}
	if t.key != "" {
		return bucketpolicy.GetObject, true
	}
	for name := range q {
		if strings.HasPrefix(name, "response-") || name == "partNumber" || name == "versionId" {
			return "", false // object parameters on a bucket
		}
	}
	return bucketpolicy.ListBucket, true // ListObjects, HeadBucket
}

// allowAnonymous tells whether the policy of the bucket an unsigned
// request names lets it through. Any failure to read or parse the policy
// denies.
func (d *routerDeps) allowAnonymous(r *http.Request, t target) bool {
	action, ok := anonymousAction(r, t)
	if !ok {
		return false
	}
	resp, err := d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: t.bucket})
	if err != nil || resp.GetBucket().GetPolicy() == "" {
		return false
	}
	p, err := bucketpolicy.Parse(t.bucket, []byte(resp.GetBucket().GetPolicy()))
	if err != nil {
		d.log.Warn("a stored bucket policy does not parse", "bucket", t.bucket, "err", err)
		return false
	}
	return p.Allows(action, t.bucket, t.key)
}
