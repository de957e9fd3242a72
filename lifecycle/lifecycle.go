// Package lifecycle reads S3 bucket lifecycle configurations and decides,
// for an object or a multipart upload, when its rules expire it.
//
// The subset the store can carry out is accepted: rules filtered by key
// prefix, object tags and object size (Filter with Prefix, Tag,
// ObjectSizeGreaterThan, ObjectSizeLessThan, or an And of them; or the
// older Rule-level Prefix),
// expiring current objects after Days or on a Date, expiring noncurrent
// versions NoncurrentDays after they became noncurrent (keeping the
// NewerNoncurrentVersions newest), removing expired object delete markers,
// and aborting multipart uploads DaysAfterInitiation. In a bucket without
// versioning the rules about versions have nothing to act on, as on S3.
// Transitions (no other storage tiers exist) are refused with
// ErrUnsupported: a stored configuration never means more than the store
// does.
//
// Timing follows S3: an object expires at the first midnight UTC at or
// after its last modification plus Days; a noncurrent version at the first
// midnight UTC at or after the moment it became noncurrent (its successor
// was made) plus NoncurrentDays; an upload is aborted at the first
// midnight UTC at or after its initiation plus DaysAfterInitiation.
//
// Versions. A noncurrent delete marker is a noncurrent version like any
// other: NoncurrentVersionExpiration expires it and it counts among the
// NewerNoncurrentVersions kept. An expired object delete marker (a key's
// latest version is a delete marker and it has no other version) is
// removed by a rule with ExpiredObjectDeleteMarker at once, and by a rule
// with Days or Date when it is as old as an object the rule would expire,
// as on S3. Filters see a delete marker as an object of size 0 without
// tags, so a rule with a tag filter never removes one.
//
// The package imports nothing of the store's but internal/xmlstrict (the
// end of a document, read as bucketcors reads it), so the gateway (which
// parses what clients put) and metad (which runs the rules) share it.
package lifecycle

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/xmlstrict"
)

var (
	// ErrUnsupported marks a construct S3 has and this store does not do.
	ErrUnsupported = errors.New("not supported")
	// ErrMalformed marks a document that is not a lifecycle configuration.
	ErrMalformed = errors.New("malformed lifecycle configuration")
	// ErrInvalid marks a well-formed configuration with invalid values.
	ErrInvalid = errors.New("invalid lifecycle configuration")
)

// MaxRules is S3's limit of rules per configuration.
const MaxRules = 1000

