package gateway_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

// rawDo sends a signed request without a body and returns the answer
// with its body read.
func (e *env) rawDo(t testing.TB, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := e.signedDo(t, req, nil)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// versionRef is one version as a listing shows it.
type versionRef struct {
	key, id        string
	marker, latest bool
}

func (v versionRef) String() string {
	s := v.key + "@" + v.id
	if v.marker {
		s += "(marker)"
	}
	if v.latest {
		s += "*"
	}
	return s
}

// listAllVersions lists every version under prefix in the order the
// listing gives them, through minio-go, which keeps Version and
// DeleteMarker elements in document order.
func listAllVersions(t testing.TB, e *env, bucket, prefix string) []versionRef {
	t.Helper()
	var got []versionRef
	for o := range e.minioClient(t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{WithVersions: true, Recursive: true, Prefix: prefix}) {
		if o.Err != nil {
			t.Fatalf("list versions of %s/%s: %v", bucket, prefix, o.Err)
		}
		got = append(got, versionRef{o.Key, o.VersionID, o.IsDeleteMarker, o.IsLatest})
	}
	return got
}

func wantVersions(t testing.TB, what string, got []versionRef, want ...versionRef) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: versions %v, want %v", what, got, want)
	}
}

// testVersioning: a bucket's life with versioning, through aws-sdk-go-v2,
// minio-go and raw requests: versions kept by overwrites and deletes,
// read, listed, copied, tagged and deleted by id; delete markers; a
// suspended bucket's null version; DeleteObjects of versions; a bucket
// with only noncurrent versions is not empty. Part of the cluster suite.
func testVersioning(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	const b = "ver"
	bk := aws.String(b)
	mkBucket(t, c, b)

	// Never versioned: an empty configuration, no version ids.
	if got := must[*s3.GetBucketVersioningOutput](t)(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bk})); got.Status != "" || got.MFADelete != "" {
		t.Fatalf("GetBucketVersioning of a new bucket: %q %q, want an empty configuration", got.Status, got.MFADelete)
	}
	pre := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("pre"), Body: strings.NewReader("before versioning")}))
	if pre.VersionId != nil {
		t.Fatalf("PUT into a bucket never versioned answered version id %q", aws.ToString(pre.VersionId))
	}

	// Refused configurations change nothing.
	for _, tc := range []struct{ doc, code string }{
		{`<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>`, "NotImplemented"},
		{`<VersioningConfiguration><Status>On</Status></VersioningConfiguration>`, "MalformedXML"},
		{`<VersioningConfiguration><Status>Enabled</Status>`, "MalformedXML"},
	} {
		req, _ := http.NewRequest(http.MethodPut, e.url+"/"+b+"?versioning", nil)
		resp := e.signedDo(t, req, []byte(tc.doc))
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantErrorDoc(t, resp.StatusCode, body, map[string]int{"NotImplemented": 501, "MalformedXML": 400}[tc.code], tc.code, "")
	}
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("nope"), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	wantCode(t, err, "NoSuchBucket")

	must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
	if got := must[*s3.GetBucketVersioningOutput](t)(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bk})); got.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("GetBucketVersioning after enabling: %q", got.Status)
	}
	// The object from before is the null version.
	if h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("pre")})); aws.ToString(h.VersionId) != "null" {
		t.Fatalf("HEAD of an object from before versioning: version id %q, want null", aws.ToString(h.VersionId))
	}

	// Three versions: inline, encrypted in segments, inline.
	bodies := [][]byte{[]byte("version one"), pattern(1<<20+5, 7), []byte("version three")}
	var ids []string
	for i, body := range bodies {
		in := &s3.PutObjectInput{Bucket: bk, Key: aws.String("k"), Body: bytes.NewReader(body)}
		if i == 1 {
			in.ServerSideEncryption = types.ServerSideEncryptionAes256
		}
		out := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, in))
		id := aws.ToString(out.VersionId)
		if id == "" || id == "null" || slices.Contains(ids, id) {
			t.Fatalf("PUT %d: version id %q (earlier %v)", i+1, id, ids)
		}
		ids = append(ids, id)
	}
	v1, v2, v3 := ids[0], ids[1], ids[2]
	wantVersions(t, "after three PUTs", listAllVersions(t, e, b, ""),
		versionRef{"k", v3, false, true}, versionRef{"k", v2, false, false}, versionRef{"k", v1, false, false}, versionRef{"pre", "null", false, true})

	// A browser form's upload answers its version too.
	pp := minio.NewPostPolicy()
	for _, err := range []error{pp.SetBucket(b), pp.SetKey("posted"), pp.SetExpires(time.Now().Add(time.Hour))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	u, form, err := e.minioClient(t).PresignedPostPolicy(ctx, pp)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := postForm(t, u, form, "posted", []byte("posted by a form"), true)
	postedID := resp.Header.Get("x-amz-version-id")
	if resp.StatusCode != http.StatusNoContent || postedID == "" || postedID == "null" {
		t.Fatalf("POST upload: %d %s, x-amz-version-id %q", resp.StatusCode, body, postedID)
	}
	if h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("posted")})); aws.ToString(h.VersionId) != postedID {
		t.Fatalf("HEAD of the posted object: version id %q, want %q", aws.ToString(h.VersionId), postedID)
	}

	// Each version reads back by id, whole and in part.
	for i, id := range ids {
		out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(id)}))
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, bodies[i]) || aws.ToString(out.VersionId) != id || aws.ToString(out.ETag) != `"`+md5hex(bodies[i])+`"` {
			t.Fatalf("GET version %d: %d bytes, version id %q, ETag %s", i+1, len(got), aws.ToString(out.VersionId), aws.ToString(out.ETag))
		}
		h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(id)}))
		if aws.ToString(h.VersionId) != id || aws.ToInt64(h.ContentLength) != int64(len(bodies[i])) {
			t.Fatalf("HEAD version %d: version id %q, length %d", i+1, aws.ToString(h.VersionId), aws.ToInt64(h.ContentLength))
		}
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v2), Range: aws.String("bytes=70000-70999")}); !bytes.Equal(got, bodies[1][70000:71000]) {
		t.Fatal("ranged GET of the encrypted noncurrent version: wrong bytes")
	}
	if got := getObject(t, c, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v2), PartNumber: aws.Int32(1)}); !bytes.Equal(got, bodies[1]) {
		t.Fatal("GET partNumber=1 of a noncurrent version: wrong bytes")
	}
	getObject(t, c, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1), IfMatch: aws.String(`"` + md5hex(bodies[0]) + `"`)})
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1), IfMatch: aws.String(`"` + md5hex(bodies[2]) + `"`)})
	wantCode(t, err, "PreconditionFailed")
	if cur := getObject(t, c, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k")}); !bytes.Equal(cur, bodies[2]) {
		t.Fatalf("GET of the current version: %q", cur)
	}

	// Version ids that cannot be, or are not.
	for _, tc := range []struct {
		method, query string
		status        int
		code          string
	}{
		{http.MethodGet, "versionId=", 400, "InvalidArgument"},
		{http.MethodGet, "versionId=not-an-id", 400, "InvalidArgument"},
		{http.MethodGet, "versionId=0123456789abcdef0123456789abcdef", 404, "NoSuchVersion"},
		{http.MethodHead, "versionId=0123456789abcdef0123456789abcdef", 404, ""},
		{http.MethodDelete, "versionId=", 400, "InvalidArgument"},
		{http.MethodPut, "versionId=" + v1, 501, "NotImplemented"}, // PutObject takes no version
	} {
		resp, body := e.rawDo(t, tc.method, "/"+b+"/k?"+tc.query)
		if tc.code == "" {
			if resp.StatusCode != tc.status || len(body) != 0 {
				t.Fatalf("%s ?%s: %d with %d bytes, want %d without a body", tc.method, tc.query, resp.StatusCode, len(body), tc.status)
			}
			continue
		}
		wantErrorDoc(t, resp.StatusCode, body, tc.status, tc.code, "")
		if tc.code == "NoSuchVersion" && !bytes.Contains(body, []byte("<Key>k</Key>")) {
			t.Fatalf("NoSuchVersion names no key: %s", body)
		}
	}

	// A delete without a version id adds a delete marker.
	del := must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("k")}))
	marker := aws.ToString(del.VersionId)
	if !aws.ToBool(del.DeleteMarker) || marker == "" || slices.Contains(ids, marker) {
		t.Fatalf("DELETE in a versioned bucket: delete marker %v, version id %q", aws.ToBool(del.DeleteMarker), marker)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := e.rawDo(t, method, "/"+b+"/k")
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("x-amz-delete-marker") != "true" || resp.Header.Get("x-amz-version-id") != marker {
			t.Fatalf("%s of a deleted key: %d, x-amz-delete-marker %q, x-amz-version-id %q; want 404, true, %s", method, resp.StatusCode,
				resp.Header.Get("x-amz-delete-marker"), resp.Header.Get("x-amz-version-id"), marker)
		}
		if method == http.MethodGet {
			wantErrorDoc(t, resp.StatusCode, body, 404, "NoSuchKey", "")
		}
		resp, body = e.rawDo(t, method, "/"+b+"/k?versionId="+marker)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("x-amz-delete-marker") != "true" || resp.Header.Get("Last-Modified") == "" {
			t.Fatalf("%s of a delete marker by id: %d, x-amz-delete-marker %q, Last-Modified %q; want 405, true, a date", method, resp.StatusCode,
				resp.Header.Get("x-amz-delete-marker"), resp.Header.Get("Last-Modified"))
		}
		if method == http.MethodGet {
			wantErrorDoc(t, resp.StatusCode, body, 405, "MethodNotAllowed", "")
		} else if len(body) != 0 {
			t.Fatalf("HEAD of a delete marker answered a body: %q", body)
		}
	}
	wantVersions(t, "after a delete", listAllVersions(t, e, b, "k"),
		versionRef{"k", marker, true, true}, versionRef{"k", v3, false, false}, versionRef{"k", v2, false, false}, versionRef{"k", v1, false, false})
	if l := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bk, Prefix: aws.String("k")})); len(l.Contents) != 0 {
		t.Fatalf("ListObjectsV2 after the delete lists %d objects", len(l.Contents))
	}
	sdkList := must[*s3.ListObjectVersionsOutput](t)(c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bk, Prefix: aws.String("k")}))
	if len(sdkList.DeleteMarkers) != 1 || aws.ToString(sdkList.DeleteMarkers[0].VersionId) != marker || !aws.ToBool(sdkList.DeleteMarkers[0].IsLatest) ||
		sdkList.DeleteMarkers[0].Owner == nil || len(sdkList.Versions) != 3 || aws.ToInt64(sdkList.Versions[1].Size) != int64(len(bodies[1])) {
		t.Fatalf("aws-sdk-go-v2 ListObjectVersions: %d markers, %d versions", len(sdkList.DeleteMarkers), len(sdkList.Versions))
	}

	// Deleting the marker by id makes v3 current again.
	del = must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(marker)}))
	if !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) != marker {
		t.Fatalf("DELETE of the marker: delete marker %v, version id %q", aws.ToBool(del.DeleteMarker), aws.ToString(del.VersionId))
	}
	if cur := getBytes(t, c, b, "k"); !bytes.Equal(cur, bodies[2]) {
		t.Fatalf("GET after deleting the marker: %q, want version three", cur)
	}
	// Deleting v2 for good.
	del = must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v2)}))
	if aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) != v2 {
		t.Fatalf("DELETE of v2: delete marker %v, version id %q", aws.ToBool(del.DeleteMarker), aws.ToString(del.VersionId))
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v2)})
	wantCode(t, err, "NoSuchVersion")
	wantVersions(t, "after deleting the marker and v2", listAllVersions(t, e, b, "k"), versionRef{"k", v3, false, true}, versionRef{"k", v1, false, false})

	// Copies from an old version, onto another key and onto itself.
	cp := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("copy"), CopySource: aws.String(b + "/k?versionId=" + v1)}))
	if aws.ToString(cp.CopySourceVersionId) != v1 || aws.ToString(cp.VersionId) == "" || aws.ToString(cp.VersionId) == v1 {
		t.Fatalf("CopyObject from v1: source version %q, version %q", aws.ToString(cp.CopySourceVersionId), aws.ToString(cp.VersionId))
	}
	if got := getBytes(t, c, b, "copy"); !bytes.Equal(got, bodies[0]) {
		t.Fatalf("copy of v1 holds %q", got)
	}
	restored := must[*s3.CopyObjectOutput](t)(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("k"), CopySource: aws.String("/" + b + "/k?versionId=" + v1)}))
	if got := getBytes(t, c, b, "k"); !bytes.Equal(got, bodies[0]) {
		t.Fatalf("k after restoring v1 holds %q", got)
	}
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: restored.VersionId}))
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("k"), CopySource: aws.String(b + "/k")})
	wantCode(t, err, "InvalidRequest") // the current version onto itself, unchanged
	// A delete marker cannot be copied.
	gone := aws.ToString(must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String("gone")})).VersionId)
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("x"), CopySource: aws.String(b + "/gone?versionId=" + gone)})
	wantCode(t, err, "InvalidRequest")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("x"), CopySource: aws.String(b + "/gone")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bk, Key: aws.String("x"), CopySource: aws.String(b + "/k?versionId=" + v2)})
	wantCode(t, err, "NoSuchVersion")

	// A part copied from a version; Complete answers the new version.
	up := must[*s3.CreateMultipartUploadOutput](t)(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bk, Key: aws.String("mp")}))
	pc := must[*s3.UploadPartCopyOutput](t)(c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
		CopySource: aws.String(b + "/k?versionId=" + v1)}))
	if aws.ToString(pc.CopySourceVersionId) != v1 {
		t.Fatalf("UploadPartCopy from v1: source version %q", aws.ToString(pc.CopySourceVersionId))
	}
	done := must[*s3.CompleteMultipartUploadOutput](t)(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}))
	mpID := aws.ToString(done.VersionId)
	if mpID == "" || mpID == "null" {
		t.Fatalf("CompleteMultipartUpload answered version id %q", mpID)
	}
	if h := must[*s3.HeadObjectOutput](t)(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("mp")})); aws.ToString(h.VersionId) != mpID {
		t.Fatalf("HEAD mp: version id %q, want %q", aws.ToString(h.VersionId), mpID)
	}

	// Tags of a version.
	must[*s3.PutObjectTaggingOutput](t)(c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("old"), Value: aws.String("yes")}}}}))
	if tg := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1)})); len(tg.TagSet) != 1 || aws.ToString(tg.VersionId) != v1 {
		t.Fatalf("GetObjectTagging of v1: %d tags, version %q", len(tg.TagSet), aws.ToString(tg.VersionId))
	}
	if tg := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bk, Key: aws.String("k")})); len(tg.TagSet) != 0 || aws.ToString(tg.VersionId) != v3 {
		t.Fatalf("GetObjectTagging of the current version: %d tags, version %q", len(tg.TagSet), aws.ToString(tg.VersionId))
	}
	// Tagging the current object answers its version id: its own, or
	// null for the object from before versioning.
	for key, want := range map[string]string{"k": v3, "pre": "null"} {
		pt := must[*s3.PutObjectTaggingOutput](t)(c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: aws.String(key),
			Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("cur"), Value: aws.String("yes")}}}}))
		dt := must[*s3.DeleteObjectTaggingOutput](t)(c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: bk, Key: aws.String(key)}))
		if aws.ToString(pt.VersionId) != want || aws.ToString(dt.VersionId) != want {
			t.Fatalf("Put/DeleteObjectTagging of the current %s: version ids %q and %q, want %q", key, aws.ToString(pt.VersionId), aws.ToString(dt.VersionId), want)
		}
	}
	_, err = c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bk, Key: aws.String("gone"), VersionId: aws.String(gone)})
	wantCode(t, err, "MethodNotAllowed")
	_, err = c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: aws.String("gone"), VersionId: aws.String(gone), Tagging: &types.Tagging{TagSet: []types.Tag{}}})
	wantCode(t, err, "MethodNotAllowed")
	must[*s3.DeleteObjectTaggingOutput](t)(c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1)}))
	if tg := must[*s3.GetObjectTaggingOutput](t)(c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1)})); len(tg.TagSet) != 0 {
		t.Fatalf("GetObjectTagging of v1 after DeleteObjectTagging: %d tags", len(tg.TagSet))
	}
	attrs := must[*s3.GetObjectAttributesOutput](t)(c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String(v1),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectSize}}))
	if aws.ToString(attrs.ETag) != md5hex(bodies[0]) || aws.ToInt64(attrs.ObjectSize) != int64(len(bodies[0])) || aws.ToString(attrs.VersionId) != v1 {
		t.Fatalf("GetObjectAttributes of v1: ETag %s, size %d, version %q", aws.ToString(attrs.ETag), aws.ToInt64(attrs.ObjectSize), aws.ToString(attrs.VersionId))
	}

	// Suspended: writes make the null version, each replacing the last.
	must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}}))
	if got := must[*s3.GetBucketVersioningOutput](t)(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bk})); got.Status != types.BucketVersioningStatusSuspended {
		t.Fatalf("GetBucketVersioning after suspending: %q", got.Status)
	}
	for _, body := range []string{"suspended one", "suspended two"} {
		out := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("k"), Body: strings.NewReader(body)}))
		if aws.ToString(out.VersionId) != "null" {
			t.Fatalf("PUT into a suspended bucket: version id %q, want null", aws.ToString(out.VersionId))
		}
	}
	wantVersions(t, "after two PUTs while suspended", listAllVersions(t, e, b, "k"),
		versionRef{"k", "null", false, true}, versionRef{"k", v3, false, false}, versionRef{"k", v1, false, false})
	out := must[*s3.GetObjectOutput](t)(c.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: aws.String("k"), VersionId: aws.String("null")}))
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "suspended two" || aws.ToString(out.VersionId) != "null" {
		t.Fatalf("GET ?versionId=null: %q, version %q", got, aws.ToString(out.VersionId))
	}

	// DeleteObjects with and without versions.
	dm := must[*s3.DeleteObjectsOutput](t)(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bk, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("k"), VersionId: aws.String(v1)},
		{Key: aws.String("gone"), VersionId: aws.String(gone)},
		{Key: aws.String("copy")},
		{Key: aws.String("k"), VersionId: aws.String("0123456789abcdef0123456789abcdef")}, // no such version: deleted, as S3 reports
		{Key: aws.String("k"), VersionId: aws.String("bad id")},
	}}}))
	type deleted struct {
		key, id       string
		marker        bool
		markerVersion string
	}
	var gotDeleted []deleted
	for _, d := range dm.Deleted {
		gotDeleted = append(gotDeleted, deleted{aws.ToString(d.Key), aws.ToString(d.VersionId), aws.ToBool(d.DeleteMarker), aws.ToString(d.DeleteMarkerVersionId)})
	}
	wantDeleted := []deleted{{"k", v1, false, ""}, {"gone", gone, true, gone}, {"copy", "", true, "null"}, {"k", "0123456789abcdef0123456789abcdef", false, ""}}
	if !slices.Equal(gotDeleted, wantDeleted) {
		t.Fatalf("DeleteObjects deleted %+v, want %+v", gotDeleted, wantDeleted)
	}
	if len(dm.Errors) != 1 || aws.ToString(dm.Errors[0].Code) != "NoSuchVersion" || aws.ToString(dm.Errors[0].VersionId) != "bad id" {
		t.Fatalf("DeleteObjects errors %+v, want NoSuchVersion for the malformed id", dm.Errors)
	}
	// A suspended bucket's delete marker is the null version; the copy,
	// written while versioning was Enabled, stays as a noncurrent version.
	wantVersions(t, "copy after DeleteObjects", listAllVersions(t, e, b, "copy"),
		versionRef{"copy", "null", true, true}, versionRef{"copy", aws.ToString(cp.VersionId), false, false})

	// A bucket holding only noncurrent versions and markers is not empty.
	for _, key := range []string{"k", "mp", "pre", "posted"} {
		must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String(key)}))
	}
	if l := must[*s3.ListObjectsV2Output](t)(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bk})); len(l.Contents) != 0 {
		t.Fatalf("%d current objects left", len(l.Contents))
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bk})
	wantCode(t, err, "BucketNotEmpty")
	left := listAllVersions(t, e, b, "")
	var ids2 []types.ObjectIdentifier
	for _, v := range left {
		ids2 = append(ids2, types.ObjectIdentifier{Key: aws.String(v.key), VersionId: aws.String(v.id)})
	}
	last := ids2[len(ids2)-1]
	dm = must[*s3.DeleteObjectsOutput](t)(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bk, Delete: &types.Delete{Objects: ids2[:len(ids2)-1], Quiet: aws.Bool(true)}}))
	if len(dm.Deleted) != 0 || len(dm.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects: %d deleted, %d errors", len(dm.Deleted), len(dm.Errors))
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bk})
	wantCode(t, err, "BucketNotEmpty") // one version left
	must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: last.Key, VersionId: last.VersionId}))
	if left := listAllVersions(t, e, b, ""); len(left) != 0 {
		t.Fatalf("versions left after deleting them all: %v", left)
	}
	must[*s3.DeleteBucketOutput](t)(c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bk}))
}

