package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnstore/cairn/gateway/bucketpolicy"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// What a request may do. The root key (the gateway's environment) may do
// everything; an access key stored in metad may do what its grants on the
// request's bucket say (metadatapb.BucketGrant) and what the bucket's
// policy allows it, less what the policy denies; an anonymous request
// what the bucket's policy allows (policy.go).

// permission is what an operation needs of the key that signed it.
type permission int

const (
	// needNothing: the operation needs no permission of its own
	// (ListBuckets lists only the buckets the key has a grant on; errors
	// answered before any data is touched).
	needNothing permission = iota
	needRead
	needWrite
	needOwner
	needCreateBuckets
	// needChecked: the handler authorizes the request itself (a POST
	// upload, whose signature is in its form; DeleteObjects, each of
	// whose keys is a DeleteObject).
	needChecked
)

func (p permission) String() string {
	return [...]string{"nothing", "read", "write", "owner", "create-buckets", "checked"}[p]
}

// opPermissions is the permission of every operation the router names.
// The router refuses to build with an operation missing here (route).
var opPermissions = map[string]permission{
	"NotImplemented":   needNothing,
	"MethodNotAllowed": needNothing,
	"ListBuckets":      needNothing,
	"CreateBucket":     needCreateBuckets,
	"PostObject":       needChecked,

	"HeadBucket":                      needRead,
	"GetBucketLocation":               needRead,
	"GetBucketVersioning":             needRead,
	"ListObjects":                     needRead,
	"ListObjectsV2":                   needRead,
	"ListObjectVersions":              needRead,
	"ListMultipartUploads":            needRead,
	"GetBucketTagging":                needRead,
	"GetBucketPolicyStatus":           needRead,
	"GetObject":                       needRead,
	"HeadObject":                      needRead,
	"GetObjectAttributes":             needRead,
	"GetObjectTagging":                needRead,
	"GetObjectAcl":                    needRead,
	"ListParts":                       needRead,
	"PutObject":                       needWrite,
	"CopyObject":                      needWrite,
	"DeleteObject":                    needWrite,
	"DeleteObjects":                   needChecked,
	"PutObjectTagging":                needWrite,
	"DeleteObjectTagging":             needWrite,
	"PutObjectAcl":                    needWrite,
	"CreateMultipartUpload":           needWrite,
	"UploadPart":                      needWrite,
	"UploadPartCopy":                  needWrite,
	"CompleteMultipartUpload":         needWrite,
	"AbortMultipartUpload":            needWrite,
	"DeleteBucket":                    needOwner,
	"PutBucketAcl":                    needOwner,
	"PutBucketPolicy":                 needOwner,
	"GetBucketPolicy":                 needOwner,
	"DeleteBucketPolicy":              needOwner,
	"PutBucketTagging":                needOwner,
	"DeleteBucketTagging":             needOwner,
	"PutBucketLifecycleConfiguration": needOwner,
	"GetBucketLifecycleConfiguration": needOwner,
	"DeleteBucketLifecycle":           needOwner,
	"GetBucketCors":                   needRead,
	"GetBucketEncryption":             needRead,
	"PutBucketEncryption":             needOwner,
	"PutBucketVersioning":             needOwner,
	"DeleteBucketEncryption":          needOwner,
	"PutBucketCors":                   needOwner,
	"DeleteBucketCors":                needOwner,
	"PutObjectLockConfiguration":      needOwner,
	"GetObjectLockConfiguration":      needRead,
	// Setting a retention or legal hold is a write, as asking for one on
	// a PUT is; getting past a GOVERNANCE retention is the owner's
	// (authorizeBypass).
	"GetObjectRetention": needRead,
	"PutObjectRetention": needWrite,
	"GetObjectLegalHold": needRead,
	"PutObjectLegalHold": needWrite,
}

func init() {
	// The configuration reads answered from the gateway's own settings
	// (bucketconfig.go) say nothing a reader of the bucket may not know;
	// the deletes of configurations Cairn never stores change nothing.
	for _, c := range bucketConfigReads {
		opPermissions[c.op] = needRead
	}
	for _, c := range bucketConfigDeletes {
		opPermissions[c.op] = needOwner
	}
}

// opAction is the S3 action a bucket policy is asked about for an
// operation: plain, or version when the request names a version
// (?versionId=, "null" included, as on S3). An empty plain: no bucket
// policy decides the operation (it has no bucket, or it is answered
// before anything is touched).
type opAction struct{ plain, version string }

