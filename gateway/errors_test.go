package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestToS3Codes(t *testing.T) {
	tgt := target{bucket: "b", key: "k"}
	tests := []struct {
		name    string
		err     error
		want    s3err.Code
		message string // part of the message, when not the code's own
	}{
		{"not leader", fmt.Errorf("commit: %w", metaerr.ErrNotLeader), s3err.ServiceUnavailable, ""},
		{"commit outcome unknown", fmt.Errorf("commit b/k: %w", status.Error(codes.Unavailable, "commit outcome unknown: leadership lost while committing log")), s3err.ServiceUnavailable, ""},
		{"no member reachable", status.Error(codes.Unavailable, "connection refused"), s3err.ServiceUnavailable, ""},
		{"metad internal", fmt.Errorf("commit: %w", status.Error(codes.Internal, "boom")), s3err.InternalError, ""},
		{"write quorum", fmt.Errorf("put: %w", object.ErrWriteQuorum), s3err.ServiceUnavailable, "Too few blob nodes stored"},
		{"no writable nodes", fmt.Errorf("place segment: %w", object.ErrNotEnoughNodes), s3err.ServiceUnavailable, "down, draining or full"},
		{"deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), s3err.RequestTimeout, ""},
		{"no such key", metaerr.Detailed(metaerr.ErrNoSuchKey, "b/k"), s3err.NoSuchKey, ""},
		{"metad too old", metaerr.FromStatus(metaerr.ToStatus(metaerr.Detailed(metaerr.ErrUpgradeRequired, "m2 is at 0"))), s3err.NotImplemented, "upgrade every metad"},
		{"metad without the call", fmt.Errorf("set bucket versioning: %w", status.Error(codes.Unimplemented, "unknown method SetBucketVersioning")), s3err.NotImplemented, "upgrade every metad"},
		{"no such version", metaerr.FromStatus(metaerr.ToStatus(metaerr.Detailed(metaerr.ErrNoSuchVersion, "b/k version 00"))), s3err.NoSuchVersion, ""},
		{"a delete marker's tags", metaerr.FromStatus(metaerr.ToStatus(metaerr.Detailed(metaerr.ErrMethodNotAllowed, "b/k version 00 is a delete marker"))), s3err.MethodNotAllowed, ""},
		{"versions left", metaerr.FromStatus(metaerr.ToStatus(metaerr.Detailed(metaerr.ErrBucketNotEmpty, "bucket b"))), s3err.BucketNotEmpty, ""},
		{"plain error", errors.New("disk on fire"), s3err.InternalError, ""},
		{"code itself", s3err.InvalidRange, s3err.InvalidRange, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e *s3err.Error
			if !errors.As(toS3(tc.err, tgt), &e) {
				t.Fatalf("toS3(%v) is not an *s3err.Error", tc.err)
			}
			if e.Code != tc.want {
				t.Errorf("toS3(%v) = %s, want %s", tc.err, e.Code.Name, tc.want.Name)
			}
			if tc.want == s3err.ServiceUnavailable && e.Code.Status != http.StatusServiceUnavailable {
				t.Errorf("status %d", e.Code.Status)
			}
			if tc.message != "" && !strings.Contains(e.Message, tc.message) {
				t.Errorf("message %q, want one with %q", e.Message, tc.message)
			}
		})
	}
}
