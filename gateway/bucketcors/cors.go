// Package bucketcors reads S3 bucket CORS configurations (PutBucketCors,
// GetBucketCors) and finds the rule that allows a cross-origin request, as
// Amazon S3 evaluates them.
//
// Accepted: a CORSConfiguration of 1 to MaxRules CORSRule elements, with
// no namespace or S3's (http://s3.amazonaws.com/doc/2006-03-01/), each rule
// holding, in any order:
//
//	<ID>            at most one, at most 255 characters
//	<AllowedOrigin> one or more, non-empty, at most one * wildcard each
//	<AllowedMethod> one or more, each exactly GET, PUT, HEAD, POST or DELETE
//	<AllowedHeader> any number, non-empty, at most one * wildcard each
//	<ExposeHeader>  any number, non-empty
//	<MaxAgeSeconds> at most one, an integer from 0 to 2^31-1
//
// and nothing else. A document S3's schema would refuse (not XML, another
// root, an unknown or repeated element, text between elements, an element
// in another namespace, no rule, a rule without origin or method, a
// MaxAgeSeconds that is not an integer, anything after the root) is
// ErrMalformed; one whose values S3 refuses is ErrInvalid. Attributes are
// ignored, as S3's schema has none. Values are kept as written: no
// trimming, no case folding.
//
// Matching follows S3: the first rule, in order, whose AllowedOrigin,
// AllowedMethod and (for a preflight) AllowedHeader elements allow the
// request is the one that answers. Origins and methods match
// case-sensitively, headers case-insensitively; a * matches any run of
// characters, none included.
//
// The package imports nothing of the store's but internal/xmlstrict.
package bucketcors

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cairnstore/cairn/internal/xmlstrict"
)

var (
	// ErrMalformed marks a document that is not XML or not a
	// CORSConfiguration as S3's schema has it (the gateway answers
	// MalformedXML).
	ErrMalformed = errors.New("malformed CORS configuration")
	// ErrInvalid marks a well-formed configuration with values S3
	// refuses (the gateway answers InvalidRequest).
	ErrInvalid = errors.New("invalid CORS configuration")
)

// MaxRules is S3's limit of rules per configuration.
const MaxRules = 100

// MaxSize is S3's limit on a configuration document, in bytes.
const MaxSize = 64 << 10

// namespace is S3's XML namespace, which Marshal writes and Parse allows.
const namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// maxIDLength is S3's limit on a rule's ID, in characters.
const maxIDLength = 255

// methods are the AllowedMethod values S3 accepts.
var methods = map[string]bool{"GET": true, "PUT": true, "HEAD": true, "POST": true, "DELETE": true}

// Configuration is a bucket's CORS configuration. Parse leaves XMLName and
// NS zero, whatever the document said; Marshal writes S3's namespace. So
// a Configuration built in Go compares equal to the one parsed back from
// its Marshal.
type Configuration struct {
	XMLName xml.Name `xml:"CORSConfiguration"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	Rules   []Rule   `xml:"CORSRule"`
}

// Rule is one CORSRule. Lists a document leaves out are nil. No list Parse
// returns holds an empty string: Marshal (omitempty applies to each
// element of a list) would drop an empty AllowedHeader or ExposeHeader.
type Rule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader,omitempty"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader,omitempty"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds,omitempty"`
}

// parseError is what Parse returns: its text is the message alone, worded
// for the client (S3's own words where S3's are known), and it wraps
// ErrMalformed or ErrInvalid.
type parseError struct {
	kind error
	msg  string
}

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return e.kind }

func malformed(format string, args ...any) error {
	return &parseError{kind: ErrMalformed, msg: "CORS configuration: " + fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &parseError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

// rawConfiguration and rawRule are the document as written. They differ
// from Configuration and Rule in what strict reading needs: elements the
// schema does not name are caught (to be refused, not dropped), text
// between elements is kept (to be refused), every element's namespace is
// kept, single elements are lists (so that a repeated one is seen), and
// MaxAgeSeconds is text (so that its lexical form is checked here).
type rawConfiguration struct {
	XMLName xml.Name         `xml:"CORSConfiguration"`
	Rules   []rawRule        `xml:"CORSRule"`
	Text    string           `xml:",chardata"`
	Unknown []unknownElement `xml:",any"`
}

type rawRule struct {
	XMLName        xml.Name
	ID             []text           `xml:"ID"`
	AllowedHeaders []text           `xml:"AllowedHeader"`
	AllowedMethods []text           `xml:"AllowedMethod"`
	AllowedOrigins []text           `xml:"AllowedOrigin"`
	ExposeHeaders  []text           `xml:"ExposeHeader"`
	MaxAgeSeconds  []text           `xml:"MaxAgeSeconds"`
	Text           string           `xml:",chardata"`
	Unknown        []unknownElement `xml:",any"`
}

// unknownElement catches an element the raw structs do not name.
type unknownElement struct {
	XMLName xml.Name
}

// text is a leaf element: its namespace and its character data. An element
// inside it is refused (encoding/xml would skip it and keep the text
// around it).
type text struct {
	space, value string
}

func (t *text) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	t.space = start.Name.Space
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case xml.CharData:
			b.Write(v)
		case xml.StartElement:
			return fmt.Errorf("element %s inside %s", v.Name.Local, start.Name.Local)
		case xml.EndElement:
			t.value = b.String()
			return nil
		}
	}
}