// of is the action of request r.
func (a opAction) of(r *http.Request) string {
	if a.version != "" && r.URL.Query().Has("versionId") {
		return a.version
	}
	return a.plain
}

// opActions is the S3 action of every operation the router names, as
// S3's authorization reference maps its API to actions: the action an
// operation needs is the one S3 checks for it (HeadObject is
// s3:GetObject, the parts of a multipart upload s3:PutObject, deleting a
// configuration is putting it). The router refuses to build with an
// operation missing here or naming an action bucketpolicy does not know
// (actionOf). What an operation asks beyond its own action is checked
// where it is known: a copy's source (copySource: s3:GetObject or
// s3:GetObjectVersion), each key of DeleteObjects (deleteMany:
// s3:DeleteObject or s3:DeleteObjectVersion), the governance bypass
// (authorizeBypass: s3:BypassGovernanceRetention), GetObjectAttributes's
// read of the object (getObjectAction).
var opActions = map[string]opAction{
	"NotImplemented":   {},
	"MethodNotAllowed": {},
	"ListBuckets":      {}, // s3:ListAllMyBuckets: no bucket's policy
	"CreateBucket":     {}, // no bucket yet
	"PostObject":       {"s3:PutObject", ""},
	"DeleteObjects":    {}, // each key: deleteMany

	"HeadBucket":                      {"s3:ListBucket", ""},
	"GetBucketLocation":               {"s3:GetBucketLocation", ""},
	"GetBucketVersioning":             {"s3:GetBucketVersioning", ""},
	"ListObjects":                     {"s3:ListBucket", ""},
	"ListObjectsV2":                   {"s3:ListBucket", ""},
	"ListObjectVersions":              {"s3:ListBucketVersions", ""},
	"ListMultipartUploads":            {"s3:ListBucketMultipartUploads", ""},
	"GetBucketTagging":                {"s3:GetBucketTagging", ""},
	"GetBucketPolicyStatus":           {"s3:GetBucketPolicyStatus", ""},
	"GetObject":                       {"s3:GetObject", "s3:GetObjectVersion"},
	"HeadObject":                      {"s3:GetObject", "s3:GetObjectVersion"},
	"GetObjectAttributes":             {"s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"},
	"GetObjectTagging":                {"s3:GetObjectTagging", "s3:GetObjectVersionTagging"},
	"GetObjectAcl":                    {"s3:GetObjectAcl", "s3:GetObjectVersionAcl"},
	"ListParts":                       {"s3:ListMultipartUploadParts", ""},
	"PutObject":                       {"s3:PutObject", ""},
	"CopyObject":                      {"s3:PutObject", ""},
	"DeleteObject":                    {"s3:DeleteObject", "s3:DeleteObjectVersion"},
	"PutObjectTagging":                {"s3:PutObjectTagging", "s3:PutObjectVersionTagging"},
	"DeleteObjectTagging":             {"s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"},
	"PutObjectAcl":                    {"s3:PutObjectAcl", "s3:PutObjectVersionAcl"},
	"CreateMultipartUpload":           {"s3:PutObject", ""},
	"UploadPart":                      {"s3:PutObject", ""},
	"UploadPartCopy":                  {"s3:PutObject", ""},
	"CompleteMultipartUpload":         {"s3:PutObject", ""},
	"AbortMultipartUpload":            {"s3:AbortMultipartUpload", ""},
	"DeleteBucket":                    {"s3:DeleteBucket", ""},
	"PutBucketAcl":                    {"s3:PutBucketAcl", ""},
	"PutBucketPolicy":                 {"s3:PutBucketPolicy", ""},
	"GetBucketPolicy":                 {"s3:GetBucketPolicy", ""},
	"DeleteBucketPolicy":              {"s3:DeleteBucketPolicy", ""},
	"PutBucketTagging":                {"s3:PutBucketTagging", ""},
	"DeleteBucketTagging":             {"s3:PutBucketTagging", ""},
	"PutBucketLifecycleConfiguration": {"s3:PutLifecycleConfiguration", ""},
	"GetBucketLifecycleConfiguration": {"s3:GetLifecycleConfiguration", ""},
	"DeleteBucketLifecycle":           {"s3:PutLifecycleConfiguration", ""},
	"GetBucketCors":                   {"s3:GetBucketCORS", ""},
	"PutBucketCors":                   {"s3:PutBucketCORS", ""},
	"DeleteBucketCors":                {"s3:PutBucketCORS", ""},
	"GetBucketEncryption":             {"s3:GetEncryptionConfiguration", ""},
	"PutBucketEncryption":             {"s3:PutEncryptionConfiguration", ""},
	"DeleteBucketEncryption":          {"s3:PutEncryptionConfiguration", ""},
	"PutBucketVersioning":             {"s3:PutBucketVersioning", ""},
	"PutObjectLockConfiguration":      {"s3:PutBucketObjectLockConfiguration", ""},
	"GetObjectLockConfiguration":      {"s3:GetBucketObjectLockConfiguration", ""},
	"GetObjectRetention":              {"s3:GetObjectRetention", ""},
	"PutObjectRetention":              {"s3:PutObjectRetention", ""},
	"GetObjectLegalHold":              {"s3:GetObjectLegalHold", ""},
	"PutObjectLegalHold":              {"s3:PutObjectLegalHold", ""},

	// The configuration reads and deletes of bucketconfig.go.
	"GetBucketAcl":                       {"s3:GetBucketAcl", ""},
	"GetBucketWebsite":                   {"s3:GetBucketWebsite", ""},
	"GetBucketReplication":               {"s3:GetReplicationConfiguration", ""},
	"GetBucketOwnershipControls":         {"s3:GetBucketOwnershipControls", ""},
	"GetPublicAccessBlock":               {"s3:GetBucketPublicAccessBlock", ""},
	"GetBucketLogging":                   {"s3:GetBucketLogging", ""},
	"GetBucketNotificationConfiguration": {"s3:GetBucketNotification", ""},
	"GetBucketRequestPayment":            {"s3:GetBucketRequestPayment", ""},
	"GetBucketAccelerateConfiguration":   {"s3:GetAccelerateConfiguration", ""},
	"DeleteBucketWebsite":                {"s3:DeleteBucketWebsite", ""},
}

