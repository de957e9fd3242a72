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

// q is one request and the decision expected for it.
type q struct {
	action, key, principal string
	vals                   MapValues
	want                   Decision
}

// anon and key build the common requests.
func anon(action, key string, want Decision) q { return q{action: action, key: key, want: want} }

func TestParseAndEvaluate(t *testing.T) {
	const get, list, put, del = "s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"
	for _, tc := range []struct {
		name    string
		doc     string
		public  bool
		queries []q
	}{
		{"mc download", mcDownload, true, []q{
			anon(get, "a/b.jpg", Allowed), anon(list, "", Allowed), anon("s3:GetBucketLocation", "", Allowed),
			anon(put, "a", Implicit), {action: get, key: "x", principal: "KEY1", want: Allowed},
		}},
		{"one statement object, a prefix", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/public/*"}}`, true, []q{
			anon(get, "public/x", Allowed), anon(get, "public/deep/er/x", Allowed), anon(get, "private/x", Implicit),
			anon(get, "publicx", Implicit), anon(list, "", Implicit),
		}},
		{"deny carves out", `{"Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:getobject","Resource":"arn:aws:s3:::pub/*"},
			{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/secret/*"}]}`, true, []q{
			anon(get, "x", Allowed), anon(get, "secret/x", Denied), anon(get, "secretx", Allowed),
		}},
		{"question mark", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/v?/é?.txt"}]}`, true, []q{
			anon(get, "v1/éa.txt", Allowed), anon(get, "v1/éé.txt", Allowed), anon(get, "v12/éa.txt", Implicit), anon(get, "v1/é.txt", Implicit),
		}},
		{"drop box", `{"Version":"2012-10-17","Statement":[{"Sid":"drop","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/incoming/*"}]}`, true, []q{
			anon(put, "incoming/f", Allowed), anon(get, "incoming/f", Implicit), anon(put, "elsewhere", Implicit),
		}},
		{"wildcard actions", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:Get*","s3:List?ucket"],"Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"]}]}`, true, []q{
			anon(get, "k", Allowed), anon("s3:GetObjectVersion", "k", Allowed), anon("s3:GetBucketLocation", "", Allowed),
			anon(list, "", Allowed), anon("s3:ListBucketVersions", "", Implicit), anon(put, "k", Implicit),
		}},
		{"key principals", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/READER1","WRITER1"]},"Action":"s3:*","Resource":"arn:aws:s3:::pub/*"},
			{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/team/LISTER1"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub"}]}`, false, []q{
			{action: get, key: "k", principal: "READER1", want: Allowed}, {action: del, key: "k", principal: "WRITER1", want: Allowed},
			{action: get, key: "k", principal: "OTHER1", want: Implicit}, anon(get, "k", Implicit),
			{action: list, principal: "LISTER1", want: Allowed}, {action: list, principal: "READER1", want: Implicit},
		}},
		{"deny delete to all but the owner", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Deny","NotPrincipal":{"AWS":"OWNER1"},"Action":["s3:DeleteObject","s3:DeleteObjectVersion"],"Resource":"arn:aws:s3:::pub/*"}]}`, false, []q{
			{action: del, key: "k", principal: "WRITER1", want: Denied}, {action: del, key: "k", principal: "OWNER1", want: Implicit},
			anon(del, "k", Denied), {action: put, key: "k", principal: "WRITER1", want: Implicit},
		}},
		{"not action, not resource", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","NotAction":["s3:Delete*","s3:Put*"],"Resource":"arn:aws:s3:::pub/*"},
			{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::pub/open/*"}]}`, true, []q{
			anon(get, "open/k", Allowed), anon(get, "closed/k", Denied), anon(put, "open/k", Implicit),
			anon("s3:GetObjectTagging", "closed/k", Allowed),
		}},
		{"deny without TLS", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":{"AWS":"K1"},"Action":"s3:*","Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"]},
			{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, false, []q{
			{action: get, key: "k", principal: "K1", vals: MapValues{KeySecureTransport: {"false"}}, want: Denied},
			{action: get, key: "k", principal: "K1", vals: MapValues{KeySecureTransport: {"true"}}, want: Allowed},
			{action: get, key: "k", principal: "K1", want: Allowed}, // the key absent: Bool false does not hold
		}},
		{"source ip", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*","Condition":{"IpAddress":{"aws:SourceIp":["10.1.0.0/16","2001:db8::/32","192.0.2.7"]}}}]}`, false, []q{
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"10.1.2.3"}}, want: Allowed},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"::ffff:10.1.2.3"}}, want: Allowed},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"10.2.2.3"}}, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"2001:db8:1::5"}}, want: Allowed},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"192.0.2.7"}}, want: Allowed},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"192.0.2.8"}}, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"not an ip"}}, want: Implicit},
			{action: get, key: "k", want: Implicit},
		}},
		{"not ip address deny", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pub/*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`, false, []q{
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"127.0.0.1"}}, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"10.0.0.1"}}, want: Denied},
			{action: get, key: "k", want: Denied}, // negated, key absent: holds
		}},
		{"deny uploads without sse", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*","Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}},
			{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":true}}}]}`, false, []q{
			{action: put, key: "k", principal: "K1", want: Denied},
			{action: put, key: "k", principal: "K1", vals: MapValues{KeySSE: {"aws:kms"}}, want: Denied},
			{action: put, key: "k", principal: "K1", vals: MapValues{KeySSE: {"AES256"}}, want: Implicit},
		}},
		{"if exists, numbers, dates, like, ignore case", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub","Condition":{
				"StringLike":{"s3:prefix":["home/*",""]},"NumericLessThanEqualsIfExists":{"s3:max-keys":100}}},
			{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*","Condition":{
				"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"DateGreaterThan":{"aws:EpochTime":"2020-01-01"},
				"StringEqualsIgnoreCase":{"aws:UserAgent":"CURL/8"}}}]}`, true, []q{
			{action: list, vals: MapValues{KeyPrefix: {"home/x/"}}, want: Allowed},
			{action: list, vals: MapValues{KeyPrefix: {""}, KeyMaxKeys: {"100"}}, want: Allowed},
			{action: list, vals: MapValues{KeyPrefix: {"home/"}, KeyMaxKeys: {"1000"}}, want: Implicit},
			{action: list, vals: MapValues{KeyPrefix: {"etc/"}}, want: Implicit},
			{action: list, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeyCurrentTime: {"2026-11-28T00:00:00Z"}, KeyEpochTime: {"1800000000"}, KeyUserAgent: {"curl/8"}}, want: Allowed},
			{action: get, key: "k", vals: MapValues{KeyCurrentTime: {"2031-01-01T00:00:00Z"}, KeyEpochTime: {"1800000000"}, KeyUserAgent: {"curl/8"}}, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeyCurrentTime: {"2026-11-28T00:00:00Z"}, KeyEpochTime: {"1500000000"}, KeyUserAgent: {"curl/8"}}, want: Implicit},
			{action: get, key: "k", vals: MapValues{KeyCurrentTime: {"2026-11-28T00:00:00Z"}, KeyEpochTime: {"1800000000"}, KeyUserAgent: {"wget"}}, want: Implicit},
		}},
		{"set qualifiers", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*","Condition":{
				"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["team","env"]},"StringEqualsIfExists":{"s3:RequestObjectTag/env":["dev","test"]}}},
			{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*","Condition":{
				"ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":"secret*"}}}]}`, true, []q{
			{action: put, key: "k", vals: MapValues{KeyRequestObjectTagKeys: {"team", "env"}, KeyRequestObjectTagPrefix + "env": {"dev"}}, want: Allowed},
			{action: put, key: "k", vals: MapValues{KeyRequestObjectTagKeys: {"team", "owner"}}, want: Implicit},
			{action: put, key: "k", vals: MapValues{KeyRequestObjectTagKeys: {"env"}, KeyRequestObjectTagPrefix + "env": {"prod"}}, want: Implicit},
			{action: put, key: "k", want: Allowed}, // no tags: ForAllValues holds, IfExists too
			{action: put, key: "k", vals: MapValues{KeyRequestObjectTagKeys: {"team", "secretx"}}, want: Denied},
		}},
		{"narrowed to users is not public", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*","Condition":{"StringEquals":{"aws:userid":"K1"}}}]}`, false, []q{
			{action: get, key: "k", principal: "K1", vals: MapValues{KeyUserID: {"K1"}, KeyUsername: {"K1"}}, want: Allowed},
			anon(get, "k", Implicit),
		}},
		{"wide source range stays public", `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}]}`, true, []q{
			{action: get, key: "k", vals: MapValues{KeySourceIP: {"203.0.113.9"}}, want: Allowed},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("pub", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.IsPublic(); got != tc.public {
				t.Errorf("IsPublic() = %v, want %v", got, tc.public)
			}
			for _, c := range tc.queries {
				req := Request{Action: c.action, Bucket: "pub", Key: c.key, Principal: c.principal, Values: c.vals}
				if got := p.Evaluate(req); got != c.want {
					t.Errorf("Evaluate(%s %q by %q, %v) = %v, want %v", c.action, c.key, c.principal, c.vals, got, c.want)
				}
				if !IsAction(c.action) {
					t.Errorf("%s is not an action", c.action)
				}
			}
			if p.Evaluate(Request{Action: "s3:GetObject", Bucket: "other", Key: "x"}) != Implicit && !strings.Contains(tc.doc, "NotResource") {
				t.Error("decides another bucket's object")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	obj := func(extra string) string {
		return stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"` + extra + `}`)
	}
	for _, tc := range []struct {
		name, doc, want string
		unsupported     bool
	}{
		{"not json", `{"Version":`, "valid JSON", false},
		{"trailing data", `{"Version":"2012-10-17","Statement":[]} {}`, "after the JSON value", false},
		{"unknown field", `{"Version":"2012-10-17","Statement":[],"Extra":1}`, "unknown field", false},
		{"bad version", `{"Version":"2020-01-01","Statement":[]}`, "valid version", false},
		{"no statement", `{"Version":"2012-10-17","Statement":[]}`, "Statement is empty", false},
		{"duplicate sid", stmt(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "must be unique", false},
		{"bad effect", stmt(`{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Invalid effect", false},
		{"no principal", stmt(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Principal", false},
		{"principal and not principal", stmt(`{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "not both", false},
		{"a bare principal string", stmt(`{"Effect":"Allow","Principal":"bob","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Invalid principal", false},
		{"wildcard in a principal", stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Invalid principal", false},
		{"a service principal", stmt(`{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "unsupported principal", true},
		{"a canonical user", stmt(`{"Effect":"Allow","Principal":{"CanonicalUser":"79a59df900b949e5"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "unsupported principal", true},
		{"a role", stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/r"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "unsupported principal", true},
		{"an account", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "unsupported principal", true},
		{"an account root", stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "unsupported principal", true},
		{"unknown principal type", stmt(`{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}`), "Invalid principal", false},
		{"unknown action", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObjekt","Resource":"arn:aws:s3:::pub/*"}`), "Policy has invalid action", false},
		{"wildcard matching nothing", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:Frobnicate*","Resource":"arn:aws:s3:::pub/*"}`), "Policy has invalid action", false},
		{"another service's action", stmt(`{"Effect":"Allow","Principal":"*","Action":"sqs:SendMessage","Resource":"arn:aws:s3:::pub/*"}`), "Policy has invalid action", false},
		{"empty action list", stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::pub/*"}`), "Policy has invalid action", false},
		{"other bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pubx/*"}`), "Policy has invalid resource", false},
		{"wildcard bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::*"}`), "Policy has invalid resource", false},
		{"not an s3 arn", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"pub/*"}`), "Policy has invalid resource", false},
		{"object action on the bucket", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub"}`), "does not apply", false},
		{"bucket action on objects", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub/*"}`), "does not apply", false},
		{"account action", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::pub"}`), "does not apply", false},
		{"one action of several does not apply", stmt(`{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::pub/*"}`), "does not apply", false},
		{"unknown operator", obj(`,"Condition":{"StringSortOf":{"aws:UserAgent":"x"}}`), "Invalid Condition type", false},
		{"arn operator", obj(`,"Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::x"}}`), "unsupported condition operator", true},
		{"unsupported key", obj(`,"Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1"}}`), "unsupported condition key", true},
		{"existing object tag", obj(`,"Condition":{"StringEquals":{"s3:ExistingObjectTag/team":"a"}}`), "unsupported condition key", true},
		{"another service's key", obj(`,"Condition":{"StringEquals":{"ec2:Vpc":"v"}}`), "invalid condition key", false},
		{"bad number", obj(`,"Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}`), "not a number", false},
		{"bad date", obj(`,"Condition":{"DateLessThan":{"aws:CurrentTime":"next week"}}`), "not a date", false},
		{"bad cidr", obj(`,"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), "not an IP address", false},
		{"bad bool", obj(`,"Condition":{"Bool":{"aws:SecureTransport":"yes"}}`), "true or false", false},
		{"null if exists", obj(`,"Condition":{"NullIfExists":{"aws:SecureTransport":"true"}}`), "Invalid Condition type", false},
		{"object value", obj(`,"Condition":{"StringEquals":{"aws:UserAgent":{"a":1}}}`), "invalid condition", false},
		{"empty operator", obj(`,"Condition":{"StringEquals":{}}`), "invalid condition", false},
		{"policy variable", stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/home/${aws:username}/*"}`), "variables", true},
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
			var pe *Error
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Errorf("Parse: %v is not an *Error with S3's reason", err)
			}
		})
	}
	// A policy variable is plain text in the 2008 language.
	if _, err := Parse("pub", []byte(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/${x}/*"}]}`)); err != nil {
		t.Errorf("2008-10-17 with ${x}: %v", err)
	}
}

func TestMayAllow(t *testing.T) {
	p, err := Parse("pub", []byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"K1"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::pub/tmp/*"},
		{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.MayAllow("K1", "s3:DeleteObject", "s3:DeleteObjectVersion") || p.MayAllow("K2", "s3:DeleteObject") || p.MayAllow("", "s3:DeleteObject") || !p.MayAllow("", "s3:GetObject") {
		t.Error("MayAllow answers wrong")
	}
}

func TestNormalize(t *testing.T) {
	doc := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": " + `{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub/*"}` + "\n}"
	got, err := Normalize("pub", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}}`; got != want {
		t.Errorf("Normalize = %s, want %s", got, want)
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
		{"*a", "*ba", true}, {"a*", "a*", true}, {"?b", "éb", true}, {"?", "é", true}, {"é?", "éé", true},
		{"\xff", "\xfe", false}, {"?", "\xff", true},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzParse: no input panics; a policy that parses decides every request
// without panicking, allows nothing when it has no Allow, denies nothing
// when it has no Deny, and normalizes to a document that parses alike.
func FuzzParse(f *testing.F) {
	f.Add(mcDownload, "a/b", "10.0.0.1")
	f.Add(`{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/?*"}}`, "x", "")
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub"}]}`, "", "")
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"K1"},"NotAction":"s3:Get*","Resource":"arn:aws:s3:::pub/*","Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},"ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":"a*"},"NumericGreaterThanIfExists":{"s3:max-keys":5}}}]}`, "k", "10.9.9.9")
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01"},"Null":{"s3:x-amz-server-side-encryption":"false"}}}]}`, "k", "")
	f.Fuzz(func(t *testing.T, doc, key, ip string) {
		p, err := Parse("pub", []byte(doc))
		if err != nil {
			return
		}
		hasAllow, hasDeny := false, false
		for _, s := range p.statements {
			hasAllow = hasAllow || s.allow
			hasDeny = hasDeny || !s.allow
		}
		vals := MapValues{KeySourceIP: {ip}, KeyPrefix: {key}, KeyMaxKeys: {key}, KeyCurrentTime: {key},
			KeyRequestObjectTagKeys: {key, ip}, KeySSE: {key}}
		for _, action := range []string{"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObjectVersion"} {
			for _, principal := range []string{"", "K1"} {
				d := p.Evaluate(Request{Action: action, Bucket: "pub", Key: key, Principal: principal, Values: vals})
				if d == Allowed && !hasAllow || d == Denied && !hasDeny {
					t.Fatalf("%s on %q by %q: %v from a policy without such a statement", action, key, principal, d)
				}
			}
		}
		norm, err := Normalize("pub", []byte(doc))
		if err != nil {
			t.Fatalf("Normalize of a policy that parses: %v", err)
		}
		if _, err := Parse("pub", []byte(norm)); err != nil {
			t.Fatalf("the normalized policy does not parse: %v", err)
		}
	})
}
