package metadata

import (
	"strings"
	"testing"

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
