package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// What S3 tells a client of its bucket's lifecycle rules with each object
// and upload: x-amz-expiration on the writes and reads of a current
// object that an Expiration rule matches (when metad's expiry will remove
// it, and which rule), and x-amz-abort-date and x-amz-abort-rule-id on
// CreateMultipartUpload and ListParts when an
// AbortIncompleteMultipartUpload rule matches the key. The rules are the bucket's as read within
// bucketSettingsTTL, so a configuration put through another gateway shows
// in these headers from then on (metad applies it at once either way).

// setExpiration sets x-amz-expiration for o, a current object of bucket,
// when a rule of the bucket's lifecycle expires it. Noncurrent versions
// and delete markers go without, as in S3.
func (d *routerDeps) setExpiration(ctx context.Context, h http.Header, bucket string, o *pb.Object) {
	if o.GetDeleteMarker() {
		return
	}
	s, err := d.bucketSettings(ctx, bucket)
	if err != nil || s.lifecycle == nil {
		return
	}
	at, rule, ok := s.lifecycle.ObjectExpiryRule(o.GetKey(), o.GetSize(), o.GetTags(), lastModified(o))
	if !ok {
		return
	}
	h.Set("x-amz-expiration", fmt.Sprintf(`expiry-date="%s", rule-id="%s"`, at.UTC().Format(http.TimeFormat), url.QueryEscape(rule)))
}

// setAbortDate sets x-amz-abort-date and x-amz-abort-rule-id for an upload
// of key in bucket initiated at initiated, when a rule of the bucket's
// lifecycle aborts it.
func (d *routerDeps) setAbortDate(ctx context.Context, h http.Header, bucket, key string, initiated time.Time) {
	s, err := d.bucketSettings(ctx, bucket)
	if err != nil || s.lifecycle == nil {
		return
	}
	at, rule, ok := s.lifecycle.UploadExpiryRule(key, initiated)
	if !ok {
		return
	}
	h.Set("x-amz-abort-date", at.UTC().Format(http.TimeFormat))
	h.Set("x-amz-abort-rule-id", rule)
}
