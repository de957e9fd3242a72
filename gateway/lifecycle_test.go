package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// testLifecycleConfiguration: a lifecycle configuration is stored and read
// back through aws-sdk-go-v2 as given; transitions, malformed documents
// and invalid values are refused and keep the stored one; delete removes
// it. Part of the suite.
func testLifecycleConfiguration(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "lifecy")
	b := aws.String("lifecy")
	rules := []types.LifecycleRule{
		{ID: aws.String("logs"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)}},
		{ID: aws.String("big-tmp"), Status: types.ExpirationStatusDisabled,
			Filter:     &types.LifecycleRuleFilter{And: &types.LifecycleRuleAndOperator{Prefix: aws.String("tmp/"), ObjectSizeGreaterThan: aws.Int64(1 << 20)}},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		{ID: aws.String("uploads"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(3)}},
	}
	must[*s3.PutBucketLifecycleConfigurationOutput](t)(c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules}}))
	check := func(what string) {
		t.Helper()
		got := must[*s3.GetBucketLifecycleConfigurationOutput](t)(c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})).Rules
		if len(got) != 3 || aws.ToString(got[0].ID) != "logs" || aws.ToString(got[0].Filter.Prefix) != "logs/" || aws.ToInt32(got[0].Expiration.Days) != 30 ||
			got[1].Status != types.ExpirationStatusDisabled || aws.ToInt64(got[1].Filter.And.ObjectSizeGreaterThan) != 1<<20 ||
			aws.ToInt32(got[2].AbortIncompleteMultipartUpload.DaysAfterInitiation) != 3 {
			t.Fatalf("%s: GetBucketLifecycleConfiguration rules %+v", what, got)
		}
	}
	check("after put")

	for _, tc := range []struct {
		name string
		rule types.LifecycleRule
		code string
	}{
		{"transition", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Transitions: []types.Transition{{Days: aws.Int32(30), StorageClass: types.TransitionStorageClassGlacier}}}, "NotImplemented"},
		{"abort with a tag filter", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Tag: &types.Tag{Key: aws.String("a"), Value: aws.String("b")}},
			AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(1)}}, "InvalidArgument"},
		{"zero days", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(0)}}, "InvalidArgument"},
		{"no action", types.LifecycleRule{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}}, "MalformedXML"},
	} {
		_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
			LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{tc.rule}}})
		if apiCode(err) != tc.code {
			t.Errorf("put %s: %v, want %s", tc.name, err, tc.code)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/lifecy?lifecycle", nil)
	resp := e.signedDo(t, req, []byte("<LifecycleConfiguration><Rule>"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("put of a broken document: %d, want 400", resp.StatusCode)
	}
	check("after refused puts")

	_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("nope"),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: rules}})
	wantCode(t, err, "NoSuchBucket")

	must[*s3.DeleteBucketLifecycleOutput](t)(c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: b}))
	_, err = c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
	wantCode(t, err, "NoSuchLifecycleConfiguration")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("logs/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
}
