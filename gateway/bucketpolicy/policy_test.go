package bucketpolicy

import (
	"errors"
	"strings"
	"testing"
)

// mcDownload is the policy MinIO's `mc anonymous set download` writes.
const mcDownload = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::pub"]},
 {"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::pub/*"]}]}`

func TestParseAndAllows(t *testing.T) {
	type q struct {
		action, key string
		want        bool
	}
	for _, tc := range []struct {
		name    string
		doc     string
		queries []q
	}{
		{"mc download", mcDownload, []q{
			{GetObject, "a/b.jpg", true}, {ListBucket, "", true}, {GetBucketLocation, "", true},
		}},
		{"one statement object, a prefix", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/public/*"}}`, []q{
			{GetObject, "public/x", true}, {GetObject, "public/deep/er/x", true}, {GetObject, "private/x", false},
			{GetObject, "publicx", false}, {ListBucket, "", false},
		}},
		{"deny carves out", `{"Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:getobject","Resource":"arn:aws:s3:::pub/*"},
			{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/secret/*"}]}`, []q{
			{GetObject, "x", true}, {GetObject, "secret/x", false}, {GetObject, "secretx", true},
		}},
		{"question mark", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/v?/é?.txt"}]}`, []q{
			{GetObject, "v1/éa.txt", true}, {GetObject, "v1/éé.txt", true}, {GetObject, "v12/éa.txt", false}, {GetObject, "v1/é.txt", false},
		}},
		{"exact key", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/index.html"}]}`, []q{
			{GetObject, "index.html", true}, {GetObject, "index.html5", false}, {GetObject, "x/index.html", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("pub", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !p.Grants() {
				t.Error("Grants() = false for a policy with Allow statements")
			}
			for _, c := range tc.queries {
				if got := p.Allows(c.action, "pub", c.key); got != c.want {
					t.Errorf("Allows(%s, %q) = %v, want %v", c.action, c.key, got, c.want)
				}
			}
			if p.Allows(GetObject, "other", "x") && !strings.Contains(tc.doc, "other") {
				t.Error("allows another bucket's object")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	for _, tc := range []struct {
		name, doc, want string
		unsupported     bool
	}{
		{"not json", `{"Version":`, "not a JSON object", false},
		{"trailing data", `{"Version":"2012-10-17","Statement":[]} {}`, "after the JSON value", false},
		{"unknown field", `{"Version":"2012-10-17","Statement":[],"Extra":1}`, "unknown field", false},
		{"bad version", `{"Version":"2020-01-01","Statement":[]}`, "Version", false},
		{"no statement", `{"Version":"2012-10-17","Statement":[]}`, "no statement", false},
		{"bad effect", stmt(`{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Effect", false},
		{"no principal", stmt(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Principal", false},
		{"a user principal", stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123:user/bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "principal", true},
		{"a service principal", stmt(`{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "principal", true},
		{"write action", stmt(`{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::pub/*"}`), "read-only", true},
		{"wildcard action", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pub/*"}`), "read-only", true},
		{"condition", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`), "Condition", true},
		{"not action", stmt(`{"Effect":"Allow","Principal":"*","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::pub/*"}`), "NotAction", true},
		{"other bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pubx/*"}`), "not bucket pub", false},
		{"wildcard bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::*"}`), "not bucket pub", false},
		{"object action on the bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub"}`), "does not apply", false},
		{"bucket action on objects", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub/*"}`), "does not apply", false},
		{"empty action list", stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::pub/*"}`), "Action", false},
		{"too large", `{"Version":"2012-10-17","Id":"` + strings.Repeat("x", MaxSize) + `","Statement":[]}`, "at most", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pub", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error mentioning %q", err, tc.want)
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("Parse: %v; unsupported %v, want %v", err, errors.Is(err, ErrUnsupported), tc.unsupported)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true}, {"*", "", true}, {"*", "anything/at/all", true}, {"a*", "a", true},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"*.jpg", "x/y.jpg", true}, {"*.jpg", "x/y.jpeg", false},
		{"?", "", false}, {"??", "ab", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"**a", "ba", true}, {"*a*a*a*b", strings.Repeat("a", 200), false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzParse: no input panics, and a policy that parses decides every
// request without panicking; one with no Allow allows nothing.
func FuzzParse(f *testing.F) {
	f.Add(mcDownload, "a/b")
	f.Add(`{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/?*"}}`, "x")
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub"}]}`, "")
	f.Fuzz(func(t *testing.T, doc, key string) {
		p, err := Parse("pub", []byte(doc))
		if err != nil {
			return
		}
		for action := range actions {
			if p.Allows(action, "pub", key) && !p.Grants() {
				t.Fatalf("%s on %q allowed by a policy without an Allow", action, key)
			}
		}
	})
}
