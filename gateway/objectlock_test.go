package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Object lock runs against the in-process cluster only: the rules are
// metad's. Retain-until dates are a day or more ahead, since metad judges
// "in force" on its own clock; COMPLIANCE versions stay in the test
// cluster's temporary directories, which go with the test.

// lockOf is what a HEAD answers of a version's lock.
type lockOf struct {
	mode  types.ObjectLockMode
	until time.Time // zero: none
	hold  bool
}

func headLock(t testing.TB, c *s3.Client, bucket, key, versionID string) lockOf {
	t.Helper()
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	h, err := c.HeadObject(context.Background(), in)
	if err != nil {
		t.Fatalf("HEAD %s/%s version %q: %v", bucket, key, versionID, err)
	}
	l := lockOf{mode: h.ObjectLockMode, hold: h.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn}
	if h.ObjectLockRetainUntilDate != nil {
		l.until = h.ObjectLockRetainUntilDate.UTC()
	}
	return l
}

func wantLock(t testing.TB, what string, got, want lockOf) {
	t.Helper()
	if got.mode != want.mode || !got.until.Equal(want.until) || got.hold != want.hold {
		t.Fatalf("%s: lock %+v, want %+v", what, got, want)
	}
}

// putWithHeaders PUTs body to bucket/key with the lock headers h (name →
// value) through a raw signed request, and returns the answer.
func (e *env) putWithHeaders(t testing.TB, bucket, key string, h map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, e.url+"/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp := e.signedDo(t, req, body)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// awaitObjectLock waits, 10 s at most, until metad takes object lock
// commands: until every member has announced its feature level, as for a
// moment after the cluster starts, it answers them Unavailable (the
// gateway's 503, which a client's three quick retries may not outlast).
func awaitObjectLock(t testing.TB, e *env) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// No configuration, for a bucket that does not exist: refused
		// either way, once past the feature check.
		_, err := e.meta.SetBucketObjectLock(ctx, &pb.SetBucketObjectLockRequest{Name: "await-object-lock"})
		if status.Code(err) != codes.Unavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metad still refuses object lock commands after 10 s: %v", err)
		}
		<-tick.C
	}
}

