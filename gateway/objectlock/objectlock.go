// Package objectlock reads and writes what S3 object lock exchanges with
// clients: a bucket's ObjectLockConfiguration, an object version's
// Retention and LegalHold documents, and the x-amz-object-lock-* headers
// of writes. The rules themselves (what a lock forbids) are metad's
// (metadata/objectlock.go); this package only turns S3's wire forms into
// its records and back, refusing what S3 would refuse.
package objectlock

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/xmlstrict"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Errors, each answered with its S3 error by the gateway.
var (
	// ErrMalformed: a document that does not parse or is not the shape S3
	// takes (S3: MalformedXML).
	ErrMalformed = errors.New("malformed object lock document")
	// ErrInvalid: a well-formed request asking for what S3 refuses
	// (S3: InvalidArgument or InvalidRequest, as the gateway maps it).
	ErrInvalid = errors.New("invalid object lock request")
)

// The headers of a write that set its version's lock.
const (
	HeaderMode        = "X-Amz-Object-Lock-Mode"
	HeaderRetainUntil = "X-Amz-Object-Lock-Retain-Until-Date"
	HeaderLegalHold   = "X-Amz-Object-Lock-Legal-Hold"
	// HeaderBypass lets a delete or a retention change get past a
	// GOVERNANCE retention.
	HeaderBypass = "X-Amz-Bypass-Governance-Retention"
)

// Most days and years a default retention may have.
const (
	maxDays  = 36500
	maxYears = 100
)

// dateLayout is how S3 writes retain-until dates.
const dateLayout = "2006-01-02T15:04:05.000Z"

const ns = "http://s3.amazonaws.com/doc/2006-03-01/"

// ModeName is S3's name of a mode ("" for none).
func ModeName(m pb.ObjectLockMode) string {
	switch m {
	case pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE:
		return "GOVERNANCE"
	case pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE:
		return "COMPLIANCE"
	}
	return ""
}

func parseMode(s string) (pb.ObjectLockMode, error) {
	switch strings.TrimSpace(s) {
	case "GOVERNANCE":
		return pb.ObjectLockMode_OBJECT_LOCK_MODE_GOVERNANCE, nil
	case "COMPLIANCE":
		return pb.ObjectLockMode_OBJECT_LOCK_MODE_COMPLIANCE, nil
	}
	return 0, fmt.Errorf("%w: unknown object lock mode %q (GOVERNANCE or COMPLIANCE)", ErrInvalid, s)
}

// FormatDate writes t as S3 writes retain-until dates.
func FormatDate(nanos int64) string { return time.Unix(0, nanos).UTC().Format(dateLayout) }

// Retain-until dates are kept as Unix nanoseconds (an int64): from 1970
// to 2262-04-11. time.Time.UnixNano is undefined outside that span and
// in practice wraps, so a date past it could become an earlier one
// (year 2650 one in 2065): such dates are refused, never stored wrapped.
var (
	minDate = time.Unix(0, 0)
	maxDate = time.Unix(0, math.MaxInt64)
)

// parseDate reads an ISO 8601 date-time with a zone (RFC 3339, fractions
// of a second allowed), as S3 takes them, between 1970 and 2262-04-11.
func parseDate(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: retain-until date %q is not an ISO 8601 date-time", ErrInvalid, s)
	}
	if t.Before(minDate) || t.After(maxDate) {
		return 0, fmt.Errorf("%w: retain-until date %q is outside what can be kept (%s to %s)", ErrInvalid, s, FormatDate(0), FormatDate(math.MaxInt64))
	}
	return t.UnixNano(), nil
}

// decode reads one document into v, with nothing but space after it.
func decode(body []byte, v any) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := xmlstrict.TrailingSpaceOnly(dec); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ---------------------------------------------------------------- bucket

type configuration struct {
	XMLName xml.Name    `xml:"ObjectLockConfiguration"`
	NS      string      `xml:"xmlns,attr,omitempty"`
	Enabled string      `xml:"ObjectLockEnabled,omitempty"`
	Rule    *configRule `xml:"Rule,omitempty"`
}

type configRule struct {
	Default *defaultRetention `xml:"DefaultRetention"`
}

type defaultRetention struct {
	Mode  string `xml:"Mode,omitempty"`
	Days  *int   `xml:"Days,omitempty"`
	Years *int   `xml:"Years,omitempty"`
}

// ParseConfiguration reads a PutObjectLockConfiguration body:
// ObjectLockEnabled Enabled and an optional rule with a default retention
// of a mode and either Days or Years.
func ParseConfiguration(body []byte) (*pb.ObjectLockConfiguration, error) {
	var c configuration
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.Enabled) != "Enabled" {
		return nil, fmt.Errorf("%w: ObjectLockEnabled must be Enabled", ErrMalformed)
	}
	out := &pb.ObjectLockConfiguration{Enabled: true}
	if c.Rule == nil {
		return out, nil
	}
	d := c.Rule.Default
	if d == nil {
		return nil, fmt.Errorf("%w: a Rule needs a DefaultRetention", ErrMalformed)
	}
	mode, err := parseMode(d.Mode)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	out.DefaultMode = mode
	switch {
	case (d.Days == nil) == (d.Years == nil):
		return nil, fmt.Errorf("%w: a DefaultRetention has either Days or Years", ErrMalformed)
	case d.Days != nil && (*d.Days <= 0 || *d.Days > maxDays):
		return nil, fmt.Errorf("%w: Days must be 1..%d", ErrInvalid, maxDays)
	case d.Years != nil && (*d.Years <= 0 || *d.Years > maxYears):
		return nil, fmt.Errorf("%w: Years must be 1..%d", ErrInvalid, maxYears)
	case d.Days != nil:
		out.DefaultDays = int32(*d.Days)
	default:
		out.DefaultYears = int32(*d.Years)
	}
	return out, nil
}

