package gateway

import (
	"encoding/xml"
	"net/http"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Reads of bucket and object configuration that Cairn has no way to set:
// the answer S3 gives for a bucket (or object) that has none of it, which
// is the truth for every Cairn bucket. Tools that read a bucket's whole
// configuration before using it (Terraform's AWS provider, S3 browsers,
// s3cmd info) then work instead of stopping at NotImplemented. (Object
// tags are real: tagging.go.) Setting
// any of it stays refused (router.go's unsupported list); deleting
// a website, which cannot exist, is the no-op S3 makes of it. Bucket
// policies, lifecycles, tags and object lock, which can be set, are
// policy.go's, lifecycle.go's, tagging.go's and objectlock.go's.
//
// Where Cairn does have a configuration, it is reported as it is: ACLs
// are disabled (BucketOwnerEnforced: the owner has FULL_CONTROL), so
// public ACLs are blocked while public policies are not. CORS is the
// bucket's own configuration or the gateway's --cors-allowed-origins
// (cors.go).

// configHandlers serves the subresources above.
type configHandlers struct{ d *routerDeps }

// configRead is one GET of a bucket subresource.
type configRead struct {
	sub string // the query parameter naming it
	op  string // S3's operation name, for logs and metrics
	// absent, when set, is the error S3 answers when the bucket has none;
	// else doc is the configuration.
	absent error
	doc    func(d *routerDeps) (any, error)
}

func emptyDoc(v any) func(*routerDeps) (any, error) {
	return func(*routerDeps) (any, error) { return v, nil }
}

var bucketConfigReads = []configRead{
	{sub: "acl", op: "GetBucketAcl", doc: emptyDoc(ownerOnlyACL())},
	{sub: "website", op: "GetBucketWebsite", absent: s3err.NoSuchWebsiteConfiguration},
	{sub: "replication", op: "GetBucketReplication", absent: s3err.ReplicationConfigurationNotFound},
	{sub: "ownershipControls", op: "GetBucketOwnershipControls", doc: emptyDoc(ownershipControls{NS: s3NS, Rule: ownershipRule{ObjectOwnership: "BucketOwnerEnforced"}})},
	{sub: "publicAccessBlock", op: "GetPublicAccessBlock", doc: emptyDoc(publicAccessBlock{NS: s3NS, BlockPublicAcls: true, IgnorePublicAcls: true})},
	{sub: "logging", op: "GetBucketLogging", doc: emptyDoc(bucketLoggingStatus{NS: s3NS})},
	{sub: "notification", op: "GetBucketNotificationConfiguration", doc: emptyDoc(notificationConfiguration{NS: s3NS})},
	{sub: "requestPayment", op: "GetBucketRequestPayment", doc: emptyDoc(requestPaymentConfiguration{NS: s3NS, Payer: "BucketOwner"})},
	{sub: "accelerate", op: "GetBucketAccelerateConfiguration", doc: emptyDoc(accelerateConfiguration{NS: s3NS})},
}

// bucketConfigDeletes are the DELETEs of configuration no bucket has.
var bucketConfigDeletes = []struct{ sub, op string }{
	{"website", "DeleteBucketWebsite"},
}

// bucketExists answers NoSuchBucket for a bucket that does not exist.
func (h *configHandlers) bucketExists(r *http.Request) error {
	_, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	return err
}

func (h *configHandlers) read(c configRead) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := h.bucketExists(r); err != nil {
			return err
		}
		if c.absent != nil {
			return c.absent
		}
		doc, err := c.doc(h.d)
		if err != nil {
			return err
		}
		return writeXML(w, doc)
	}
}

