package clients_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// boto3Keys is how many keys the listing step creates (more than one
// ListObjectsV2 page of 1,000).
const boto3Keys = 1200

// boto3Suffixes must match SUFFIXES in testdata/boto3_suite.py.
var boto3Suffixes = []string{"", "+plus", " space", "\u00e9t\u00e9", "~tilde", "%25pct"}

func boto3Key(i int) string {
	return fmt.Sprintf("many/%d/%05d%s", i%7, i, boto3Suffixes[i%len(boto3Suffixes)])
}

// testBoto3 runs testdata/boto3_suite.py (boto3 with its default
// settings: CRC32 checksums, s3transfer's multipart and threads) over http
// and https and checks what it reports.
func testBoto3(t *testing.T, eps []*endpoint) {
	python := requireTool(t, "python3")
	script, err := filepath.Abs(filepath.Join("testdata", "boto3_suite.py"))
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, t.TempDir(), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, python, "-c", "import boto3"); res.err != nil {
		t.Skipf("boto3 is not importable by %s: skipping the boto3 client tests (%v)\n%s", python, res.err, res.stderr)
	}
	for _, ep := range eps {
		t.Run(ep.scheme, func(t *testing.T) {
			t.Parallel()
			testBoto3On(t, ep, python, script)
		})
	}
}

// boto3Step is one step's report; the fields present depend on the step.
type boto3Step struct {
	OK        bool    `json:"ok"`
	Exception string  `json:"exception"`
	Code      string  `json:"code"`
	Status    int     `json:"status"`
	Message   string  `json:"message"`
	Took      float64 `json:"took"`

	ETag         string `json:"etag"`
	CRC32        string `json:"crc32"`
	ChecksumType string `json:"checksum_type"`
	SHA256       string `json:"sha256"`
	Length       int64  `json:"length"`
	ContentRange string `json:"content_range"`

	Fields      []string `json:"fields"`
	ContentType string   `json:"content_type"`

	Keys    []string `json:"keys"`
	Pages   int      `json:"pages"`
	PutTook float64  `json:"put_took"`

	Requested []string          `json:"requested"`
	Deleted   []string          `json:"deleted"`
	Errors    []json.RawMessage `json:"errors"`
	Left      []string          `json:"left"`
	Retried   int               `json:"retried"`
	CopyHead  clientError       `json:"copy_head"`

	URL    string      `json:"url"`
	Second clientError `json:"second"`
	Body   string      `json:"body"`

	Grants   []string    `json:"grants"`
	Versions []string    `json:"versions"`
	Policy   clientError `json:"policy"`
	Tags     int         `json:"tags"`

	Denied  clientError `json:"denied"`
	Buckets []string    `json:"buckets"`

	VersionID          string `json:"version_id"`
	HeadStatus         int    `json:"head_status"`
	DeleteMarkerHeader string `json:"delete_marker_header"`
}

type clientError struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
}

