package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/gateway/s3err"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

func TestParseVersioningConfiguration(t *testing.T) {
	const ns = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`
	for _, tc := range []struct {
		name, doc string
		want      pb.VersioningStatus
		err       error // nil: accepted as want
	}{
		{"aws cli enabled", `<VersioningConfiguration ` + ns + `><Status>Enabled</Status></VersioningConfiguration>`, pb.VersioningStatus_VERSIONING_STATUS_ENABLED, nil},
		{"suspended, no namespace", `<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`, pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED, nil},
		{"MFA delete disabled, spaces", "<?xml version=\"1.0\"?>\n<VersioningConfiguration><Status> Enabled </Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>\n", pb.VersioningStatus_VERSIONING_STATUS_ENABLED, nil},
		{"no status", `<VersioningConfiguration ` + ns + `/>`, pb.VersioningStatus_VERSIONING_STATUS_UNSET, nil},
		{"MFA delete enabled", `<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>`, 0, errMFADelete},
		{"unknown MFA delete", `<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Maybe</MfaDelete></VersioningConfiguration>`, 0, errVersioningConfig},
		{"lower case", `<VersioningConfiguration><Status>enabled</Status></VersioningConfiguration>`, 0, errVersioningConfig},
		{"disabled", `<VersioningConfiguration><Status>Disabled</Status></VersioningConfiguration>`, 0, errVersioningConfig},
		{"other root", `<Tagging><TagSet/></Tagging>`, 0, errVersioningConfig},
		{"trailing data", `<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration><x/>`, 0, errVersioningConfig},
		{"not XML", `Enabled`, 0, errVersioningConfig},
		{"unclosed", `<VersioningConfiguration><Status>Enabled</Status>`, 0, errVersioningConfig},
		{"empty", ``, 0, errVersioningConfig},
	} {
		got, err := parseVersioningConfiguration([]byte(tc.doc))
		switch {
		case tc.err == nil && (err != nil || got != tc.want):
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.err)
		}
	}
}

func FuzzParseVersioningConfiguration(f *testing.F) {
	f.Add([]byte(`<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>`))
	f.Add([]byte(`<VersioningConfiguration><Status>Suspended</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>`))
	f.Add([]byte(`<VersioningConfiguration/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		st, err := parseVersioningConfiguration(doc)
		switch {
		case err == nil && st != pb.VersioningStatus_VERSIONING_STATUS_ENABLED && st != pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED && st != pb.VersioningStatus_VERSIONING_STATUS_UNSET:
			t.Fatalf("accepted %q as %v", doc, st)
		case err != nil && !errors.Is(err, errVersioningConfig) && !errors.Is(err, errMFADelete):
			t.Fatalf("error %v is neither a bad configuration nor MFA delete", err)
		}
	})
}

func TestVersionIDParam(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  string
		msg   string // "": accepted
	}{
		{"", "", ""},
		{"versionId=null", "null", ""},
		{"versionId=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", ""},
		{"versionId=00000000000000070000000a", "00000000000000070000000a", ""}, // a delete marker's
		{"versionId=", "", "Version id cannot be the empty string"},
		{"versionId", "", "Version id cannot be the empty string"},
		{"versionId=NULL", "", "Invalid version id specified"},
		{"versionId=v2", "", "Invalid version id specified"},
		{"versionId=0123456789ABCDEF", "", "Invalid version id specified"},
		{"versionId=" + strings.Repeat("a", maxVersionIDLen+1), "", "Invalid version id specified"},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := versionIDParam(q)
		var e *s3err.Error
		switch {
		case tc.msg == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.query, got, err, tc.want)
		case tc.msg != "" && (!errors.As(err, &e) || e.Code != s3err.InvalidArgument || e.Message != tc.msg):
			t.Errorf("%q: %v; want InvalidArgument %q", tc.query, err, tc.msg)
		}
	}
}

// Operations that cannot take a version refuse one rather than act on the
// current object; "null" is every unversioned object's version.
func TestVersionIDUnsupported(t *testing.T) {
	for _, tc := range []struct {
		op, query string
		want      bool
	}{
		{"GetObject", "versionId=0a", false},
		{"DeleteObject", "versionId=0a", false},
		{"PutObjectTagging", "versionId=0a", false},
		{"PutObject", "versionId=0a", true},
		{"CopyObject", "versionId=0a", true},
		{"PutObject", "versionId=null", false},
		{"PutObject", "", false},
	} {
		r := &http.Request{URL: &url.URL{RawQuery: tc.query}}
		if got := versionIDUnsupported(tc.op, r); got != tc.want {
			t.Errorf("%s ?%s: %v, want %v", tc.op, tc.query, got, tc.want)
		}
	}
}