// Parse reads a CORSConfiguration document as a client sends it (the S3
// namespace attribute optional), checks it and returns it. Errors wrap
// ErrMalformed or ErrInvalid; their text is fit for the client, e.g.
// "Found unsupported HTTP method in CORS config. Unsupported method is
// PATCH". Every ErrMalformed check runs before any ErrInvalid one, as S3
// validates against its schema first.
func Parse(doc []byte) (*Configuration, error) {
	if len(doc) > MaxSize {
		return nil, invalid("The CORS configuration must be at most %d bytes; this one is %d.", MaxSize, len(doc))
	}
	raw, err := decode(doc)
	if err != nil {
		return nil, err
	}
	c, err := raw.configuration()
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode reads the one root element of doc into a rawConfiguration,
// allowing only whitespace, comments and processing instructions (the XML
// declaration) around it.
func decode(doc []byte) (*rawConfiguration, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil, malformed("the document is empty")
		}
		if err != nil {
			return nil, malformed("%v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			var raw rawConfiguration
			if err := dec.DecodeElement(&raw, &v); err != nil {
				return nil, malformed("%v", err)
			}
			if err := xmlstrict.TrailingSpaceOnly(dec); err != nil {
				return nil, malformed("%v", err)
			}
			return &raw, nil
		case xml.CharData:
			if !isSpace(string(v)) {
				return nil, malformed("text before the document")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return nil, malformed("data before the document")
		}
	}
}

// isSpace tells whether s is XML whitespace only.
func isSpace(s string) bool {
	return strings.Trim(s, " \t\r\n") == ""
}

// configuration checks raw against S3's schema and returns what it says.
func (raw *rawConfiguration) configuration() (*Configuration, error) {
	ns := raw.XMLName.Space
	if ns != "" && ns != namespace {
		return nil, malformed("namespace %q is not S3's, %s", ns, namespace)
	}
	if err := checkContent("CORSConfiguration", raw.Text, raw.Unknown); err != nil {
		return nil, err
	}
	if len(raw.Rules) == 0 {
		return nil, malformed("no CORSRule")
	}
	c := &Configuration{Rules: make([]Rule, len(raw.Rules))}
	for i := range raw.Rules {
		if err := raw.Rules[i].rule(ns, fmt.Sprintf("CORSRule %d", i+1), &c.Rules[i]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// rule checks rr, in the document's namespace ns, and fills r.
func (rr *rawRule) rule(ns, where string, r *Rule) error {
	if rr.XMLName.Space != ns {
		return malformed("%s is in namespace %q, not the document's", where, rr.XMLName.Space)
	}
	if err := checkContent(where, rr.Text, rr.Unknown); err != nil {
		return err
	}
	for _, f := range []struct {
		name     string
		elements []text
		min, max int // max 0: unbounded
		to       *[]string
	}{
		{"ID", rr.ID, 0, 1, nil},
		{"AllowedHeader", rr.AllowedHeaders, 0, 0, &r.AllowedHeaders},
		{"AllowedMethod", rr.AllowedMethods, 1, 0, &r.AllowedMethods},
		{"AllowedOrigin", rr.AllowedOrigins, 1, 0, &r.AllowedOrigins},
		{"ExposeHeader", rr.ExposeHeaders, 0, 0, &r.ExposeHeaders},
		{"MaxAgeSeconds", rr.MaxAgeSeconds, 0, 1, nil},
	} {
		if len(f.elements) < f.min {
			return malformed("%s has no %s", where, f.name)
		}
		if f.max > 0 && len(f.elements) > f.max {
			return malformed("%s has more than one %s", where, f.name)
		}
		for _, e := range f.elements {
			if e.space != ns {
				return malformed("%s: %s is in namespace %q, not the document's", where, f.name, e.space)
			}
			if f.to != nil {
				*f.to = append(*f.to, e.value)
			}
		}
	}
	if len(rr.ID) == 1 {
		r.ID = rr.ID[0].value
	}
	if len(rr.MaxAgeSeconds) == 1 {
		// An xsd:int: surrounding whitespace, an optional sign, digits.
		s := strings.Trim(rr.MaxAgeSeconds[0].value, " \t\r\n")
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return malformed("%s: MaxAgeSeconds %q is not a 32-bit integer", where, rr.MaxAgeSeconds[0].value)
		}
		age := int(n)
		r.MaxAgeSeconds = &age
	}
	return nil
}

// checkContent refuses text between the elements of where, and the first
// element its struct does not name.
func checkContent(where, chardata string, unknown []unknownElement) error {
	if !isSpace(chardata) {
		return malformed("text inside %s", where)
	}
	if len(unknown) > 0 {
		return malformed("unknown element %s in %s", unknown[0].XMLName.Local, where)
	}
	return nil
}

// validate checks the values S3 checks once the document fits its schema.
// The messages are S3's where S3's are known.
func (c *Configuration) validate() error {
	if len(c.Rules) > MaxRules {
		return invalid("The number of CORS rules should not exceed allowed limit of %d rules.", MaxRules)
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		for _, m := range r.AllowedMethods {
			if !methods[m] {
				return invalid("Found unsupported HTTP method in CORS config. Unsupported method is %s", m)
			}
		}
		for _, o := range r.AllowedOrigins {
			if o == "" {
				return invalid("AllowedOrigin can not be empty (CORSRule %d).", i+1)
			}
			if strings.Count(o, "*") > 1 {
				return invalid("AllowedOrigin %q can not have more than one wildcard.", o)
			}
		}
		for _, h := range r.AllowedHeaders {
			if h == "" {
				return invalid("AllowedHeader can not be empty (CORSRule %d).", i+1)
			}
			if strings.Count(h, "*") > 1 {
				return invalid("AllowedHeader %q can not have more than one wildcard.", h)
			}
		}
		for _, h := range r.ExposeHeaders {
			if h == "" {
				return invalid("ExposeHeader can not be empty (CORSRule %d).", i+1)
			}
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return invalid("MaxAgeSeconds can not be negative (CORSRule %d).", i+1)
		}
		if utf8.RuneCountInString(r.ID) > maxIDLength {
			return invalid("A CORSRule ID can not be longer than %d characters (CORSRule %d).", maxIDLength, i+1)
		}
	}
	return nil
}

// Marshal is the document GetBucketCors answers, and what is stored: the
// XML declaration and the CORSConfiguration in S3's namespace. For a c
// that Parse returned, Parse(Marshal(c)) gives c back.
func (c *Configuration) Marshal() ([]byte, error) {
	out := *c
	out.XMLName = xml.Name{}
	out.NS = namespace
	b, err := xml.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("marshal CORS configuration: %w", err)
	}
	return append([]byte(xml.Header), b...), nil
}

// Preflight is the first rule allowing a preflight request: origin, the
// method named by Access-Control-Request-Method, and every header named by
// Access-Control-Request-Headers (already split on commas and trimmed by
// the caller, any case; empty names, as a stray comma leaves, name no
// header); nil when none does, or c is nil. The rule points into c.
func (c *Configuration) Preflight(origin, method string, headers []string) *Rule {
	if c == nil {
		return nil
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.allows(origin, method) && r.allowsHeaders(headers) {
			return r
		}
	}
	return nil
}

// Request is the first rule allowing an actual cross-origin request:
// origin and method (its headers are not checked, as S3 does not); nil
// when none does, or c is nil. The rule points into c.
func (c *Configuration) Request(origin, method string) *Rule {
	if c == nil {
		return nil
	}
	for i := range c.Rules {
		if r := &c.Rules[i]; r.allows(origin, method) {
			return r
		}
	}
	return nil
}

// AllowOrigin is the Access-Control-Allow-Origin value a matched rule
// answers for origin: "*" when the first of the rule's AllowedOrigin
// elements that matches origin is exactly "*", else origin itself; "" when
// none matches.
func (r *Rule) AllowOrigin(origin string) string {
	o, ok := r.matchingOrigin(origin)
	switch {
	case !ok:
		return ""
	case o == "*":
		return "*"
	}
	return origin
}

// matchingOrigin is the first of r's AllowedOrigin elements that matches
// origin. An empty origin matches none.
func (r *Rule) matchingOrigin(origin string) (string, bool) {
	if origin == "" {
		return "", false
	}
	for _, o := range r.AllowedOrigins {
		if wildcardMatch(o, origin) {
			return o, true
		}
	}
	return "", false
}

func (r *Rule) allows(origin, method string) bool {
	if _, ok := r.matchingOrigin(origin); !ok {
		return false
	}
	for _, m := range r.AllowedMethods {
		if m == method {
			return true
		}
	}
	return false
}

func (r *Rule) allowsHeaders(headers []string) bool {
	for _, h := range headers {
		if h == "" {
			continue
		}
		h = strings.ToLower(h)
		allowed := false
		for _, a := range r.AllowedHeaders {
			if wildcardMatch(strings.ToLower(a), h) {
				allowed = true
				break
			}
		}
		if !allowed {
			return false
		}
	}
	return true
}

// wildcardMatch matches s against pattern, whose first * matches any run
// of characters, none included; the pattern is anchored at both ends.
// Parse allows one * per pattern; a further one, in a Configuration built
// otherwise, matches itself only.
func wildcardMatch(pattern, s string) bool {
	before, after, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}
