package sigv2

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/sigv4"
)

// The example credentials of the S3 developer guide's SigV2 examples
// ("Signing and authenticating REST requests", Authentication examples).
const (
	exampleAccessKey = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

func exampleVerifier(t testing.TB, now time.Time) *Verifier {
	t.Helper()
	v, err := New(Config{
		Credentials: sigv4.StaticCredentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret},
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParseTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, ok := parseTime(s)
	if !ok {
		t.Fatalf("parse time %q", s)
	}
	return tm
}

// TestAWSExamples verifies the published examples with their published
// signatures and StringToSign. The guide has since renamed the bucket
// "johnsmith" to "awsexamplebucket1" in the text but kept the signatures,
// which were computed for johnsmith (they check only with that name), so
// the examples are used here as originally published.
func TestAWSExamples(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		host    string
		vhost   string // bucket named by the Host
		headers [][2]string
		now     string
		sts     string // the published StringToSign
	}{
		{
			name: "Object GET", method: "GET", target: "/photos/puppy.jpg", host: "johnsmith.s3.amazonaws.com", vhost: "johnsmith",
			headers: [][2]string{
				{"Date", "Tue, 27 Mar 2007 19:36:42 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU="},
			},
			now: "Tue, 27 Mar 2007 19:36:42 +0000",
			sts: "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
		},
		{
			name: "Object PUT", method: "PUT", target: "/photos/puppy.jpg", host: "johnsmith.s3.amazonaws.com", vhost: "johnsmith",
			headers: [][2]string{
				{"Content-Type", "image/jpeg"},
				{"Content-Length", "94328"},
				{"Date", "Tue, 27 Mar 2007 21:15:45 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:MyyxeRY7whkBe+bq8fHCL/2kKUg="},
			},
			now: "Tue, 27 Mar 2007 21:15:45 +0000",
			sts: "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
		},
		{
			name: "List", method: "GET", target: "/?prefix=photos&max-keys=50&marker=puppy", host: "johnsmith.s3.amazonaws.com", vhost: "johnsmith",
			headers: [][2]string{
				{"User-Agent", "Mozilla/5.0"},
				{"Date", "Tue, 27 Mar 2007 19:42:41 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:htDYFYduRNen8P9ZfE/s9SuKy0U="},
			},
			now: "Tue, 27 Mar 2007 19:42:41 +0000",
			sts: "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
		},
		{
			name: "Fetch acl", method: "GET", target: "/?acl", host: "johnsmith.s3.amazonaws.com", vhost: "johnsmith",
			headers: [][2]string{
				{"Date", "Tue, 27 Mar 2007 19:44:46 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM="},
			},
			now: "Tue, 27 Mar 2007 19:44:46 +0000",
			sts: "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
		},
		{
			// Path style, x-amz-date beside Date: the example puts the
			// x-amz-date value on the Date line.
			name: "Delete", method: "DELETE", target: "/johnsmith/photos/puppy.jpg", host: "s3.amazonaws.com",
			headers: [][2]string{
				{"User-Agent", "dotnet"},
				{"Date", "Tue, 27 Mar 2007 21:20:27 +0000"},
				{"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:lx3byBScXR6KzyMaifNkardMwNk="},
			},
			now: "Tue, 27 Mar 2007 21:20:26 +0000",
			sts: "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg",
		},
		{
			// A CNAME-style virtual host: the whole host is the bucket.
			name: "Upload", method: "PUT", target: "/db-backup.dat.gz", host: "static.johnsmith.net:8080", vhost: "static.johnsmith.net",
			headers: [][2]string{
				{"User-Agent", "curl/7.15.5"},
				{"Date", "Tue, 27 Mar 2007 21:06:08 +0000"},
				{"x-amz-acl", "public-read"},
				{"content-type", "application/x-download"},
				{"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
				{"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
				{"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
				{"X-Amz-Meta-FileChecksum", "0x02661779"},
				{"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
				{"Content-Disposition", "attachment; filename=database.dat"},
				{"Content-Encoding", "gzip"},
				{"Content-Length", "5913339"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc="},
			},
			now: "Tue, 27 Mar 2007 21:06:08 +0000",
			sts: "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n" +
				"x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\n" +
				"x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n/static.johnsmith.net/db-backup.dat.gz",
		},
		{
			name: "List all my buckets", method: "GET", target: "/", host: "s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Wed, 28 Mar 2007 01:29:59 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s="},
			},
			now: "Wed, 28 Mar 2007 01:29:59 +0000",
			sts: "GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/",
		},
		{
			// The path is signed as sent, lower-case escapes included.
			name: "Unicode keys", method: "GET", target: "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", host: "s3.amazonaws.com",
			headers: [][2]string{
				{"Date", "Wed, 28 Mar 2007 01:49:49 +0000"},
				{"Authorization", "AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM="},
			},
			now: "Wed, 28 Mar 2007 01:49:49 +0000",
			sts: "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
		},
		{
			name: "Query string request authentication", method: "GET", host: "johnsmith.s3.amazonaws.com", vhost: "johnsmith",
			target: "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
			now:    "Tue, 27 Mar 2007 19:36:42 +0000",
			sts:    "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			for _, h := range tt.headers {
				r.Header.Add(h[0], h[1])
			}
			a, err := exampleVerifier(t, mustParseTime(t, tt.now)).Verify(r, tt.vhost)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKey != exampleAccessKey {
				t.Errorf("AccessKey = %q", a.AccessKey)
			}
			if got := candidatesOf(r, tt.vhost); !slices.Contains(got, tt.sts) {
				t.Errorf("StringToSign %q not among the candidates %q", tt.sts, got)
			}
		})
	}
}

// candidatesOf builds the StringToSign candidates of r the way Verify does.
func candidatesOf(r *http.Request, vhost string) []string {
	params := parseQuery(r.URL.RawQuery)
	q := request{
		method: r.Method, md5: r.Header.Get("Content-MD5"), typ: r.Header.Get("Content-Type"),
		date: r.Header.Get("Date"), amz: amzHeaders(r.Header, nil),
		paths: resourcePaths(r, vhost), resources: subresources(params),
	}
	if exp, ok := param(params, "Expires"); ok {
		q.date, q.expires, q.amz = exp, true, amzHeaders(r.Header, params)
		q.md5, q.typ = headerOrParam(r, params, "Content-MD5"), headerOrParam(r, params, "Content-Type")
	}
	return q.candidates()
}

// TestStringToSign checks the canonicalization rules one by one.
func TestStringToSign(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		vhost   string
		headers [][2]string
		want    string // first candidate
		also    string // another candidate, when not ""
	}{
		{
			name: "sub-resources sorted with decoded values, other parameters left out", method: "GET",
			target:  "/b/k?versionId=v%2B1+2&prefix=x&response-content-type=text%2Fplain&acl&max-keys=3",
			headers: [][2]string{{"Date", "D"}},
			want:    "GET\n\n\nD\n/b/k?acl&response-content-type=text/plain&versionId=v+1 2",
		},
		{
			name: "uploads and part upload", method: "PUT", target: "/b/k?uploadId=abc&partNumber=2",
			headers: [][2]string{{"Date", "D"}},
			want:    "PUT\n\n\nD\n/b/k?partNumber=2&uploadId=abc",
		},
		{
			// botocore signs it as sent, minio-go without the '='.
			name: "a sub-resource sent with '=' and no value keeps it, or not", method: "POST", target: "/b/k?uploads=",
			headers: [][2]string{{"Date", "D"}},
			want:    "POST\n\n\nD\n/b/k?uploads=",
			also:    "POST\n\n\nD\n/b/k?uploads",
		},
		{
			name: "x-amz-date: empty Date line, x-amz-date among the headers", method: "GET", target: "/b/",
			headers: [][2]string{{"Date", "D"}, {"X-Amz-Date", "X"}, {"x-amz-meta-a", "  1 "}, {"X-AMZ-META-A", "2"}},
			want:    "GET\n\n\n\nx-amz-date:X\nx-amz-meta-a:1,2\n/b/",
		},
		{
			name: "virtual host", method: "GET", target: "/", vhost: "bucket",
			headers: [][2]string{{"Date", "D"}},
			want:    "GET\n\n\nD\n/bucket/",
		},
		{
			name: "path as sent", method: "GET", target: "/b/a+b%2fc;d=e",
			headers: [][2]string{{"Date", "D"}},
			want:    "GET\n\n\nD\n/b/a+b%2fc;d=e",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			for _, h := range tt.headers {
				r.Header.Add(h[0], h[1])
			}
			got := candidatesOf(r, tt.vhost)
			if got[0] != tt.want {
				t.Errorf("StringToSign\n got %q\nwant %q", got[0], tt.want)
			}
			if tt.also != "" && !slices.Contains(got, tt.also) {
				t.Errorf("StringToSign %q not among the candidates %q", tt.also, got)
			}
		})
	}
}
