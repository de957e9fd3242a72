// Package postpolicy parses and checks the policy document of a
// browser-based upload (S3's POST Object, "Creating a POST policy"): a
// JSON document, sent base64-encoded in the form's policy field and
// covered by its signature, with an expiration and a list of conditions
// every form field must meet. The gateway checks the signature (packages
// sigv4 and sigv2); this package decides whether the form is what the
// policy allows.
package postpolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxDocument bounds the decoded policy document.
const MaxDocument = 64 << 10

// Policy is a parsed policy document.
type Policy struct {
	Expiration time.Time
	conditions []condition
	// sizeRange is content-length-range: the file's size must lie in
	// [minSize, maxSize].
	sizeRange        bool
	minSize, maxSize int64
}

// condition is one field condition. field is lower-case, without '$'.
type condition struct {
	op    string // "eq" or "starts-with"
	field string
	value string
}

func (c condition) String() string {
	return fmt.Sprintf("[%q, %q, %q]", c.op, "$"+c.field, c.value)
}

// Parse decodes a policy document (already base64-decoded). Errors say
// what is wrong in words a client can act on.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxDocument {
		return nil, fmt.Errorf("the policy document is larger than %d bytes", MaxDocument)
	}
	var raw struct {
		Expiration *string           `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("the policy document is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("the policy document has data after its JSON object")
	}
	if raw.Expiration == nil {
		return nil, fmt.Errorf("the policy document has no expiration")
	}
	exp, err := time.Parse(time.RFC3339Nano, *raw.Expiration)
	if err != nil {
		return nil, fmt.Errorf("the policy's expiration %q is not an ISO 8601 time: %v", *raw.Expiration, err)
	}
	p := &Policy{Expiration: exp}
	for _, c := range raw.Conditions {
		if err := p.addCondition(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Policy) addCondition(c json.RawMessage) error {
	c = bytes.TrimSpace(c)
	if len(c) > 0 && c[0] == '{' {
		// {"field": "value"}: an exact match.
		var m map[string]any
		if err := json.Unmarshal(c, &m); err != nil {
			return fmt.Errorf("policy condition %s: %v", c, err)
		}
		if len(m) == 0 {
			return fmt.Errorf("policy condition %s is empty", c)
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("policy condition %s: the value of %q is not a string", c, k)
			}
			p.conditions = append(p.conditions, condition{op: "eq", field: strings.ToLower(strings.TrimPrefix(k, "$")), value: s})
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	var a []any
	if err := dec.Decode(&a); err != nil {
		return fmt.Errorf("policy condition %s is neither an object nor an array", c)
	}
	if len(a) != 3 {
		return fmt.Errorf("policy condition %s does not have 3 elements", c)
	}
	op, ok := a[0].(string)
	if !ok {
		return fmt.Errorf("policy condition %s: the operator is not a string", c)
	}
	switch op = strings.ToLower(op); op {
	case "eq", "starts-with":
		field, ok1 := a[1].(string)
		value, ok2 := a[2].(string)
		if !ok1 || !ok2 || !strings.HasPrefix(field, "$") || len(field) < 2 {
			return fmt.Errorf("policy condition %s: expected [%q, \"$field\", \"value\"]", c, op)
		}
		p.conditions = append(p.conditions, condition{op: op, field: strings.ToLower(field[1:]), value: value})
	case "content-length-range":
		lo, err1 := size(a[1])
		hi, err2 := size(a[2])
		if err1 != nil || err2 != nil || lo > hi {
			return fmt.Errorf("policy condition %s: expected [\"content-length-range\", min, max] with 0 <= min <= max", c)
		}
		if p.sizeRange {
			lo, hi = max(lo, p.minSize), min(hi, p.maxSize)
		}
		p.sizeRange, p.minSize, p.maxSize = true, lo, hi
	default:
		return fmt.Errorf("policy condition %s: unknown operator %q", c, op)
	}
	return nil
}

// size reads a content-length-range bound: a non-negative integer, as a
// JSON number or a string of digits.
func size(v any) (int64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("not a number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/2 {
		return 0, fmt.Errorf("not a size: %q", s)
	}
	return n, nil
}

// SizeRange is the content-length-range condition, if any (a nil policy,
// an anonymous upload's, has none).
func (p *Policy) SizeRange() (lo, hi int64, ok bool) {
	if p == nil {
		return 0, 0, false
	}
	return p.minSize, p.maxSize, p.sizeRange
}

// exempt reports whether a form field needs no condition: the signature
// fields, the policy itself, the file, and x-ignore-* fields.
func exempt(field string) bool {
	switch field {
	case "policy", "file", "x-amz-signature", "signature", "awsaccesskeyid":
		return true
	}
	return strings.HasPrefix(field, "x-ignore-")
}

// A Violation is a form the policy does not allow; Error says why, as S3
// words it.
type Violation struct{ Reason string }

func (v *Violation) Error() string { return "Invalid according to Policy: " + v.Reason }

// Check tells whether a form may use the policy at now: it has not
// expired, every condition holds (the bucket condition against bucket,
// the others against the form field of that name, "" when absent), and
// every form field but the exempt ones has a condition. fields maps
// lower-case field names to values.
func (p *Policy) Check(fields map[string]string, bucket string, now time.Time) error {
	if !now.Before(p.Expiration) {
		return &Violation{Reason: "Policy expired."}
	}
	covered := map[string]bool{}
	for _, c := range p.conditions {
		covered[c.field] = true
		v := fields[c.field]
		if c.field == "bucket" {
			v = bucket
		}
		ok := v == c.value
		if c.op == "starts-with" {
			ok = strings.HasPrefix(v, c.value)
		}
		if !ok {
			return &Violation{Reason: "Policy Condition failed: " + c.String()}
		}
	}
	var extra []string
	for f := range fields {
		if !covered[f] && !exempt(f) {
			extra = append(extra, f)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return &Violation{Reason: "Extra input fields: " + strings.Join(extra, ", ")}
	}
	return nil
}
