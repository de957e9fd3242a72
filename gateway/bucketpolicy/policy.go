// Package bucketpolicy reads the bucket policies the gateway accepts: the
// subset of S3's policy language that grants (or denies) anonymous
// clients the read operations, so that a bucket, or the keys under a
// prefix, can be published. Every other construct is refused with an
// error saying which, never ignored: a policy the gateway stores means
// exactly what it says.
//
// Accepted:
//
//	{"Version": "2012-10-17",
//	 "Statement": [{"Sid": "...", "Effect": "Allow" | "Deny",
//	   "Principal": "*" | {"AWS": "*" | ["*"]},
//	   "Action": "s3:GetObject" | "s3:ListBucket" | "s3:GetBucketLocation" | [...],
//	   "Resource": "arn:aws:s3:::BUCKET" | "arn:aws:s3:::BUCKET/PATTERN" | [...]}]}
//
// where PATTERN may hold the wildcards * (any run of characters, '/'
// included) and ? (any one character). A request is allowed when some
// Allow statement matches it and no Deny statement does.
package bucketpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Actions the policies may name, as S3 spells them.
const (
	GetObject         = "s3:GetObject"
	ListBucket        = "s3:ListBucket"
	GetBucketLocation = "s3:GetBucketLocation"
)

// objectActions apply to object resources (BUCKET/KEY); the others to the
// bucket itself.
var actions = map[string]bool{GetObject: true, ListBucket: false, GetBucketLocation: false}

// ErrUnsupported marks what the policy language has and this gateway does
// not do (S3 would accept it); other errors are malformed policies.
var ErrUnsupported = errors.New("not supported")

// MaxSize is the largest policy S3 accepts, in bytes.
const MaxSize = 20 << 10

// Policy is a parsed bucket policy.
type Policy struct {
	statements []statement
}

type statement struct {
	allow     bool
	actions   map[string]bool
	resources []string // patterns over "BUCKET" or "BUCKET/KEY"
}