// testObjectLock: a bucket created with object lock; its configuration
// and default retention; versions kept by COMPLIANCE and GOVERNANCE
// retentions and by legal holds, deleted by id only as they allow (with
// x-amz-bypass-governance-retention for GOVERNANCE, by the bucket's owner
// only); retentions extended and shortened; DeleteObjects with locked
// and free versions; versioning that cannot be suspended. Part of the
// cluster suite.
func testObjectLock(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mc := e.minioClient(t)
	awaitObjectLock(t, e)
	const b = "locked"
	bk := aws.String(b)
	must[*s3.CreateBucketOutput](t)(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bk, ObjectLockEnabledForBucket: aws.Bool(true)}))
	if v := must[*s3.GetBucketVersioningOutput](t)(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bk})); v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("a bucket created with object lock has versioning %q, want Enabled", v.Status)
	}
	cfg := must[*s3.GetObjectLockConfigurationOutput](t)(c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: bk}))
	if cfg.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled || cfg.ObjectLockConfiguration.Rule != nil {
		t.Fatalf("GetObjectLockConfiguration of a new locked bucket: %+v", cfg.ObjectLockConfiguration)
	}
	// Its versioning cannot be suspended.
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}})
	wantCode(t, err, "InvalidBucketState")
	var ae smithy.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), "Object Lock configuration is present") {
		t.Fatalf("suspending a locked bucket's versioning: %v, want S3's message", err)
	}
	if v := must[*s3.GetBucketVersioningOutput](t)(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bk})); v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning %q after a refused suspension", v.Status)
	}

	now := time.Now().UTC()
	day := now.Add(24 * time.Hour).Truncate(time.Second)
	later := day.Add(24 * time.Hour)

	// Lock headers S3 refuses: InvalidArgument, nothing stored.
	for _, h := range []map[string]string{
		{"x-amz-object-lock-mode": "GOVERNANCE"},
		{"x-amz-object-lock-retain-until-date": iso(day)},
		{"x-amz-object-lock-mode": "FOREVER", "x-amz-object-lock-retain-until-date": iso(day)},
		{"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": iso(now.Add(-time.Hour))},
		{"x-amz-object-lock-legal-hold": "YES"},
	} {
		resp, body := e.putWithHeaders(t, b, "refused", h, []byte("data"))
		wantErrorDoc(t, resp.StatusCode, body, http.StatusBadRequest, "InvalidArgument", "")
		headMissing(t, c, b, "refused")
	}

	// The bucket's default retention applies to a PUT without lock
	// headers, counted from its commit.
	days := int32(1)
	must[*s3.PutObjectLockConfigurationOutput](t)(c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: bk,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(days)}}}}))
	cfg = must[*s3.GetObjectLockConfigurationOutput](t)(c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: bk}))
	if r := cfg.ObjectLockConfiguration.Rule; r == nil || r.DefaultRetention.Mode != types.ObjectLockRetentionModeGovernance || aws.ToInt32(r.DefaultRetention.Days) != days || r.DefaultRetention.Years != nil {
		t.Fatalf("GetObjectLockConfiguration after setting a default: %+v", cfg.ObjectLockConfiguration.Rule)
	}
	before := time.Now()
	dflt := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("dflt"), Body: strings.NewReader("defaulted")}))
	after := time.Now()
	got := headLock(t, c, b, "dflt", "")
	if got.mode != types.ObjectLockModeGovernance || got.hold ||
		got.until.Before(before.Add(24*time.Hour).Add(-time.Second)) || got.until.After(after.Add(24*time.Hour).Add(time.Second)) {
		t.Fatalf("HEAD of a PUT under a 1-day GOVERNANCE default: %+v (PUT between %v and %v)", got, before, after)
	}
	// minio-go reads the same.
	mode, until, err := mc.GetObjectRetention(ctx, b, "dflt", aws.ToString(dflt.VersionId))
	if err != nil || mode == nil || *mode != minio.Governance || until == nil || !until.Equal(got.until.Truncate(time.Millisecond)) {
		t.Fatalf("GetObjectRetention of the defaulted version: %v %v %v", mode, until, err)
	}
	// A default is cleared by a configuration without a rule.
	must[*s3.PutObjectLockConfigurationOutput](t)(c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: bk,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled}}))
	free := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("free"), Body: strings.NewReader("free")}))
	wantLock(t, "HEAD of a PUT without a default", headLock(t, c, b, "free", ""), lockOf{})
	_, err = c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: bk, Key: aws.String("free")})
	wantCode(t, err, "NoSuchObjectLockConfiguration")
	_, err = c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: bk, Key: aws.String("free")})
	wantCode(t, err, "NoSuchObjectLockConfiguration")

	// COMPLIANCE: no delete of the version by id, bypass or not; the
	// retention can be extended, never shortened or weakened.
	comp := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("comp"), Body: strings.NewReader("kept"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(day)}))
	compID := aws.ToString(comp.VersionId)
	wantLock(t, "HEAD of a COMPLIANCE PUT", headLock(t, c, b, "comp", ""), lockOf{mode: types.ObjectLockModeCompliance, until: day})
	for _, bypass := range []bool{false, true} {
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("comp"), VersionId: aws.String(compID), BypassGovernanceRetention: aws.Bool(bypass)})
		wantCode(t, err, "AccessDenied")
	}
	// A delete without a version id only adds a marker; the version
	// stays, and reads by id with its lock.
	del := must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("comp")}))
	if !aws.ToBool(del.DeleteMarker) {
		t.Fatal("DELETE without a version id in a locked bucket added no delete marker")
	}
	wantLock(t, "HEAD by id of the COMPLIANCE version", headLock(t, c, b, "comp", compID), lockOf{mode: types.ObjectLockModeCompliance, until: day})
	if g := getObject(t, c, &s3.GetObjectInput{Bucket: bk, Key: aws.String("comp"), VersionId: aws.String(compID)}); string(g) != "kept" {
		t.Fatalf("GET of the COMPLIANCE version: %q", g)
	}
	for _, tc := range []struct {
		r      *types.ObjectLockRetention
		bypass bool
	}{
		{&types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(day.Add(-time.Hour))}, false},
		{&types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(day.Add(-time.Hour))}, true},
		{&types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(later)}, true},
		{&types.ObjectLockRetention{}, true},
	} {
		_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: bk, Key: aws.String("comp"), VersionId: aws.String(compID), Retention: tc.r, BypassGovernanceRetention: aws.Bool(tc.bypass)})
		wantCode(t, err, "AccessDenied")
	}
	must[*s3.PutObjectRetentionOutput](t)(c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: bk, Key: aws.String("comp"), VersionId: aws.String(compID),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(later)}}))
	ret := must[*s3.GetObjectRetentionOutput](t)(c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: bk, Key: aws.String("comp"), VersionId: aws.String(compID)}))
	if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || !aws.ToTime(ret.Retention.RetainUntilDate).Equal(later) {
		t.Fatalf("GetObjectRetention after extending: %+v", ret.Retention)
	}
	// The current object is the marker: no retention to read or set
	// without a version id.
	_, err = c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: bk, Key: aws.String("comp")})
	wantCode(t, err, "NoSuchKey")

	// GOVERNANCE: deleted by id only with the bypass; shortened and
	// removed only with it.
	var govIDs []string
	for i := range 2 {
		out := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("gov"), Body: strings.NewReader("governed " + string(rune('a'+i))),
			ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(day)}))
		govIDs = append(govIDs, aws.ToString(out.VersionId))
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("gov"), VersionId: aws.String(govIDs[0])})
	wantCode(t, err, "AccessDenied")
	// minio-go's RemoveObject with GovernanceBypass.
	if err := mc.RemoveObject(ctx, b, "gov", minio.RemoveObjectOptions{VersionID: govIDs[0], GovernanceBypass: true}); err != nil {
		t.Fatalf("delete of a GOVERNANCE version with the bypass: %v", err)
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("gov"), VersionId: aws.String(govIDs[0])})
	if err == nil {
		t.Fatal("the GOVERNANCE version deleted with the bypass is still there")
	}
	shorter := day.Add(-time.Hour)
	gm := minio.Governance
	err = mc.PutObjectRetention(ctx, b, "gov", minio.PutObjectRetentionOptions{VersionID: govIDs[1], Mode: &gm, RetainUntilDate: &shorter})
	if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
		t.Fatalf("shortening a GOVERNANCE retention without the bypass: %v, want AccessDenied", err)
	}
	if err := mc.PutObjectRetention(ctx, b, "gov", minio.PutObjectRetentionOptions{VersionID: govIDs[1], Mode: &gm, RetainUntilDate: &shorter, GovernanceBypass: true}); err != nil {
		t.Fatalf("shortening a GOVERNANCE retention with the bypass: %v", err)
	}
	wantLock(t, "HEAD after shortening with the bypass", headLock(t, c, b, "gov", govIDs[1]), lockOf{mode: types.ObjectLockModeGovernance, until: shorter})
	// An empty Retention removes it, with the bypass only.
	for _, bypass := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPut, e.url+"/"+b+"/gov?retention&versionId="+govIDs[1], nil)
		if bypass {
			req.Header.Set("x-amz-bypass-governance-retention", "true")
		}
		resp := e.signedDo(t, req, []byte(`<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`))
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if !bypass {
			wantErrorDoc(t, resp.StatusCode, body.Bytes(), http.StatusForbidden, "AccessDenied", "")
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("removing a GOVERNANCE retention with the bypass: %d %s", resp.StatusCode, body.Bytes())
		}
	}
	_, err = c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: bk, Key: aws.String("gov"), VersionId: aws.String(govIDs[1])})
	wantCode(t, err, "NoSuchObjectLockConfiguration")
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("gov"), VersionId: aws.String(govIDs[1])}))

	// Getting past GOVERNANCE is the bucket owner's: a key that may only
	// write cannot, not even to delete a version nothing protects.
	const writerID, writerSecret = "LOCKWRITER1", "lock-writer-secret"
	if _, err := e.meta.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: writerID, Secret: writerSecret, Name: "lock writer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: writerID, Bucket: b, Allow: &pb.BucketGrant{Read: true, Write: true}}); err != nil {
		t.Fatal(err)
	}
	writer := e.awsClientAs(t, writerID, writerSecret)
	wgov := must[*s3.PutObjectOutput](t)(writer.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("wgov"), Body: strings.NewReader("w"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(day)}))
	_, err = writer.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("wgov"), VersionId: wgov.VersionId, BypassGovernanceRetention: aws.Bool(true)})
	wantCode(t, err, "AccessDenied")
	_, err = writer.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("free"), VersionId: free.VersionId, BypassGovernanceRetention: aws.Bool(true)})
	wantCode(t, err, "AccessDenied")
	headLock(t, c, b, "free", aws.ToString(free.VersionId))
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("wgov"), VersionId: wgov.VersionId, BypassGovernanceRetention: aws.Bool(true)}))

	// A legal hold keeps a version, bypass or not, until it is lifted.
	on := minio.LegalHoldEnabled
	held, err := mc.PutObject(ctx, b, "held", strings.NewReader("held"), 4, minio.PutObjectOptions{LegalHold: on})
	if err != nil {
		t.Fatal(err)
	}
	wantLock(t, "HEAD of a PUT with a legal hold", headLock(t, c, b, "held", ""), lockOf{hold: true})
	if st, err := mc.GetObjectLegalHold(ctx, b, "held", minio.GetObjectLegalHoldOptions{VersionID: held.VersionID}); err != nil || st == nil || *st != minio.LegalHoldEnabled {
		t.Fatalf("GetObjectLegalHold: %v %v", st, err)
	}
	for _, bypass := range []bool{false, true} {
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("held"), VersionId: aws.String(held.VersionID), BypassGovernanceRetention: aws.Bool(bypass)})
		wantCode(t, err, "AccessDenied")
	}
	off := minio.LegalHoldDisabled
	if err := mc.PutObjectLegalHold(ctx, b, "held", minio.PutObjectLegalHoldOptions{VersionID: held.VersionID, Status: &off}); err != nil {
		t.Fatal(err)
	}
	wantLock(t, "HEAD after lifting the legal hold", headLock(t, c, b, "held", held.VersionID), lockOf{})
	// A lifted hold reads OFF, not as one never set.
	if lh, err := c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: bk, Key: aws.String("held"), VersionId: aws.String(held.VersionID)}); err != nil ||
		lh.LegalHold.Status != types.ObjectLockLegalHoldStatusOff {
		t.Fatalf("GetObjectLegalHold after lifting the hold: %+v, %v; want OFF", lh, err)
	}
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("held"), VersionId: aws.String(held.VersionID)}))
	// A legal hold set on a version after its write.
	must[*s3.PutObjectLegalHoldOutput](t)(c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: bk, Key: aws.String("free"), VersionId: free.VersionId,
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}}))
	if lh := must[*s3.GetObjectLegalHoldOutput](t)(c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: bk, Key: aws.String("free")})); lh.LegalHold.Status != types.ObjectLockLegalHoldStatusOn {
		t.Fatalf("GetObjectLegalHold after PutObjectLegalHold ON: %q", lh.LegalHold.Status)
	}

	// DeleteObjects: each locked version is an AccessDenied entry, the
	// others go; the bypass frees the GOVERNANCE ones only.
	loose := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("loose"), Body: strings.NewReader("loose")}))
	govd := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("govd"), Body: strings.NewReader("govd"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(day)}))
	ids := []types.ObjectIdentifier{
		{Key: aws.String("comp"), VersionId: aws.String(compID)},
		{Key: aws.String("free"), VersionId: free.VersionId}, // held
		{Key: aws.String("govd"), VersionId: govd.VersionId},
		{Key: aws.String("loose"), VersionId: loose.VersionId},
		{Key: aws.String("dflt"), VersionId: dflt.VersionId}, // default GOVERNANCE
	}
	deleted := func(bypass bool, wantDeleted, wantDenied []string) {
		t.Helper()
		out := must[*s3.DeleteObjectsOutput](t)(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bk, Delete: &types.Delete{Objects: ids}, BypassGovernanceRetention: aws.Bool(bypass)}))
		var gotDeleted, gotDenied []string
		for _, d := range out.Deleted {
			gotDeleted = append(gotDeleted, aws.ToString(d.Key))
		}
		for _, er := range out.Errors {
			if aws.ToString(er.Code) != "AccessDenied" {
				t.Fatalf("DeleteObjects entry %s: %s %s", aws.ToString(er.Key), aws.ToString(er.Code), aws.ToString(er.Message))
			}
			gotDenied = append(gotDenied, aws.ToString(er.Key))
		}
		slices.Sort(gotDeleted)
		slices.Sort(gotDenied)
		if !slices.Equal(gotDeleted, wantDeleted) || !slices.Equal(gotDenied, wantDenied) {
			t.Fatalf("DeleteObjects (bypass %v): deleted %v, denied %v; want %v and %v", bypass, gotDeleted, gotDenied, wantDeleted, wantDenied)
		}
	}
	deleted(false, []string{"loose"}, []string{"comp", "dflt", "free", "govd"})
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("loose"), VersionId: loose.VersionId}); err == nil {
		t.Fatal("the free version DeleteObjects deleted is still there")
	}
	deleted(true, []string{"dflt", "govd", "loose"}, []string{"comp", "free"})
	headLock(t, c, b, "comp", compID)
	headLock(t, c, b, "free", aws.ToString(free.VersionId))

	// The configuration cannot turn object lock off.
	req, _ := http.NewRequest(http.MethodPut, e.url+"/"+b+"?object-lock", nil)
	resp := e.signedDo(t, req, []byte(`<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>`))
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	wantErrorDoc(t, resp.StatusCode, body.Bytes(), http.StatusBadRequest, "MalformedXML", "")
}

