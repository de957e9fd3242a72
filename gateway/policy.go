package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/bucketpolicy"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv2"
	"github.com/cairnstore/cairn/gateway/sigv4"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Bucket policies: PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy,
// GetBucketPolicyStatus, and what a policy lets in or keeps out
// (authorize, access.go). The language is gateway/bucketpolicy's; a
// policy is stored compacted on its bucket in metad and held parsed by
// each gateway for the access key TTL (policyOf): a change through this
// gateway applies to the next request, one through another gateway
// within the TTL. Requests signed by the root key never read it.

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
		return s3err.New(s3err.NotImplemented, "%s.", err)
	}
	if err != nil {
		return s3err.New(s3err.MalformedPolicy, "%s.", err)
	}
	_, err = h.d.meta.SetBucketPolicy(r.Context(), &pb.SetBucketPolicyRequest{Name: bucket, Policy: doc})
	h.d.policyCache.forget(bucket)
	if err != nil {
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
	bucket := stateOf(r).target.bucket
	_, err := h.d.meta.SetBucketPolicy(r.Context(), &pb.SetBucketPolicyRequest{Name: bucket})
	h.d.policyCache.forget(bucket)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// policyStatus is GetBucketPolicyStatus: public as S3 defines it
// (bucketpolicy.Policy.IsPublic).
func (h *configHandlers) policyStatus(w http.ResponseWriter, r *http.Request) error {
	doc, err := h.storedPolicy(r)
	if err != nil {
		return err
	}
	p, err := bucketpolicy.Parse(stateOf(r).target.bucket, []byte(doc))
	if err != nil {
		return err // stored only after parsing: not the client's doing
	}
	return writeXML(w, policyStatus{NS: s3NS, IsPublic: p.IsPublic()})
}

type policyStatus struct {
	XMLName  xml.Name `xml:"PolicyStatus"`
	NS       string   `xml:"xmlns,attr"`
	IsPublic bool     `xml:"IsPublic"`
}

// maxCachedPolicies bounds the policy cache; it is emptied when full.
const maxCachedPolicies = 10000

// cachedPolicy is what a gateway holds of a bucket's policy: nil for
// none (or no such bucket); broken for a stored policy that does not
// parse, which lets nobody but the root key in.
type cachedPolicy struct {
	p      *bucketpolicy.Policy
	broken bool
}

// errBrokenPolicy denies every request a stored policy that does not
// parse would decide: it may hold a Deny.
var errBrokenPolicy = s3err.New(s3err.AccessDenied, "Access Denied: the bucket's policy cannot be read; its owner must put it again.")

// policyOf is bucket's parsed policy (nil: none, or no such bucket), as
// read at most maxAge ago.
func (d *routerDeps) policyOf(ctx context.Context, bucket string, maxAge time.Duration) (*bucketpolicy.Policy, error) {
	fresh := func(_ cachedPolicy, age time.Duration) bool { return age < maxAge }
	c, err := d.policyCache.get(ctx, bucket, fresh, func(ctx context.Context) (cachedPolicy, error) {
		resp, err := d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
		if isMeta(err, metaerr.ErrNoSuchBucket) {
			return cachedPolicy{}, nil
		}
		if err != nil {
			return cachedPolicy{}, fmt.Errorf("read the policy of bucket %s: %w", bucket, err)
		}
		doc := resp.GetBucket().GetPolicy()
		if doc == "" {
			return cachedPolicy{}, nil
		}
		p, err := bucketpolicy.Parse(bucket, []byte(doc))
		if err != nil {
			d.log.Warn("a stored bucket policy does not parse: only the root key may use the bucket", "bucket", bucket, "err", err)
			return cachedPolicy{broken: true}, nil
		}
		return cachedPolicy{p: p}, nil
	})
	if err != nil {
		return nil, err
	}
	if c.broken {
		return nil, errBrokenPolicy
	}
	return c.p, nil
}

// policyRequest is what a asks, by the access key id ("" anonymous), in
// the policy's terms.
func (d *routerDeps) policyRequest(r *http.Request, a access, keyID string) bucketpolicy.Request {
	return bucketpolicy.Request{Action: a.action, Bucket: a.bucket, Key: a.key, Principal: keyID,
		Values: policyValues{r: r, keyID: keyID, action: a.action, now: d.now}}
}

// policyValues are a request's condition keys, computed when a policy's
// condition asks for one.
type policyValues struct {
	r      *http.Request
	keyID  string // "" for an anonymous request
	action string
	now    func() time.Time
}

var _ bucketpolicy.Values = policyValues{}

// headerKeys are the condition keys that are a request header's value.
var headerKeys = map[string]string{
	bucketpolicy.KeyUserAgent:            "User-Agent",
	bucketpolicy.KeyReferer:              "Referer",
	bucketpolicy.KeySSE:                  "x-amz-server-side-encryption",
	bucketpolicy.KeySSECustomerAlgorithm: "x-amz-server-side-encryption-customer-algorithm",
	bucketpolicy.KeyContentSHA256:        "x-amz-content-sha256",
	bucketpolicy.KeyCopySource:           "x-amz-copy-source",
	bucketpolicy.KeyMetadataDirective:    "x-amz-metadata-directive",
	bucketpolicy.KeyACL:                  "x-amz-acl",
	bucketpolicy.KeyStorageClass:         "x-amz-storage-class",
	bucketpolicy.KeyObjectLockMode:       "x-amz-object-lock-mode",
	bucketpolicy.KeyObjectLockRetainDate: "x-amz-object-lock-retain-until-date",
	bucketpolicy.KeyObjectLockLegalHold:  "x-amz-object-lock-legal-hold",
}

// listActions are the listings whose parameters are condition keys.
var listActions = map[string]bool{"s3:ListBucket": true, "s3:ListBucketVersions": true, "s3:ListBucketMultipartUploads": true}

// Lookup implements bucketpolicy.Values.
func (v policyValues) Lookup(key string) ([]string, bool) {
	one := func(s string) ([]string, bool) { return []string{s}, true }
	r := v.r
	if h, ok := headerKeys[key]; ok {
		if s := r.Header.Get(h); s != "" {
			return one(s)
		}
		return nil, false
	}
	signed := v.keyID != "" || stateOf(r).auth != nil
	switch key {
	case bucketpolicy.KeySecureTransport:
		return one(strconv.FormatBool(stateOf(r).client.secure))
	case bucketpolicy.KeySourceIP:
		if ip := stateOf(r).client.ip; ip.IsValid() {
			return one(ip.String())
		}
		return one(r.RemoteAddr)
	case bucketpolicy.KeyCurrentTime:
		return one(v.now().UTC().Format(time.RFC3339))
	case bucketpolicy.KeyEpochTime:
		return one(strconv.FormatInt(v.now().Unix(), 10))
	case bucketpolicy.KeyUsername, bucketpolicy.KeyUserID:
		if v.keyID == "" {
			return nil, false
		}
		return one(v.keyID)
	case bucketpolicy.KeyPrincipalType:
		if v.keyID == "" {
			return one("Anonymous")
		}
		return one("User")
	case bucketpolicy.KeyPrefix:
		// As on S3, a listing without a prefix lists under "".
		if listActions[v.action] {
			return one(r.URL.Query().Get("prefix"))
		}
	case bucketpolicy.KeyDelimiter, bucketpolicy.KeyMaxKeys:
		name := strings.TrimPrefix(key, "s3:")
		if q := r.URL.Query(); listActions[v.action] && q.Has(name) {
			return one(q.Get(name))
		}
	case bucketpolicy.KeyVersionID:
		if q := r.URL.Query(); q.Has("versionId") {
			return one(q.Get("versionId"))
		}
	case bucketpolicy.KeyAuthType:
		switch st := stateOf(r); {
		case !signed:
		case st.op == "PostObject":
			return one("POST")
		case st.auth != nil && st.auth.Presigned:
			return one("REST-QUERY-STRING")
		default:
			return one("REST-HEADER")
		}
	case bucketpolicy.KeySignatureVersion:
		switch {
		case !signed:
		case sigv2.Applies(r):
			return one("AWS")
		default:
			return one(sigv4.Algorithm)
		}
	case bucketpolicy.KeyRequestObjectTagKeys:
		tags, ok := requestTags(r)
		if !ok {
			return nil, false
		}
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys, true
	default:
		if tag, ok := strings.CutPrefix(key, bucketpolicy.KeyRequestObjectTagPrefix); ok {
			tags, _ := requestTags(r)
			if vs, ok := tags[tag]; ok {
				return vs, true
			}
		}
	}
	return nil, false
}

// requestTags are the tags a request's x-amz-tagging header asks for.
func requestTags(r *http.Request) (url.Values, bool) {
	h := r.Header.Get("x-amz-tagging")
	if h == "" {
		return nil, false
	}
	tags, err := url.ParseQuery(h)
	if err != nil {
		return nil, false // the handler refuses it
	}
	return tags, true
}
