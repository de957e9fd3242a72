package gateway

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// bucketHandlers serve the bucket operations.
type bucketHandlers struct{ d *routerDeps }

// list is ListBuckets.
func (h *bucketHandlers) list(w http.ResponseWriter, r *http.Request) error {
	// Read now: the buckets a key created through another gateway a
	// moment ago are listed.
	k, err := h.d.accessKey(r, 0)
	if err != nil {
		return accessError(err)
	}
	resp, err := h.d.meta.ListBuckets(r.Context(), &pb.ListBucketsRequest{})
	if err != nil {
		return err
	}
	out := listAllMyBucketsResult{NS: s3NS, Owner: rootOwner, Buckets: []bucketEntry{}}
	for _, b := range visibleBuckets(k, resp.GetBuckets()) {
		out.Buckets = append(out.Buckets, bucketEntry{
			Name:         b.GetName(),
			CreationDate: fmtXMLTime(unixTime(b.GetCreatedUnixNano())),
			BucketRegion: h.region(b),
		})
	}
	return writeXML(w, out)
}

func (h *bucketHandlers) region(b *pb.Bucket) string {
	if b.GetRegion() != "" {
		return b.GetRegion()
	}
	return h.d.region
}

// create is CreateBucket. The optional CreateBucketConfiguration may only
// name this gateway's region (S3 rejects "us-east-1" spelled out, which
// must be left empty; we accept it, as clients send it).
// x-amz-bucket-object-lock-enabled: true makes the bucket with object
// lock, and so with versioning Enabled.
func (h *bucketHandlers) create(w http.ResponseWriter, r *http.Request) error {
	name := stateOf(r).target.bucket
	if err := checkBucketName(name); err != nil {
		return err
	}
	if err := checkCreateBucketHeaders(r.Header); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		cfg, err := parseCreateBucketConfiguration(body)
		if err != nil {
			return err
		}
		if cfg.LocationConstraint != "" && cfg.LocationConstraint != h.d.region {
			return s3err.New(s3err.InvalidLocationConstraint, "The specified location-constraint %q is not valid: this endpoint serves %s.", cfg.LocationConstraint, h.d.region)
		}
	}
	lock := strings.EqualFold(strings.TrimSpace(r.Header.Get("x-amz-bucket-object-lock-enabled")), "true")
	k, err := h.d.accessKey(r, h.d.keys.ttl)
	if err != nil {
		return accessError(err)
	}
	// A key creating a bucket owns it (granted in the same metad entry).
	resp, err := h.d.meta.CreateBucket(r.Context(), &pb.CreateBucketRequest{Name: name, Region: h.d.region, OwnerKey: k.GetId(), ObjectLockEnabled: lock})
	if err != nil {
		// Someone else's bucket is BucketAlreadyExists to a key, as on
		// S3; the root key owns every bucket.
		if k != nil && isMeta(err, metaerr.ErrBucketAlreadyOwnedByYou) && !k.GetGrants()[name].GetOwner() {
			return &s3err.Error{Code: s3err.BucketAlreadyExists, BucketName: name, Err: err}
		}
		return err
	}
	if lock && !resp.GetBucket().GetObjectLock().GetEnabled() {
		// A metad leader whose binary predates object lock made a plain
		// bucket (it does not know the field): the bucket asked for
		// does not exist, so the one made goes again.
		if _, err := h.d.meta.DeleteBucket(r.Context(), &pb.DeleteBucketRequest{Name: name}); err != nil {
			h.d.log.Warn("delete the bucket made without the object lock asked for", "bucket", name, "err", err)
		}
		return s3err.New(s3err.NotImplemented, "%s", upgradeMessage)
	}
	if k != nil {
		h.d.keys.forget(k.GetId()) // it owns the bucket now
	}
	w.Header().Set("Location", "/"+name)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// parseCreateBucketConfiguration decodes CreateBucket's body.
func parseCreateBucketConfiguration(body []byte) (createBucketConfiguration, error) {
	var cfg createBucketConfiguration
	if len(body) > maxXMLBody {
		return cfg, s3err.MaxMessageLengthExceeded
	}
	err := decodeXML(body, &cfg)
	return cfg, err
}

// head is HeadBucket.
func (h *bucketHandlers) head(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", h.region(resp.GetBucket()))
	w.WriteHeader(http.StatusOK)
	return nil
}

// delete is DeleteBucket; metad refuses a bucket with objects or uploads
// (BucketNotEmpty).
func (h *bucketHandlers) delete(w http.ResponseWriter, r *http.Request) error {
	bucket := stateOf(r).target.bucket
	_, err := h.d.meta.DeleteBucket(r.Context(), &pb.DeleteBucketRequest{Name: bucket})
	h.d.policyCache.forget(bucket) // a bucket made again under its name has no policy
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// location is GetBucketLocation: empty for us-east-1, as S3 answers.
func (h *bucketHandlers) location(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	loc := h.region(resp.GetBucket())
	if loc == "us-east-1" {
		loc = ""
	}
	return writeXML(w, locationConstraint{NS: s3NS, Value: loc})
}