// testVersionPages: ListObjectVersions pages of 1, 2 and 3 entries,
// through aws-sdk-go-v2's paginator, list every version and delete
// marker exactly once, in the listing's order (keys in order, each key's
// versions newest first, the first its latest), with and without a
// delimiter (a common prefix counts as one entry and comes once). Part of
// the cluster suite.
func testVersionPages(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.awsClient(t)
	const b = "verpages"
	bk := aws.String(b)
	mkBucket(t, c, b)
	put := func(key string) string {
		t.Helper()
		out := must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String(key), Body: strings.NewReader(key)}))
		if out.VersionId == nil {
			return "null"
		}
		return aws.ToString(out.VersionId)
	}
	remove := func(key string) string {
		t.Helper()
		return aws.ToString(must[*s3.DeleteObjectOutput](t)(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: aws.String(key)})).VersionId)
	}
	// history[key] is the key's versions, oldest first.
	history := map[string][]versionRef{}
	add := func(key, id string, marker bool) {
		history[key] = append(history[key], versionRef{key: key, id: id, marker: marker})
	}
	add("d", put("d"), false) // a null version from before versioning
	must[*s3.PutBucketVersioningOutput](t)(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bk, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}))
	for range 3 {
		add("a", put("a"), false)
	}
	add("b/x", put("b/x"), false)
	add("b/x", put("b/x"), false)
	add("b/x", remove("b/x"), true)
	add("b/y", put("b/y"), false)
	add("c", put("c"), false)
	add("c", remove("c"), true)
	add("c", remove("c"), true) // a marker over a marker
	add("d", put("d"), false)
	add("e f+g", put("e f+g"), false)

	var all []versionRef
	for _, k := range slices.Sorted(maps.Keys(history)) {
		h := slices.Clone(history[k])
		slices.Reverse(h)
		h[0].latest = true
		all = append(all, h...)
	}
	wantVersions(t, "the whole listing", listAllVersions(t, e, b, ""), all...)

	for _, delim := range []string{"", "/"} {
		want := all
		if delim != "" {
			want = slices.DeleteFunc(slices.Clone(all), func(v versionRef) bool { return strings.HasPrefix(v.key, "b/") })
		}
		for maxKeys := int32(1); maxKeys <= 3; maxKeys++ {
			t.Run(fmt.Sprintf("delimiter %q max-keys %d", delim, maxKeys), func(t *testing.T) {
				pg := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: bk, Delimiter: aws.String(delim), MaxKeys: aws.Int32(maxKeys)})
				var got []versionRef
				prefixes := 0
				for pages := 0; pg.HasMorePages(); pages++ {
					if pages > len(all)+1 {
						t.Fatal("the paginator does not end")
					}
					out := must[*s3.ListObjectVersionsOutput](t)(pg.NextPage(ctx))
					n := len(out.Versions) + len(out.DeleteMarkers) + len(out.CommonPrefixes)
					if n == 0 || int32(n) > maxKeys {
						t.Fatalf("page %d holds %d entries, max-keys %d", pages, n, maxKeys)
					}
					for _, p := range out.CommonPrefixes {
						if delim == "" || aws.ToString(p.Prefix) != "b/" {
							t.Fatalf("common prefix %q", aws.ToString(p.Prefix))
						}
						prefixes++
					}
					// The SDK parts a page into versions and markers: put
					// them back in the listing's order, which must be a
					// run of want's that continues where the last page
					// ended.
					var page []versionRef
					for _, v := range out.Versions {
						page = append(page, versionRef{aws.ToString(v.Key), aws.ToString(v.VersionId), false, aws.ToBool(v.IsLatest)})
					}
					for _, m := range out.DeleteMarkers {
						page = append(page, versionRef{aws.ToString(m.Key), aws.ToString(m.VersionId), true, aws.ToBool(m.IsLatest)})
					}
					pos := func(v versionRef) int { return slices.Index(want, v) }
					slices.SortFunc(page, func(x, y versionRef) int { return pos(x) - pos(y) })
					got = append(got, page...)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("versions %v, want %v", got, want)
				}
				if wantPrefixes := map[string]int{"": 0, "/": 1}[delim]; prefixes != wantPrefixes {
					t.Fatalf("%d common prefixes, want %d", prefixes, wantPrefixes)
				}
			})
		}
	}

	// A page that ends inside a key's versions continues after the
	// version named by version-id-marker.
	a := all[:3]
	out := must[*s3.ListObjectVersionsOutput](t)(c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bk, KeyMarker: aws.String("a"), VersionIdMarker: aws.String(a[0].id), MaxKeys: aws.Int32(2)}))
	if len(out.Versions) != 2 || aws.ToString(out.Versions[0].VersionId) != a[1].id || aws.ToString(out.Versions[1].VersionId) != a[2].id ||
		!aws.ToBool(out.IsTruncated) || aws.ToString(out.NextKeyMarker) != "a" || aws.ToString(out.NextVersionIdMarker) != a[2].id {
		t.Fatalf("after a's latest: %d versions, truncated %v, next %q %q", len(out.Versions), aws.ToBool(out.IsTruncated), aws.ToString(out.NextKeyMarker), aws.ToString(out.NextVersionIdMarker))
	}
	_, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bk, KeyMarker: aws.String("a"), VersionIdMarker: aws.String("not an id")})
	wantCode(t, err, "InvalidArgument")

	// encoding-type=url encodes keys and markers; the elements come in
	// the listing's order.
	resp, body := e.rawDo(t, http.MethodGet, "/"+b+"?versions&encoding-type=url&prefix=e&max-keys=1")
	var doc struct {
		EncodingType  string
		NextKeyMarker string
		Entries       []struct {
			XMLName xml.Name
			Key     string
		} `xml:",any"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListObjectVersions encoding-type=url: %d %s", resp.StatusCode, body)
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var versionKeys []string
	for _, en := range doc.Entries {
		if en.XMLName.Local == "Version" {
			versionKeys = append(versionKeys, en.Key)
		}
	}
	if doc.EncodingType != "url" || !slices.Equal(versionKeys, []string{"e+f%2Bg"}) {
		t.Fatalf("encoding-type=url: %q, version keys %q; body %s", doc.EncodingType, versionKeys, body)
	}
	resp, body = e.rawDo(t, http.MethodGet, "/"+b+"?versions&prefix=c")
	if i, j := bytes.Index(body, []byte("<DeleteMarker>")), bytes.Index(body, []byte("<Version>")); resp.StatusCode != 200 || i < 0 || j < 0 || i > j {
		t.Fatalf("c's delete markers, its latest versions, come before its version: %s", body)
	}
}
