package gateway

import (
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// A request header asking for a feature this gateway does not have is
// refused, never ignored: a client told its object is encrypted, locked,
// tagged or public when it is not would act on something untrue.

// storageClasses are the classes S3 knows. Cairn stores every object
// alike, so any of them is accepted and kept as a label (the stored
// header storageClassHeader: HEAD, GET, listings and GetObjectAttributes
// report it); an unknown name is InvalidStorageClass, as S3 answers.
var storageClasses = map[string]bool{
	"STANDARD": true, "REDUCED_REDUNDANCY": true, "STANDARD_IA": true,
	"ONEZONE_IA": true, "INTELLIGENT_TIERING": true, "GLACIER": true,
	"DEEP_ARCHIVE": true, "OUTPOSTS": true, "GLACIER_IR": true, "SNOW": true,
	"EXPRESS_ONEZONE": true, "FSX_OPENZFS": true,
}

// storageClassHeader is the stored header that labels an object (or
// upload) with a storage class other than STANDARD; GET and HEAD return
// it as S3 does, only for those.
const storageClassHeader = "X-Amz-Storage-Class"

// labelStorageClass labels stored headers with the class h names, unless
// STANDARD (checkWriteHeaders has checked the name).
func labelStorageClass(headers map[string]string, h http.Header) {
	if v := h.Get(storageClassHeader); v != "" && v != "STANDARD" {
		headers[storageClassHeader] = v
	}
}

// storageClassOf is the class an object's or upload's stored headers name.
func storageClassOf(headers map[string]string) string {
	if v := headers[storageClassHeader]; v != "" {
		return v
	}
	return "STANDARD"
}

// privateACL tells whether a canned ACL grants no one but the owner
// anything, which is what every bucket and object here is: the owner's
// ACLs-disabled default (bucket-owner-full-control names the same owner).
func privateACL(v string) bool {
	return v == "private" || v == "bucket-owner-full-control"
}

var aclGrantHeaders = []string{
	"x-amz-grant-full-control", "x-amz-grant-read", "x-amz-grant-read-acp",
	"x-amz-grant-write", "x-amz-grant-write-acp",
}

// checkACLHeaders refuses a canned ACL other than private and any grant:
// ACLs are disabled here, as on S3 buckets with object ownership
// BucketOwnerEnforced (its default since 2023), which answers the same.
func checkACLHeaders(h http.Header) error {
	if v := h.Get("x-amz-acl"); v != "" && !privateACL(v) {
		return s3err.New(s3err.AccessControlListNotSupported, "The bucket does not allow ACLs: only the private canned ACL is accepted, not %q.", v)
	}
	for _, g := range aclGrantHeaders {
		if h.Get(g) != "" {
			return s3err.New(s3err.AccessControlListNotSupported, "The bucket does not allow ACLs (%s).", g)
		}
	}
	return nil
}

// checkWriteHeaders refuses what an object write (PutObject, CopyObject,
// CreateMultipartUpload) may ask for and Cairn does not do: a website
// redirect, ACLs other than private, an unknown storage class.
// Encryption headers are parseSSEWrite's, object lock headers
// writeLock's.
func checkWriteHeaders(h http.Header) error {
	if h.Get("x-amz-website-redirect-location") != "" {
		return s3err.New(s3err.NotImplemented, "Website redirects are not implemented.")
	}
	if v := h.Get("x-amz-storage-class"); v != "" && !storageClasses[v] {
		return s3err.New(s3err.InvalidStorageClass, "The storage class you specified is not valid: %q.", v)
	}
	return checkACLHeaders(h)
}

// checkReadHeaders refuses encryption headers other than a client's key
// on a read or a part upload, where S3 answers them with 400: the object
// or upload already has its encryption. An SSE-C key is dataKey's to
// check against the object.
func checkReadHeaders(h http.Header) error {
	for name := range h {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, sseHeader) && !strings.HasPrefix(l, "x-amz-server-side-encryption-customer-") {
			return s3err.New(s3err.InvalidArgument, "The %s header is not valid on this request: the object's encryption was chosen when it was written.", l)
		}
	}
	return nil
}

// checkCreateBucketHeaders refuses what CreateBucket may ask for and Cairn
// does not do: ACLs other than private, object ownership other than
// BucketOwnerEnforced.
func checkCreateBucketHeaders(h http.Header) error {
	if v := h.Get("x-amz-object-ownership"); v != "" && v != "BucketOwnerEnforced" {
		return s3err.New(s3err.NotImplemented, "Object ownership %q is not implemented: ACLs are disabled (BucketOwnerEnforced).", v)
	}
	return checkACLHeaders(h)
}
