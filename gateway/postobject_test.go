package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"

	"github.com/cairnstore/cairn/gateway"
)

// postForm posts fields, then a file field holding data, to u, as a
// browser's form would.
func postForm(t *testing.T, u *url.URL, fields map[string]string, filename string, data []byte, withFile bool) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if withFile {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(data)
	}
	mw.Close()
	resp, err := http.Post(u.String(), mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// TestPostObject: a browser-based upload with a policy signed by
// minio-go's PresignedPostPolicy stores the file under the form's key with
// its attributes; what the policy does not allow stores nothing.
func TestPostObject(t *testing.T) {
	e := startFakeGateway(t)
	c := e.awsClient(t)
	mc := e.minioClient(t)
	ctx := context.Background()
	mkBucket(t, c, "uploads")
	data := pattern(100000, 21)

	// policy is a signed policy for keys under user/ of 10 bytes to 1 MiB;
	// edit adds conditions.
	policy := func(t *testing.T, exp time.Time, edit func(*minio.PostPolicy)) (*url.URL, map[string]string) {
		p := minio.NewPostPolicy()
		for _, err := range []error{p.SetBucket("uploads"), p.SetKeyStartsWith("user/"), p.SetExpires(exp), p.SetContentLengthRange(10, 1<<20), p.SetContentType("image/png"), p.SetUserMetadata("origin", "browser")} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if edit != nil {
			edit(p)
		}
		u, form, err := mc.PresignedPostPolicy(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		form["key"] = "user/${filename}"
		return u, form
	}
	soon := time.Now().Add(time.Hour)

	t.Run("stored", func(t *testing.T) {
		u, form := policy(t, soon, nil)
		resp, body := postForm(t, u, form, "photo.png", data, true)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("ETag") != `"`+md5hex(data)+`"` {
			t.Fatalf("POST: %d %s, ETag %s", resp.StatusCode, body, resp.Header.Get("ETag"))
		}
		out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("uploads"), Key: aws.String("user/photo.png")}))
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, data) || aws.ToString(out.ContentType) != "image/png" || out.Metadata["origin"] != "browser" {
			t.Fatalf("stored %d bytes, Content-Type %q, metadata %v", len(got), aws.ToString(out.ContentType), out.Metadata)
		}
	})
	t.Run("a tagging field tags the object", func(t *testing.T) {
		u, form := policy(t, soon, func(p *minio.PostPolicy) {
			if err := p.SetTagging(`<Tagging><TagSet><Tag><Key>from</Key><Value>form</Value></Tag></TagSet></Tagging>`); err != nil {
				t.Fatal(err)
			}
		})
		resp, body := postForm(t, u, form, "tagged.png", data, true)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		tg := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("uploads"), Key: aws.String("user/tagged.png")}))
		if len(tg.TagSet) != 1 || aws.ToString(tg.TagSet[0].Key) != "from" || aws.ToString(tg.TagSet[0].Value) != "form" {
			t.Fatalf("tags %+v", tg.TagSet)
		}
	})
	t.Run("a Windows path as the file name", func(t *testing.T) {
		u, form := policy(t, soon, nil)
		resp, body := postForm(t, u, form, `C:\Users\eric\win.png`, data, true)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		if got := getBytes(t, c, "uploads", "user/win.png"); !bytes.Equal(got, data) {
			t.Fatalf("user/win.png holds %d bytes", len(got))
		}
	})
	t.Run("status 201 answers a PostResponse, checksum verified", func(t *testing.T) {
		u, form := policy(t, soon, func(p *minio.PostPolicy) {
			_ = p.SetSuccessStatusAction("201")
			_ = p.SetChecksum(minio.NewChecksum(minio.ChecksumCRC32C, binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))))
		})
		resp, body := postForm(t, u, form, "b.png", data, true)
		var pr struct {
			Bucket, Key, ETag string
		}
		if err := xml.Unmarshal(body, &pr); err != nil || resp.StatusCode != http.StatusCreated || pr.Key != "user/b.png" || pr.Bucket != "uploads" {
			t.Fatalf("POST: %d %s (%v)", resp.StatusCode, body, err)
		}
	})
	for _, tc := range []struct {
		name    string
		exp     time.Time
		edit    func(*minio.PostPolicy)
		form    func(map[string]string)
		data    []byte
		noFile  bool
		status  int
		code    string
		message string
		key     string // must not exist afterwards
	}{
		{name: "expired", exp: time.Now().Add(-time.Minute), status: 403, code: "AccessDenied", message: "Policy expired", key: "user/x.png"},
		{name: "key outside the prefix", form: func(f map[string]string) { f["key"] = "admin/x.png" }, status: 403, code: "AccessDenied", message: "Policy Condition failed", key: "admin/x.png"},
		{name: "other content type", form: func(f map[string]string) { f["Content-Type"] = "text/html" }, status: 403, code: "AccessDenied", message: "Policy Condition failed", key: "user/x.png"},
		{name: "field the policy does not name", form: func(f map[string]string) { f["x-amz-meta-other"] = "1" }, status: 403, code: "AccessDenied", message: "Extra input fields", key: "user/x.png"},
		{name: "tampered policy", form: func(f map[string]string) { f["policy"] = strings.ToUpper(f["policy"][:4]) + f["policy"][4:] + "" }, status: 403, code: "SignatureDoesNotMatch", key: "user/x.png"},
		{name: "too large", data: pattern(1<<20+1, 3), status: 400, code: "EntityTooLarge", key: "user/x.png"},
		{name: "too small", data: []byte("tiny"), status: 400, code: "EntityTooSmall", key: "user/x.png"},
		{name: "wrong checksum", edit: func(p *minio.PostPolicy) {
			_ = p.SetChecksum(minio.NewChecksum(minio.ChecksumCRC32C, []byte{1, 2, 3, 4}))
		}, status: 400, code: "BadDigest", key: "user/x.png"},
		{name: "no file", noFile: true, status: 400, code: "InvalidArgument", message: "exactly one file", key: "user/x.png"},
		{name: "no policy", form: func(f map[string]string) { delete(f, "policy") }, status: 403, code: "AccessDenied", key: "user/x.png"},
		{name: "a part without a field name", form: func(f map[string]string) { f[""] = "x" }, status: 400, code: "MalformedPOSTRequest", key: "user/x.png"},
		{name: "too many fields", form: func(f map[string]string) {
			for i := range 1000 {
				f[fmt.Sprintf("x-ignore-%d", i)] = "1"
			}
		}, status: 400, code: "MaxMessageLengthExceeded", key: "user/x.png"},
		{name: "a field too long", form: func(f map[string]string) { f["x-ignore-long"] = strings.Repeat("a", 64<<10+1) }, status: 400, code: "MaxMessageLengthExceeded", key: "user/x.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tc.exp
			if exp.IsZero() {
				exp = soon
			}
			u, form := policy(t, exp, tc.edit)
			if tc.form != nil {
				tc.form(form)
			}
			d := data
			if tc.data != nil {
				d = tc.data
			}
			resp, body := postForm(t, u, form, "x.png", d, !tc.noFile)
			wantErrorDoc(t, resp.StatusCode, body, tc.status, tc.code, tc.message)
			headMissing(t, c, "uploads", tc.key)
		})
	}
}

