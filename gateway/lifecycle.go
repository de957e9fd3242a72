package gateway

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/lifecycle"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Bucket lifecycle configurations: the gateway parses what clients put
// (package lifecycle: expiration by prefix, tags and size, aborting
// incomplete multipart uploads; transitions refused) and stores the
// configuration on the bucket in metad, whose leader carries it out
// (metadata/expire.go).

// putLifecycle is PutBucketLifecycleConfiguration.
func (h *configHandlers) putLifecycle(w http.ResponseWriter, r *http.Request) error {
	if err := h.bucketExists(r); err != nil {
		return err
	}
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	c, err := lifecycle.Parse(body)
	switch {
	case errors.Is(err, lifecycle.ErrUnsupported):
		return s3err.New(s3err.NotImplemented, "Lifecycle: %v.", err)
	case errors.Is(err, lifecycle.ErrInvalid):
		return s3err.New(s3err.InvalidArgument, "Lifecycle: %v.", err)
	case err != nil:
		return &s3err.Error{Code: s3err.MalformedXML, Err: err}
	}
	doc, err := c.Marshal()
	if err != nil {
		return err
	}
	if _, err := h.d.meta.SetBucketLifecycle(r.Context(), &pb.SetBucketLifecycleRequest{Name: stateOf(r).target.bucket, Lifecycle: string(doc)}); err != nil {
		return err
	}
	h.d.bucketCache.forget(stateOf(r).target.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

// getLifecycle is GetBucketLifecycleConfiguration.
func (h *configHandlers) getLifecycle(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.d.meta.GetBucket(r.Context(), &pb.GetBucketRequest{Name: stateOf(r).target.bucket})
	if err != nil {
		return err
	}
	doc := resp.GetBucket().GetLifecycle()
	if doc == "" {
		return s3err.NoSuchLifecycleConfiguration
	}
	w.Header().Set("Content-Type", "application/xml")
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	_, err = io.WriteString(w, doc)
	return err
}

// deleteLifecycle is DeleteBucketLifecycle (a bucket without one is a
// no-op).
func (h *configHandlers) deleteLifecycle(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.d.meta.SetBucketLifecycle(r.Context(), &pb.SetBucketLifecycleRequest{Name: stateOf(r).target.bucket}); err != nil {
		return err
	}
	h.d.bucketCache.forget(stateOf(r).target.bucket)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
