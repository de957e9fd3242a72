package gateway_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
)

// testConfigurationReads: the configuration reads a tool makes of a
// bucket answer what S3 answers for a bucket with none of it (or, for
// ACLs, ownership and public access, what Cairn's fixed configuration
// is), through aws-sdk-go-v2, which parses each answer; a missing bucket
// or object is NoSuchBucket or NoSuchKey; setting stays refused. Part of
// the suite; TestBucketCorsRead covers CORS.
func testConfigurationReads(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "conf")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("conf"), Key: aws.String("k"), Body: strings.NewReader("v")}))
	b, k := aws.String("conf"), aws.String("k")

	acl := must[*s3.GetBucketAclOutput](t)(c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: b}))
	if aws.ToString(acl.Owner.ID) != "cairn" || len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl ||
		acl.Grants[0].Grantee.Type != types.TypeCanonicalUser || aws.ToString(acl.Grants[0].Grantee.ID) != "cairn" {
		t.Errorf("GetBucketAcl: owner %v grants %+v", aws.ToString(acl.Owner.ID), acl.Grants)
	}
	oacl := must[*s3.GetObjectAclOutput](t)(c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b, Key: k}))
	if len(oacl.Grants) != 1 || oacl.Grants[0].Permission != types.PermissionFullControl {
		t.Errorf("GetObjectAcl: grants %+v", oacl.Grants)
	}
	own := must[*s3.GetBucketOwnershipControlsOutput](t)(c.GetBucketOwnershipControls(ctx, &s3.GetBucketOwnershipControlsInput{Bucket: b}))
	if len(own.OwnershipControls.Rules) != 1 || own.OwnershipControls.Rules[0].ObjectOwnership != types.ObjectOwnershipBucketOwnerEnforced {
		t.Errorf("GetBucketOwnershipControls: %+v", own.OwnershipControls)
	}
	pab := must[*s3.GetPublicAccessBlockOutput](t)(c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b})).PublicAccessBlockConfiguration
	// ACLs cannot make anything public; policies can (policy.go).
	if !aws.ToBool(pab.BlockPublicAcls) || !aws.ToBool(pab.IgnorePublicAcls) || aws.ToBool(pab.BlockPublicPolicy) || aws.ToBool(pab.RestrictPublicBuckets) {
		t.Errorf("GetPublicAccessBlock: %+v", pab)
	}
	if l := must[*s3.GetBucketLoggingOutput](t)(c.GetBucketLogging(ctx, &s3.GetBucketLoggingInput{Bucket: b})); l.LoggingEnabled != nil {
		t.Errorf("GetBucketLogging: %+v", l.LoggingEnabled)
	}
	if n := must[*s3.GetBucketNotificationConfigurationOutput](t)(c.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: b})); len(n.QueueConfigurations)+len(n.TopicConfigurations)+len(n.LambdaFunctionConfigurations) != 0 {
		t.Errorf("GetBucketNotificationConfiguration: %+v", n)
	}
	if p := must[*s3.GetBucketRequestPaymentOutput](t)(c.GetBucketRequestPayment(ctx, &s3.GetBucketRequestPaymentInput{Bucket: b})); p.Payer != types.PayerBucketOwner {
		t.Errorf("GetBucketRequestPayment: payer %q", p.Payer)
	}
	if a := must[*s3.GetBucketAccelerateConfigurationOutput](t)(c.GetBucketAccelerateConfiguration(ctx, &s3.GetBucketAccelerateConfigurationInput{Bucket: b})); a.Status != "" {
		t.Errorf("GetBucketAccelerateConfiguration: status %q", a.Status)
	}
	if tg := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: k})); len(tg.TagSet) != 0 {
		t.Errorf("GetObjectTagging: %+v", tg.TagSet)
	}

	for _, tc := range []struct {
		op   string
		call func() error
		code string
	}{
		{"GetBucketPolicy", func() error { _, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: b}); return err }, "NoSuchBucketPolicy"},
		{"GetBucketPolicyStatus", func() error {
			_, err := c.GetBucketPolicyStatus(ctx, &s3.GetBucketPolicyStatusInput{Bucket: b})
			return err
		}, "NoSuchBucketPolicy"},
		{"GetBucketLifecycleConfiguration", func() error {
			_, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: b})
			return err
		}, "NoSuchLifecycleConfiguration"},
		{"GetBucketTagging", func() error { _, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b}); return err }, "NoSuchTagSet"},
		{"GetBucketWebsite", func() error { _, err := c.GetBucketWebsite(ctx, &s3.GetBucketWebsiteInput{Bucket: b}); return err }, "NoSuchWebsiteConfiguration"},
		{"GetBucketEncryption", func() error {
			_, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
			return err
		}, "ServerSideEncryptionConfigurationNotFoundError"},
		{"GetObjectLockConfiguration", func() error {
			_, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: b})
			return err
		}, "ObjectLockConfigurationNotFoundError"},
		{"GetBucketReplication", func() error {
			_, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: b})
			return err
		}, "ReplicationConfigurationNotFoundError"},
		// Deleting what cannot exist succeeds; the object must exist.
		{"DeleteBucketTagging", func() error {
			_, err := c.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: b})
			return err
		}, ""},
		{"DeleteBucketLifecycle", func() error {
			_, err := c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: b})
			return err
		}, ""},
		{"DeleteBucketPolicy", func() error { _, err := c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: b}); return err }, ""},
		{"DeleteBucketWebsite", func() error {
			_, err := c.DeleteBucketWebsite(ctx, &s3.DeleteBucketWebsiteInput{Bucket: b})
			return err
		}, ""},
		{"DeleteObjectTagging", func() error {
			_, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: k})
			return err
		}, ""},
		{"DeleteObjectTagging missing key", func() error {
			_, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("nope")})
			return err
		}, "NoSuchKey"},
		// ACLs: private is what every bucket and object has; nothing else.
		{"PutBucketAcl private", func() error {
			_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPrivate})
			return err
		}, ""},
		{"PutBucketAcl public-read", func() error {
			_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: b, ACL: types.BucketCannedACLPublicRead})
			return err
		}, "AccessControlListNotSupported"},
		{"PutObjectAcl private", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: k, ACL: types.ObjectCannedACLPrivate})
			return err
		}, ""},
		{"PutObjectAcl grant", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: k, GrantRead: aws.String(`uri="http://acs.amazonaws.com/groups/global/AllUsers"`)})
			return err
		}, "AccessControlListNotSupported"},
		{"PutObjectAcl owner-only policy document", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: k, AccessControlPolicy: &types.AccessControlPolicy{
				Owner:  &types.Owner{ID: aws.String("cairn")},
				Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeCanonicalUser, ID: aws.String("cairn")}, Permission: types.PermissionFullControl}},
			}})
			return err
		}, ""},
		{"PutObjectAcl policy document", func() error {
			_, err := c.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: b, Key: k, AccessControlPolicy: &types.AccessControlPolicy{
				Owner:  &types.Owner{ID: aws.String("cairn")},
				Grants: []types.Grant{{Grantee: &types.Grantee{Type: types.TypeGroup, URI: aws.String("http://acs.amazonaws.com/groups/global/AllUsers")}, Permission: types.PermissionRead}},
			}})
			return err
		}, "AccessControlListNotSupported"},
		// Missing bucket or object.
		{"GetBucketAcl missing bucket", func() error {
			_, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("nope")})
			return err
		}, "NoSuchBucket"},
		{"GetBucketPolicy missing bucket", func() error {
			_, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("nope")})
			return err
		}, "NoSuchBucket"},
		{"GetObjectAcl missing key", func() error {
			_, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: b, Key: aws.String("nope")})
			return err
		}, "NoSuchKey"},
		{"GetObjectTagging other version", func() error {
			_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: k, VersionId: aws.String("0123456789abcdef0123456789abcdef")})
			return err
		}, "NoSuchVersion"},
		{"GetObjectTagging malformed version", func() error {
			_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: b, Key: k, VersionId: aws.String("v2")})
			return err
		}, "InvalidArgument"},
		// Setting what Cairn lacks stays refused.
		{"PutBucketEncryption aws:kms", func() error {
			_, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: b, ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
				Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}})
			return err
		}, "NotImplemented"},
		{"PutBucketLifecycleConfiguration", func() error {
			_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: b, LifecycleConfiguration: &types.BucketLifecycleConfiguration{
				Rules: []types.LifecycleRule{{Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")},
					Transitions: []types.Transition{{Days: aws.Int32(1), StorageClass: types.TransitionStorageClassGlacier}}}}}})
			return err
		}, "NotImplemented"},
		{"DeleteBucketCors", func() error { _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: b}); return err }, ""},
	} {
		err := tc.call()
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.op, err)
			}
			continue
		}
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: error %q (%v), want %s", tc.op, got, err, tc.code)
		}
	}

	// A HEAD of a configuration is not one of S3's operations.
	req, _ := http.NewRequest(http.MethodHead, e.url+"/conf?acl", nil)
	resp := e.signedDo(t, req, nil)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("HEAD ?acl: %d, want 501", resp.StatusCode)
	}
}

