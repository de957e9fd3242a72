package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		h          string
		res        rangeResult
		start, len int64
	}{
		{"bytes=0-0", rangeOK, 0, 1},
		{"bytes=0-999", rangeOK, 0, 1000},
		{"bytes=0-5000", rangeOK, 0, 1000},
		{"bytes=500-", rangeOK, 500, 500},
		{"bytes=-1", rangeOK, 999, 1},
		{"bytes=-5000", rangeOK, 0, 1000},
		{"bytes=999-999", rangeOK, 999, 1},
		{"bytes=1000-", rangeUnsatisfiable, 0, 0},
		{"bytes=1000-2000", rangeUnsatisfiable, 0, 0},
		{"bytes=-0", rangeUnsatisfiable, 0, 0},
		{"bytes=5-1", rangeNone, 0, 0},
		{"bytes=0-1,3-4", rangeNone, 0, 0},
		{"bytes=a-1", rangeNone, 0, 0},
		{"bytes=+1-2", rangeNone, 0, 0},
		{"bytes=-", rangeNone, 0, 0},
		{"bytes=", rangeNone, 0, 0},
		{"bits=0-1", rangeNone, 0, 0},
		{"bytes=99999999999999999999-", rangeNone, 0, 0},
	} {
		br, res := parseRange(tc.h, size)
		if res != tc.res || res == rangeOK && (br.start != tc.start || br.length != tc.len) {
			t.Errorf("parseRange(%q) = %+v, %v; want %d+%d, %v", tc.h, br, res, tc.start, tc.len, tc.res)
		}
	}
	if _, res := parseRange("bytes=0-", 0); res != rangeUnsatisfiable {
		t.Errorf("bytes=0- of an empty object: %v", res)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=7-", "bytes=1-0", "bytes=0-1,2-3", "bytes= 1 - 2 "} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		br, res := parseRange(h, size)
		if res == rangeOK && (br.start < 0 || br.length <= 0 || br.start+br.length > size) {
			t.Fatalf("parseRange(%q, %d) = %+v outside the object", h, size, br)
		}
	})
}

// xmlParsers are the decoders of outside XML: each must either fail with
// an S3 error or return a value that respects its limits.
func FuzzParseCompleteRequest(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>2</PartNumber><ETag>x</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseCompleteRequest(body)
		if err != nil {
			requireS3(t, err)
			return
		}
		if len(req.Parts) == 0 {
			t.Fatal("accepted no parts")
		}
		for i, p := range req.Parts {
			if p.PartNumber < 1 || p.PartNumber > maxPartNumber || i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
				t.Fatalf("accepted part numbers %v", req.Parts)
			}
		}
	})
}

func FuzzParseDeleteRequest(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>`))
	f.Add([]byte(`<Delete></Delete>`))
	f.Add([]byte(`<Delete><Object><Key>&lt;</Key></Object>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseDeleteRequest(body)
		if err != nil {
			requireS3(t, err)
			return
		}
		if len(req.Objects) == 0 || len(req.Objects) > MaxDeleteKeys {
			t.Fatalf("accepted %d objects", len(req.Objects))
		}
	})
}

func FuzzParseCreateBucketConfiguration(f *testing.F) {
	f.Add([]byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	f.Add([]byte(`<CreateBucketConfiguration/>`))
	f.Add([]byte(`<Other/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseCreateBucketConfiguration(body); err != nil {
			requireS3(t, err)
		}
	})
}

func requireS3(t *testing.T, err error) {
	t.Helper()
	var e *s3err.Error
	var c s3err.Code
	if !errors.As(err, &e) && !errors.As(err, &c) {
		t.Fatalf("error %v is not an S3 error", err)
	}
}

func TestParseXMLBodies(t *testing.T) {
	for _, tc := range []struct {
		body string
		code s3err.Code
	}{
		{`<CompleteMultipartUpload></CompleteMultipartUpload>`, s3err.MalformedXML},
		{`<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`, s3err.InvalidPartOrder},
		{`<CompleteMultipartUpload><Part><PartNumber>0</PartNumber></Part></CompleteMultipartUpload>`, s3err.InvalidArgument},
		{`<Wrong><Part><PartNumber>1</PartNumber></Part></Wrong>`, s3err.MalformedXML},
		{`not xml`, s3err.MalformedXML},
	} {
		_, err := parseCompleteRequest([]byte(tc.body))
		if !errors.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.body, err, tc.code.Name)
		}
	}
	many := "<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", MaxDeleteKeys+1) + "</Delete>"
	if _, err := parseDeleteRequest([]byte(many)); !errors.Is(err, s3err.MalformedXML) {
		t.Errorf("1001 keys: %v", err)
	}
}

func TestCheckBucketName(t *testing.T) {
	for name, ok := range map[string]bool{
		"abc": true, "my.bucket-1": true, "ab": false, strings.Repeat("a", 64): false,
		"Abc": false, "a_b": false, "-ab": false, "ab-": false, "a..b": false,
		"192.168.0.1": false, "xn--abc": false, "abc-s3alias": false, "1.2.3": true,
	} {
		if err := checkBucketName(name); (err == nil) != ok {
			t.Errorf("checkBucketName(%q) = %v", name, err)
		}
	}
}

func TestPreconditions(t *testing.T) {
	mod := mustTime(t, "Mon, 02 Jan 2006 15:04:05 GMT")
	before, after := "Mon, 02 Jan 2006 14:00:00 GMT", "Mon, 02 Jan 2006 16:00:00 GMT"
	for _, tc := range []struct {
		p    preconditions
		want error
	}{
		{preconditions{}, nil},
		{preconditions{ifMatch: `"e"`}, nil},
		{preconditions{ifMatch: `"x", "e"`}, nil},
		{preconditions{ifMatch: `"x"`}, s3err.PreconditionFailed},
		{preconditions{ifMatch: `"e"`, ifUnmodifiedSince: before}, nil},
		{preconditions{ifUnmodifiedSince: before}, s3err.PreconditionFailed},
		{preconditions{ifUnmodifiedSince: "garbage"}, nil},
		{preconditions{ifNoneMatch: `"e"`}, s3err.NotModified},
		{preconditions{ifNoneMatch: `W/"e"`}, s3err.NotModified},
		{preconditions{ifNoneMatch: `"x"`, ifModifiedSince: after}, nil},
		{preconditions{ifNoneMatch: `"e"`, ifModifiedSince: before}, s3err.NotModified},
		{preconditions{ifModifiedSince: after}, s3err.NotModified},
		{preconditions{ifModifiedSince: "Mon, 02 Jan 2006 15:04:05 GMT"}, s3err.NotModified},
		{preconditions{ifModifiedSince: before}, nil},
	} {
		got := tc.p.check("e", mod, s3err.NotModified)
		if got != tc.want && !errors.Is(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.p, got, tc.want)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, ok := parseHTTPTime(s)
	if !ok {
		t.Fatal(s)
	}
	return tm
}
