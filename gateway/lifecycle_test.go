package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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

// testExpirationHeaders: with a lifecycle configuration on its bucket, a
// current object's writes and reads tell when a rule expires it and which
// rule (x-amz-expiration, as aws-sdk-go-v2 reads it into Expiration), a
// new multipart upload when a rule aborts it (x-amz-abort-date and
// x-amz-abort-rule-id); objects no rule matches, noncurrent versions and
// a bucket whose configuration was just deleted go without. Part of the
// suite.
func testExpirationHeaders(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "expires")
	b := aws.String("expires")
	must[*s3.PutBucketLifecycleConfigurationOutput](t)(c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
			{ID: aws.String("log rotation"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
				Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)}},
			{ID: aws.String("temp"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Tag: &types.Tag{Key: aws.String("temp"), Value: aws.String("yes")}},
				Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
			{ID: aws.String("fixed"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("archive/")},
				Expiration: &types.LifecycleExpiration{Date: aws.Time(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))}},
			{ID: aws.String("uploads"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
				AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(3)}},
		}}}))
	// What S3 answers for an object last modified at mod under a rule of
	// days days: the first midnight UTC at or after mod plus the days.
	want := func(mod time.Time, days int, rule string) string {
		at := mod.UTC().AddDate(0, 0, days)
		if day := at.Truncate(24 * time.Hour); !day.Equal(at) {
			at = day.Add(24 * time.Hour)
		}
		return `expiry-date="` + at.Format(http.TimeFormat) + `", rule-id="` + rule + `"`
	}
	head := func(key string) *s3.HeadObjectOutput {
		t.Helper()
		return must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)}))
	}

	put := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("logs/a"), Body: strings.NewReader("a")}))
	h := head("logs/a")
	w := want(aws.ToTime(h.LastModified), 30, "log+rotation")
	if aws.ToString(put.Expiration) != w || aws.ToString(h.Expiration) != w {
		t.Errorf("logs/a: PUT answered Expiration %q, HEAD %q, want %q", aws.ToString(put.Expiration), aws.ToString(h.Expiration), w)
	}
	get := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("logs/a")}))
	get.Body.Close()
	if aws.ToString(get.Expiration) != w {
		t.Errorf("logs/a: GET answered Expiration %q, want %q", aws.ToString(get.Expiration), w)
	}

	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("scratch"), Body: strings.NewReader("s"), Tagging: aws.String("temp=yes")}))
	if h := head("scratch"); aws.ToString(h.Expiration) != want(aws.ToTime(h.LastModified), 1, "temp") {
		t.Errorf("tagged object: HEAD answered Expiration %q, want the temp rule's", aws.ToString(h.Expiration))
	}
	archived := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("archive/x"), Body: strings.NewReader("x")}))
	if got, w := aws.ToString(archived.Expiration), `expiry-date="Wed, 01 Jan 2031 00:00:00 GMT", rule-id="fixed"`; got != w {
		t.Errorf("archive/x: PUT answered Expiration %q, want %q", got, w)
	}
	other := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("keep/x"), Body: strings.NewReader("x")}))
	if other.Expiration != nil || head("keep/x").Expiration != nil {
		t.Errorf("keep/x, which no rule matches: answered Expiration %q", aws.ToString(other.Expiration))
	}

	cp := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("logs/copy"), CopySource: aws.String("expires/keep/x")}))
	if h := head("logs/copy"); aws.ToString(cp.Expiration) != want(aws.ToTime(h.LastModified), 30, "log+rotation") {
		t.Errorf("copy into logs/: answered Expiration %q", aws.ToString(cp.Expiration))
	}

	cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("logs/big")}))
	if aws.ToString(cr.AbortRuleId) != "uploads" || cr.AbortDate == nil || time.Until(*cr.AbortDate) < 2*24*time.Hour || time.Until(*cr.AbortDate) > 4*24*time.Hour {
		t.Errorf("CreateMultipartUpload of logs/big: AbortDate %v, AbortRuleId %q; want 3 days on, \"uploads\"", aws.ToTime(cr.AbortDate), aws.ToString(cr.AbortRuleId))
	}
	up := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("logs/big"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")}))
	lp := must[*s3.ListPartsOutput](t)(c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("logs/big"), UploadId: cr.UploadId}))
	if aws.ToString(lp.AbortRuleId) != "uploads" || !aws.ToTime(lp.AbortDate).Equal(aws.ToTime(cr.AbortDate)) {
		t.Errorf("ListParts of logs/big: AbortDate %v, AbortRuleId %q; want CreateMultipartUpload's %v, \"uploads\"", aws.ToTime(lp.AbortDate), aws.ToString(lp.AbortRuleId), aws.ToTime(cr.AbortDate))
	}
	done := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("logs/big"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}}))
	if h := head("logs/big"); aws.ToString(done.Expiration) != want(aws.ToTime(h.LastModified), 30, "log+rotation") {
		t.Errorf("CompleteMultipartUpload of logs/big: answered Expiration %q", aws.ToString(done.Expiration))
	}
	if cr := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("keep/big")})); cr.AbortDate != nil || cr.AbortRuleId != nil {
		t.Errorf("CreateMultipartUpload of keep/big, which no rule matches: AbortDate %v, AbortRuleId %q", aws.ToTime(cr.AbortDate), aws.ToString(cr.AbortRuleId))
	}

	// A noncurrent version is not the current object the rule expires
	// (the fake backend keeps no versions).
	if e.meta != nil {
		must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: b,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
		v1 := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("logs/v"), Body: strings.NewReader("1")}))
		v2 := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("logs/v"), Body: strings.NewReader("2")}))
		old := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("logs/v"), VersionId: v1.VersionId}))
		cur := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("logs/v"), VersionId: v2.VersionId}))
		if old.Expiration != nil || aws.ToString(cur.Expiration) != want(aws.ToTime(cur.LastModified), 30, "log+rotation") {
			t.Errorf("logs/v by version id: noncurrent answered Expiration %q, current %q", aws.ToString(old.Expiration), aws.ToString(cur.Expiration))
		}
	}

	must[*s3.DeleteBucketLifecycleOutput](t)(c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: b}))
	if h := head("logs/a"); h.Expiration != nil {
		t.Errorf("logs/a after the configuration was deleted: HEAD answered Expiration %q", aws.ToString(h.Expiration))
	}

	// More rules than a gateway holds per bucket: expiry goes on (metad's),
	// the headers go without.
	var many []types.LifecycleRule
	for i := range 51 {
		many = append(many, types.LifecycleRule{ID: aws.String(fmt.Sprintf("r%d", i)), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(int32(30 + i))}})
	}
	must[*s3.PutBucketLifecycleConfigurationOutput](t)(c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b,
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: many}}))
	if h := head("logs/a"); h.Expiration != nil {
		t.Errorf("logs/a under 51 rules: HEAD answered Expiration %q, want none", aws.ToString(h.Expiration))
	}
	if got := must[*s3.GetBucketLifecycleConfigurationOutput](t)(c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})).Rules; len(got) != 51 {
		t.Errorf("GetBucketLifecycleConfiguration: %d rules, want 51", len(got))
	}
}
