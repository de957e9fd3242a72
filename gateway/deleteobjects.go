package gateway

import (
	"errors"
	"net/http"
	"sync"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// MaxDeleteKeys is the most keys one DeleteObjects request may name.
const MaxDeleteKeys = 1000

// deleteWorkers bounds the deletions of one DeleteObjects in flight.
const deleteWorkers = 16

// parseDeleteRequest decodes DeleteObjects' body: 1 to 1000 objects.
func parseDeleteRequest(body []byte) (*deleteRequest, error) {
	var req deleteRequest
	if err := decodeXML(body, &req); err != nil {
		return nil, err
	}
	if len(req.Objects) == 0 || len(req.Objects) > MaxDeleteKeys {
		return nil, &s3err.Error{Code: s3err.MalformedXML, Message: "The XML you provided was not well-formed or did not validate against our published schema: a Delete names 1 to 1000 objects."}
	}
	return &req, nil
}

// deleteMany is DeleteObjects. Keys that do not exist are reported
// deleted, as S3 does; in quiet mode only the errors are listed.
func (h *objectHandlers) deleteMany(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bucket := stateOf(r).target.bucket
	body, err := h.d.readSmallBody(r)
	if err != nil {
		return err
	}
	req, err := parseDeleteRequest(body)
	if err != nil {
		return err
	}
	if _, err := h.d.meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket}); err != nil {
		return err
	}
	errs := make([]error, len(req.Objects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, deleteWorkers)
	for i, obj := range req.Objects {
		if err := checkKey(obj.Key); err != nil {
			errs[i] = err
			continue
		}
		if obj.VersionID != "" && obj.VersionID != "null" {
			errs[i] = s3err.NoSuchVersion
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := h.d.meta.DeleteObject(ctx, &pb.DeleteObjectRequest{Bucket: bucket, Key: obj.Key})
			if err != nil && !errors.Is(err, metaerr.ErrNoSuchKey) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	out := deleteResult{NS: s3NS}
	for i, obj := range req.Objects {
		if errs[i] == nil {
			if !req.Quiet {
				out.Deleted = append(out.Deleted, deletedEntry{Key: obj.Key})
			}
			continue
		}
		e := s3err.From(toS3(errs[i], target{bucket: bucket, key: obj.Key}))
		msg := e.Message
		if msg == "" {
			msg = e.Code.Message
		}
		out.Errors = append(out.Errors, deleteErrorEntry{Key: obj.Key, Code: e.Code.Name, Message: msg})
		stateOf(r).err = errs[i]
	}
	return writeXML(w, out)
}