// TestPostObjectAnonymous: a form with neither a policy nor a signature is
// an anonymous upload, as on S3: stored where the bucket's policy lets
// anyone s3:PutObject, refused elsewhere and without a policy; the key a
// Deny is matched against is the one stored, ${filename} replaced, and
// the policy's conditions see the form's fields as a PUT's headers.
func TestPostObjectAnonymous(t *testing.T) {
	f := newFake()
	e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) { c.SSEMasterKeys = testMasterKeys(t, "test-1") })
	c := e.awsClient(t)
	ctx := context.Background()
	mkBucket(t, c, "dropbox")
	u, err := url.Parse(e.url + "/dropbox")
	if err != nil {
		t.Fatal(err)
	}
	post := func(key, filename string) int {
		t.Helper()
		resp, _ := postForm(t, u, map[string]string{"key": key}, filename, []byte("data of "+filename), true)
		return resp.StatusCode
	}
	if got := post("incoming/a.txt", "a.txt"); got != http.StatusForbidden {
		t.Errorf("anonymous POST to a bucket without a policy: %d, want 403", got)
	}
	must[*s3.PutBucketPolicyOutput](t)(c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("dropbox"), Policy: aws.String(`{
	  "Version": "2012-10-17", "Statement": [
	    {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::dropbox/incoming/*"},
	    {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::dropbox/incoming/*.exe"}]}`)}))
	for _, tc := range []struct {
		key, filename string
		want          int
	}{
		{"incoming/${filename}", "report.pdf", http.StatusNoContent},
		{"incoming/${filename}", "setup.exe", http.StatusForbidden},
		{"other/${filename}", "report.pdf", http.StatusForbidden},
	} {
		if got := post(tc.key, tc.filename); got != tc.want {
			t.Errorf("anonymous POST of %s as %s: %d, want %d", tc.filename, tc.key, got, tc.want)
		}
	}
	got := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dropbox"), Key: aws.String("incoming/report.pdf")}))
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(body) != "data of report.pdf" {
		t.Errorf("incoming/report.pdf holds %q", body)
	}
	headMissing(t, c, "dropbox", "incoming/setup.exe")
	headMissing(t, c, "dropbox", "other/report.pdf")

	// The form's fields are the request's headers to a policy's
	// conditions: a Deny of uploads without server-side encryption lets a
	// form asking for it through, signed or not.
	mkBucket(t, c, "sealed")
	must[*s3.PutBucketPolicyOutput](t)(c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("sealed"), Policy: aws.String(`{
	  "Version": "2012-10-17", "Statement": [
	    {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::sealed/*"},
	    {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::sealed/*",
	     "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}]}`)}))
	su, err := url.Parse(e.url + "/sealed")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := postForm(t, su, map[string]string{"key": "plain"}, "f", []byte("x"), true); resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous POST without encryption under a Deny of it: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := postForm(t, su, map[string]string{"key": "sealed", "x-amz-server-side-encryption": "AES256"}, "f", []byte("x"), true); resp.StatusCode != http.StatusNoContent {
		t.Errorf("anonymous POST with encryption under a Deny of uploads without: %d %s, want 204", resp.StatusCode, body)
	}
	if h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("sealed"), Key: aws.String("sealed")})); h.ServerSideEncryption != "AES256" {
		t.Errorf("sealed: ServerSideEncryption %q, want AES256", h.ServerSideEncryption)
	}
	headMissing(t, c, "sealed", "plain")
}