// testObjectLockWrites: the lock of a multipart upload, a copy (its own
// headers, not its source's) and a browser form upload; object lock
// enabled on an existing bucket once its versioning is Enabled; lock
// headers, retentions and legal holds refused in a bucket without object
// lock. Part of the cluster suite.
func testObjectLockWrites(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	mc := e.minioClient(t)
	awaitObjectLock(t, e)
	day := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	later := day.Add(24 * time.Hour)

	// A bucket without object lock: lock headers on any write, and
	// retention or legal hold operations, are InvalidRequest.
	const plain = "plain"
	pk := aws.String(plain)
	mkBucket(t, c, plain)
	_, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: pk})
	wantCode(t, err, "ObjectLockConfigurationNotFoundError")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: pk, Key: aws.String("src"), Body: strings.NewReader("source")}))
	for _, h := range []map[string]string{
		{"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": iso(day)},
		{"x-amz-object-lock-legal-hold": "ON"},
	} {
		resp, body := e.putWithHeaders(t, plain, "k", h, []byte("data"))
		wantErrorDoc(t, resp.StatusCode, body, http.StatusBadRequest, "InvalidRequest", "Object Lock")
		headMissing(t, c, plain, "k")
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: pk, Key: aws.String("k"), CopySource: aws.String(plain + "/src"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
	wantCode(t, err, "InvalidRequest")
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: pk, Key: aws.String("k"), ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(day)})
	wantCode(t, err, "InvalidRequest")
	headMissing(t, c, plain, "k")
	if ups := must[*s3.ListMultipartUploadsOutput](t)(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: pk})); len(ups.Uploads) != 0 {
		t.Fatalf("a refused CreateMultipartUpload left %d uploads", len(ups.Uploads))
	}
	_, err = c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: pk, Key: aws.String("src"), Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(day)}})
	wantCode(t, err, "InvalidRequest")
	_, err = c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: pk, Key: aws.String("src")})
	wantCode(t, err, "InvalidRequest")
	_, err = c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: pk, Key: aws.String("src"), LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}})
	wantCode(t, err, "InvalidRequest")
	_, err = c.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: pk, Key: aws.String("src")})
	wantCode(t, err, "InvalidRequest")

	// Object lock on an existing bucket: only once its versioning is
	// Enabled.
	lockCfg := &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled}
	_, err = c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: pk, ObjectLockConfiguration: lockCfg})
	wantCode(t, err, "InvalidBucketState")
	must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: pk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}}))
	_, err = c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{Bucket: pk, ObjectLockConfiguration: lockCfg})
	wantCode(t, err, "InvalidBucketState")
	must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: pk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
	// minio-go sets it with a default retention of a year.
	gm, year := minio.Governance, minio.Years
	validity := uint(1)
	if err := mc.SetObjectLockConfig(ctx, plain, &gm, &validity, &year); err != nil {
		t.Fatalf("SetObjectLockConfig on a bucket with versioning Enabled: %v", err)
	}
	if st, m, v, u, err := mc.GetObjectLockConfig(ctx, plain); err != nil || st != "Enabled" || m == nil || *m != minio.Governance || v == nil || *v != 1 || u == nil || *u != minio.Years {
		t.Fatalf("GetObjectLockConfig: %q %v %v %v %v", st, m, v, u, err)
	}
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: pk, Key: aws.String("yearly"), Body: strings.NewReader("a year")}))
	if l := headLock(t, c, plain, "yearly", ""); l.mode != types.ObjectLockModeGovernance || l.until.Before(time.Now().Add(364*24*time.Hour)) {
		t.Fatalf("HEAD of a PUT under a 1-year default: %+v", l)
	}
	// The object from before object lock has none.
	wantLock(t, "HEAD of the object from before object lock", headLock(t, c, plain, "src", ""), lockOf{})

	// A multipart upload takes its lock at Create and gives it to the
	// completed object (not to its parts, which have none).
	const b = "lockwrites"
	bk := aws.String(b)
	must[*s3.CreateBucketOutput](t)(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bk, ObjectLockEnabledForBucket: aws.Bool(true)}))
	up := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bk, Key: aws.String("mp"),
		ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(day), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}))
	parts := [][]byte{pattern(5<<20, 1), []byte("last part")}
	var done []types.CompletedPart
	for i, p := range parts {
		out := must[*s3.UploadPartOutput](t)(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)}))
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	mp := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}))
	wantLock(t, "HEAD of a completed locked upload", headLock(t, c, b, "mp", ""), lockOf{mode: types.ObjectLockModeGovernance, until: day, hold: true})
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("mp"), VersionId: mp.VersionId, BypassGovernanceRetention: aws.Bool(true)})
	wantCode(t, err, "AccessDenied") // the legal hold

	// A copy takes the lock of its own headers, not its source's.
	cp := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("copy"), CopySource: aws.String(b + "/mp"),
		ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(later)}))
	wantLock(t, "HEAD of a copy with lock headers", headLock(t, c, b, "copy", ""), lockOf{mode: types.ObjectLockModeCompliance, until: later})
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("copy"), VersionId: cp.VersionId, BypassGovernanceRetention: aws.Bool(true)})
	wantCode(t, err, "AccessDenied")
	must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("bare"), CopySource: aws.String(b + "/mp")}))
	wantLock(t, "HEAD of a copy without lock headers", headLock(t, c, b, "bare", ""), lockOf{})

	// A browser form's x-amz-object-lock-* fields, which its policy must
	// allow as any field.
	pp := minio.NewPostPolicy()
	for _, err := range []error{pp.SetBucket(b), pp.SetKey("posted"), pp.SetExpires(time.Now().Add(time.Hour)),
		pp.SetUserData("object-lock-mode", "GOVERNANCE"), pp.SetUserData("object-lock-retain-until-date", iso(day)),
		pp.SetUserData("object-lock-legal-hold", "ON")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	u, form, err := mc.PresignedPostPolicy(ctx, pp)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := postForm(t, u, form, "posted", []byte("posted with a lock"), true)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST upload with lock fields: %d %s", resp.StatusCode, body)
	}
	wantLock(t, "HEAD of a form upload with lock fields", headLock(t, c, b, "posted", ""), lockOf{mode: types.ObjectLockModeGovernance, until: day, hold: true})
	// A lock field the policy does not name is refused.
	pp2 := minio.NewPostPolicy()
	for _, err := range []error{pp2.SetBucket(b), pp2.SetKey("posted2"), pp2.SetExpires(time.Now().Add(time.Hour))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	u2, form2, err := mc.PresignedPostPolicy(ctx, pp2)
	if err != nil {
		t.Fatal(err)
	}
	form2["x-amz-object-lock-legal-hold"] = "ON"
	resp, body = postForm(t, u2, form2, "posted2", []byte("not allowed"), true)
	wantErrorDoc(t, resp.StatusCode, body, http.StatusForbidden, "AccessDenied", "")
	headMissing(t, c, b, "posted2")
}
