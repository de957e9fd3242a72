package postpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

const doc = `{"expiration": "2026-11-27T12:00:00.000Z",
  "conditions": [
    {"bucket": "photos"},
    ["starts-with", "$key", "user/eric/"],
    {"acl": "private"},
    ["eq", "$Content-Type", "image/jpeg"],
    ["starts-with", "$x-amz-meta-tag", ""],
    ["content-length-range", 1, "1048576"],
    {"x-amz-credential": "AK/20261127/us-east-1/s3/aws4_request"},
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    {"x-amz-date": "20261127T100000Z"}
  ]}`

func form() map[string]string {
	return map[string]string{
		"key": "user/eric/${filename}", "acl": "private", "content-type": "image/jpeg",
		"x-amz-meta-tag": "x", "x-amz-credential": "AK/20261127/us-east-1/s3/aws4_request",
		"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-date": "20261127T100000Z",
		"policy": "…", "x-amz-signature": "…", "x-ignore-me": "1",
	}
}

func TestCheck(t *testing.T) {
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, ok := p.SizeRange(); !ok || lo != 1 || hi != 1048576 {
		t.Fatalf("SizeRange = %d %d %v", lo, hi, ok)
	}
	for _, tc := range []struct {
		name   string
		edit   func(map[string]string)
		bucket string
		at     time.Time
		reason string // "" when allowed
	}{
		{"allowed", func(map[string]string) {}, "photos", now, ""},
		{"expired", func(map[string]string) {}, "photos", now.Add(2 * time.Hour), "Policy expired."},
		{"other bucket", func(map[string]string) {}, "videos", now, `Policy Condition failed: ["eq", "$bucket", "photos"]`},
		{"key outside the prefix", func(f map[string]string) { f["key"] = "user/bob/a" }, "photos", now, `Policy Condition failed: ["starts-with", "$key", "user/eric/"]`},
		{"other content type", func(f map[string]string) { f["content-type"] = "text/html" }, "photos", now, `Policy Condition failed: ["eq", "$content-type", "image/jpeg"]`},
		{"missing field of an eq condition", func(f map[string]string) { delete(f, "acl") }, "photos", now, `Policy Condition failed: ["eq", "$acl", "private"]`},
		{"extra field", func(f map[string]string) { f["success_action_status"] = "201"; f["x-amz-meta-other"] = "y" }, "photos", now, "Extra input fields: success_action_status, x-amz-meta-other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := form()
			tc.edit(f)
			err := p.Check(f, tc.bucket, tc.at)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || v.Reason != tc.reason {
				t.Fatalf("got %v, want the violation %q", err, tc.reason)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`not json`, "not valid JSON"},
		{`{"conditions": []}`, "no expiration"},
		{`{"expiration": "tomorrow"}`, "not an ISO 8601 time"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [["eq", "key", "x"]]}`, `expected ["eq", "$field", "value"]`},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [["eq", "$key"]]}`, "does not have 3 elements"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [["matches", "$key", "x"]]}`, `unknown operator "matches"`},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [["content-length-range", 10, 1]]}`, "min <= max"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [["content-length-range", -1, 1]]}`, "min <= max"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [{"key": 5}]}`, "is not a string"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": [{}]}`, "is empty"},
		{`{"expiration": "2026-11-27T12:00:00Z", "conditions": ["key"]}`, "neither an object nor an array"},
		{`{"expiration": "2026-11-27T12:00:00Z"} {}`, "data after"},
		{`{"expiration": "2026-11-27T12:00:00Z", "x": "` + strings.Repeat("a", MaxDocument) + `"}`, "larger than"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.60q) = %v, want an error with %q", tc.doc, err, tc.want)
		}
	}
}

// FuzzPolicy: no document makes Parse or Check panic, and a form that
// passes Check meets every condition it was parsed with.
func FuzzPolicy(f *testing.F) {
	f.Add([]byte(doc), "user/eric/x", "image/jpeg")
	f.Add([]byte(`{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range","0","0"],{"$key":"a"}]}`), "a", "")
	f.Fuzz(func(t *testing.T, d []byte, key, ctype string) {
		p, err := Parse(d)
		if err != nil {
			return
		}
		fields := map[string]string{"key": key, "content-type": ctype}
		if p.Check(fields, "photos", now) != nil {
			return
		}
		for _, c := range p.conditions {
			v := fields[c.field]
			if c.field == "bucket" {
				v = "photos"
			}
			if (c.op == "eq" && v != c.value) || (c.op == "starts-with" && !strings.HasPrefix(v, c.value)) {
				t.Fatalf("Check allowed %v against %v", fields, c)
			}
		}
	})
}
