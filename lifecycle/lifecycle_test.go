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
	}{
		{"logs/a", 500, nil, day(19)}, // 15th 10:30 + 3 days, to the next midnight (S3's example)
		{"logsx", 500, nil, time.Time{}},
		{"tmp/big", 2000, nil, day(17)},
		{"tmp/notbig", 1000, nil, time.Time{}},
		{"tiny", 9, nil, day(15).AddDate(0, 0, 31)},
		{"logs/tiny", 5, nil, day(19)}, // the earliest of two rules
		{"old/x", 500, nil, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"keep/x", 500, nil, time.Time{}},
		{"x", 500, map[string]string{"temp": "yes"}, day(17)},
		{"x", 500, map[string]string{"temp": "no"}, time.Time{}},
		{"scratch/x", 500, map[string]string{"temp": "yes", "team": "a"}, day(16)},
		{"scratch/x", 500, map[string]string{"team": "a"}, time.Time{}},
	} {
		at, ok := c.ObjectExpiry(tc.key, tc.size, tc.tags, mod)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) {
			t.Errorf("ObjectExpiry(%q, %d) = %v %v, want %v", tc.key, tc.size, at, ok, tc.want)
		}
	}
	// Modified exactly at midnight: plus Days is a midnight already.
	if at, _ := c.ObjectExpiry("logs/a", 1, nil, day(15)); !at.Equal(day(18)) {
		t.Errorf("midnight + 3 days = %v, want %v", at, day(18))
	}
	if at, ok := c.UploadExpiry("logs/u", mod); !ok || !at.Equal(day(18)) {
		t.Errorf("UploadExpiry = %v %v, want %v", at, ok, day(18))
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