// TestBucketCorsRead: GetBucketCors reports the gateway's CORS rule, and
// NoSuchCORSConfiguration when it has none.
func TestBucketCorsRead(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) { c.CORSAllowedOrigins = []string{"https://app.example.com"} })
	c := e.awsClient(t)
	mkBucket(t, c, "conf")
	cors := must[*s3.GetBucketCorsOutput](t)(c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("conf")}))
	if len(cors.CORSRules) != 1 || !slices.Equal(cors.CORSRules[0].AllowedOrigins, []string{"https://app.example.com"}) ||
		!slices.Contains(cors.CORSRules[0].AllowedMethods, "PUT") || !slices.Contains(cors.CORSRules[0].ExposeHeaders, "ETag") {
		t.Errorf("GetBucketCors: %+v", cors.CORSRules)
	}

	g := newFake()
	plain := startGateway(t, backend{meta: g, objects: g}, nil)
	pc := plain.awsClient(t)
	mkBucket(t, pc, "conf")
	_, err := pc.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("conf")})
	if got := apiCode(err); got != "NoSuchCORSConfiguration" {
		t.Errorf("GetBucketCors without CORS: %q (%v)", got, err)
	}
	_, err = pc.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("nope")})
	wantCode(t, err, "NoSuchBucket")
}
