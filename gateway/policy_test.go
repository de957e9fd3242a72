package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// publicPrefixPolicy publishes the keys under public/ of bucket pub and
// its listing, and keeps public/secret/ out.
const publicPrefixPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "read", "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::pub/public/*"]},
    {"Sid": "list", "Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": "arn:aws:s3:::pub"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub/public/secret/*"}
  ]
}`

// testAnonymousReadsByPolicy: a bucket policy lets unsigned clients read
// what it names and nothing else; it is stored, read back and deleted,
// and policies granting what Cairn does not do are refused. Part of the
// suite.
func testAnonymousReadsByPolicy(t *testing.T, e *env) {
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "pub")
	mkBucket(t, c, "priv")
	for _, k := range []string{"public/a.txt", "public/secret/s.txt", "private/b.txt"} {
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pub"), Key: aws.String(k), Body: strings.NewReader("body of " + k)}))
	}
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("priv"), Key: aws.String("public/a.txt"), Body: strings.NewReader("private")}))

	anon := func(method, path string, body []byte) (int, string) {
		t.Helper()
		return unsignedDo(t, method, e.url+path, body)
	}
	if st, _ := anon(http.MethodGet, "/pub/public/a.txt", nil); st != http.StatusForbidden {
		t.Fatalf("anonymous GET before any policy: %d, want 403", st)
	}

	must[*s3.PutBucketPolicyOutput](t)(c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pub"), Policy: aws.String(publicPrefixPolicy)}))
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(publicPrefixPolicy)); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(must[*s3.GetBucketPolicyOutput](t)(c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("pub")})).Policy); got != compact.String() {
		t.Fatalf("GetBucketPolicy: %s\nwant %s", got, compact.String())
	}
	if st := must[*s3.GetBucketPolicyStatusOutput](t)(c.GetBucketPolicyStatus(ctx, &s3.GetBucketPolicyStatusInput{Bucket: aws.String("pub")})); !aws.ToBool(st.PolicyStatus.IsPublic) {
		t.Error("GetBucketPolicyStatus: not public")
	}

	for _, tc := range []struct {
		method, path string
		status       int
		body         string // a substring of the answer
	}{
		{http.MethodGet, "/pub/public/a.txt", 200, "body of public/a.txt"},
		{http.MethodHead, "/pub/public/a.txt", 200, ""},
		{http.MethodGet, "/pub/public/a.txt?response-content-type=text/x-test&x-id=GetObject", 200, "body of public/a.txt"},
		{http.MethodGet, "/pub?list-type=2&prefix=public/", 200, "<Key>public/a.txt</Key>"},
		{http.MethodGet, "/pub?location", 200, "LocationConstraint"},
		{http.MethodHead, "/pub", 200, ""},
		// Denied: outside the grant, a Deny, another bucket, a subresource,
		// a write.
		{http.MethodGet, "/pub/private/b.txt", 403, "AccessDenied"},
		{http.MethodGet, "/pub/public/secret/s.txt", 403, "AccessDenied"},
		{http.MethodGet, "/priv/public/a.txt", 403, "AccessDenied"},
		{http.MethodGet, "/nope/public/a.txt", 403, "AccessDenied"},
		{http.MethodGet, "/pub/public/a.txt?acl", 403, "AccessDenied"},
		{http.MethodGet, "/pub/public/a.txt?attributes", 403, "AccessDenied"},
		{http.MethodGet, "/pub/public/a.txt?versionId=v2", 403, "AccessDenied"},
		{http.MethodGet, "/pub?uploads", 403, "AccessDenied"},
		{http.MethodGet, "/pub?versions", 403, "AccessDenied"},
		{http.MethodGet, "/pub?policy", 403, "AccessDenied"},
		{http.MethodGet, "/", 403, "AccessDenied"},
		{http.MethodPut, "/pub/public/new.txt", 403, "AccessDenied"},
		{http.MethodDelete, "/pub/public/a.txt", 403, "AccessDenied"},
		{http.MethodPost, "/pub?delete", 403, "AccessDenied"},
	} {
		st, body := anon(tc.method, tc.path, nil)
		if st != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("anonymous %s %s: %d %.200q, want %d with %q", tc.method, tc.path, st, body, tc.status, tc.body)
		}
	}
	// Nothing a refused request asked for happened.
	headMissing(t, c, "pub", "public/new.txt")
	must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("pub"), Key: aws.String("public/a.txt")}))

	// An SDK with anonymous credentials reads what the policy grants.
	ac := e.awsClient(t, func(o *s3.Options) { o.Credentials = aws.AnonymousCredentials{} })
	out := must[*s3.GetObjectOutput](t)(ac.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pub"), Key: aws.String("public/a.txt")}))
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "body of public/a.txt" {
		t.Errorf("anonymous SDK GetObject: %q", got)
	}
	_, err := ac.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pub"), Key: aws.String("public/sdk.txt"), Body: strings.NewReader("x")})
	wantCode(t, err, "AccessDenied")

	// Policies Cairn cannot honour are refused; the stored one stays.
	for _, tc := range []struct{ bucket, policy, code string }{
		{"pub", strings.Replace(publicPrefixPolicy, `"s3:GetObject"]`, `"s3:GetObject", "s3:GetObjekt"]`, 1), "MalformedPolicy"},
		{"pub", strings.Replace(publicPrefixPolicy, `"Principal": "*"`, `"Principal": {"Service": "logging.s3.amazonaws.com"}`, 1), "NotImplemented"},
		{"pub", strings.Replace(publicPrefixPolicy, `"Principal": "*"`, `"Principal": {"AWS": "arn:aws:iam::123456789012:role/r"}`, 1), "NotImplemented"},
		{"pub", strings.Replace(publicPrefixPolicy, "arn:aws:s3:::pub/public/*", "arn:aws:s3:::priv/*", 1), "MalformedPolicy"},
		{"pub", `{"Version": "2012-10-17", "Statement": [}`, "MalformedPolicy"},
		{"nope", publicPrefixPolicy, "NoSuchBucket"},
	} {
		_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(tc.bucket), Policy: aws.String(tc.policy)})
		if apiCode(err) != tc.code {
			t.Errorf("PutBucketPolicy %.80q on %s: %v, want %s", tc.policy, tc.bucket, err, tc.code)
		}
	}
	if st, _ := anon(http.MethodGet, "/pub/public/a.txt", nil); st != http.StatusOK {
		t.Errorf("anonymous GET after refused policies: %d, want 200 (the stored policy kept)", st)
	}

	must[*s3.DeleteBucketPolicyOutput](t)(c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String("pub")}))
	_, err = c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("pub")})
	wantCode(t, err, "NoSuchBucketPolicy")
	if st, _ := anon(http.MethodGet, "/pub/public/a.txt", nil); st != http.StatusForbidden {
		t.Errorf("anonymous GET after DeleteBucketPolicy: %d, want 403", st)
	}
}

// unsignedDo sends an unsigned request and returns its status and body.
// unsignedGet sends an unsigned GET with header and answers its status.
func unsignedGet(t testing.TB, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	status, _ := sendRequest(t, req)
	return status
}

func unsignedDo(t testing.TB, method, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	status, b := sendRequest(t, req)
	return status, string(b)
}

// TestGetObjectAttributesNeedsRead: as on S3, GetObjectAttributes asks a
// policy for the object's read as well as for its attributes
// (s3:GetObject and s3:GetObjectAttributes; with a version id,
// s3:GetObjectVersion and s3:GetObjectVersionAttributes).
func TestGetObjectAttributesNeedsRead(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, nil)
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "attrs")
	must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("attrs"), Key: aws.String("k"), Body: strings.NewReader("body")}))
	attributes := func() int {
		t.Helper()
		return unsignedGet(t, e.url+"/attrs/k?attributes", http.Header{"X-Amz-Object-Attributes": {"ETag,ObjectSize"}})
	}
	for _, tc := range []struct {
		actions string
		want    int
	}{
		{`"s3:GetObjectAttributes"`, http.StatusForbidden},
		{`"s3:GetObject"`, http.StatusForbidden},
		{`"s3:GetObjectAttributes", "s3:GetObject"`, http.StatusOK},
	} {
		must[*s3.PutBucketPolicyOutput](t)(c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("attrs"), Policy: aws.String(
			`{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": [` + tc.actions + `], "Resource": "arn:aws:s3:::attrs/*"}]}`)}))
		if got := attributes(); got != tc.want {
			t.Errorf("anonymous GetObjectAttributes with a policy allowing %s: %d, want %d", tc.actions, got, tc.want)
		}
	}
}
