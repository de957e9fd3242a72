package lifecycle

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func rules(body string) string {
	return `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + body + `</LifecycleConfiguration>`
}

func mustParse(t *testing.T, doc string) *Configuration {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestObjectExpiry(t *testing.T) {
	c := mustParse(t, rules(`
<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>
<Rule><ID>tmp-big</ID><Filter><And><Prefix>tmp/</Prefix><ObjectSizeGreaterThan>1000</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>
<Rule><ID>small</ID><Filter><ObjectSizeLessThan>10</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>
<Rule><ID>old-form</ID><Prefix>old/</Prefix><Status>Enabled</Status><Expiration><Date>2027-01-01T00:00:00Z</Date></Expiration></Rule>
<Rule><ID>off</ID><Filter><Prefix>keep/</Prefix></Filter><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>
<Rule><ID>uploads</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
<Rule><ID>temp</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>
<Rule><ID>scratch</ID><Filter><And><Prefix>scratch/</Prefix><Tag><Key>temp</Key><Value>yes</Value></Tag><Tag><Key>team</Key><Value>a</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Date>2026-11-16</Date></Expiration></Rule>`))
	mod := time.Date(2026, 11, 15, 10, 30, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		key  string
		size int64
		tags map[string]string
		want time.Time // zero: never
		rule string    // the rule that decides it
	}{
		{"logs/a", 500, nil, day(19), "logs"}, // 15th 10:30 + 3 days, to the next midnight (S3's example)
		{"logsx", 500, nil, time.Time{}, ""},
		{"tmp/big", 2000, nil, day(17), "tmp-big"},
		{"tmp/notbig", 1000, nil, time.Time{}, ""},
		{"tiny", 9, nil, day(15).AddDate(0, 0, 31), "small"},
		{"logs/tiny", 5, nil, day(19), "logs"}, // the earliest of two rules
		{"old/x", 500, nil, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "old-form"},
		{"keep/x", 500, nil, time.Time{}, ""},
		{"x", 500, map[string]string{"temp": "yes"}, day(17), "temp"},
		{"x", 500, map[string]string{"temp": "no"}, time.Time{}, ""},
		{"scratch/x", 500, map[string]string{"temp": "yes", "team": "a"}, day(16), "scratch"},
		{"scratch/x", 500, map[string]string{"team": "a"}, time.Time{}, ""},
	} {
		at, rule, ok := c.ObjectExpiryRule(tc.key, tc.size, tc.tags, mod)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) || rule != tc.rule {
			t.Errorf("ObjectExpiryRule(%q, %d) = %v %q %v, want %v %q", tc.key, tc.size, at, rule, ok, tc.want, tc.rule)
		}
	}
	// Modified exactly at midnight: plus Days is a midnight already.
	if at, _ := c.ObjectExpiry("logs/a", 1, nil, day(15)); !at.Equal(day(18)) {
		t.Errorf("midnight + 3 days = %v, want %v", at, day(18))
	}
	if at, rule, ok := c.UploadExpiryRule("logs/u", mod); !ok || !at.Equal(day(18)) || rule != "uploads" {
		t.Errorf("UploadExpiryRule = %v %q %v, want %v \"uploads\"", at, rule, ok, day(18))
	}
	if _, ok := c.UploadExpiry("tmp/u", mod); ok {
		t.Error("an upload outside every abort rule's prefix expires")
	}
	if !c.ExpiresObjects() {
		t.Error("ExpiresObjects = false")
	}
	if mustParse(t, rules(`<Rule><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`)).ExpiresObjects() {
		t.Error("an abort-only configuration expires objects")
	}
}

func TestParseRefuses(t *testing.T) {
	exp := `<Expiration><Days>1</Days></Expiration>`
	for _, tc := range []struct {
		name, doc string
		want      error
		text      string
	}{
		{"not xml", `<LifecycleConfiguration><Rule>`, ErrMalformed, ""},
		{"other document", `<Tagging/>`, ErrMalformed, ""},
		{"trailing element", rules(`<Rule><Status>Enabled</Status>`+exp+`</Rule>`) + `<x/>`, ErrMalformed, "after the document"},
		{"no rule", rules(``), ErrMalformed, "no Rule"},
		{"bad status", rules(`<Rule><Status>On</Status>` + exp + `</Rule>`), ErrMalformed, "Status"},
		{"no action", rules(`<Rule><Status>Enabled</Status></Rule>`), ErrMalformed, "no action"},
		{"zero days", rules(`<Rule><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>`), ErrInvalid, "positive"},
		{"days and date", rules(`<Rule><Status>Enabled</Status><Expiration><Days>1</Days><Date>2027-01-01T00:00:00Z</Date></Expiration></Rule>`), ErrMalformed, "exactly one"},
		{"date not midnight", rules(`<Rule><Status>Enabled</Status><Expiration><Date>2027-01-01T10:00:00Z</Date></Expiration></Rule>`), ErrInvalid, "midnight"},
		{"date not a date", rules(`<Rule><Status>Enabled</Status><Expiration><Date>soon</Date></Expiration></Rule>`), ErrInvalid, "ISO 8601"},
		{"duplicate id", rules(`<Rule><ID>a</ID><Status>Enabled</Status>` + exp + `</Rule><Rule><ID>a</ID><Status>Enabled</Status>` + exp + `</Rule>`), ErrInvalid, "twice"},
		{"prefix and filter", rules(`<Rule><Prefix>a</Prefix><Filter><Prefix>b</Prefix></Filter><Status>Enabled</Status>` + exp + `</Rule>`), ErrMalformed, "both"},
		{"two filter conditions", rules(`<Rule><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status>` + exp + `</Rule>`), ErrMalformed, "And"},
		{"sizes crossed", rules(`<Rule><Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status>` + exp + `</Rule>`), ErrInvalid, "below"},
		{"abort with size filter", rules(`<Rule><Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`), ErrInvalid, "size"},
		{"transition", rules(`<Rule><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>`), ErrUnsupported, "tiers"},
		{"tag without key", rules(`<Rule><Filter><Tag><Value>b</Value></Tag></Filter><Status>Enabled</Status>` + exp + `</Rule>`), ErrInvalid, "Key"},
		{"duplicate tags in and", rules(`<Rule><Filter><And><Tag><Key>a</Key><Value>b</Value></Tag><Tag><Key>a</Key><Value>c</Value></Tag></And></Filter><Status>Enabled</Status>` + exp + `</Rule>`), ErrInvalid, "distinct"},
		{"abort with tag filter", rules(`<Rule><Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`), ErrInvalid, "tag"},
		{"unknown element", rules(`<Rule><Status>Enabled</Status><Frobnicate/>` + exp + `</Rule>`), ErrMalformed, "Frobnicate"},
		{"too many rules", rules(strings.Repeat(`<Rule><Status>Enabled</Status>`+exp+`</Rule>`, MaxRules+1)), ErrInvalid, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Parse: %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
}

// TestMarshalRoundTrip: what Marshal writes parses to the same rules.
func TestMarshalRoundTrip(t *testing.T) {
	c := mustParse(t, rules(`<Rule><ID>a</ID><Filter><And><Prefix>p/</Prefix><ObjectSizeLessThan>7</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>4</NoncurrentDays></NoncurrentVersionExpiration></Rule>`))
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, string(out))
	out2, _ := again.Marshal()
	if string(out) != string(out2) || !strings.Contains(string(out), `<ObjectSizeLessThan>7</ObjectSizeLessThan>`) {
		t.Fatalf("round trip:\n%s\n%s", out, out2)
	}
}

// FuzzParse: no document panics Parse, and one that parses marshals to a
// document that parses again and expires objects alike.
func FuzzParse(f *testing.F) {
	f.Add(rules(`<Rule><ID>x</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`), "a/b", int64(5))
	f.Add(rules(`<Rule><Prefix></Prefix><Status>Enabled</Status><Expiration><Date>2027-01-01</Date></Expiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>`), "k", int64(0))
	f.Fuzz(func(t *testing.T, doc, key string, size int64) {
		c, err := Parse([]byte(doc))
		if err != nil {
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("the marshalled document does not parse: %v\n%s", err, out)
		}
		mod := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		a1, ok1 := c.ObjectExpiry(key, size, map[string]string{"a": key}, mod)
		a2, ok2 := c2.ObjectExpiry(key, size, map[string]string{"a": key}, mod)
		if ok1 != ok2 || !a1.Equal(a2) {
			t.Fatalf("expiry %v %v, after the round trip %v %v", a1, ok1, a2, ok2)
		}
	})
}

func TestNoncurrentExpiry(t *testing.T) {
	c := mustParse(t, rules(`
<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>keep2</ID><Filter><Prefix>db/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>
<Rule><ID>big</ID><Filter><And><Prefix>media/</Prefix><ObjectSizeGreaterThan>1000</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>temp</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>off</ID><Filter><Prefix>keep/</Prefix></Filter><Status>Disabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>current</ID><Filter><Prefix>cur/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>`))
	since := time.Date(2026, 11, 15, 10, 30, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name  string
		key   string
		size  int64
		tags  map[string]string
		newer int
		want  time.Time // zero: never
	}{
		{"NoncurrentDays from the moment it became noncurrent, to the next midnight", "logs/a", 500, nil, 0, day(19)},
		{"older versions alike", "logs/a", 500, nil, 7, day(19)},
		{"a delete marker is a noncurrent version", "logs/a", 0, nil, 0, day(19)},
		{"outside every prefix", "other/a", 500, nil, 9, time.Time{}},
		{"the newest noncurrent version is kept", "db/x", 500, nil, 0, time.Time{}},
		{"the second newest is kept", "db/x", 500, nil, 1, time.Time{}},
		{"the third newest expires", "db/x", 500, nil, 2, day(17)},
		{"size filter matches", "media/v", 2000, nil, 0, day(17)},
		{"size filter does not match", "media/v", 1000, nil, 0, time.Time{}},
		{"a delete marker is of size 0", "media/v", 0, nil, 0, time.Time{}},
		{"tag filter matches", "x", 500, map[string]string{"temp": "yes"}, 0, day(21)},
		{"tag filter does not match", "x", 500, map[string]string{"temp": "no"}, 0, time.Time{}},
		{"the earliest of two rules", "logs/t", 500, map[string]string{"temp": "yes"}, 0, day(19)},
		{"a disabled rule", "keep/a", 500, nil, 3, time.Time{}},
		{"a current-object rule does not expire noncurrent versions", "cur/a", 500, nil, 3, time.Time{}},
	} {
		at, ok := c.NoncurrentExpiry(tc.key, tc.size, tc.tags, since, tc.newer)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) {
			t.Errorf("%s: NoncurrentExpiry(%q, %d, newer %d) = %v %v, want %v", tc.name, tc.key, tc.size, tc.newer, at, ok, tc.want)
		}
	}
	if at, _ := c.NoncurrentExpiry("logs/a", 1, nil, day(15), 0); !at.Equal(day(18)) {
		t.Errorf("noncurrent since midnight + 3 days = %v, want %v", at, day(18))
	}
	if !c.ExpiresVersions() {
		t.Error("ExpiresVersions = false")
	}
}

func TestDeleteMarkerExpiry(t *testing.T) {
	c := mustParse(t, rules(`
<Rule><ID>eodm</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>no</ID><Filter><Prefix>b/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>days</ID><Filter><Prefix>c/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>
<Rule><ID>date</ID><Filter><Prefix>d/</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2027-01-01</Date></Expiration></Rule>
<Rule><ID>tagged</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>big</ID><Filter><And><Prefix>e/</Prefix><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>off</ID><Filter><Prefix>f/</Prefix></Filter><Status>Disabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>
<Rule><ID>noncurrent</ID><Filter><Prefix>g/</Prefix></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>
<Rule><ID>both</ID><Filter><Prefix>c/now/</Prefix></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>`))
	made := time.Date(2026, 11, 15, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		key  string
		want time.Time // zero: never
	}{
		{"ExpiredObjectDeleteMarker removes it at once", "a/x", made},
		{"ExpiredObjectDeleteMarker false does nothing", "b/x", time.Time{}},
		{"Days: as old as an object the rule expires", "c/x", time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)},
		{"Date", "d/x", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"a tag filter never matches a marker", "x", time.Time{}},
		{"a marker is of size 0", "e/x", time.Time{}},
		{"a disabled rule", "f/x", time.Time{}},
		{"NoncurrentVersionExpiration alone does not remove it", "g/x", time.Time{}},
		{"outside every prefix", "z/x", time.Time{}},
		{"the earliest of two rules", "c/now/x", made},
	} {
		at, ok := c.DeleteMarkerExpiry(tc.key, made)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) {
			t.Errorf("%s: DeleteMarkerExpiry(%q) = %v %v, want %v", tc.name, tc.key, at, ok, tc.want)
		}
	}
}

func TestExpiresVersions(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want bool
	}{
		{`<Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>`, true},
		{`<Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`, true},
		{`<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`, true}, // removes expired delete markers
		{`<Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration>`, false},
		{`<Status>Disabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>`, false},
		{`<Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>`, false},
	} {
		c := mustParse(t, rules(`<Rule><Filter/>`+tc.rule+`</Rule>`))
		if got := c.ExpiresVersions(); got != tc.want {
			t.Errorf("ExpiresVersions(%s) = %v, want %v", tc.rule, got, tc.want)
		}
	}
}
