package bucketcors

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const s3NS = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`

// doc is a CORSConfiguration in S3's namespace holding body.
func doc(body string) string {
	return `<CORSConfiguration ` + s3NS + `>` + body + `</CORSConfiguration>`
}

func intp(n int) *int { return &n }

// The AWS documentation's examples. awsAPIExample is PutBucketCors's
// sample with its </MaxAgeSec> typo mended (the typo is in
// parseRefusals).
const (
	awsGuideExample = `<CORSConfiguration>
 <CORSRule>
   <AllowedOrigin>http://www.example1.com</AllowedOrigin>

   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>

   <AllowedHeader>*</AllowedHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>http://www.example2.com</AllowedOrigin>

   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>

   <AllowedHeader>*</AllowedHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>*</AllowedOrigin>
   <AllowedMethod>GET</AllowedMethod>
 </CORSRule>
</CORSConfiguration>`

	awsMaxAgeExample = `<CORSConfiguration>
 <CORSRule>
   <AllowedOrigin>http://www.example.com</AllowedOrigin>
   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>
   <AllowedHeader>*</AllowedHeader>
  <MaxAgeSeconds>3000</MaxAgeSeconds>
  <ExposeHeader>x-amz-server-side-encryption</ExposeHeader>
  <ExposeHeader>x-amz-request-id</ExposeHeader>
  <ExposeHeader>x-amz-id-2</ExposeHeader>
 </CORSRule>
</CORSConfiguration>`

	awsAPIExample = `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <AllowedOrigin>http://www.example.com</AllowedOrigin>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedMethod>POST</AllowedMethod>
    <AllowedMethod>DELETE</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <MaxAgeSeconds>3000</MaxAgeSeconds>
    <ExposeHeader>x-amz-server-side-encryption</ExposeHeader>
  </CORSRule>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <MaxAgeSeconds>3000</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>`
)

var parseAccepts = []struct {
	name, doc string
	want      []Rule
}{
	{"user guide example, no namespace", awsGuideExample, []Rule{
		{AllowedOrigins: []string{"http://www.example1.com"}, AllowedMethods: []string{"PUT", "POST", "DELETE"}, AllowedHeaders: []string{"*"}},
		{AllowedOrigins: []string{"http://www.example2.com"}, AllowedMethods: []string{"PUT", "POST", "DELETE"}, AllowedHeaders: []string{"*"}},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}},
	}},
	{"user guide MaxAgeSeconds example", awsMaxAgeExample, []Rule{{
		AllowedOrigins: []string{"http://www.example.com"}, AllowedMethods: []string{"PUT", "POST", "DELETE"}, AllowedHeaders: []string{"*"},
		MaxAgeSeconds: intp(3000), ExposeHeaders: []string{"x-amz-server-side-encryption", "x-amz-request-id", "x-amz-id-2"},
	}}},
	{"PutBucketCors example, in S3's namespace", awsAPIExample, []Rule{
		{AllowedOrigins: []string{"http://www.example.com"}, AllowedMethods: []string{"PUT", "POST", "DELETE"}, AllowedHeaders: []string{"*"}, MaxAgeSeconds: intp(3000), ExposeHeaders: []string{"x-amz-server-side-encryption"}},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, AllowedHeaders: []string{"*"}, MaxAgeSeconds: intp(3000)},
	}},
	{"declaration, comments, ID, every method", `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment --><CORSConfiguration ` + s3NS + `><!-- another -->
