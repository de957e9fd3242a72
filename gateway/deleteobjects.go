package gateway

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/cairnstore/cairn/gateway/objectlock"
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

// deleteMany is DeleteObjects. Keys (and versions) that do not exist are
// reported deleted, as S3 does; in quiet mode only the errors are listed.
// Each object is deleted as DeleteObject would: a VersionId deletes that
// version for good; without one, a bucket with versioning gets a delete
// marker. Deleted entries say so as S3 does: VersionId the version asked
// for, DeleteMarker and DeleteMarkerVersionId when a marker was deleted or
// added. A version its object lock keeps is an AccessDenied entry (the
// request's x-amz-bypass-governance-retention applies to every entry).
//
// Each entry is authorized as its DeleteObject would be (s3:DeleteObject,
// or s3:DeleteObjectVersion with a VersionId; with the bypass also
// s3:BypassGovernanceRetention): one the requester may not delete is an
// AccessDenied entry, as on S3. A requester who may delete nothing in the
// bucket (no write grant, no policy Allow of a delete) is refused whole.
func (h *objectHandlers) deleteMany(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bucket := stateOf(r).target.bucket
	if err := h.d.mayDeleteAny(r, bucket); err != nil {
		return err
	}
	bypass := objectlock.Bypass(r.Header)
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
	resps := make([]*pb.DeleteObjectResponse, len(req.Objects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, deleteWorkers)
	for i, obj := range req.Objects {
		if err := checkKey(obj.Key); err != nil {
			errs[i] = err
			continue
		}
		// S3 answers an empty or malformed VersionId here with
		// NoSuchVersion, not the InvalidArgument of a versionId
		// parameter.
		if obj.VersionID != nil && !wellFormedVersionID(*obj.VersionID) {
			errs[i] = s3err.NoSuchVersion
			continue
		}
		if err := h.d.authorizeDelete(r, bucket, obj, bypass); err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := h.d.meta.DeleteObject(ctx, &pb.DeleteObjectRequest{Bucket: bucket, Key: obj.Key, VersionId: obj.versionID(), BypassGovernance: bypass})
			if err != nil && !errors.Is(err, metaerr.ErrNoSuchKey) {
				errs[i] = err
			}
			resps[i] = resp
		}()
	}
	wg.Wait()
	out := deleteResult{NS: s3NS}
	for i, obj := range req.Objects {
		if errs[i] == nil {
			if !req.Quiet {
				out.Deleted = append(out.Deleted, deletedOf(obj, resps[i]))
			}
			continue
		}
		e := s3err.From(toS3(errs[i], target{bucket: bucket, key: obj.Key}))
		msg := e.Message
		if msg == "" {
			msg = e.Code.Message
		}
		out.Errors = append(out.Errors, deleteErrorEntry{Key: obj.Key, VersionID: obj.versionID(), Code: e.Code.Name, Message: msg})
		stateOf(r).err = errs[i]
	}
	return writeXML(w, out)
}

// versionID is the version the entry names, "" for none.
func (o deleteObjectID) versionID() string {
	if o.VersionID == nil {
		return ""
	}
	return *o.VersionID
}

// deletedOf is the Deleted entry of obj, whose deletion metad answered
// with resp (nil: nothing to delete).
func deletedOf(obj deleteObjectID, resp *pb.DeleteObjectResponse) deletedEntry {
	e := deletedEntry{Key: obj.Key, VersionID: obj.versionID()}
	if resp.GetDeleteMarker() {
		e.DeleteMarker = true
		e.DeleteMarkerVersionID = resp.GetVersionId()
		if e.VersionID != "" {
			e.DeleteMarkerVersionID = e.VersionID
		}
	}
	return e
}

// mayDeleteAny refuses a DeleteObjects whose requester may delete
// nothing in bucket: neither its grant nor an Allow of the bucket's
// policy lets it delete (authorizeDelete decides each key).
func (d *routerDeps) mayDeleteAny(r *http.Request, bucket string) error {
	write := access{need: needWrite, bucket: bucket}
	st := stateOf(r)
	if st.auth != nil {
		if err := d.authorize(r, write); err == nil {
			return nil // the root key, or a grant of write
		}
	}
	keyID := ""
	if st.auth != nil {
		keyID = st.auth.AccessKey
	}
	// As authorize: a refusal from a policy held longer than
	// recheckDeniedAfter is decided again from metad's.
	for _, maxAge := range []time.Duration{d.keys.ttl, recheckDeniedAfter} {
		p, err := d.policyOf(r.Context(), bucket, maxAge)
		if err != nil {
			return err
		}
		if p != nil && p.MayAllow(keyID, "s3:DeleteObject", "s3:DeleteObjectVersion") {
			return nil
		}
	}
	if st.auth == nil {
		_, err := d.decideAnonymous(r, access{}, recheckDeniedAfter)
		return err // denied
	}
	return d.authorize(r, write) // denied, saying why
}

// authorizeDelete checks one entry of a DeleteObjects as its own
// DeleteObject.
func (d *routerDeps) authorizeDelete(r *http.Request, bucket string, obj deleteObjectID, bypass bool) error {
	a := access{need: needWrite, action: "s3:DeleteObject", bucket: bucket, key: obj.Key}
	if obj.VersionID != nil {
		a.action = "s3:DeleteObjectVersion"
	}
	if err := d.authorize(r, a); err != nil {
		return err
	}
	if bypass {
		return d.authorize(r, access{need: needOwner, action: "s3:BypassGovernanceRetention", bucket: bucket, key: obj.Key})
	}
	return nil
}