// getObjectAction is what reading an object asks of a policy; operations
// that read it besides their own action check it too (GetObjectAttributes).
var getObjectAction = opAction{"s3:GetObject", "s3:GetObjectVersion"}

// signedOnly are the operations no bucket policy opens to anonymous
// clients: a bucket's policy is its owner's business, and creating or
// listing buckets concerns no existing bucket.
var signedOnly = map[string]bool{
	"CreateBucket": true, "ListBuckets": true,
	"PutBucketPolicy": true, "GetBucketPolicy": true, "DeleteBucketPolicy": true,
	"GetBucketPolicyStatus": true,
}

// actionOf is op's policy action; an operation without one, or one
// naming what is not an S3 action, is a bug of the router, caught when
// it is built.
func actionOf(op string) opAction {
	a, ok := opActions[op]
	if !ok {
		panic(fmt.Sprintf("gateway: operation %s has no action in opActions", op))
	}
	for _, name := range []string{a.plain, a.version} {
		if name != "" && !bucketpolicy.IsAction(name) {
			panic(fmt.Sprintf("gateway: operation %s: %q is not an S3 action", op, name))
		}
	}
	return a
}

// permissionOf is op's permission; an operation without one is a bug of
// the router, caught when it is built.
func permissionOf(op string) permission {
	p, ok := opPermissions[op]
	if !ok {
		panic(fmt.Sprintf("gateway: operation %s has no permission in opPermissions", op))
	}
	return p
}

// A denial is checked against metad's current grants unless what the
// gateway holds is newer than this: a bucket created through another
// gateway, or a grant just given, must work at once, not a key TTL later,
// while a client retrying a denied request costs metad at most a few
// reads a second.
const recheckDeniedAfter = 250 * time.Millisecond

// accessKey is the stored key that signed r, nil for the root key or an
// anonymous request, as read at most maxAge ago.
func (d *routerDeps) accessKey(r *http.Request, maxAge time.Duration) (*pb.AccessKey, error) {
	st := stateOf(r)
	if st.auth == nil || d.keys.isRoot(st.auth.AccessKey) {
		return nil, nil
	}
	// An error: deleted since its signature was checked, or metad could
	// not say.
	return d.keys.lookupNewer(r.Context(), st.auth.AccessKey, maxAge)
}

// access is what a request asks of a bucket: the permission an access
// key's grant must hold, and the S3 action a bucket policy may allow or
// deny, on the bucket or one of its objects.
type access struct {
	need   permission
	action string // "": no bucket policy decides it
	bucket string
	key    string // the object of an object action
}

