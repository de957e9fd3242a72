// Package metaerr holds the errors of the metadata service that callers must
// tell apart, and their translation to and from gRPC status, so that the
// server, its client and the gateway agree without the gateway importing the
// server (and with it Raft and Badger).
package metaerr

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every metadata error.
const Domain = "metad.cairn"

// Error is a metadata condition a caller can match with errors.Is.
type Error struct {
	// Reason is the stable name carried over the wire.
	Reason string
	code   codes.Code
}

func (e *Error) Error() string { return e.Reason }

var (
	ErrNoSuchBucket            = &Error{"NoSuchBucket", codes.NotFound}
	ErrNoSuchKey               = &Error{"NoSuchKey", codes.NotFound}
	ErrNoSuchUpload            = &Error{"NoSuchUpload", codes.NotFound}
	ErrBucketAlreadyExists     = &Error{"BucketAlreadyExists", codes.AlreadyExists}
	ErrBucketAlreadyOwnedByYou = &Error{"BucketAlreadyOwnedByYou", codes.AlreadyExists}
	ErrBucketNotEmpty          = &Error{"BucketNotEmpty", codes.FailedPrecondition}
	ErrPreconditionFailed      = &Error{"PreconditionFailed", codes.FailedPrecondition}
	ErrInvalidPart             = &Error{"InvalidPart", codes.InvalidArgument}
	ErrInvalidPartOrder        = &Error{"InvalidPartOrder", codes.InvalidArgument}
	ErrInvalidArgument         = &Error{"InvalidArgument", codes.InvalidArgument}
	ErrNoSuchNode              = &Error{"NoSuchNode", codes.NotFound}
	ErrNoSuchAccessKey         = &Error{"NoSuchAccessKey", codes.NotFound}
	ErrAccessKeyExists         = &Error{"AccessKeyExists", codes.AlreadyExists}
	// ErrQuotaExceeded: the commit would take its bucket over its quota.
	ErrQuotaExceeded = &Error{"QuotaExceeded", codes.FailedPrecondition}
	// ErrUpgradeRequired: a command some metad member's binary does not
	// apply yet (metadata.FeatureLevel); upgrade every member first.
	ErrUpgradeRequired = &Error{"UpgradeRequired", codes.FailedPrecondition}
	// ErrNotLeader: this member is not the leader. A *NotLeaderError
	// carries the leader's address when known.
	ErrNotLeader = &Error{"NotLeader", codes.Unavailable}
	// ErrNoSuchVersion: the key has no version with the id asked for.
	ErrNoSuchVersion = &Error{"NoSuchVersion", codes.NotFound}
	// ErrMethodNotAllowed: the version named is a delete marker, which
	// has no data or tags.
	ErrMethodNotAllowed = &Error{"MethodNotAllowed", codes.FailedPrecondition}
	// ErrObjectLocked: the version's legal hold or retention forbids the
	// change (object lock).
	ErrObjectLocked = &Error{"ObjectLocked", codes.FailedPrecondition}
	// ErrObjectLockNotEnabled: a retention or legal hold for a bucket
	// without object lock.
	ErrObjectLockNotEnabled = &Error{"ObjectLockNotEnabled", codes.FailedPrecondition}
	// ErrInvalidBucketState: the bucket's state forbids the change (object
	// lock without versioning, suspending versioning under object lock).
	ErrInvalidBucketState = &Error{"InvalidBucketState", codes.FailedPrecondition}
)

var all = []*Error{
	ErrNoSuchBucket, ErrNoSuchKey, ErrNoSuchUpload, ErrBucketAlreadyExists,
	ErrBucketAlreadyOwnedByYou, ErrBucketNotEmpty, ErrPreconditionFailed,
	ErrInvalidPart, ErrInvalidPartOrder, ErrInvalidArgument, ErrNoSuchNode,
	ErrNotLeader, ErrUpgradeRequired, ErrNoSuchAccessKey, ErrAccessKeyExists,
	ErrQuotaExceeded, ErrNoSuchVersion, ErrMethodNotAllowed, ErrObjectLocked,
	ErrObjectLockNotEnabled, ErrInvalidBucketState,
}

// NotLeaderError says who the leader is, if this member knows.
type NotLeaderError struct {
	// LeaderAddr is the leader's gRPC address, "" when unknown.
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "not the metadata leader; leader unknown"
	}
	return "not the metadata leader; leader is " + e.LeaderAddr
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Detailed wraps err with a message while keeping errors.Is working:
// Detailed(ErrInvalidPart, "part %d: etag mismatch", 3).
func Detailed(err *Error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// ToStatus converts an error from the server's code into a gRPC status
// error carrying its reason. Errors that are not metadata conditions become
// codes.Internal (or the status they already are).
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		return withInfo(codes.Unavailable, err.Error(), ErrNotLeader.Reason, map[string]string{"leader": nl.LeaderAddr})
	}
	var me *Error
	if errors.As(err, &me) {
		return withInfo(me.code, err.Error(), me.Reason, nil)
	}
	return status.Error(codes.Internal, err.Error())
}

func withInfo(code codes.Code, msg, reason string, md map[string]string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

// FromStatus converts a gRPC error back into the metadata condition it
// carries, so errors.Is(err, ErrNoSuchKey) works on the client side. Other
// errors are returned unchanged.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.Domain != Domain {
			continue
		}
		if info.Reason == ErrNotLeader.Reason {
			return &NotLeaderError{LeaderAddr: info.Metadata["leader"]}
		}
		for _, e := range all {
			if e.Reason == info.Reason {
				msg := strings.TrimSuffix(strings.TrimSuffix(st.Message(), e.Reason), ": ")
				if msg == "" {
					return e
				}
				return fmt.Errorf("%s: %w", msg, e)
			}
		}
	}
	return err
}