// deleteNothing is a DELETE of a configuration the bucket cannot have.
func (h *configHandlers) deleteNothing(w http.ResponseWriter, r *http.Request) error {
	if err := h.bucketExists(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// objectTarget checks the key and version id an object subresource
// request names (versionID "": the current object).
func objectTarget(r *http.Request) (t target, versionID string, err error) {
	t = stateOf(r).target
	if err := checkKey(t.key); err != nil {
		return t, "", err
	}
	versionID, err = versionIDParam(r.URL.Query())
	return t, versionID, err
}

// headObject is the object (version) the request names (NoSuchKey,
// NoSuchVersion, MethodNotAllowed for a delete marker); h gets the
// version headers S3 answers with it (readVersion).
func (h *configHandlers) headObject(r *http.Request, hdr http.Header) (*pb.Object, error) {
	t, versionID, err := objectTarget(r)
	if err != nil {
		return nil, err
	}
	return h.d.readVersion(r, hdr, t, versionID)
}

// objectExists answers NoSuchKey (or NoSuchVersion) unless the object the
// request names exists.
func (h *configHandlers) objectExists(r *http.Request) error {
	_, err := h.headObject(r, http.Header{}) // ACL answers carry no version id
	return err
}

// objectACL is GetObjectAcl.
func (h *configHandlers) objectACL(w http.ResponseWriter, r *http.Request) error {
	if err := h.objectExists(r); err != nil {
		return err
	}
	return writeXML(w, ownerOnlyACL())
}

// putACL is PutBucketAcl and PutObjectAcl: with ACLs disabled S3 accepts
// only what grants the owner full control and nobody else anything (the
// private canned ACL, or a policy document saying just that), and answers
// AccessControlListNotSupported otherwise.
func (h *configHandlers) putACL(w http.ResponseWriter, r *http.Request) error {
	if stateOf(r).target.key != "" {
		if err := h.objectExists(r); err != nil {
			return err
		}
	} else if err := h.bucketExists(r); err != nil {
		return err
	}
	if err := checkACLHeaders(r.Header); err != nil {
		return err
	}
	if r.ContentLength != 0 {
		body, err := h.d.readSmallBody(r)
		if err != nil {
			return err
		}
		var p accessControlPolicy
		if err := decodeXML(body, &p); err != nil {
			return err
		}
		if !ownerOnly(p) {
			return s3err.New(s3err.AccessControlListNotSupported, "The bucket does not allow ACLs: only the owner's FULL_CONTROL can be granted.")
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// ownerOnly tells whether an access control policy grants the owner full
// control and nothing else to anyone.
func ownerOnly(p accessControlPolicy) bool {
	for _, g := range p.Grants {
		if g.Permission != "FULL_CONTROL" || g.Grantee.ID != rootOwner.ID {
			return false
		}
	}
	return p.Owner.ID == "" || p.Owner.ID == rootOwner.ID
}

// corsConfigurationOf describes the gateway's CORS rule as a bucket's.
func corsConfigurationOf(origins []string) (any, error) {
	if len(origins) == 0 {
		return nil, s3err.NoSuchCORSConfiguration
	}
	return corsConfiguration{NS: s3NS, Rules: []corsRule{{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  corsExposed(),
		MaxAgeSeconds:  corsMaxAge,
	}}}, nil
}

func ownerOnlyACL() accessControlPolicy {
	return accessControlPolicy{NS: s3NS, Owner: rootOwner, Grants: []grant{{
		Grantee:    grantee{XMLNSXSI: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: rootOwner.ID, DisplayName: rootOwner.DisplayName},
		Permission: "FULL_CONTROL",
	}}}
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"AccessControlPolicy"`
	NS      string   `xml:"xmlns,attr"`
	Owner   Owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

type grantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type corsConfiguration struct {
	XMLName xml.Name   `xml:"CORSConfiguration"`
	NS      string     `xml:"xmlns,attr"`
	Rules   []corsRule `xml:"CORSRule"`
}

type corsRule struct {
	AllowedHeaders []string `xml:"AllowedHeader"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  int      `xml:"MaxAgeSeconds"`
}

type ownershipControls struct {
	XMLName xml.Name      `xml:"OwnershipControls"`
	NS      string        `xml:"xmlns,attr"`
	Rule    ownershipRule `xml:"Rule"`
}

type ownershipRule struct {
	ObjectOwnership string `xml:"ObjectOwnership"`
}

type publicAccessBlock struct {
	XMLName               xml.Name `xml:"PublicAccessBlockConfiguration"`
	NS                    string   `xml:"xmlns,attr"`
	BlockPublicAcls       bool     `xml:"BlockPublicAcls"`
	IgnorePublicAcls      bool     `xml:"IgnorePublicAcls"`
	BlockPublicPolicy     bool     `xml:"BlockPublicPolicy"`
	RestrictPublicBuckets bool     `xml:"RestrictPublicBuckets"`
}

type bucketLoggingStatus struct {
	XMLName xml.Name `xml:"BucketLoggingStatus"`
	NS      string   `xml:"xmlns,attr"`
}

type notificationConfiguration struct {
	XMLName xml.Name `xml:"NotificationConfiguration"`
	NS      string   `xml:"xmlns,attr"`
}

type requestPaymentConfiguration struct {
	XMLName xml.Name `xml:"RequestPaymentConfiguration"`
	NS      string   `xml:"xmlns,attr"`
	Payer   string   `xml:"Payer"`
}

type accelerateConfiguration struct {
	XMLName xml.Name `xml:"AccelerateConfiguration"`
	NS      string   `xml:"xmlns,attr"`
}