// authorize answers AccessDenied unless the request may do a:
//
//   - the root key may do everything, and never reads a bucket policy
//     (so the owner can always repair one);
//   - an anonymous request may do what the bucket's policy allows, and
//     nothing where the bucket has none or does not exist;
//   - a stored access key may do what its grant on the bucket or an
//     Allow of the bucket's policy lets it, unless a Deny of the policy
//     matches.
func (d *routerDeps) authorize(r *http.Request, a access) error {
	st := stateOf(r)
	if a.need == needChecked {
		return nil
	}
	if st.auth != nil && (d.keys.isRoot(st.auth.AccessKey) || a.need == needNothing) {
		return nil
	}
	// What the gateway holds of the key and the policy decides, unless
	// it denies and is older than recheckDeniedAfter: then metad's
	// current key and policy do, so a grant given or a policy put
	// through another gateway works at once, while one taken away
	// stops working within the TTL.
	denied, err := d.decide(r, a, d.keys.ttl)
	if denied {
		_, err = d.decide(r, a, recheckDeniedAfter)
	}
	return err
}

// decide is authorize's answer from a key and a policy read at most
// maxAge ago; denied reports an AccessDenied that fresher ones might
// change.
func (d *routerDeps) decide(r *http.Request, a access, maxAge time.Duration) (denied bool, err error) {
	if stateOf(r).auth == nil {
		return d.decideAnonymous(r, a, maxAge)
	}
	k, err := d.accessKey(r, maxAge)
	if err != nil {
		return false, accessError(err)
	}
	decision := bucketpolicy.Implicit
	if a.action != "" {
		p, err := d.policyOf(r.Context(), a.bucket, maxAge)
		if err != nil {
			return errors.Is(err, errBrokenPolicy), err
		}
		if p != nil {
			decision = p.Evaluate(d.policyRequest(r, a, k.GetId()))
		}
	}
	switch {
	case decision == bucketpolicy.Denied:
		return true, s3err.New(s3err.AccessDenied, "Access Denied: the policy of bucket %q denies %s to access key %s.", a.bucket, a.action, k.GetId())
	case decision == bucketpolicy.Allowed || allowed(k, a.bucket, a.need):
		return false, nil
	}
	return true, s3err.New(s3err.AccessDenied, "Access Denied: access key %s may not %s in bucket %q.", k.GetId(), a.need, a.bucket)
}

// decideAnonymous lets an unsigned request do what the policy of its
// bucket allows. A policy that cannot be read denies.
func (d *routerDeps) decideAnonymous(r *http.Request, a access, maxAge time.Duration) (denied bool, err error) {
	deny := s3err.New(s3err.AccessDenied, "Access Denied: anonymous access is allowed only by a bucket policy.")
	if a.action == "" || a.bucket == "" {
		return false, deny
	}
	p, err := d.policyOf(r.Context(), a.bucket, maxAge)
	if err != nil {
		d.log.Warn("read a bucket policy for an anonymous request", "bucket", a.bucket, "err", err)
		return errors.Is(err, errBrokenPolicy), deny
	}
	if p == nil || p.Evaluate(d.policyRequest(r, a, "")) != bucketpolicy.Allowed {
		return true, deny
	}
	return false, nil
}

// allowed reports whether k has need on bucket.
func allowed(k *pb.AccessKey, bucket string, need permission) bool {
	g := k.GetGrants()[bucket]
	switch need {
	case needRead:
		return g.GetRead()
	case needWrite:
		return g.GetWrite()
	case needOwner:
		return g.GetOwner()
	case needCreateBuckets:
		return k.GetCreateBuckets()
	}
	return false
}

// accessError is the answer when the signer's key cannot be read: a key
// deleted since the signature was checked is AccessDenied; anything else
// (metad unreachable) keeps its own error.
func accessError(err error) error {
	if isUnknownKey(err) {
		return s3err.New(s3err.AccessDenied, "Access Denied: the access key was deleted.")
	}
	return err
}

// visibleBuckets keeps the buckets key k may see in a ListBuckets: all
// for the root key (nil), those it has a grant on otherwise.
func visibleBuckets(k *pb.AccessKey, bs []*pb.Bucket) []*pb.Bucket {
	if k == nil {
		return bs
	}
	out := bs[:0:0]
	for _, b := range bs {
		if _, ok := k.GetGrants()[b.GetName()]; ok {
			out = append(out, b)
		}
	}
	return out
}

func isUnknownKey(err error) bool { return errors.Is(err, sigv4.ErrUnknownKey) }