func testBoto3On(t *testing.T, ep *endpoint, python, script string) {
	data := t.TempDir()
	small, oneMiB, big := pattern(3000, 21), pattern(1<<20, 22), pattern(30<<20, 23)
	writeFile(t, filepath.Join(data, "small.bin"), small)
	writeFile(t, filepath.Join(data, "1m.bin"), oneMiB)
	writeFile(t, filepath.Join(data, "30m.bin"), big)
	bucket := "boto3-" + ep.scheme
	// An application's own access key, which may create buckets.
	appKey := &pb.CreateAccessKeyRequest{Id: "BOTO3APP" + strings.ToUpper(ep.scheme), Secret: "boto3-app-secret-" + ep.scheme, CreateBuckets: true}
	if _, err := ep.meta.CreateAccessKey(t.Context(), appKey); err != nil {
		t.Fatalf("create an access key: %v", err)
	}

	res := run(t, t.TempDir(), ep.clientEnv(t, t.TempDir(),
		"CAIRN_ENDPOINT="+ep.url, "CAIRN_BUCKET="+bucket, "CAIRN_DATA="+data, fmt.Sprint("CAIRN_KEYS=", boto3Keys),
		"CAIRN_APP_KEY="+appKey.Id, "CAIRN_APP_SECRET="+appKey.Secret),
		python, script)
	if res.err != nil {
		t.Fatalf("boto3_suite.py: %v\nstderr:\n%s\nstdout:\n%.2000s", res.err, res.stderr, res.stdout)
	}
	var report struct {
		Steps map[string]*boto3Step
		Boto3 string
	}
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil {
		t.Fatalf("boto3_suite.py: decode its report: %v\nstderr:\n%s\nstdout:\n%.2000s", err, res.stderr, res.stdout)
	}
	t.Logf("boto3 %s, script ran %v (%v CPU)", report.Boto3, res.took.Round(time.Millisecond), res.cpu.Round(time.Millisecond))
	if strings.TrimSpace(res.stderr) != "" {
		t.Logf("boto3_suite.py stderr:\n%s", res.stderr)
	}

	// check runs a subtest over one step's report; a step that failed
	// unexpectedly fails it with the S3 error or the Python traceback.
	check := func(name string, wantOK bool, f func(t *testing.T, s *boto3Step)) {
		t.Run(name, func(t *testing.T) {
			s := report.Steps[name]
			switch {
			case s == nil:
				t.Fatalf("boto3_suite.py reported no step %q", name)
			case s.OK != wantOK && s.Exception != "":
				t.Fatalf("%s raised:\n%s", name, s.Exception)
			case s.OK != wantOK:
				t.Fatalf("%s failed: %d %s: %s", name, s.Status, s.Code, s.Message)
			}
			t.Logf("%s took %.3fs", name, s.Took)
			f(t, s)
		})
	}

	check("create_bucket", true, func(t *testing.T, s *boto3Step) {
		if s.Status != http.StatusOK {
			t.Errorf("create_bucket answered %d", s.Status)
		}
	})
	check("put_small", true, func(t *testing.T, s *boto3Step) {
		if s.ETag != quotedMD5(small) || s.CRC32 != crc32Base64(small) {
			t.Errorf("put_object: ETag %s, CRC32 %q; want %s, %q", s.ETag, s.CRC32, quotedMD5(small), crc32Base64(small))
		}
		checkUploadFraming(t, ep, "/"+bucket+"/small.bin")
	})
	check("put_1m", true, func(t *testing.T, s *boto3Step) {
		if s.ETag != quotedMD5(oneMiB) || s.CRC32 != crc32Base64(oneMiB) {
			t.Errorf("put_object: ETag %s, CRC32 %q; want %s, %q", s.ETag, s.CRC32, quotedMD5(oneMiB), crc32Base64(oneMiB))
		}
		checkUploadFraming(t, ep, "/"+bucket+"/1m.bin")
	})
	check("get_full", true, func(t *testing.T, s *boto3Step) {
		if s.SHA256 != sha256Hex(oneMiB) || s.Length != int64(len(oneMiB)) || s.ETag != quotedMD5(oneMiB) {
			t.Errorf("get_object: sha256 %s, length %d, ETag %s; want %s, %d, %s", s.SHA256, s.Length, s.ETag, sha256Hex(oneMiB), len(oneMiB), quotedMD5(oneMiB))
		}
	})
	check("get_range", true, func(t *testing.T, s *boto3Step) {
		want := fmt.Sprintf("bytes 1000-2047/%d", len(oneMiB))
		if s.Status != http.StatusPartialContent || s.ContentRange != want || s.Length != 1048 || s.SHA256 != sha256Hex(oneMiB[1000:2048]) {
			t.Errorf("get_object Range: %d %q, %d bytes, sha256 %s; want 206 %q, 1048 bytes, %s", s.Status, s.ContentRange, s.Length, s.SHA256, want, sha256Hex(oneMiB[1000:2048]))
		}
	})
	check("head", true, func(t *testing.T, s *boto3Step) {
		if s.Length != int64(len(oneMiB)) || s.ETag != quotedMD5(oneMiB) || s.CRC32 != crc32Base64(oneMiB) {
			t.Errorf("head_object: length %d, ETag %s, CRC32 %q; want %d, %s, %q", s.Length, s.ETag, s.CRC32, len(oneMiB), quotedMD5(oneMiB), crc32Base64(oneMiB))
		}
	})
	check("upload_download_file", true, func(t *testing.T, s *boto3Step) {
		const partSize = 8 << 20 // s3transfer's default
		if s.SHA256 != sha256Hex(big) {
			t.Errorf("download_file wrote sha256 %s, want %s", s.SHA256, sha256Hex(big))
		}
		path := "/" + bucket + "/30m.bin"
		if n := ep.rec.uploads(path); n != 4 {
			t.Errorf("upload_file sent %d parts, want 4 of 8 MiB:%s", n, describe(ep.rec.find(http.MethodPut, path)))
		}
		checkUploadFraming(t, ep, path)
		if !strings.HasSuffix(s.ETag, "-4\"") {
			t.Errorf("ETag %s is not a 4-part ETag", s.ETag)
		}
		t.Logf("multipart checksum: %s %s", s.ChecksumType, s.CRC32)
		switch want := map[string]string{"COMPOSITE": compositeCRC32(big, partSize), "FULL_OBJECT": crc32Base64(big)}[s.ChecksumType]; {
		case want == "":
			t.Errorf("head_object ChecksumType %q, CRC32 %q: want COMPOSITE or FULL_OBJECT", s.ChecksumType, s.CRC32)
		case s.CRC32 != want:
			t.Errorf("head_object %s ChecksumCRC32 %q, want %q", s.ChecksumType, s.CRC32, want)
		}
	})
	var all []string
	for i := range boto3Keys {
		all = append(all, boto3Key(i))
	}
	slices.Sort(all) // S3 lists in UTF-8 byte order, as Go compares strings
	check("many_keys", true, func(t *testing.T, s *boto3Step) {
		t.Logf("%d concurrent put_object took %.3fs; the listing took %d pages", boto3Keys, s.PutTook, s.Pages)
		if s.Pages < 2 {
			t.Errorf("the paginator fetched %d pages; %d keys need at least 2", s.Pages, boto3Keys)
		}
		checkKeys(t, "list_objects_v2 paginator", s.Keys, all)
		checkUploadFraming(t, ep, "/"+bucket+"/"+boto3Key(boto3Keys-1))
	})
	check("copy_object", true, func(t *testing.T, s *boto3Step) {
		if s.ETag != quotedMD5(small) || s.SHA256 != sha256Hex(small) {
			t.Errorf("copy_object: ETag %s, copy's sha256 %s; want %s, %s", s.ETag, s.SHA256, quotedMD5(small), sha256Hex(small))
		}
	})
	check("delete_objects", true, func(t *testing.T, s *boto3Step) {
		if len(s.Errors) != 0 {
			t.Errorf("delete_objects reported errors: %s", s.Errors)
		}
		if s.Retried > 0 {
			t.Logf("%d keys answered with a retryable error were deleted on a retry", s.Retried)
		}
		// Deleting a key that does not exist succeeds too, as in S3.
		want := slices.Sorted(slices.Values(s.Requested))
		if !slices.Equal(s.Deleted, want) {
			t.Errorf("delete_objects deleted %d keys %q, want the %d requested", len(s.Deleted), s.Deleted, len(want))
		}
		var left []string
		for _, k := range all {
			if !slices.Contains(s.Requested, k) {
				left = append(left, k)
			}
		}
		checkKeys(t, "list_objects_v2 after delete_objects", s.Left, left)
		if s.CopyHead.Status != http.StatusNotFound {
			t.Errorf("head_object of a deleted key: %+v, want 404", s.CopyHead)
		}
	})
	check("presign", true, func(t *testing.T, s *boto3Step) {
		// botocore's default for S3 presigning: SigV2 query parameters.
		if !strings.Contains(s.URL, "AWSAccessKeyId=") || !strings.Contains(s.URL, "Signature=") {
			t.Fatalf("not a SigV2 presigned URL: %s", s.URL)
		}
		// The gateway accepts SigV2 since ccf1a9f.
		status, body := fetch(t, ep, s.URL)
		if status != http.StatusOK || !bytes.Equal(body, small) {
			t.Fatalf("GET %s: %d, %d bytes (want 200 and the %d bytes uploaded): %.300s", s.URL, status, len(body), len(small), body)
		}
	})
	check("presign_v4", true, func(t *testing.T, s *boto3Step) {
		if !strings.Contains(s.URL, "X-Amz-Algorithm=AWS4-HMAC-SHA256") {
			t.Fatalf("not a SigV4 presigned URL: %s", s.URL)
		}
		status, body := fetch(t, ep, s.URL)
		if status != http.StatusOK || !bytes.Equal(body, small) {
			t.Fatalf("GET %s: %d, %d bytes (want 200 and the %d bytes uploaded): %.300s", s.URL, status, len(body), len(small), body)
		}
	})
	// Browser-based uploads with the form botocore presigns, signed
	// with its default for S3 presigning and with SigV4.
	for _, tc := range []struct{ step, name, field string }{
		{"presigned_post", "default", "AWSAccessKeyId"}, // SigV2
		{"presigned_post_v4", "v4", "x-amz-signature"},
	} {
		check(tc.step, true, func(t *testing.T, s *boto3Step) {
			data := []byte("uploaded through a browser form by " + tc.name)
			t.Logf("form fields %v", s.Fields)
			if s.Status != http.StatusNoContent || s.ETag != quotedMD5(data) || s.Length != int64(len(data)) || s.ContentType != "text/plain" {
				t.Fatalf("POST: %d %q; stored ETag %s, %d bytes, %q; want 204, %s, %d bytes, text/plain", s.Status, s.Message, s.ETag, s.Length, s.ContentType, quotedMD5(data), len(data))
			}
			if tc.field != "" && !slices.Contains(s.Fields, tc.field) {
				t.Errorf("form fields %v lack %s", s.Fields, tc.field)
			}
		})
	}
	check("if_none_match", true, func(t *testing.T, s *boto3Step) {
		if s.Second.Code != "PreconditionFailed" || s.Second.Status != http.StatusPreconditionFailed {
			t.Errorf("second put_object(IfNoneMatch='*'): %+v, want 412 PreconditionFailed", s.Second)
		}
		if s.Body != "first" {
			t.Errorf("object holds %q after the refused put, want %q", s.Body, "first")
		}
	})
	check("bucket_config", true, func(t *testing.T, s *boto3Step) {
		if !slices.Equal(s.Grants, []string{"FULL_CONTROL"}) || !slices.Equal(s.Versions, []string{"cond/once@null@True"}) ||
			s.Policy.Code != "NoSuchBucketPolicy" || s.Policy.Status != http.StatusNotFound || s.Tags != 0 {
			t.Errorf("get_bucket_acl grants %v, list_object_versions %v, get_bucket_policy %+v, get_object_tagging %d tags; want [FULL_CONTROL], [cond/once@null@True], 404 NoSuchBucketPolicy, 0",
				s.Grants, s.Versions, s.Policy, s.Tags)
		}
	})
	// An access key of its own: SigV4 and SigV2 (botocore's "s3"
	// signer), its own bucket, nothing of the root's.
	check("access_key", true, func(t *testing.T, s *boto3Step) {
		app := bucket + "-app"
		if s.Body != "app data" || !slices.Equal(s.Buckets, []string{app}) || s.Denied.Code != "AccessDenied" || s.Denied.Status != http.StatusForbidden {
			t.Errorf("read back %q, listed %v, the root's bucket %+v; want \"app data\", [%s], 403 AccessDenied", s.Body, s.Buckets, s.Denied, app)
		}
	})
	// A bucket policy put by boto3: the app key may read cond/* over TLS
	// only (fields: the Deny's Sid as read back, IsPublic; second: a key
	// the policy does not name).
	check("bucket_policy", true, func(t *testing.T, s *boto3Step) {
		if !slices.Equal(s.Fields, []string{"tls-only", "False"}) || s.Second.Code != "AccessDenied" {
			t.Errorf("policy read back with Sid, IsPublic %v; outside the grant %+v; want [tls-only False], AccessDenied", s.Fields, s.Second)
		}
		if ep.scheme == "https" && s.Body != "first" {
			t.Errorf("the app key reads by the policy over https: %q (denied %+v), want \"first\"", s.Body, s.Denied)
		}
		if ep.scheme == "http" && (s.Denied.Code != "AccessDenied" || s.Denied.Status != http.StatusForbidden) {
			t.Errorf("the app key over http, which the policy denies: body %q, denied %+v, want 403 AccessDenied", s.Body, s.Denied)
		}
	})
	check("encryption", true, func(t *testing.T, s *boto3Step) {
		if !slices.Equal(s.Fields, []string{"AES256", "AES256", "AES256"}) || s.ETag != quotedMD5(oneMiB) {
			t.Errorf("SSE-S3 head %v, ETag %s; want [AES256 AES256 AES256] (object, bucket default, object by default), %s", s.Fields, s.ETag, quotedMD5(oneMiB))
		}
		if s.SHA256 != sha256Hex(big) || s.Body != sha256Hex(small) {
			t.Errorf("download_file of the SSE-S3 multipart object: sha256 %s, want %s; SSE-C get: %s, want %s", s.SHA256, sha256Hex(big), s.Body, sha256Hex(small))
		}
		if s.Denied.Code != "InvalidRequest" || s.Denied.Status != http.StatusBadRequest {
			t.Errorf("get_object of an SSE-C object without its key: %+v, want 400 InvalidRequest", s.Denied)
		}
	})
	// A versioned bucket (fields: its status, the delete marker's id and
	// DeleteMarker; requested: the two versions' ids; versions and left:
	// the versions and delete markers listed as key@id@IsLatest).
	check("lifecycle", true, func(t *testing.T, s *boto3Step) {
		if len(s.Fields) != 7 {
			t.Fatalf("fields %v", s.Fields)
		}
		modified, err := time.Parse(http.TimeFormat, s.Fields[3])
		if err != nil {
			t.Fatalf("head_object LastModified %q: %v", s.Fields[3], err)
		}
		// Seven days after the object's modification, to the next midnight UTC.
		expires := modified.AddDate(0, 0, 7)
		if day := expires.Truncate(24 * time.Hour); !day.Equal(expires) {
			expires = day.Add(24 * time.Hour)
		}
		want := `expiry-date="` + expires.Format(http.TimeFormat) + `", rule-id="old+logs"`
		if s.Fields[0] != want || s.Fields[1] != want || s.Fields[2] != "" {
			t.Errorf("Expiration: put_object %q, head_object %q, put_object of a key no rule matches %q; want %q", s.Fields[0], s.Fields[1], s.Fields[2], want)
		}
		if s.Fields[4] != "old logs" || s.Fields[5] == "" || s.Fields[6] != "old logs" {
			t.Errorf("create_multipart_upload AbortRuleId %q, AbortDate %q; rule read back %q", s.Fields[4], s.Fields[5], s.Fields[6])
		}
	})
	check("versioning", true, func(t *testing.T, s *boto3Step) {
		if len(s.Requested) != 2 || len(s.Fields) != 3 {
			t.Fatalf("versions %v, fields %v", s.Requested, s.Fields)
		}
		const key = "v k+1"
		v1, v2, marker := s.Requested[0], s.Requested[1], s.Fields[1]
		if s.Fields[0] != "Enabled" || marker == "" || s.Fields[2] != "True" || v1 == "" || v2 == "" || v1 == v2 {
			t.Errorf("status %q, delete marker %q (DeleteMarker %s), versions %q %q", s.Fields[0], marker, s.Fields[2], v1, v2)
		}
		if want := []string{key + "@" + v2 + "@False", key + "@" + v1 + "@False"}; !slices.Equal(s.Versions, want) {
			t.Errorf("list_object_versions Versions %v, want %v", s.Versions, want)
		}
		if want := []string{key + "@" + marker + "@True"}; !slices.Equal(s.Left, want) {
			t.Errorf("list_object_versions DeleteMarkers %v, want %v", s.Left, want)
		}
		if s.Body != "one" || s.VersionID != v1 {
			t.Errorf("get_object VersionId=v1: %q, version %q; want \"one\", %s", s.Body, s.VersionID, v1)
		}
		if s.HeadStatus != http.StatusNotFound || s.DeleteMarkerHeader != "true" {
			t.Errorf("head_object of the deleted key: %d, x-amz-delete-marker %q; want 404, true", s.HeadStatus, s.DeleteMarkerHeader)
		}
		want := slices.Sorted(slices.Values([]string{key + "@" + v1 + "@False", key + "@" + v2 + "@False", key + "@" + marker + "@True"}))
		if len(s.Errors) != 0 || !slices.Equal(s.Deleted, want) {
			t.Errorf("delete_objects of every version: deleted %v, errors %s; want %v", s.Deleted, s.Errors, want)
		}
	})
	check("missing_key", true, func(t *testing.T, s *boto3Step) {
		if s.Code != "NoSuchKey" || s.Status != http.StatusNotFound {
			t.Errorf("get_object of a missing key: %d %q, want 404 NoSuchKey", s.Status, s.Code)
		}
	})
}

// checkKeys compares a listing with the keys expected, in order.
func checkKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s: %d keys, want %d; first difference at %d: %q, want %q", what, len(got), len(want), i, g, w)
			return
		}
	}
}