// Configuration is a bucket's lifecycle configuration.
type Configuration struct {
	XMLName xml.Name `xml:"LifecycleConfiguration"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	Rules   []Rule   `xml:"Rule"`
}

// Rule is one lifecycle rule.
type Rule struct {
	ID     string  `xml:"ID,omitempty"`
	Prefix *string `xml:"Prefix,omitempty"` // the older form of Filter.Prefix
	Filter *Filter `xml:"Filter,omitempty"`
	Status string  `xml:"Status"`

	Expiration                     *Expiration           `xml:"Expiration,omitempty"`
	AbortIncompleteMultipartUpload *AbortIncomplete      `xml:"AbortIncompleteMultipartUpload,omitempty"`
	NoncurrentVersionExpiration    *NoncurrentExpiration `xml:"NoncurrentVersionExpiration,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// Filter selects the objects a rule applies to.
type Filter struct {
	Prefix                *string `xml:"Prefix,omitempty"`
	Tag                   *Tag    `xml:"Tag,omitempty"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan,omitempty"`
	And                   *And    `xml:"And,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// And combines filter conditions.
type And struct {
	Prefix                *string `xml:"Prefix,omitempty"`
	Tags                  []Tag   `xml:"Tag"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// Tag is an object tag a filter requires.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// Expiration expires current objects.
type Expiration struct {
	Days                      *int    `xml:"Days,omitempty"`
	Date                      *string `xml:"Date,omitempty"`
	ExpiredObjectDeleteMarker *bool   `xml:"ExpiredObjectDeleteMarker,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// AbortIncomplete aborts multipart uploads.
type AbortIncomplete struct {
	DaysAfterInitiation *int `xml:"DaysAfterInitiation,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// NoncurrentExpiration expires noncurrent versions: NoncurrentDays after
// each became noncurrent, except the NewerNoncurrentVersions newest
// noncurrent versions of a key, whatever their age.
type NoncurrentExpiration struct {
	NoncurrentDays          *int `xml:"NoncurrentDays,omitempty"`
	NewerNoncurrentVersions *int `xml:"NewerNoncurrentVersions,omitempty"`

	Unknown []unknownElement `xml:",any"`
}

// unknownElement catches elements the structs do not name, so that they
// are refused rather than dropped.
type unknownElement struct {
	XMLName xml.Name
}

// unsupportedElements are S3 elements this store refuses by name.
var unsupportedElements = map[string]string{
	"Transition":                  "transitions (there are no other storage tiers)",
	"NoncurrentVersionTransition": "transitions (there are no other storage tiers)",
}

// checkUnknown refuses the first element the structs did not name.
func checkUnknown(where string, u []unknownElement) error {
	if len(u) == 0 {
		return nil
	}
	name := u[0].XMLName.Local
	if why, ok := unsupportedElements[name]; ok {
		return fmt.Errorf("%s: %s: %s are %w", where, name, why, ErrUnsupported)
	}
	return fmt.Errorf("%s: unknown element %s: %w", where, name, ErrMalformed)
}

// Parse reads and checks a LifecycleConfiguration document.
func Parse(doc []byte) (*Configuration, error) {
	var c Configuration
	dec := xml.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := xmlstrict.TrailingSpaceOnly(dec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Configuration) validate() error {
	if len(c.Rules) == 0 {
		return fmt.Errorf("%w: no Rule", ErrMalformed)
	}
	if len(c.Rules) > MaxRules {
		return fmt.Errorf("%w: %d rules, at most %d", ErrInvalid, len(c.Rules), MaxRules)
	}
	ids := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		where := fmt.Sprintf("rule %d", i+1)
		if r.ID != "" {
			where = fmt.Sprintf("rule %q", r.ID)
		}
		if err := r.validate(where); err != nil {
			return err
		}
		if r.ID != "" {
			if ids[r.ID] {
				return fmt.Errorf("%w: rule ID %q appears twice", ErrInvalid, r.ID)
			}
			ids[r.ID] = true
		}
	}
	return nil
}

func (r *Rule) validate(where string) error {
	if err := checkUnknown(where, r.Unknown); err != nil {
		return err
	}
	if len(r.ID) > 255 {
		return fmt.Errorf("%w: %s: ID longer than 255 characters", ErrInvalid, where)
	}
	if r.Status != "Enabled" && r.Status != "Disabled" {
		return fmt.Errorf("%w: %s: Status must be Enabled or Disabled, not %q", ErrMalformed, where, r.Status)
	}
	if r.Prefix != nil && r.Filter != nil {
		return fmt.Errorf("%w: %s: Prefix and Filter cannot both be given", ErrMalformed, where)
	}
	if f := r.Filter; f != nil {
		if err := f.validate(where); err != nil {
			return err
		}
	}
	if r.Expiration == nil && r.AbortIncompleteMultipartUpload == nil && r.NoncurrentVersionExpiration == nil {
		return fmt.Errorf("%w: %s: no action (Expiration, AbortIncompleteMultipartUpload or NoncurrentVersionExpiration)", ErrMalformed, where)
	}
	if e := r.Expiration; e != nil {
		if err := checkUnknown(where+" Expiration", e.Unknown); err != nil {
			return err
		}
		n := 0
		for _, set := range []bool{e.Days != nil, e.Date != nil, e.ExpiredObjectDeleteMarker != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: %s: Expiration needs exactly one of Days, Date and ExpiredObjectDeleteMarker", ErrMalformed, where)
		}
		if e.Days != nil && *e.Days <= 0 {
			return fmt.Errorf("%w: %s: Expiration Days must be a positive integer", ErrInvalid, where)
		}
		if e.Date != nil {
			if _, err := parseDate(*e.Date); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
			}
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		if err := checkUnknown(where+" AbortIncompleteMultipartUpload", a.Unknown); err != nil {
			return err
		}
		if a.DaysAfterInitiation == nil || *a.DaysAfterInitiation <= 0 {
			return fmt.Errorf("%w: %s: DaysAfterInitiation must be a positive integer", ErrInvalid, where)
		}
		if f := r.Filter; f != nil && (f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil || f.Tag != nil || (f.And != nil && (len(f.And.Tags) > 0 || f.And.ObjectSizeGreaterThan != nil || f.And.ObjectSizeLessThan != nil))) {
			return fmt.Errorf("%w: %s: AbortIncompleteMultipartUpload cannot be used with tag or size filters", ErrInvalid, where)
		}
	}
	if n := r.NoncurrentVersionExpiration; n != nil {
		if err := checkUnknown(where+" NoncurrentVersionExpiration", n.Unknown); err != nil {
			return err
		}
		if n.NoncurrentDays == nil || *n.NoncurrentDays <= 0 {
			return fmt.Errorf("%w: %s: NoncurrentDays must be a positive integer", ErrInvalid, where)
		}
	}
	return nil
}

func (f *Filter) validate(where string) error {
	if err := checkUnknown(where+" Filter", f.Unknown); err != nil {
		return err
	}
	set := 0
	for _, b := range []bool{f.Prefix != nil, f.Tag != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil, f.And != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("%w: %s: a Filter holds one condition; combine them with And", ErrMalformed, where)
	}
	if err := checkSizes(where, f.ObjectSizeGreaterThan, f.ObjectSizeLessThan); err != nil {
		return err
	}
	if f.Tag != nil && f.Tag.Key == "" {
		return fmt.Errorf("%w: %s: a Tag needs a Key", ErrInvalid, where)
	}
	if a := f.And; a != nil {
		if err := checkUnknown(where+" Filter And", a.Unknown); err != nil {
			return err
		}
		keys := map[string]bool{}
		for _, t := range a.Tags {
			if t.Key == "" || keys[t.Key] {
				return fmt.Errorf("%w: %s: the And's tags need distinct, non-empty keys", ErrInvalid, where)
			}
			keys[t.Key] = true
		}
		return checkSizes(where, a.ObjectSizeGreaterThan, a.ObjectSizeLessThan)
	}
	return nil
}

func checkSizes(where string, gt, lt *int64) error {
	if (gt != nil && *gt < 0) || (lt != nil && *lt <= 0) {
		return fmt.Errorf("%w: %s: object sizes must be positive", ErrInvalid, where)
	}
	if gt != nil && lt != nil && *gt >= *lt {
		return fmt.Errorf("%w: %s: ObjectSizeGreaterThan must be below ObjectSizeLessThan", ErrInvalid, where)
	}
	return nil
}

// parseDate reads an Expiration Date: ISO 8601 at midnight UTC.
func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05.000Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if !t.Equal(t.UTC().Truncate(24 * time.Hour)) {
				return time.Time{}, fmt.Errorf("Expiration Date %q is not at midnight UTC", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("Expiration Date %q is not an ISO 8601 date", s)
}

// Marshal writes c as the document GetBucketLifecycleConfiguration
// answers (in S3's namespace).
func (c *Configuration) Marshal() ([]byte, error) {
	out := *c
	out.NS = "http://s3.amazonaws.com/doc/2006-03-01/"
	return xml.Marshal(out)
}

// prefix is the key prefix r applies to.
func (r *Rule) prefix() string {
	switch {
	case r.Prefix != nil:
		return *r.Prefix
	case r.Filter != nil && r.Filter.Prefix != nil:
		return *r.Filter.Prefix
	case r.Filter != nil && r.Filter.And != nil && r.Filter.And.Prefix != nil:
		return *r.Filter.And.Prefix
	}
	return ""
}

// matchesObject tells whether r applies to an object of this key, size
// and tags.
func (r *Rule) matchesObject(key string, size int64, tags map[string]string) bool {
	if !strings.HasPrefix(key, r.prefix()) {
		return false
	}
	var gt, lt *int64
	var want []Tag
	if f := r.Filter; f != nil {
		gt, lt = f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
		if f.Tag != nil {
			want = []Tag{*f.Tag}
		}
		if f.And != nil {
			gt, lt, want = f.And.ObjectSizeGreaterThan, f.And.ObjectSizeLessThan, f.And.Tags
		}
	}
	for _, t := range want {
		if v, ok := tags[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return (gt == nil || size > *gt) && (lt == nil || size < *lt)
}

// afterDays is the first midnight UTC at or after t plus days.
func afterDays(t time.Time, days int) time.Time {
	at := t.UTC().AddDate(0, 0, days)
	day := at.Truncate(24 * time.Hour)
	if day.Equal(at) {
		return day
	}
	return day.Add(24 * time.Hour)
}

// ObjectExpiry is when the enabled rules expire an object of this key,
// size, tags and last modification: the earliest of the rules that match
// it; ok is false when none does.
func (c *Configuration) ObjectExpiry(key string, size int64, tags map[string]string, modified time.Time) (at time.Time, ok bool) {
	at, _, ok = c.ObjectExpiryRule(key, size, tags, modified)
	return at, ok
}

// ObjectExpiryRule is ObjectExpiry with the ID of the rule that decides it
// (the first of the earliest), which S3 names in x-amz-expiration.
func (c *Configuration) ObjectExpiryRule(key string, size int64, tags map[string]string, modified time.Time) (at time.Time, ruleID string, ok bool) {
	for i := range c.Rules {
		r := &c.Rules[i]
		e := r.Expiration
		if r.Status != "Enabled" || e == nil || (e.Days == nil && e.Date == nil) || !r.matchesObject(key, size, tags) {
			continue
		}
		var t time.Time
		if e.Days != nil {
			t = afterDays(modified, *e.Days)
		} else {
			t, _ = parseDate(*e.Date) // checked by Parse
		}
		if !ok || t.Before(at) {
			at, ruleID, ok = t, r.ID, true
		}
	}
	return at, ruleID, ok
}

// UploadExpiry is when the enabled rules abort a multipart upload of this
// key initiated at initiated; ok is false when no rule does.
func (c *Configuration) UploadExpiry(key string, initiated time.Time) (at time.Time, ok bool) {
	at, _, ok = c.UploadExpiryRule(key, initiated)
	return at, ok
}

// UploadExpiryRule is UploadExpiry with the ID of the rule that decides it
// (the first of the earliest), which S3 names in x-amz-abort-rule-id.
func (c *Configuration) UploadExpiryRule(key string, initiated time.Time) (at time.Time, ruleID string, ok bool) {
	for i := range c.Rules {
		r := &c.Rules[i]
		a := r.AbortIncompleteMultipartUpload
		if r.Status != "Enabled" || a == nil || a.DaysAfterInitiation == nil || !strings.HasPrefix(key, r.prefix()) {
			continue
		}
		if t := afterDays(initiated, *a.DaysAfterInitiation); !ok || t.Before(at) {
			at, ruleID, ok = t, r.ID, true
		}
	}
	return at, ruleID, ok
}

// NoncurrentExpiry is when the enabled rules expire a noncurrent version
// (a delete marker too: size 0, no tags) of this key, size and tags that
// became noncurrent at since and has newer noncurrent versions of its key
// newer than it: the earliest of the NoncurrentVersionExpiration rules
// that match it and keep fewer newer noncurrent versions than newer; ok is
// false when none does.
func (c *Configuration) NoncurrentExpiry(key string, size int64, tags map[string]string, since time.Time, newer int) (at time.Time, ok bool) {
	for i := range c.Rules {
		r := &c.Rules[i]
		n := r.NoncurrentVersionExpiration
		if r.Status != "Enabled" || n == nil || n.NoncurrentDays == nil || !r.matchesObject(key, size, tags) {
			continue
		}
		if n.NewerNoncurrentVersions != nil && newer < *n.NewerNoncurrentVersions {
			continue // among the versions the rule keeps
		}
		if t := afterDays(since, *n.NoncurrentDays); !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// DeleteMarkerExpiry is when the enabled rules remove an expired object
// delete marker (its key's only version) of this key, made at made: at
// once (made) for a rule with ExpiredObjectDeleteMarker, else when a rule
// with Days or Date would expire an object of size 0 without tags last
// modified at made; the earliest of the rules that match. ok is false when
// none does.
func (c *Configuration) DeleteMarkerExpiry(key string, made time.Time) (at time.Time, ok bool) {
	for i := range c.Rules {
		r := &c.Rules[i]
		e := r.Expiration
		if r.Status != "Enabled" || e == nil || !r.matchesObject(key, 0, nil) {
			continue
		}
		var t time.Time
		switch {
		case e.ExpiredObjectDeleteMarker != nil && *e.ExpiredObjectDeleteMarker:
			t = made
		case e.Days != nil:
			t = afterDays(made, *e.Days)
		case e.Date != nil:
			t, _ = parseDate(*e.Date) // checked by Parse
		default:
			continue // ExpiredObjectDeleteMarker false
		}
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// ExpiresVersions tells whether some enabled rule expires noncurrent
// versions or expired object delete markers, so that a bucket's versions
// need scanning at all.
func (c *Configuration) ExpiresVersions() bool {
	for _, r := range c.Rules {
		if r.Status != "Enabled" {
			continue
		}
		if r.NoncurrentVersionExpiration != nil {
			return true
		}
		if e := r.Expiration; e != nil && (e.Days != nil || e.Date != nil || (e.ExpiredObjectDeleteMarker != nil && *e.ExpiredObjectDeleteMarker)) {
			return true
		}
	}
	return false
}

// ExpiresObjects tells whether some enabled rule expires current objects,
// so that a bucket's objects need scanning at all.
func (c *Configuration) ExpiresObjects() bool {
	for _, r := range c.Rules {
		if r.Status == "Enabled" && r.Expiration != nil && (r.Expiration.Days != nil || r.Expiration.Date != nil) {
			return true
		}
	}
	return false
}