// rawStatement is a statement as written; the fields this gateway refuses
// are listed so that they are reported by name.
type rawStatement struct {
	Sid          string          `json:"Sid"`
	Effect       string          `json:"Effect"`
	Principal    json.RawMessage `json:"Principal"`
	Action       json.RawMessage `json:"Action"`
	Resource     json.RawMessage `json:"Resource"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	NotAction    json.RawMessage `json:"NotAction"`
	NotResource  json.RawMessage `json:"NotResource"`
	Condition    json.RawMessage `json:"Condition"`
}

type rawPolicy struct {
	Version   string          `json:"Version"`
	ID        string          `json:"Id"`
	Statement json.RawMessage `json:"Statement"`
}

// Parse reads the policy doc of bucket.
func Parse(bucket string, doc []byte) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, fmt.Errorf("a policy may have at most %d bytes", MaxSize)
	}
	var raw rawPolicy
	if err := strictUnmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("the policy is not a JSON object of Version, Id and Statement: %w", err)
	}
	// No Version is the original language, 2008-10-17.
	if raw.Version != "2012-10-17" && raw.Version != "2008-10-17" && raw.Version != "" {
		return nil, fmt.Errorf("policy Version must be 2012-10-17 or 2008-10-17, not %q", raw.Version)
	}
	var raws []rawStatement
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one rawStatement
		if err := strictUnmarshal(raw.Statement, &one); err != nil {
			return nil, fmt.Errorf("statement: %w", err)
		}
		raws = []rawStatement{one}
	} else if err := strictUnmarshal(raw.Statement, &raws); err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	if len(raws) == 0 {
		return nil, errors.New("the policy has no statement")
	}
	p := &Policy{}
	for i, rs := range raws {
		s, err := parseStatement(bucket, rs)
		if err != nil {
			return nil, fmt.Errorf("statement %d: %w", i+1, err)
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

func parseStatement(bucket string, rs rawStatement) (statement, error) {
	for name, v := range map[string]json.RawMessage{"NotPrincipal": rs.NotPrincipal, "NotAction": rs.NotAction, "NotResource": rs.NotResource, "Condition": rs.Condition} {
		if v != nil {
			return statement{}, fmt.Errorf("%s is %w", name, ErrUnsupported)
		}
	}
	var s statement
	switch rs.Effect {
	case "Allow":
		s.allow = true
	case "Deny":
	default:
		return statement{}, fmt.Errorf("Effect must be Allow or Deny, not %q", rs.Effect)
	}
	if err := checkPrincipal(rs.Principal); err != nil {
		return statement{}, err
	}
	names, err := stringOrList(rs.Action, "Action")
	if err != nil {
		return statement{}, err
	}
	s.actions = map[string]bool{}
	for _, a := range names {
		canon, ok := canonicalAction(a)
		if !ok {
			return statement{}, fmt.Errorf("action %q is %w: anonymous access is read-only (%s, %s, %s)", a, ErrUnsupported, GetObject, ListBucket, GetBucketLocation)
		}
		s.actions[canon] = true
	}
	resources, err := stringOrList(rs.Resource, "Resource")
	if err != nil {
		return statement{}, err
	}
	const arn = "arn:aws:s3:::"
	for _, r := range resources {
		rest, ok := strings.CutPrefix(r, arn)
		if !ok || (rest != bucket && !strings.HasPrefix(rest, bucket+"/")) {
			return statement{}, fmt.Errorf("resource %q is not bucket %s or its objects (%s%s or %s%s/...)", r, bucket, arn, bucket, arn, bucket)
		}
		s.resources = append(s.resources, rest)
	}
	// Every action must apply to some resource, as S3 insists.
	for a := range s.actions {
		applies := false
		for _, r := range s.resources {
			if strings.Contains(r, "/") == actions[a] {
				applies = true
			}
		}
		if !applies {
			return statement{}, fmt.Errorf("action %s does not apply to any resource in the statement", a)
		}
	}
	return s, nil
}

// checkPrincipal accepts only everyone: "*" or {"AWS": "*" | ["*"]}. The
// gateway's one signed user needs no policy, and it knows no other.
func checkPrincipal(raw json.RawMessage) error {
	if raw == nil {
		return errors.New("a statement needs a Principal")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "*" {
			return nil
		}
	} else {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("principal: %w", err)
		}
		if aws, ok := m["AWS"]; ok && len(m) == 1 {
			ids, err := stringOrList(aws, "Principal AWS")
			if err != nil {
				return err
			}
			if len(ids) == 1 && ids[0] == "*" {
				return nil
			}
		}
	}
	return fmt.Errorf("principal %s is %w: only \"*\" (anonymous clients) is", raw, ErrUnsupported)
}

// canonicalAction matches S3's action names case-insensitively.
func canonicalAction(a string) (string, bool) {
	for name := range actions {
		if strings.EqualFold(a, name) {
			return name, true
		}
	}
	return "", false
}

// stringOrList reads a JSON string or a non-empty list of strings.
func stringOrList(raw json.RawMessage, what string) ([]string, error) {
	if raw == nil {
		return nil, fmt.Errorf("a statement needs %s", what)
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s must be a string or a non-empty list of strings", what)
	}
	return list, nil
}

// strictUnmarshal decodes one JSON value, refusing unknown fields and
// trailing data.
func strictUnmarshal(doc []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// Normalize parses doc as Parse does and returns it compacted, the form
// in which a policy is stored and returned.
func Normalize(bucket string, doc []byte) (string, error) {
	if _, err := Parse(bucket, doc); err != nil {
		return "", err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return "", err // Parse read it as JSON: not reached
	}
	return compact.String(), nil
}

// Allows tells whether the policy lets an anonymous client do action on
// bucket (key "") or on the object key.
func (p *Policy) Allows(action, bucket, key string) bool {
	resource := bucket
	if actions[action] {
		resource = bucket + "/" + key
	}
	allowed := false
	for _, s := range p.statements {
		if !s.actions[action] || !s.matches(resource) {
			continue
		}
		if !s.allow {
			return false
		}
		allowed = true
	}
	return allowed
}

// Grants tells whether the policy allows anything at all (S3's
// PolicyStatus IsPublic).
func (p *Policy) Grants() bool {
	for _, s := range p.statements {
		if s.allow {
			return true
		}
	}
	return false
}

func (s statement) matches(resource string) bool {
	for _, pat := range s.resources {
		if wildcardMatch(pat, resource) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against pattern, where * is any run of
// characters and ? any one character. Iterative, backtracking only to the
// last *: never exponential.
func wildcardMatch(pattern, s string) bool {
	pr, sr := []rune(pattern), []rune(s)
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(sr) {
		switch {
		case p < len(pr) && (pr[p] == '?' || pr[p] == sr[i]):
			p++
			i++
		case p < len(pr) && pr[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pr) && pr[p] == '*' {
		p++
	}
	return p == len(pr)
}