<CORSRule><ID>all</ID><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader></CORSRule>
</CORSConfiguration>
<!-- trailing comment -->
`, []Rule{{ID: "all", AllowedMethods: []string{"GET", "PUT", "HEAD", "POST", "DELETE"}, AllowedOrigins: []string{"https://*.example.com"}, AllowedHeaders: []string{"x-amz-*"}}}},
	{"prefixed namespace", `<s3:CORSConfiguration xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:CORSRule><s3:AllowedOrigin>*</s3:AllowedOrigin><s3:AllowedMethod>HEAD</s3:AllowedMethod></s3:CORSRule></s3:CORSConfiguration>`,
		[]Rule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"HEAD"}}}},
	{"elements in any order, values kept as written", doc(`<CORSRule><MaxAgeSeconds> 0 </MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader><AllowedOrigin> http://a.test</AllowedOrigin><AllowedHeader>X-Amz-Date</AllowedHeader><AllowedMethod>GET</AllowedMethod><ID>x&amp;y</ID></CORSRule>`),
		[]Rule{{ID: "x&y", MaxAgeSeconds: intp(0), ExposeHeaders: []string{"ETag"}, AllowedOrigins: []string{" http://a.test"}, AllowedHeaders: []string{"X-Amz-Date"}, AllowedMethods: []string{"GET"}}}},
	{"CDATA and attributes", doc(`<CORSRule id="ignored"><AllowedOrigin><![CDATA[http://a.test]]></AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`),
		[]Rule{{AllowedOrigins: []string{"http://a.test"}, AllowedMethods: []string{"GET"}}}},
	{"largest MaxAgeSeconds, longest ID", doc(`<CORSRule><ID>` + strings.Repeat("é", 255) + `</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>+2147483647</MaxAgeSeconds></CORSRule>`),
		[]Rule{{ID: strings.Repeat("é", 255), AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, MaxAgeSeconds: intp(2147483647)}}},
	{"MaxRules rules", doc(strings.Repeat(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`, MaxRules)), nil},
	{"MaxSize bytes", padTo(doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), MaxSize), nil},
}

// padTo pads d with trailing whitespace to n bytes.
func padTo(d string, n int) string {
	return d + strings.Repeat(" ", n-len(d))
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range parseAccepts {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.NS != "" || c.XMLName.Space != "" || c.XMLName.Local != "" {
				t.Errorf("XMLName %v, NS %q: want them zero", c.XMLName, c.NS)
			}
			if tc.want != nil && !reflect.DeepEqual(c.Rules, tc.want) {
				t.Errorf("rules\n%#v\nwant\n%#v", c.Rules, tc.want)
			}
		})
	}
}

// rule is a valid CORSRule to build invalid documents around.
const rule = `<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`

var parseRefusals = []struct {
	name, doc string
	want      error
	text      string // in the message; the whole message when exact
	exact     bool
}{
	// Not a CORSConfiguration by S3's schema.
	{"empty", ``, ErrMalformed, "empty", false},
	{"not xml", `{"CORSRules": []}`, ErrMalformed, "text before", false},
	{"truncated", doc(rule)[:40], ErrMalformed, "EOF", false},
	{"other document", `<Tagging><TagSet/></Tagging>`, ErrMalformed, "CORSConfiguration", false},
	{"other namespace", `<CORSConfiguration xmlns="http://example.com/">` + rule + `</CORSConfiguration>`, ErrMalformed, "namespace", false},
	{"rule in another namespace", doc(`<CORSRule xmlns="http://example.com/"><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "namespace", false},
	{"origin in another namespace", doc(`<CORSRule><AllowedOrigin xmlns="">*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "namespace", false},
	{"undeclared prefix", doc(`<x:CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></x:CORSRule>`), ErrMalformed, "namespace", false},
	{"trailing element", doc(rule) + `<x/>`, ErrMalformed, "after the document", false},
	{"trailing text", doc(rule) + `garbage`, ErrMalformed, "after the document", false},
	{"second root", doc(rule) + doc(rule), ErrMalformed, "after the document", false},
	{"leading text", `junk` + doc(rule), ErrMalformed, "before the document", false},
	{"doctype", `<!DOCTYPE CORSConfiguration>` + doc(rule), ErrMalformed, "before the document", false},
	{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(rule), ErrMalformed, "encoding", false},
	{"invalid UTF-8", doc(`<CORSRule><AllowedOrigin>http://` + "\xff" + `</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "UTF-8", false},
	{"no rule", doc(``), ErrMalformed, "no CORSRule", false},
	{"empty rule", doc(`<CORSRule/>`), ErrMalformed, "CORSRule 1 has no AllowedMethod", false},
	{"no origin", doc(rule + `<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "CORSRule 2 has no AllowedOrigin", false},
	{"no method", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>`), ErrMalformed, "no AllowedMethod", false},
	{"unknown element in rule", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethods>PUT</AllowedMethods></CORSRule>`), ErrMalformed, "unknown element AllowedMethods in CORSRule 1", false},
	{"unknown element in configuration", doc(rule + `<Rule/>`), ErrMalformed, "unknown element Rule in CORSConfiguration", false},
	{"PutBucketCors example as printed", strings.Replace(awsAPIExample, "</MaxAgeSeconds>", "</MaxAgeSec>", 1), ErrMalformed, "MaxAgeSec", false},
	{"two IDs", doc(`<CORSRule><ID>a</ID><ID>b</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "more than one ID", false},
	{"two MaxAgeSeconds", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds></CORSRule>`), ErrMalformed, "more than one MaxAgeSeconds", false},
	{"MaxAgeSeconds not a number", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule>`), ErrMalformed, "integer", false},
	{"MaxAgeSeconds empty", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds/></CORSRule>`), ErrMalformed, "integer", false},
	{"MaxAgeSeconds fraction", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>1.5</MaxAgeSeconds></CORSRule>`), ErrMalformed, "integer", false},
	{"MaxAgeSeconds beyond an int", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>2147483648</MaxAgeSeconds></CORSRule>`), ErrMalformed, "integer", false},
	{"text in rule", doc(`<CORSRule>GET<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrMalformed, "text inside CORSRule 1", false},
	{"text in configuration", doc(`stray` + rule), ErrMalformed, "text inside CORSConfiguration", false},
	{"element in a value", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>G<b/>ET</AllowedMethod></CORSRule>`), ErrMalformed, "element b inside AllowedMethod", false},
	{"schema before values", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule><CORSRule/>`), ErrMalformed, "CORSRule 2", false},

	// Well-formed, refused values.
	{"unsupported method", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PATCH</AllowedMethod></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is PATCH", true},
	{"lowercase method", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is get", true},
	{"OPTIONS", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>OPTIONS</AllowedMethod></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is OPTIONS", true},
	{"wildcard method", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>*</AllowedMethod></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is *", true},
	{"empty method", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod/></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is ", true},
	{"method with spaces", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod> GET</AllowedMethod></CORSRule>`), ErrInvalid,
		"Found unsupported HTTP method in CORS config. Unsupported method is  GET", true},
	{"two wildcards in an origin", doc(`<CORSRule><AllowedOrigin>*example*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrInvalid,
		`AllowedOrigin "*example*.com" can not have more than one wildcard.`, true},
	{"two wildcards in a header", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-*-*</AllowedHeader></CORSRule>`), ErrInvalid,
		`AllowedHeader "x-*-*" can not have more than one wildcard.`, true},
	{"empty origin", doc(`<CORSRule><AllowedOrigin></AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrInvalid, "AllowedOrigin can not be empty", false},
	{"empty AllowedHeader", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader/></CORSRule>`), ErrInvalid, "AllowedHeader can not be empty", false},
	{"empty ExposeHeader", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader></ExposeHeader></CORSRule>`), ErrInvalid, "ExposeHeader can not be empty", false},
	{"negative MaxAgeSeconds", doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule>`), ErrInvalid, "MaxAgeSeconds can not be negative", false},
	{"long ID", doc(`<CORSRule><ID>` + strings.Repeat("a", 256) + `</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`), ErrInvalid, "255 characters", false},
	{"too many rules", doc(strings.Repeat(rule, MaxRules+1)), ErrInvalid,
		"The number of CORS rules should not exceed allowed limit of 100 rules.", true},
	{"too large", padTo(doc(rule), MaxSize+1), ErrInvalid, "at most 65536 bytes", false},
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range parseRefusals {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: %v, want %v", err, tc.want)
			}
			other := ErrInvalid
			if tc.want == ErrInvalid {
				other = ErrMalformed
			}
			if errors.Is(err, other) {
				t.Errorf("Parse: %v is both kinds", err)
			}
			if tc.exact && err.Error() != tc.text || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("Parse: %q, want a message with %q", err, tc.text)
			}
		})
	}
}

// TestMarshalRoundTrip: Marshal writes S3's document, and Parse gives back
// what was marshalled.
func TestMarshalRoundTrip(t *testing.T) {
	for _, tc := range parseAccepts {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<CORSConfiguration `+s3NS+`><CORSRule>`)) {
				t.Errorf("Marshal starts %.120s", out)
			}
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("the marshalled document does not parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(again, c) {
				t.Errorf("round trip\n%#v\nwant\n%#v", again, c)
			}
			if out2, _ := again.Marshal(); !bytes.Equal(out, out2) {
				t.Errorf("Marshal differs after the round trip:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestMarshalBuilt(t *testing.T) {
	// A Configuration built in Go, whatever its XMLName and NS, marshals
	// once in S3's namespace (no duplicate xmlns) and parses back to its
	// rules.
	c := &Configuration{
		XMLName: xml.Name{Space: "http://example.com/", Local: "Whatever"},
		NS:      "http://example.com/",
		Rules: []Rule{{
			ID: "a<b", AllowedOrigins: []string{"https://*.example.com", "http://x.test"}, AllowedMethods: []string{"GET", "HEAD"},
			AllowedHeaders: []string{"Authorization"}, ExposeHeaders: []string{"ETag", "x-amz-request-id"}, MaxAgeSeconds: intp(600),
		}},
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<CORSConfiguration ` + s3NS + `><CORSRule><ID>a&lt;b</ID><AllowedHeader>Authorization</AllowedHeader>` +
		`<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedOrigin>http://x.test</AllowedOrigin>` +
		`<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>`
	if string(out) != want {
		t.Fatalf("Marshal\n%s\nwant\n%s", out, want)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Rules, c.Rules) {
		t.Errorf("rules\n%#v\nwant\n%#v", again.Rules, c.Rules)
	}
}

func mustParse(t *testing.T, d string) *Configuration {
	t.Helper()
	c, err := Parse([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// matchRules is the configuration the matching tests use; the comments
// number its rules as the tables do.
var matchRules = doc(`
<CORSRule><ID>0</ID><AllowedOrigin>http://www.example1.com</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedMethod>DELETE</AllowedMethod><AllowedHeader>*</AllowedHeader></CORSRule>
<CORSRule><ID>1</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>X-Amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader></CORSRule>
<CORSRule><ID>2</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
<CORSRule><ID>3</ID><AllowedOrigin>*suffix</AllowedOrigin><AllowedOrigin>start*end</AllowedOrigin><AllowedOrigin>prefix*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>range</AllowedHeader></CORSRule>`)

// ruleIndex is the index of r in c's rules, -1 for nil.
func ruleIndex(t *testing.T, c *Configuration, r *Rule) int {
	t.Helper()
	if r == nil {
		return -1
	}
	for i := range c.Rules {
		if r == &c.Rules[i] {
			return i
		}
	}
	t.Fatalf("rule %p is not one of the configuration's", r)
	return -2
}

func TestPreflight(t *testing.T) {
	c := mustParse(t, matchRules)
	for _, tc := range []struct {
		name, origin, method string
		headers              []string
		want                 int // rule index; -1: none
	}{
		{"literal origin, any header", "http://www.example1.com", "PUT", []string{"X-Custom", "content-md5"}, 0},
		{"rules in order: the first allowing GET", "http://www.example1.com", "GET", nil, 2},
		{"origin wildcard", "https://bucket.example.com", "GET", nil, 1},
		{"wildcard spans dots", "https://a.b.example.com", "GET", nil, 1},
		{"wildcard matches nothing", "https://.example.com", "GET", nil, 1},
		{"no subdomain: only *", "https://example.com", "GET", nil, 2},
		{"scheme must match", "http://bucket.example.com", "GET", nil, 2},
		{"header case ignored, with wildcard", "https://bucket.example.com", "GET", []string{"x-amz-date", "X-AMZ-META-FOO", "CONTENT-TYPE"}, 1},
		{"header wildcard matches nothing", "https://bucket.example.com", "GET", []string{"x-amz-"}, 1},
		{"one header not allowed: no rule (rule 2 has no AllowedHeader)", "https://bucket.example.com", "GET", []string{"x-amz-date", "authorization"}, -1},
		{"header on a rule without AllowedHeader", "http://other.test", "GET", []string{"x-amz-date"}, -1},
		{"empty header names ignored", "http://www.example1.com", "DELETE", []string{"", "x-a"}, 0},
		{"empty header list", "http://other.test", "GET", []string{}, 2},
		{"method case-sensitive", "http://www.example1.com", "put", nil, -1},
		{"method not allowed", "http://www.example1.com", "PATCH", nil, -1},
		{"origin case-sensitive", "HTTP://WWW.EXAMPLE1.COM", "PUT", nil, -1},
		{"trailing slash is another origin", "http://www.example1.com/", "PUT", nil, -1},
		{"port is another origin", "http://www.example1.com:80", "PUT", nil, -1},
		{"empty origin matches not even *", "", "GET", nil, -1},
		{"leading wildcard", "foo.suffix", "HEAD", []string{"Range"}, 3},
		{"inner wildcard", "start12end", "HEAD", nil, 3},
		{"inner wildcard matching nothing", "startend", "HEAD", nil, 3},
		{"trailing wildcard", "prefix", "HEAD", nil, 3},
		{"anchored at the end", "foo.suffix.get", "HEAD", nil, -1},
		{"anchored at the start", "0start12end", "HEAD", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ruleIndex(t, c, c.Preflight(tc.origin, tc.method, tc.headers)); got != tc.want {
				t.Errorf("Preflight(%q, %q, %q) = rule %d, want %d", tc.origin, tc.method, tc.headers, got, tc.want)
			}
		})
	}
	var none *Configuration
	if none.Preflight("http://a.test", "GET", nil) != nil || none.Request("http://a.test", "GET") != nil {
		t.Error("a nil configuration allows a request")
	}
}

func TestRequest(t *testing.T) {
	c := mustParse(t, matchRules)
	for _, tc := range []struct {
		origin, method string
		want           int
	}{
		{"http://www.example1.com", "DELETE", 0},
		{"http://www.example1.com", "GET", 2},
		{"https://bucket.example.com", "GET", 1},
		{"https://bucket.example.com", "PUT", -1},
		{"http://other.test", "GET", 2},
		{"http://other.test", "DELETE", -1},
		{"foo.suffix", "HEAD", 3}, // headers are not checked
		{"", "GET", -1},
		{"http://www.example1.com", "OPTIONS", -1},
	} {
		if got := ruleIndex(t, c, c.Request(tc.origin, tc.method)); got != tc.want {
			t.Errorf("Request(%q, %q) = rule %d, want %d", tc.origin, tc.method, got, tc.want)
		}
	}
}

func TestAllowOrigin(t *testing.T) {
	for _, tc := range []struct {
		origins      []string
		origin, want string
	}{
		{[]string{"*"}, "http://a.test", "*"},
		{[]string{"http://a.test"}, "http://a.test", "http://a.test"},
		{[]string{"https://*.example.com"}, "https://x.example.com", "https://x.example.com"},
		{[]string{"http://a.test", "*"}, "http://a.test", "http://a.test"}, // the first matching origin decides
		{[]string{"http://a.test", "*"}, "http://b.test", "*"},
		{[]string{"*", "http://a.test"}, "http://a.test", "*"},
		{[]string{"*.test"}, "http://a.test", "http://a.test"}, // a wildcard, not exactly "*"
		{[]string{"http://a.test"}, "http://b.test", ""},
		{[]string{"*"}, "", ""},
	} {
		r := &Rule{AllowedOrigins: tc.origins, AllowedMethods: []string{"GET"}}
		if got := r.AllowOrigin(tc.origin); got != tc.want {
			t.Errorf("AllowOrigin(%q) with %q = %q, want %q", tc.origin, tc.origins, got, tc.want)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "a", false},
		{"ab*ba", "aba", false}, // prefix and suffix may not share characters
		{"ab*ba", "abba", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"a**", "a*", true}, // beyond Parse: the second * is literal
		{"a**", "ab", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzParse: no document panics Parse; one Parse accepts marshals to a
// document that parses back equal, and both answer requests alike.
func FuzzParse(f *testing.F) {
	for _, tc := range parseAccepts {
		if len(tc.doc) < 4096 {
			f.Add(tc.doc, "http://www.example.com", "PUT", "x-amz-date")
		}
	}
	for _, tc := range parseRefusals {
		if len(tc.doc) < 4096 {
			f.Add(tc.doc, "https://a.example.com", "GET", "Content-Type")
		}
	}
	f.Add(matchRules, "foo.suffix", "HEAD", "range")
	f.Fuzz(func(t *testing.T, d, origin, method, header string) {
		c, err := Parse([]byte(d))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v is neither ErrMalformed nor ErrInvalid", err)
			}
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
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip\n%#v\nwant\n%#v", c2, c)
		}
		headers := strings.Split(header, ",")
		p1, p2 := ruleIndex(t, c, c.Preflight(origin, method, headers)), ruleIndex(t, c2, c2.Preflight(origin, method, headers))
		r1, r2 := ruleIndex(t, c, c.Request(origin, method)), ruleIndex(t, c2, c2.Request(origin, method))
		if p1 != p2 || r1 != r2 {
			t.Fatalf("Preflight %d, %d and Request %d, %d after the round trip", p1, p2, r1, r2)
		}
		if r1 >= 0 {
			if a := c.Rules[r1].AllowOrigin(origin); a != "*" && a != origin {
				t.Fatalf("AllowOrigin(%q) = %q for a matching rule", origin, a)
			}
		}
	})
}
