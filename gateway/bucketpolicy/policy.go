// Package bucketpolicy reads and evaluates S3 bucket policies: the IAM
// policy language as S3 applies it to one bucket. Everything the
// language can say is either evaluated as S3 does or refused with an
// error saying what (ErrUnsupported: S3 would accept it, Cairn does not
// do it), never ignored: a policy the gateway stores means exactly what
// it says.
//
// The grammar:
//
//	{"Version": "2012-10-17" | "2008-10-17", "Id": "...",
//	 "Statement": STATEMENT | [STATEMENT, ...]}
//
//	STATEMENT: {"Sid": "...", "Effect": "Allow" | "Deny",
//	  "Principal" | "NotPrincipal": PRINCIPAL,
//	  "Action" | "NotAction": ACTION | [ACTION, ...],
//	  "Resource" | "NotResource": RESOURCE | [RESOURCE, ...],
//	  "Condition": {OPERATOR: {KEY: VALUE | [VALUE, ...]}}}
//
// PRINCIPAL is "*" or {"AWS": ID | [ID, ...]} where ID is "*" (everyone,
// anonymous clients included), a Cairn access key id, or an IAM user ARN
// arn:aws:iam::ACCOUNT:user/KEYID naming one (Cairn has one account: any
// ACCOUNT is accepted and means it). Other principals (Service,
// Federated, CanonicalUser, roles, an account) are ErrUnsupported.
//
// ACTION is an S3 action ("s3:GetObject"), case-insensitive, with the
// wildcards * and ?; it must name at least one of S3's actions.
// RESOURCE is arn:aws:s3:::BUCKET or arn:aws:s3:::BUCKET/PATTERN, where
// BUCKET is the policy's own bucket and PATTERN may hold * (any run of
// characters, '/' included) and ?; every action must apply to one of the
// statement's resources (bucket actions to the bucket, object actions to
// objects), as S3 checks.
//
// OPERATOR is one of String(Not)Equals(IgnoreCase), String(Not)Like,
// Numeric(Not)Equals, Numeric{Less,Greater}Than(Equals), Date(Not)Equals,
// Date{Less,Greater}Than(Equals), Bool, IpAddress, NotIpAddress, Null,
// with an IfExists suffix (not Null) and a ForAnyValue: or ForAllValues:
// qualifier; KEY one of the Key constants (condition.go). A key of AWS's
// or S3's not among them is ErrUnsupported, so that a Deny never silently
// fails to apply.
//
// Evaluation is IAM's: a request is Denied when a Deny statement matches
// it, otherwise Allowed when an Allow statement does, otherwise neither
// (Implicit: the caller's other grants decide).
package bucketpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ErrUnsupported marks what the policy language has and Cairn does not
// do (S3 would accept it); other errors are malformed policies.
var ErrUnsupported = errors.New("not supported")

// Error is a policy refused: Reason is S3's message for it ("Policy has
// invalid action"), Detail what and where.
type Error struct {
	Reason      string
	Detail      string
	Statement   int // 1-based; 0: the document itself
	unsupported bool
}

func (e *Error) Error() string {
	where := ""
	if e.Statement > 0 {
		where = fmt.Sprintf("statement %d: ", e.Statement)
	}
	return fmt.Sprintf("%s (%s%s)", e.Reason, where, e.Detail)
}

// Is makes an unsupported construct's error match ErrUnsupported.
func (e *Error) Is(target error) bool { return e.unsupported && target == ErrUnsupported }

func malformed(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func unsupported(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...), unsupported: true}
}

// MaxSize is the largest policy S3 accepts, in bytes.
const MaxSize = 20 << 10

// Policy is a parsed bucket policy.
type Policy struct {
	statements []statement
}

type statement struct {
	allow        bool
	principals   principals
	notPrincipal bool
	actions      map[string]bool // S3 actions, wildcards expanded
	notAction    bool
	resources    []string // patterns over "BUCKET" or "BUCKET/KEY"
	notResource  bool
	conditions   []condition
}

// principals is a Principal: everyone, or access keys by id.
type principals struct {
	everyone bool
	keys     map[string]bool
}

// Decision is what a policy says of a request.
type Decision int

const (
	// Implicit: no statement matches; the requester's own grants decide.
	Implicit Decision = iota
	Allowed
	Denied
)

