package gateway

import (
	"context"
	"errors"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorTable is the one place where internal errors become S3 errors.
// Handlers return s3err codes for conditions they find themselves, and
// whatever the layers below returned otherwise; the first row that
// matches (errors.Is) decides. metaerr conditions whose reason is an S3
// code name (NoSuchKey, BucketNotEmpty, InvalidPart...) are translated by
// s3err itself and need no row here.
var errorTable = []struct {
	err  error
	code s3err.Code
	msg  string // replaces the code's message when set
}{
	{metaerr.ErrNotLeader, s3err.ServiceUnavailable, ""},
	{metaerr.ErrInvalidArgument, s3err.InvalidArgument, ""},
	// Object lock (metad's rules): a delete or retention change a
	// version's lock forbids is S3's AccessDenied; a lock asked of a
	// bucket without object lock, its InvalidRequest.
	{metaerr.ErrObjectLocked, s3err.AccessDenied, "Access Denied because object protected by object lock."},
	{metaerr.ErrObjectLockNotEnabled, s3err.InvalidRequest, "Bucket is missing Object Lock Configuration"},
	// A metad member runs a binary that predates the command.
	{metaerr.ErrUpgradeRequired, s3err.NotImplemented, upgradeMessage},
	{object.ErrIncompleteBody, s3err.IncompleteBody, ""},
	// S3's text for 503 asks for a lower request rate; these are not
	// about rate, and an operator reading a client's error should see why.
	{object.ErrNotEnoughNodes, s3err.ServiceUnavailable, "Not enough blob nodes can take this write now (down, draining or full); try again later."},
	{object.ErrWriteQuorum, s3err.ServiceUnavailable, "Too few blob nodes stored this write's chunks; nothing was stored; try again later."},
	{object.ErrRange, s3err.InvalidRange, ""},
	// Reading: fewer than k chunks of a segment are usable right now.
	{chunk.ErrUnrecoverable, s3err.ServiceUnavailable, "Too few chunks of this object are readable now; try again later."},
	{context.DeadlineExceeded, s3err.RequestTimeout, ""},
	{errClientGone, s3err.RequestTimeout, ""},
	{errClientIdle, s3err.RequestTimeout, ""},
}

// upgradeMessage answers a call some metad member is too old for.
const upgradeMessage = "Not every metadata server of this cluster supports this yet: upgrade every metad first."

// errClientIdle: the client sent no byte of the body for Config.BodyIdleTimeout.
var errClientIdle = errors.New("client stopped sending the body")

// errClientGone: the client stopped sending the body (connection cut).
var errClientGone = errors.New("client connection closed while sending the body")

// toS3 turns err into an error s3err renders with the right code, adding
// the bucket and key the request addressed.
func toS3(err error, t target) error {
	var e *s3err.Error
	var c s3err.Code
	switch {
	case errors.As(err, &e):
		e = cloneErr(e)
	case errors.As(err, &c):
		e = &s3err.Error{Code: c, Err: err}
	default:
		e = s3err.From(err)
		matched := false
		for _, row := range errorTable {
			if errors.Is(err, row.err) {
				e = &s3err.Error{Code: row.code, Message: row.msg, Err: err}
				matched = true
				break
			}
		}
		// metad answers Unavailable when no member could take the call or
		// a commit's outcome is unknown (its leader lost leadership
		// mid-commit). Both pass once a leader is elected; 503 with
		// Retry-After tells clients to come back, where 500 reads as a
		// fault. A retried write is safe: it stores a new version, and a
		// first attempt that did apply is replaced and collected.
		if !matched && e.Code == s3err.InternalError && status.Code(err) == codes.Unavailable {
			e = &s3err.Error{Code: s3err.ServiceUnavailable, Err: err}
		}
		// A metad leader whose binary predates the call (one with a
		// feature level answers ErrUpgradeRequired, above).
		if !matched && e.Code == s3err.InternalError && status.Code(err) == codes.Unimplemented {
			e = &s3err.Error{Code: s3err.NotImplemented, Message: upgradeMessage, Err: err}
		}
	}
	if e.Resource == "" && e.BucketName == "" && e.Key == "" {
		switch e.Code {
		case s3err.NoSuchKey, s3err.NoSuchVersion, s3err.KeyTooLongError, s3err.PreconditionFailed, s3err.NoSuchUpload:
			e.Key = t.key
			e.BucketName = t.bucket
		case s3err.NoSuchBucket, s3err.BucketNotEmpty, s3err.BucketAlreadyExists,
			s3err.BucketAlreadyOwnedByYou, s3err.InvalidBucketName:
			e.BucketName = t.bucket
		}
	}
	return e
}

func cloneErr(e *s3err.Error) *s3err.Error {
	c := *e
	return &c
}

// isMeta reports whether err carries the metadata condition target.
func isMeta(err error, target *metaerr.Error) bool { return errors.Is(err, target) }
