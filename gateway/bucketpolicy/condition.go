package bucketpolicy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Condition keys this package evaluates, as the AWS references spell
// them; a request supplies their values (Values). Names are matched
// case-insensitively in policies and given to Values.Lookup in this
// spelling.
const (
	KeySecureTransport = "aws:SecureTransport"
	KeySourceIP        = "aws:SourceIp"
	KeyCurrentTime     = "aws:CurrentTime"
	KeyEpochTime       = "aws:EpochTime"
	KeyUserAgent       = "aws:UserAgent"
	KeyReferer         = "aws:Referer"
	KeyUsername        = "aws:username"
	KeyUserID          = "aws:userid"
	KeyPrincipalType   = "aws:PrincipalType"

	KeyPrefix               = "s3:prefix"
	KeyDelimiter            = "s3:delimiter"
	KeyMaxKeys              = "s3:max-keys"
	KeySSE                  = "s3:x-amz-server-side-encryption"
	KeySSECustomerAlgorithm = "s3:x-amz-server-side-encryption-customer-algorithm"
	KeyContentSHA256        = "s3:x-amz-content-sha256"
	KeyAuthType             = "s3:authType"
	KeySignatureVersion     = "s3:signatureversion"
	KeyVersionID            = "s3:VersionId"
	KeyCopySource           = "s3:x-amz-copy-source"
	KeyMetadataDirective    = "s3:x-amz-metadata-directive"
	KeyACL                  = "s3:x-amz-acl"
	KeyStorageClass         = "s3:x-amz-storage-class"
	KeyObjectLockMode       = "s3:object-lock-mode"
	KeyObjectLockRetainDate = "s3:object-lock-retain-until-date"
	KeyObjectLockLegalHold  = "s3:object-lock-legal-hold"
	KeyRequestObjectTagKeys = "s3:RequestObjectTagKeys"
	// KeyRequestObjectTagPrefix + a tag key is that tag's value.
	KeyRequestObjectTagPrefix = "s3:RequestObjectTag/"
)

var conditionKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{KeySecureTransport, KeySourceIP, KeyCurrentTime, KeyEpochTime,
		KeyUserAgent, KeyReferer, KeyUsername, KeyUserID, KeyPrincipalType, KeyPrefix,
		KeyDelimiter, KeyMaxKeys, KeySSE, KeySSECustomerAlgorithm, KeyContentSHA256,
		KeyAuthType, KeySignatureVersion, KeyVersionID, KeyCopySource, KeyMetadataDirective,
		KeyACL, KeyStorageClass, KeyObjectLockMode, KeyObjectLockRetainDate,
		KeyObjectLockLegalHold, KeyRequestObjectTagKeys} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

// canonicalKey is the spelling of a condition key Values is asked for.
// A key of AWS's or S3's this package does not know is ErrUnsupported:
// evaluating it as absent would let a Deny silently not apply.
func canonicalKey(key string) (string, error) {
	low := strings.ToLower(key)
	if k, ok := conditionKeys[low]; ok {
		return k, nil
	}
	lowPrefix := strings.ToLower(KeyRequestObjectTagPrefix)
	if strings.HasPrefix(low, lowPrefix) && len(key) > len(lowPrefix) {
		return KeyRequestObjectTagPrefix + key[len(lowPrefix):], nil // the tag key keeps its case
	}
	if strings.HasPrefix(low, "aws:") || strings.HasPrefix(low, "s3:") {
		return "", unsupported("Policy has an unsupported condition key", "%q", key)
	}
	return "", malformed("Policy has an invalid condition key", "%q is not a condition key of S3 or AWS", key)
}

// Values are a request's condition keys.
type Values interface {
	// Lookup returns the values of key (spelled as the Key constants;
	// a request object tag as KeyRequestObjectTagPrefix+tag) and
	// whether the request has it at all.
	Lookup(key string) ([]string, bool)
}

// MapValues is Values held in a map: the test's and the simple callers'.
type MapValues map[string][]string

// Lookup implements Values.
func (m MapValues) Lookup(key string) ([]string, bool) {
	v, ok := m[key]
	return v, ok
}

type opKind int

const (
	opString opKind = iota
	opStringIgnoreCase
	opStringLike
	opNumeric
	opDate
	opBool
	opIP
	opNull
)

type cmp int