// Request is what a request asks of a bucket.
type Request struct {
	Action string // an S3 action as spelled in the reference (IsAction)
	Bucket string
	Key    string // the object, for an object action
	// Principal is the access key id that signed the request, "" for an
	// anonymous one.
	Principal string
	// Values are the request's condition keys (nil: none).
	Values Values
}

// rawStatement is a statement as written.
type rawStatement struct {
	Sid          json.RawMessage `json:"Sid"`
	Effect       string          `json:"Effect"`
	Principal    json.RawMessage `json:"Principal"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	Action       json.RawMessage `json:"Action"`
	NotAction    json.RawMessage `json:"NotAction"`
	Resource     json.RawMessage `json:"Resource"`
	NotResource  json.RawMessage `json:"NotResource"`
	Condition    json.RawMessage `json:"Condition"`
}

type rawPolicy struct {
	Version   string          `json:"Version"`
	ID        json.RawMessage `json:"Id"`
	Statement json.RawMessage `json:"Statement"`
}

// Parse reads the policy doc of bucket.
func Parse(bucket string, doc []byte) (*Policy, error) {
	if len(doc) > MaxSize {
		return nil, malformed("Policies must be at most 20 KB", "this one has %d bytes; at most %d", len(doc), MaxSize)
	}
	var raw rawPolicy
	if err := strictUnmarshal(doc, &raw); err != nil {
		return nil, malformed("Policies must be valid JSON and the first byte must be '{'", "not a JSON object of Version, Id and Statement: %v", err)
	}
	// No Version is the original language, 2008-10-17, which has no
	// policy variables.
	if raw.Version != "2012-10-17" && raw.Version != "2008-10-17" && raw.Version != "" {
		return nil, malformed("The policy must contain a valid version string", "Version must be 2012-10-17 or 2008-10-17, not %q", raw.Version)
	}
	if raw.ID != nil && !isJSONString(raw.ID) {
		return nil, malformed("Policy has an invalid Id", "Id must be a string")
	}
	policyVars := raw.Version == "2012-10-17"
	var raws []rawStatement
	if s := bytes.TrimSpace(raw.Statement); len(s) > 0 && s[0] == '{' {
		var one rawStatement
		if err := strictUnmarshal(s, &one); err != nil {
			return nil, malformed("Policies must be valid JSON and the first byte must be '{'", "Statement: %v", err)
		}
		raws = []rawStatement{one}
	} else if err := strictUnmarshal(raw.Statement, &raws); err != nil {
		return nil, malformed("Policies must be valid JSON and the first byte must be '{'", "Statement must be a statement or a list of them: %v", err)
	}
	if len(raws) == 0 {
		return nil, malformed("Could not parse the policy: Statement is empty!", "the policy has no statement")
	}
	p := &Policy{}
	sids := map[string]bool{}
	for i, rs := range raws {
		if rs.Sid != nil {
			var sid string
			if err := json.Unmarshal(rs.Sid, &sid); err != nil {
				return nil, &Error{Reason: "Statement IDs (SID) must be strings", Detail: string(rs.Sid), Statement: i + 1}
			}
			if sid != "" && sids[sid] {
				return nil, &Error{Reason: "Statement IDs (SID) in a single policy must be unique", Detail: sid, Statement: i + 1}
			}
			sids[sid] = true
		}
		s, err := parseStatement(bucket, rs, policyVars)
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				pe.Statement = i + 1
			}
			return nil, err
		}
		p.statements = append(p.statements, s)
	}
	return p, nil
}

func parseStatement(bucket string, rs rawStatement, policyVars bool) (statement, error) {
	var s statement
	switch rs.Effect {
	case "Allow":
		s.allow = true
	case "Deny":
	default:
		return s, malformed("Invalid effect", "Effect must be Allow or Deny, not %q", rs.Effect)
	}

	principal := rs.Principal
	switch {
	case rs.Principal != nil && rs.NotPrincipal != nil:
		return s, malformed("Policy has invalid principal", "a statement has Principal or NotPrincipal, not both")
	case rs.NotPrincipal != nil:
		principal, s.notPrincipal = rs.NotPrincipal, true
	case rs.Principal == nil:
		return s, malformed("Missing required field Principal", "a bucket policy statement names its Principal")
	}
	var err error
	if s.principals, err = parsePrincipal(principal); err != nil {
		return s, err
	}

	actions := rs.Action
	switch {
	case rs.Action != nil && rs.NotAction != nil:
		return s, malformed("Policy has invalid action", "a statement has Action or NotAction, not both")
	case rs.NotAction != nil:
		actions, s.notAction = rs.NotAction, true
	case rs.Action == nil:
		return s, malformed("Missing required field Action", "a statement names its Action or NotAction")
	}
	names, err := stringOrList(actions)
	if err != nil {
		return s, malformed("Policy has invalid action", "Action: %v", err)
	}
	s.actions = map[string]bool{}
	var expanded [][]string
	for _, a := range names {
		if a == "*" {
			a = "s3:*"
		}
		as := expandAction(a)
		if len(as) == 0 {
			return s, malformed("Policy has invalid action", "%q is not an S3 action", a)
		}
		for _, x := range as {
			s.actions[x] = true
		}
		expanded = append(expanded, as)
	}

	resources := rs.Resource
	switch {
	case rs.Resource != nil && rs.NotResource != nil:
		return s, malformed("Policy has invalid resource", "a statement has Resource or NotResource, not both")
	case rs.NotResource != nil:
		resources, s.notResource = rs.NotResource, true
	case rs.Resource == nil:
		return s, malformed("Missing required field Resource", "a statement names its Resource or NotResource")
	}
	rnames, err := stringOrList(resources)
	if err != nil {
		return s, malformed("Policy has invalid resource", "Resource: %v", err)
	}
	const arn = "arn:aws:s3:::"
	for _, r := range rnames {
		rest, ok := strings.CutPrefix(r, arn)
		if !ok || (rest != bucket && !strings.HasPrefix(rest, bucket+"/")) {
			return s, malformed("Policy has invalid resource", "%q is not bucket %s or its objects (%s%s, %s%s/KEY-PATTERN)", r, bucket, arn, bucket, arn, bucket)
		}
		if policyVars && strings.Contains(rest, "${") {
			return s, unsupported("Policy variables are not supported", "Resource %q", r)
		}
		s.resources = append(s.resources, rest)
	}

	// Every action must apply to some resource of the statement, as S3
	// insists (a wildcard: one of the actions it names).
	if !s.notAction && !s.notResource {
		for i, as := range expanded {
			if !s.applies(as) {
				return s, malformed("Action does not apply to any resource(s) in statement", "%s on %s", names[i], strings.Join(rnames, ", "))
			}
		}
	}

	if rs.Condition != nil {
		if s.conditions, err = parseConditions(rs.Condition, policyVars); err != nil {
			return s, err
		}
	}
	return s, nil
}

// applies reports whether one of actions has a resource of its type in s.
func (s statement) applies(actions []string) bool {
	for _, a := range actions {
		for _, r := range s.resources {
			switch s3Actions[a] {
			case onBucket:
				if !strings.Contains(r, "/") {
					return true
				}
			case onObject:
				if strings.Contains(r, "/") {
					return true
				}
			}
		}
	}
	return false
}

// accountID is a bare AWS account id, which as a principal means the
// account (every user of it its own policies allow): Cairn has no such
// delegation.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// userARN is an IAM user's ARN: the access key is its last path element.
var userARN = regexp.MustCompile(`^arn:aws:iam::[^:]*:user/(?:[^/]+/)*([^/]+)$`)

// parsePrincipal reads "*" or {"AWS": ID | [ID, ...]}.
func parsePrincipal(raw json.RawMessage) (principals, error) {
	var p principals
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "*" {
			return p, malformed("Invalid principal in policy", "a principal is \"*\" or {\"AWS\": ...}, not %q", s)
		}
		p.everyone = true
		return p, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return p, malformed("Invalid principal in policy", "a principal is \"*\" or {\"AWS\": ...}")
	}
	for _, kind := range sortedKeys(m) {
		if kind != "AWS" {
			switch kind {
			case "Service", "Federated", "CanonicalUser":
				return p, unsupported("Policy has an unsupported principal", "%s principals", kind)
			}
			return p, malformed("Invalid principal in policy", "unknown principal type %q", kind)
		}
	}
	ids, err := stringOrList(m["AWS"])
	if err != nil {
		return p, malformed("Invalid principal in policy", "AWS: %v", err)
	}
	for _, id := range ids {
		switch {
		case id == "*":
			p.everyone = true
		case strings.ContainsAny(id, "*?"):
			return p, malformed("Invalid principal in policy", "%q: a principal has no wildcard but \"*\" alone", id)
		case accountID.MatchString(id) || strings.HasPrefix(id, "arn:") && !strings.HasPrefix(id, "arn:aws:iam::"):
			return p, unsupported("Policy has an unsupported principal", "%q: only Cairn access keys and \"*\" are principals", id)
		case strings.HasPrefix(id, "arn:"):
			m := userARN.FindStringSubmatch(id)
			if m == nil {
				return p, unsupported("Policy has an unsupported principal", "%q: of IAM ARNs only users (arn:aws:iam::ACCOUNT:user/KEYID) are", id)
			}
			p.add(m[1])
		case strings.ContainsAny(id, ":/"):
			return p, malformed("Invalid principal in policy", "%q", id)
		default:
			p.add(id)
		}
	}
	return p, nil
}

func (p *principals) add(key string) {
	if p.keys == nil {
		p.keys = map[string]bool{}
	}
	p.keys[key] = true
}

// names reports whether the principal includes the access key id (""
// for an anonymous request).
func (p principals) names(id string) bool {
	return p.everyone || (id != "" && p.keys[id])
}

// stringOrList reads a JSON string or a non-empty list of strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, errors.New("a string or a non-empty list of strings")
	}
	return list, nil
}

func isJSONString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil
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

// Evaluate decides req: Denied when a Deny statement matches it, else
// Allowed when an Allow statement does, else Implicit.
func (p *Policy) Evaluate(req Request) Decision {
	resource := req.Bucket
	if IsObjectAction(req.Action) {
		resource = req.Bucket + "/" + req.Key
	}
	vals := req.Values
	if vals == nil {
		vals = MapValues(nil)
	}
	d := Implicit
	for i := range p.statements {
		s := &p.statements[i]
		if s.allow && d == Allowed {
			continue // a Deny may still come; this one adds nothing
		}
		if !s.matches(req, resource, vals) {
			continue
		}
		if !s.allow {
			return Denied
		}
		d = Allowed
	}
	return d
}

func (s *statement) matches(req Request, resource string, vals Values) bool {
	if s.principals.names(req.Principal) == s.notPrincipal {
		return false
	}
	if s.actions[req.Action] == s.notAction {
		return false
	}
	in := false
	for _, pat := range s.resources {
		if wildcardMatch(pat, resource) {
			in = true
			break
		}
	}
	if in == s.notResource {
		return false
	}
	for i := range s.conditions {
		if !s.conditions[i].holds(vals) {
			return false
		}
	}
	return true
}

// MayAllow reports whether some Allow statement for principal names one
// of actions, whatever its resources and conditions: whether a request
// made of several checks (DeleteObjects) is worth reading.
func (p *Policy) MayAllow(principal string, actions ...string) bool {
	for _, s := range p.statements {
		if !s.allow || s.principals.names(principal) == s.notPrincipal {
			continue
		}
		for _, a := range actions {
			if s.actions[a] != s.notAction {
				return true
			}
		}
	}
	return false
}

// IsPublic reports whether the policy is public as S3's PolicyStatus
// defines it: an Allow statement for everyone ("*", or NotPrincipal)
// with no condition confining it to fixed source addresses or users
// (aws:SourceIp ranges, a fixed aws:userid or aws:username).
func (p *Policy) IsPublic() bool {
	for _, s := range p.statements {
		if !s.allow || !(s.principals.everyone || s.notPrincipal) {
			continue
		}
		narrowed := false
		for i := range s.conditions {
			if s.conditions[i].narrows() {
				narrowed = true
				break
			}
		}
		if !narrowed {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against pattern, where * is any run of
// characters and ? any one character (a UTF-8 sequence; an invalid byte
// counts as one). Iterative, backtracking only to the last *: never
// exponential, and no allocation.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		if p < len(pattern) && pattern[p] == '*' {
			star, mark = p, i
			p++
			continue
		}
		if p < len(pattern) {
			_, pn := utf8.DecodeRuneInString(pattern[p:])
			_, sn := utf8.DecodeRuneInString(s[i:])
			if pattern[p] == '?' || pattern[p:p+pn] == s[i:i+sn] {
				p, i = p+pn, i+sn
				continue
			}
		}
		if star < 0 {
			return false
		}
		_, sn := utf8.DecodeRuneInString(s[mark:])
		p, mark = star+1, mark+sn
		i = mark
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
