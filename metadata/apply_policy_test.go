package metadata

import (
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// TestSetBucketPolicy: a policy is stored on its bucket and read back,
// replaced, deleted with ""; a missing bucket or an oversized policy is
// refused and changes nothing.
func TestSetBucketPolicy(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"))
	set := func(bucket, policy string) error {
		return h.do(&pb.Command{Op: &pb.Command_SetBucketPolicy{SetBucketPolicy: &pb.SetBucketPolicyRequest{Name: bucket, Policy: policy}}}).Err
	}
	policyOf := func() string {
		t.Helper()
		r, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetBucket().GetRegion() != "r1" || r.GetBucket().GetCreatedUnixNano() == 0 {
			t.Fatalf("the bucket lost its other fields: %v", r.GetBucket())
		}
		return r.GetBucket().GetPolicy()
	}
	for _, tc := range []struct {
		bucket, policy string
		want           error
		stored         string
	}{
		{"b", `{"a":1}`, nil, `{"a":1}`},
		{"b", `{"b":2}`, nil, `{"b":2}`},
		{"nope", `{"c":3}`, metaerr.ErrNoSuchBucket, `{"b":2}`},
		{"b", strings.Repeat("x", maxBucketPolicy+1), metaerr.ErrInvalidArgument, `{"b":2}`},
		{"b", "", nil, ""},
	} {
		if err := set(tc.bucket, tc.policy); !smIsCond(err, tc.want) {
			t.Fatalf("set %q on %s: %v, want %v", tc.policy[:min(len(tc.policy), 10)], tc.bucket, err, tc.want)
		}
		if got := policyOf(); got != tc.stored {
			t.Fatalf("after setting %.10q on %s: stored %q, want %q", tc.policy, tc.bucket, got, tc.stored)
		}
	}
}

// TestSetObjectTags: tags replace the current object's, change nothing
// else of it, obey a version condition, and are refused for a missing key
// or beyond S3's limits.
func TestSetObjectTags(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"), smPut("b", "k", "e1", smSeg(1)))
	read := func() *pb.Object {
		t.Helper()
		var o *pb.Object
		if err := h.s.view(func(txn *badger.Txn) error {
			o = &pb.Object{}
			_, err := getProto(txn, objectKey("b", "k"), o)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	before := read()
	set := func(key string, tags map[string]string, cond *pb.Condition) error {
		return h.do(&pb.Command{Op: &pb.Command_SetObjectTags{SetObjectTags: &pb.SetObjectTagsRequest{Bucket: "b", Key: key, Tags: tags, Condition: cond}}}).Err
	}
	if err := set("k", map[string]string{"a": "1"}, nil); err != nil {
		t.Fatal(err)
	}
	after := read()
	if after.GetTags()["a"] != "1" || after.GetEtag() != before.GetEtag() || after.GetModifiedUnixNano() != before.GetModifiedUnixNano() ||
		len(after.GetSegments()) != 1 || after.GetVersionId() != before.GetVersionId() {
		t.Fatalf("after tagging: %v\nbefore: %v", after, before)
	}
	eleven := map[string]string{}
	for i := range 11 {
		eleven[strings.Repeat("k", i+1)] = "v"
	}
	for _, tc := range []struct {
		key  string
		tags map[string]string
		cond *pb.Condition
		want error
	}{
		{"nope", map[string]string{"a": "1"}, nil, metaerr.ErrNoSuchKey},
		{"k", eleven, nil, metaerr.ErrInvalidArgument},
		{"k", map[string]string{"": "1"}, nil, metaerr.ErrInvalidArgument},
		{"k", map[string]string{"b": "2"}, &pb.Condition{IfVersionId: "other"}, metaerr.ErrPreconditionFailed},
	} {
		if err := set(tc.key, tc.tags, tc.cond); !smIsCond(err, tc.want) {
			t.Errorf("set %v on %s: %v, want %v", tc.tags, tc.key, err, tc.want)
		}
	}
	if got := read().GetTags(); len(got) != 1 || got["a"] != "1" {
		t.Fatalf("tags after refused sets: %v", got)
	}
	if err := set("k", nil, &pb.Condition{IfVersionId: before.GetVersionId()}); err != nil || len(read().GetTags()) != 0 {
		t.Fatalf("delete tags: %v, %v left", err, read().GetTags())
	}
}

// TestSetBucketCors: a CORS configuration is stored on its bucket,
// replaced, deleted with ""; a missing bucket or an oversized one is
// refused and changes nothing.
func TestSetBucketCors(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"))
	for _, tc := range []struct {
		bucket, cors string
		want         error
		stored       string
	}{
		{"b", "<CORSConfiguration/>", nil, "<CORSConfiguration/>"},
		{"nope", "<x/>", metaerr.ErrNoSuchBucket, "<CORSConfiguration/>"},
		{"b", strings.Repeat("x", maxBucketCors+1), metaerr.ErrInvalidArgument, "<CORSConfiguration/>"},
		{"b", "", nil, ""},
	} {
		err := h.do(&pb.Command{Op: &pb.Command_SetBucketCors{SetBucketCors: &pb.SetBucketCorsRequest{Name: tc.bucket, Cors: tc.cors}}}).Err
		if !smIsCond(err, tc.want) {
			t.Fatalf("set %.10q on %s: %v, want %v", tc.cors, tc.bucket, err, tc.want)
		}
		r, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.GetBucket().GetCors(); got != tc.stored || r.GetBucket().GetRegion() != "r1" {
			t.Fatalf("after setting %.10q on %s: stored %q (region %q), want %q", tc.cors, tc.bucket, got, r.GetBucket().GetRegion(), tc.stored)
		}
	}
}

// TestSetBucketEncryption: a bucket's default encryption is stored on it,
// set again to the same (a retried set), deleted with ""; a missing
// bucket or a value other than AES256 is refused and changes nothing.
func TestSetBucketEncryption(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b"))
	for _, tc := range []struct {
		bucket, enc string
		want        error
		stored      string
	}{
		{"b", "AES256", nil, "AES256"},
		{"b", "AES256", nil, "AES256"},
		{"nope", "AES256", metaerr.ErrNoSuchBucket, "AES256"},
		{"b", "aws:kms", metaerr.ErrInvalidArgument, "AES256"},
		{"b", "aes256", metaerr.ErrInvalidArgument, "AES256"},
		{"b", "", nil, ""},
		{"nope", "", metaerr.ErrNoSuchBucket, ""},
	} {
		err := h.do(&pb.Command{Op: &pb.Command_SetBucketEncryption{SetBucketEncryption: &pb.SetBucketEncryptionRequest{Name: tc.bucket, DefaultEncryption: tc.enc}}}).Err
		if !smIsCond(err, tc.want) {
			t.Fatalf("set %q on %s: %v, want %v", tc.enc, tc.bucket, err, tc.want)
		}
		r, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.GetBucket().GetDefaultEncryption(); got != tc.stored || r.GetBucket().GetRegion() != "r1" {
			t.Fatalf("after setting %q on %s: stored %q (region %q), want %q", tc.enc, tc.bucket, got, r.GetBucket().GetRegion(), tc.stored)
		}
	}
}
