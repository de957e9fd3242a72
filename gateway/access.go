package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// What a signed request may do. The root key (the gateway's environment)
// may do everything; an access key stored in metad may do what its grants
// on the request's bucket say (metadatapb.BucketGrant). Anonymous requests
// never get here without a bucket policy allowing them (policy.go).

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
	// upload, whose signature is in its form).
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
	"DeleteObjects":                   needWrite,
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

// authorize answers AccessDenied unless the key that signed r may do what
// need asks of bucket.
func (d *routerDeps) authorize(r *http.Request, bucket string, need permission) error {
	if need == needNothing || need == needChecked {
		return nil
	}
	k, err := d.accessKey(r, d.keys.ttl)
	if err != nil {
		return accessError(err)
	}
	if k == nil || allowed(k, bucket, need) {
		return nil
	}
	if k, err = d.accessKey(r, recheckDeniedAfter); err != nil {
		return accessError(err)
	}
	if allowed(k, bucket, need) {
		return nil
	}
	return s3err.New(s3err.AccessDenied, "Access Denied: access key %s may not %s in bucket %q.", k.GetId(), need, bucket)
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