const (
	cmpEq cmp = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type setQualifier int

const (
	setNone setQualifier = iota
	setAnyValue
	setAllValues
)

// operators are the condition operators, by lower-cased name without the
// IfExists suffix and the set qualifier.
var operators = map[string]struct {
	kind   opKind
	cmp    cmp
	negate bool
}{
	"stringequals": {opString, cmpEq, false}, "stringnotequals": {opString, cmpEq, true},
	"stringequalsignorecase": {opStringIgnoreCase, cmpEq, false}, "stringnotequalsignorecase": {opStringIgnoreCase, cmpEq, true},
	"stringlike": {opStringLike, cmpEq, false}, "stringnotlike": {opStringLike, cmpEq, true},
	"numericequals": {opNumeric, cmpEq, false}, "numericnotequals": {opNumeric, cmpEq, true},
	"numericlessthan": {opNumeric, cmpLt, false}, "numericlessthanequals": {opNumeric, cmpLe, false},
	"numericgreaterthan": {opNumeric, cmpGt, false}, "numericgreaterthanequals": {opNumeric, cmpGe, false},
	"dateequals": {opDate, cmpEq, false}, "datenotequals": {opDate, cmpEq, true},
	"datelessthan": {opDate, cmpLt, false}, "datelessthanequals": {opDate, cmpLe, false},
	"dategreaterthan": {opDate, cmpGt, false}, "dategreaterthanequals": {opDate, cmpGe, false},
	"bool":      {opBool, cmpEq, false},
	"ipaddress": {opIP, cmpEq, false}, "notipaddress": {opIP, cmpEq, true},
	"null": {opNull, cmpEq, false},
}

// condition is one operator applied to one key: true when the request's
// values of key compare with any of the policy's values (or, negated,
// with none).
type condition struct {
	operator string // as written, for messages
	kind     opKind
	cmp      cmp
	negate   bool
	ifExists bool
	set      setQualifier
	key      string

	strs  []string
	nums  []float64
	times []time.Time
	nets  []netip.Prefix
	null  bool // Null: true asks that the key be absent
}

// parseConditions reads a statement's Condition block:
// {"Operator": {"key": value | [values]}}. policyVars: the policy's
// version has ${...} variables, which this package does not substitute.
func parseConditions(raw json.RawMessage, policyVars bool) ([]condition, error) {
	var block map[string]json.RawMessage
	if err := json.Unmarshal(raw, &block); err != nil || block == nil {
		return nil, malformed("Policy has an invalid condition", "Condition must be an object of operators")
	}
	var out []condition
	for _, opName := range sortedKeys(block) {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(block[opName], &keys); err != nil || keys == nil {
			return nil, malformed("Policy has an invalid condition", "operator %s must map keys to values", opName)
		}
		if len(keys) == 0 {
			return nil, malformed("Policy has an invalid condition", "operator %s names no key", opName)
		}
		for _, key := range sortedKeys(keys) {
			c, err := parseCondition(opName, key, keys[key], policyVars)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func parseCondition(opName, key string, raw json.RawMessage, policyVars bool) (condition, error) {
	c := condition{operator: opName}
	name := strings.ToLower(opName)
	if rest, ok := strings.CutPrefix(name, "foranyvalue:"); ok {
		c.set, name = setAnyValue, rest
	} else if rest, ok := strings.CutPrefix(name, "forallvalues:"); ok {
		c.set, name = setAllValues, rest
	}
	if rest, ok := strings.CutSuffix(name, "ifexists"); ok {
		c.ifExists, name = true, rest
	}
	op, ok := operators[name]
	switch {
	case !ok && (strings.HasPrefix(name, "arn") || strings.HasPrefix(name, "binary")):
		return c, unsupported("Policy has an unsupported condition operator", "%s", opName)
	case !ok:
		return c, malformed("Invalid Condition type", "%s", opName)
	case op.kind == opNull && (c.ifExists || c.set != setNone):
		return c, malformed("Invalid Condition type", "%s", opName)
	}
	c.kind, c.cmp, c.negate = op.kind, op.cmp, op.negate
	var err error
	if c.key, err = canonicalKey(key); err != nil {
		return c, err
	}
	values, err := conditionValues(raw)
	if err != nil {
		return c, malformed("Policy has an invalid condition", "%s %s: %v", opName, key, err)
	}
	for _, v := range values {
		if policyVars && strings.Contains(v, "${") {
			return c, unsupported("Policy variables are not supported", "%s %s: %q", opName, key, v)
		}
		bad := func(what string) error {
			return malformed("Policy has an invalid condition value", "%s %s: %q is not %s", opName, key, v, what)
		}
		switch c.kind {
		case opString, opStringIgnoreCase, opStringLike:
			c.strs = append(c.strs, v)
		case opNumeric:
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return c, bad("a number")
			}
			c.nums = append(c.nums, n)
		case opDate:
			t, ok := parseDate(v)
			if !ok {
				return c, bad("a date (ISO 8601 or epoch seconds)")
			}
			c.times = append(c.times, t)
		case opBool:
			if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
				return c, bad("true or false")
			}
			c.strs = append(c.strs, strings.ToLower(v))
		case opIP:
			p, err := parsePrefix(v)
			if err != nil {
				return c, bad("an IP address or CIDR range")
			}
			c.nets = append(c.nets, p)
		case opNull:
			if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
				return c, bad("true or false")
			}
			if len(values) > 1 {
				return c, malformed("Policy has an invalid condition value", "Null %s takes one value", key)
			}
			c.null = strings.EqualFold(v, "true")
		}
	}
	return c, nil
}

// conditionValues reads a condition's value: a string, number or bool,
// or a non-empty list of them.
func conditionValues(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	one := func(v any) (string, bool) {
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			return strconv.FormatBool(v), true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("a value must be a string, number or boolean, or a non-empty list of them")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := one(e)
		if !ok {
			return nil, fmt.Errorf("a list of values holds only strings, numbers and booleans")
		}
		out = append(out, s)
	}
	return out, nil
}

// parseDate reads the dates IAM accepts: ISO 8601 (a date, or a date and
// time with a zone) or epoch seconds.
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// parsePrefix reads a CIDR range or a lone address (IPv4 or IPv6).
func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// holds evaluates c against the request's values.
func (c *condition) holds(vals Values) bool {
	values, present := vals.Lookup(c.key)
	if present && len(values) == 0 && c.set == setNone {
		present = false // a multi-valued key with no value
	}
	if c.kind == opNull {
		return c.null != present
	}
	if !present {
		switch {
		case c.ifExists:
			return true
		case c.set == setAllValues:
			return true // vacuously: every one of no values matches
		case c.set == setAnyValue:
			return false
		}
		return c.negate
	}
	switch c.set {
	case setAnyValue:
		for _, v := range values {
			if c.matchesAny(v) != c.negate {
				return true
			}
		}
		return false
	case setAllValues:
		for _, v := range values {
			if c.matchesAny(v) == c.negate {
				return false
			}
		}
		return true
	}
	for _, v := range values {
		if c.matchesAny(v) {
			return !c.negate
		}
	}
	return c.negate
}

// matchesAny reports whether the request value v compares with any of
// the policy's values (the operator's sense before any negation).
func (c *condition) matchesAny(v string) bool {
	switch c.kind {
	case opString:
		for _, s := range c.strs {
			if v == s {
				return true
			}
		}
	case opStringIgnoreCase, opBool:
		for _, s := range c.strs {
			if strings.EqualFold(v, s) {
				return true
			}
		}
	case opStringLike:
		for _, s := range c.strs {
			if wildcardMatch(s, v) {
				return true
			}
		}
	case opNumeric:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false
		}
		for _, p := range c.nums {
			if compare(n, p, c.cmp) {
				return true
			}
		}
	case opDate:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, p := range c.times {
			if compare(t.UnixNano(), p.UnixNano(), c.cmp) {
				return true
			}
		}
	case opIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range c.nets {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

func compare[T int64 | float64](a, b T, c cmp) bool {
	switch c {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}

// narrows reports whether c confines a statement to requests from fixed
// places or users, which makes an Allow to everyone not public (S3's
// PolicyStatus): aws:SourceIp within CIDR ranges, a fixed aws:userid or
// aws:username.
func (c *condition) narrows() bool {
	if c.negate || c.ifExists || c.set != setNone {
		return false
	}
	switch c.key {
	case KeySourceIP:
		if c.kind != opIP {
			return false
		}
		for _, p := range c.nets {
			if p.Bits() == 0 {
				return false
			}
		}
		return true
	case KeyUserID, KeyUsername:
		switch c.kind {
		case opString, opStringIgnoreCase:
			return true
		case opStringLike:
			for _, s := range c.strs {
				if strings.ContainsAny(s, "*?") {
					return false
				}
			}
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
