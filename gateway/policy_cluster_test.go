package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/testcluster"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// testBucketPolicies: the policies users write, enforced on real metad
// and blob nodes: a drop box anonymous clients may write and not read,
// a second access key given read, a Deny beating a key's own write
// grant (DeleteObject and an entry of DeleteObjects), TLS and source
// address conditions, versions needing s3:GetObjectVersion, the root
// key never subject to a policy, and policies refused with S3's codes.
// Every policy is put through this gateway, so each applies at once.
func testBucketPolicies(t *testing.T, e *env) {
	ctx := context.Background()
	const (
		readerID, readerSecret = "POLREADER1", "pol-reader-secret"
		writerID, writerSecret = "POLWRITER1", "pol-writer-secret"
	)
	root := e.awsClient(t)
	for _, b := range []string{"pol", "pol-ver"} {
		mkBucket(t, root, b)
	}
	for _, k := range []*pb.CreateAccessKeyRequest{{Id: readerID, Secret: readerSecret}, {Id: writerID, Secret: writerSecret}} {
		if _, err := e.meta.CreateAccessKey(ctx, k); err != nil {
			t.Fatalf("create access key %s: %v", k.Id, err)
		}
	}
	if _, err := e.meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: writerID, Bucket: "pol", Allow: &pb.BucketGrant{Read: true, Write: true}}); err != nil {
		t.Fatal(err)
	}
	reader, writer := e.awsClientAs(t, readerID, readerSecret), e.awsClientAs(t, writerID, writerSecret)

	setPolicy := func(bucket, doc string) {
		t.Helper()
		if _, err := root.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(doc)}); err != nil {
			t.Fatalf("PutBucketPolicy on %s: %v\n%s", bucket, err, doc)
		}
	}
	anon := func(method, path, body string) (int, string) {
		t.Helper()
		return unsignedDo(t, method, e.url+path, []byte(body))
	}
	put := func(c *s3.Client, bucket, key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(c *s3.Client, bucket, key string) (string, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}
	public := func(bucket string) bool {
		t.Helper()
		st := must[*s3.GetBucketPolicyStatusOutput](t)(root.GetBucketPolicyStatus(ctx, &s3.GetBucketPolicyStatusInput{Bucket: aws.String(bucket)}))
		return aws.ToBool(st.PolicyStatus.IsPublic)
	}

	for _, k := range []string{"keep/a", "other/a", "other/b"} {
		if err := put(root, "pol", k, "body of "+k); err != nil {
			t.Fatal(err)
		}
	}
	// Before any policy: nothing for the reader or anonymous clients.
	if st, _ := anon(http.MethodPut, "/pol/incoming/early", "x"); st != http.StatusForbidden {
		t.Fatalf("anonymous PUT before any policy: %d, want 403", st)
	}
	_, err := get(reader, "pol", "other/a")
	wantCode(t, err, "AccessDenied")

	setPolicy("pol", `{"Version": "2012-10-17", "Id": "users", "Statement": [
	  {"Sid": "dropbox", "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::pol/incoming/*"},
	  {"Sid": "reader", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/POLREADER1"},
	   "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::pol", "arn:aws:s3:::pol/*"]},
	  {"Sid": "keep", "Effect": "Deny", "Principal": {"AWS": ["POLWRITER1"]}, "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": "arn:aws:s3:::pol/keep/*"}]}`)
	if !public("pol") {
		t.Error("GetBucketPolicyStatus: a drop box open to everyone is not public")
	}

	// The drop box: anyone may write into incoming/ with an unsigned PUT,
	// nobody anonymous may read it back or write elsewhere.
	if st, body := anon(http.MethodPut, "/pol/incoming/drop.txt", "dropped"); st != http.StatusOK {
		t.Fatalf("anonymous PUT into the drop box: %d %s", st, body)
	}
	if st, body := anon(http.MethodGet, "/pol/incoming/drop.txt", ""); st != http.StatusForbidden || !strings.Contains(body, "AccessDenied") {
		t.Errorf("anonymous GET from the drop box: %d %.200s, want 403 AccessDenied", st, body)
	}
	if st, _ := anon(http.MethodPut, "/pol/outside.txt", "x"); st != http.StatusForbidden {
		t.Errorf("anonymous PUT outside the drop box: %d, want 403", st)
	}
	if got, err := get(root, "pol", "incoming/drop.txt"); err != nil || got != "dropped" {
		t.Fatalf("the owner reads the drop: %q, %v", got, err)
	}
	headMissing(t, root, "pol", "outside.txt")

	// A second access key, without any grant on the bucket, reads by
	// the policy and lists; it may not write.
	if got, err := get(reader, "pol", "other/a"); err != nil || got != "body of other/a" {
		t.Errorf("reader GET by policy: %q, %v", got, err)
	}
	if _, err := reader.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("pol")}); err != nil {
		t.Errorf("reader lists by policy: %v", err)
	}
	wantCode(t, put(reader, "pol", "other/new", "x"), "AccessDenied")

	// A Deny beats the writer's own write grant, and only where it says.
	_, err = writer.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("pol"), Key: aws.String("keep/a")})
	wantCode(t, err, "AccessDenied")
	if _, err := writer.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("pol"), Key: aws.String("other/a")}); err != nil {
		t.Errorf("writer deletes outside the Deny: %v", err)
	}
	del := must[*s3.DeleteObjectsOutput](t)(writer.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("pol"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("keep/a")}, {Key: aws.String("other/b")}}}}))
	if len(del.Deleted) != 1 || aws.ToString(del.Deleted[0].Key) != "other/b" ||
		len(del.Errors) != 1 || aws.ToString(del.Errors[0].Key) != "keep/a" || aws.ToString(del.Errors[0].Code) != "AccessDenied" {
		t.Errorf("DeleteObjects with one denied key: deleted %+v, errors %+v; want other/b deleted, keep/a AccessDenied", del.Deleted, del.Errors)
	}
	must[*s3.HeadObjectOutput](t)(root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("pol"), Key: aws.String("keep/a")}))
	headMissing(t, root, "pol", "other/b")
	// The reader may delete nothing at all: refused whole.
	_, err = reader.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("pol"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("keep/a")}}}})
	wantCode(t, err, "AccessDenied")

	// TLS: a Deny of every request not over TLS refuses the reader here
	// (plain http), and stops once the condition is turned around.
	tlsPolicy := func(secure string) string {
		return `{"Version": "2012-10-17", "Statement": [
		  {"Effect": "Allow", "Principal": {"AWS": "POLREADER1"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol/*"},
		  {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::pol", "arn:aws:s3:::pol/*"],
		   "Condition": {"Bool": {"aws:SecureTransport": "` + secure + `"}}}]}`
	}
	setPolicy("pol", tlsPolicy("false"))
	_, err = get(reader, "pol", "keep/a")
	wantCode(t, err, "AccessDenied")
	_, err = get(writer, "pol", "keep/a")
	wantCode(t, err, "AccessDenied") // the Deny beats its grant too
	if got, err := get(root, "pol", "keep/a"); err != nil || got != "body of keep/a" {
		t.Errorf("the root key under a Deny of everything: %q, %v (it is never subject to a policy)", got, err)
	}
	setPolicy("pol", tlsPolicy("true"))
	if _, err := get(reader, "pol", "keep/a"); err != nil {
		t.Errorf("reader over http with the Deny asking for https: %v", err)
	}
	if public("pol") {
		t.Error("GetBucketPolicyStatus: a policy allowing one key is public")
	}

	// aws:SourceIp: anonymous reads from loopback only.
	ipPolicy := func(cidr string) string {
		return `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
		  "Resource": "arn:aws:s3:::pol/*", "Condition": {"IpAddress": {"aws:SourceIp": ["` + cidr + `", "2001:db8::/32"]}}}]}`
	}
	setPolicy("pol", ipPolicy("127.0.0.0/8"))
	if st, body := anon(http.MethodGet, "/pol/keep/a", ""); st != http.StatusOK || body != "body of keep/a" {
		t.Errorf("anonymous GET from an allowed address: %d %.200s", st, body)
	}
	if public("pol") {
		t.Error("GetBucketPolicyStatus: a policy confined to address ranges is public")
	}
	setPolicy("pol", ipPolicy("10.0.0.0/8"))
	if st, _ := anon(http.MethodGet, "/pol/keep/a", ""); st != http.StatusForbidden {
		t.Errorf("anonymous GET from an address outside the range: %d, want 403", st)
	}

	// Versions: s3:GetObject reads the current one; naming a version
	// needs s3:GetObjectVersion.
	must[*s3.PutBucketVersioningOutput](t)(root.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("pol-ver"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
	v1 := aws.ToString(must[*s3.PutObjectOutput](t)(root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pol-ver"), Key: aws.String("k"), Body: strings.NewReader("one")})).VersionId)
	must[*s3.PutObjectOutput](t)(root.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pol-ver"), Key: aws.String("k"), Body: strings.NewReader("two")}))
	verPolicy := func(actions string) string {
		return `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": [` + actions + `], "Resource": "arn:aws:s3:::pol-ver/*"}]}`
	}
	setPolicy("pol-ver", verPolicy(`"s3:GetObject"`))
	if st, body := anon(http.MethodGet, "/pol-ver/k", ""); st != http.StatusOK || body != "two" {
		t.Errorf("anonymous GET of the current version: %d %.200s", st, body)
	}
	if st, _ := anon(http.MethodGet, "/pol-ver/k?versionId="+v1, ""); st != http.StatusForbidden {
		t.Errorf("anonymous GET of a version with s3:GetObject only: %d, want 403", st)
	}
	setPolicy("pol-ver", verPolicy(`"s3:GetObject", "s3:GetObjectVersion"`))
	if st, body := anon(http.MethodGet, "/pol-ver/k?versionId="+v1, ""); st != http.StatusOK || body != "one" {
		t.Errorf("anonymous GET of a version with s3:GetObjectVersion: %d %.200s", st, body)
	}

	// Refused policies answer S3's codes with an XML error body, and
	// the stored policy stays.
	for _, tc := range []struct {
		policy, code, message string
		status                int
	}{
		{verPolicy(`"s3:GetObjekt"`), "MalformedPolicy", "Policy has invalid action", http.StatusBadRequest},
		{strings.Replace(verPolicy(`"s3:GetObject"`), `"Principal": "*"`, `"Principal": {"Service": "cloudtrail.amazonaws.com"}`, 1), "NotImplemented", "unsupported principal", http.StatusNotImplemented},
		{strings.Replace(verPolicy(`"s3:GetObject"`), "pol-ver/*", "pol/*", 1), "MalformedPolicy", "Policy has invalid resource", http.StatusBadRequest},
		{strings.Replace(verPolicy(`"s3:GetObject"`), "pol-ver/*", "pol-ver", 1), "MalformedPolicy", "Action does not apply to any resource(s) in statement", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(http.MethodPut, e.url+"/pol-ver?policy", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := e.signedDo(t, req, []byte(tc.policy))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !bytes.Contains(body, []byte("<Code>"+tc.code+"</Code>")) || !bytes.Contains(body, []byte(tc.message)) ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			t.Errorf("PutBucketPolicy %.100s: %d %s %s, want %d %s with %q", tc.policy, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code, tc.message)
		}
	}
	if st, _ := anon(http.MethodGet, "/pol-ver/k?versionId="+v1, ""); st != http.StatusOK {
		t.Errorf("anonymous GET after refused policies: %d, want 200 (the stored policy kept)", st)
	}
	// The policy operations stay signed-only, whatever the policy says.
	setPolicy("pol-ver", `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::pol-ver", "arn:aws:s3:::pol-ver/*"]}]}`)
	if st, _ := anon(http.MethodDelete, "/pol-ver?policy", ""); st != http.StatusForbidden {
		t.Errorf("anonymous DeleteBucketPolicy under s3:*: %d, want 403", st)
	}
	if st, _ := anon(http.MethodGet, "/", ""); st != http.StatusForbidden {
		t.Errorf("anonymous ListBuckets: %d, want 403", st)
	}

	// Through another gateway, which holds what it read of a policy for
	// its access key TTL (here a minute): a policy put elsewhere opens
	// the bucket there once its refusal is 250 ms old
	// (recheckDeniedAfter), and a policy deleted through it closes the
	// bucket at once. (One deleted elsewhere closes it within the TTL:
	// cmd/cairn's TestAgainstCluster.)
	other := e.restart(t, gateway.Config{Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret}, AccessKeyTTL: time.Minute})
	mkBucket(t, root, "pol-other")
	if err := put(root, "pol-other", "k", "other"); err != nil {
		t.Fatal(err)
	}
	anonOther := func() int {
		t.Helper()
		st, _ := unsignedDo(t, http.MethodGet, other.URL()+"/pol-other/k", nil)
		return st
	}
	awaitOther := func(want int, within time.Duration) {
		t.Helper()
		testcluster.WaitFor(t, within, fmt.Sprintf("anonymous GET through another gateway to answer %d after the policy changed", want), func() error {
			if st := anonOther(); st != want {
				return fmt.Errorf("status %d", st)
			}
			return nil
		})
	}
	if st := anonOther(); st != http.StatusForbidden {
		t.Fatalf("anonymous GET through another gateway before any policy: %d", st)
	}
	setPolicy("pol-other", `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pol-other/*"}]}`)
	awaitOther(http.StatusOK, 2*time.Second)
	otherRoot := s3.New(s3.Options{BaseEndpoint: aws.String(other.URL()), Region: "us-east-1", UsePathStyle: true,
		Credentials: awscreds.NewStaticCredentialsProvider(testAccess, testSecret, "")})
	if _, err := otherRoot.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("pol-other")}); err != nil {
		t.Fatal(err)
	}
	if st := anonOther(); st != http.StatusForbidden {
		t.Fatalf("anonymous GET through the gateway that deleted the policy: %d", st)
	}
}