// MarshalConfiguration writes a bucket's configuration as
// GetObjectLockConfiguration answers it.
func MarshalConfiguration(c *pb.ObjectLockConfiguration) []byte {
	out := configuration{NS: ns}
	if c.GetEnabled() {
		out.Enabled = "Enabled"
	}
	if m := ModeName(c.GetDefaultMode()); m != "" {
		d := &defaultRetention{Mode: m}
		if n := int(c.GetDefaultDays()); n > 0 {
			d.Days = &n
		}
		if n := int(c.GetDefaultYears()); n > 0 {
			d.Years = &n
		}
		out.Rule = &configRule{Default: d}
	}
	return marshal(out)
}

func marshal(v any) []byte {
	b, err := xml.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("objectlock: marshal %T: %v", v, err)) // fixed types of strings and ints
	}
	return append([]byte(xml.Header), b...)
}

// ---------------------------------------------------------------- versions

type retention struct {
	XMLName     xml.Name `xml:"Retention"`
	NS          string   `xml:"xmlns,attr,omitempty"`
	Mode        string   `xml:"Mode,omitempty"`
	RetainUntil string   `xml:"RetainUntilDate,omitempty"`
}

// ParseRetention reads a PutObjectRetention body: a mode and a date in
// the future (of now), or neither, which removes the retention (nil).
func ParseRetention(body []byte, now time.Time) (*pb.ObjectRetention, error) {
	var r retention
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if strings.TrimSpace(r.Mode) == "" && strings.TrimSpace(r.RetainUntil) == "" {
		return nil, nil
	}
	return retentionOf(r.Mode, r.RetainUntil, now, ErrMalformed)
}

// retentionOf checks a mode and a date given together, the date in the
// future; missing is the error for one without the other.
func retentionOf(mode, until string, now time.Time, missing error) (*pb.ObjectRetention, error) {
	if strings.TrimSpace(mode) == "" || strings.TrimSpace(until) == "" {
		return nil, fmt.Errorf("%w: a retention needs both a mode and a retain-until date", missing)
	}
	m, err := parseMode(mode)
	if err != nil {
		return nil, err
	}
	at, err := parseDate(until)
	if err != nil {
		return nil, err
	}
	if at <= now.UnixNano() {
		return nil, fmt.Errorf("%w: the retain-until date must be in the future", ErrInvalid)
	}
	return &pb.ObjectRetention{Mode: m, RetainUntilUnixNano: at}, nil
}

// MarshalRetention writes a version's retention as GetObjectRetention
// answers it.
func MarshalRetention(r *pb.ObjectRetention) []byte {
	return marshal(retention{NS: ns, Mode: ModeName(r.GetMode()), RetainUntil: FormatDate(r.GetRetainUntilUnixNano())})
}

type legalHold struct {
	XMLName xml.Name `xml:"LegalHold"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	Status  string   `xml:"Status"`
}

// ParseLegalHold reads a PutObjectLegalHold body: Status ON or OFF.
func ParseLegalHold(body []byte) (bool, error) {
	var h legalHold
	if err := decode(body, &h); err != nil {
		return false, err
	}
	return parseHold(h.Status, ErrMalformed)
}

func parseHold(s string, bad error) (bool, error) {
	switch strings.TrimSpace(s) {
	case "ON":
		return true, nil
	case "OFF":
		return false, nil
	}
	return false, fmt.Errorf("%w: legal hold status %q (ON or OFF)", bad, s)
}

// MarshalLegalHold writes a version's legal hold as GetObjectLegalHold
// answers it.
func MarshalLegalHold(on bool) []byte {
	s := "OFF"
	if on {
		s = "ON"
	}
	return marshal(legalHold{NS: ns, Status: s})
}

// ---------------------------------------------------------------- headers

// FromHeaders reads the lock a write's headers ask for: a retention (mode
// and date together, the date in the future) and a legal hold. Neither:
// nil, false.
func FromHeaders(h http.Header, now time.Time) (*pb.ObjectRetention, bool, error) {
	var r *pb.ObjectRetention
	mode, until := h.Get(HeaderMode), h.Get(HeaderRetainUntil)
	if mode != "" || until != "" {
		var err error
		if r, err = retentionOf(mode, until, now, ErrInvalid); err != nil {
			return nil, false, err
		}
	}
	hold := false
	if v := h.Get(HeaderLegalHold); v != "" {
		var err error
		if hold, err = parseHold(v, ErrInvalid); err != nil {
			return nil, false, err
		}
	}
	return r, hold, nil
}

// AnyHeader reports whether a request carries any object lock header of
// a write.
func AnyHeader(h http.Header) bool {
	return h.Get(HeaderMode) != "" || h.Get(HeaderRetainUntil) != "" || h.Get(HeaderLegalHold) != ""
}

// Bypass reports whether a request asks to get past GOVERNANCE
// retentions (x-amz-bypass-governance-retention: true).
func Bypass(h http.Header) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(h.Get(HeaderBypass)))
	return b
}

// SetHeaders writes a version's lock into the headers of a GET or HEAD
// answer, as S3 does: its retention, and its legal hold when it was ever
// set (holdSet), ON or OFF.
func SetHeaders(h http.Header, r *pb.ObjectRetention, hold, holdSet bool) {
	if m := ModeName(r.GetMode()); m != "" {
		h.Set(HeaderMode, m)
		h.Set(HeaderRetainUntil, FormatDate(r.GetRetainUntilUnixNano()))
	}
	switch {
	case hold:
		h.Set(HeaderLegalHold, "ON")
	case holdSet:
		h.Set(HeaderLegalHold, "OFF")
	}
}
