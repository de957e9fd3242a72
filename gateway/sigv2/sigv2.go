// Package sigv2 verifies AWS Signature Version 2 on S3 requests, the
// scheme older clients still use: the aws CLI v1 presigns URLs with it by
// default, s3cmd and old SDKs sign requests with it.
//
// What is verified, and where each rule comes from (Amazon S3 developer
// guide, "Signing and authenticating REST requests (AWS signature version
// 2)"; botocore's HmacV1Auth and HmacV1QueryAuth, which the aws CLI uses):
//
//   - Authorization header: "AWS AccessKeyId:Signature", the signature
//     being base64(HMAC-SHA1(secret, StringToSign)). The request time is
//     x-amz-date when present, else Date (RFC 1123, with "GMT" or a numeric
//     zone); it must be within Config.MaxSkew (15 minutes, as S3) of the
//     server clock, else RequestTimeTooSkewed.
//   - Presigned URLs: AWSAccessKeyId, Signature and Expires (unix seconds)
//     in the query. Past Expires the answer is AccessDenied "Request has
//     expired". Expires takes the place of Date in the StringToSign;
//     x-amz-* query parameters (what botocore moves out of the headers when
//     it presigns) count as x-amz-* headers, and content-type / content-md5
//     query parameters stand in for absent headers.
//   - StringToSign (canonical.go) = Verb \n Content-MD5 \n Content-Type \n
//     Date \n CanonicalizedAmzHeaders CanonicalizedResource, where the
//     resource is "/bucket" for a virtual-host-style request, then the path
//     as sent (not decoded), then the sub-resources S3 signs, sorted by
//     name, with their decoded values.
//
// Where clients and the documentation disagree, every reading is tried,
// each binding the same request (see candidates in canonical.go): with
// x-amz-date, the documented empty Date line, the documented example's
// x-amz-date value on the Date line, and botocore's Date header on it; and
// the path as sent, then the path encoded as the AWS SDKs do.
//
// SigV2 never covers the body: callers treat it as an unsigned payload
// (still checking Content-MD5 when the client sends one).
//
// Errors are *s3err.Error values carrying the S3 code and message.
package sigv2

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

// Scheme is the word that starts a SigV2 Authorization header.
const Scheme = "AWS"

// DefaultMaxSkew is S3's tolerance between request and server clocks.
const DefaultMaxSkew = 15 * time.Minute

// Config configures a Verifier.
type Config struct {
	// Credentials finds secrets by access key; the same store SigV4 uses.
	Credentials sigv4.CredentialStore
	// MaxSkew between the request time and the server clock, for
	// header-signed requests; DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier checks SigV2 signatures. It is safe for concurrent use.
type Verifier struct {
	creds   sigv4.CredentialStore
	maxSkew time.Duration
	now     func() time.Time
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("sigv2: Config.Credentials is nil")
	}
	v := &Verifier{creds: cfg.Credentials, maxSkew: cfg.MaxSkew, now: cfg.Now}
	if v.maxSkew == 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Auth is the outcome of a successful verification.
type Auth struct {
	AccessKey string
	// Presigned is true for query-string authentication.
	Presigned bool
	// Time is the request time (x-amz-date or Date) of a header-signed
	// request, zero for a presigned one.
	Time time.Time
	// Expires is the expiry of a presigned request, zero otherwise.
	Expires time.Time
}

// Applies reports whether r claims SigV2 authentication: an Authorization
// header of the AWS scheme, or an AWSAccessKeyId or Signature query
// parameter. Requests for which it is false are not SigV2's business
// (SigV4, or unsigned).
func Applies(r *http.Request) bool {
	if scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); scheme == Scheme {
		return true
	}
	return presignedV2(r.URL.RawQuery)
}

// presignedV2 reports whether a raw query names AWSAccessKeyId or
// Signature, without decoding it.
func presignedV2(raw string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		name, _, _ := strings.Cut(pair, "=")
		if name == "AWSAccessKeyId" || name == "Signature" {
			return true
		}
	}
	return false
}

var errMixed = s3err.New(s3err.InvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")

// Verify checks the SigV2 signature of r, from its Authorization header or
// its presigned query. vhostBucket is the bucket named by the Host header
// of a virtual-host-style request, "" for a path-style one (the path then
// holds the bucket). It does not read the body.
func (v *Verifier) Verify(r *http.Request, vhostBucket string) (*Auth, error) {
	params := parseQuery(r.URL.RawQuery)
	authz := strings.TrimSpace(r.Header.Get("Authorization"))
	presigned := hasParam(params, "AWSAccessKeyId") || hasParam(params, "Signature")
	v4query := hasParam(params, "X-Amz-Algorithm") || hasParam(params, "X-Amz-Credential") || hasParam(params, "X-Amz-Signature")
	switch {
	case (authz != "" && presigned) || ((authz != "" || presigned) && v4query):
		return nil, errMixed
	case presigned:
		return v.verifyPresigned(r, vhostBucket, params)
	case authz != "":
		return v.verifyHeader(r, vhostBucket, params, authz)
	}
	return nil, sigv4.ErrUnsigned
}

var errHeader = s3err.New(s3err.InvalidArgument, "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")

// parseAuthorization splits "AWS AccessKeyId:Signature". It checks the
// syntax only.
func parseAuthorization(h string) (accessKey, signature string, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if scheme != Scheme {
		return "", "", errHeader
	}
	rest = strings.TrimSpace(rest)
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 || i == len(rest)-1 {
		return "", "", errHeader
	}
	accessKey, signature = rest[:i], rest[i+1:]
	if strings.ContainsAny(accessKey, " \t") || strings.ContainsAny(signature, " \t") {
		return "", "", errHeader
	}
	return accessKey, signature, nil
}

func (v *Verifier) verifyHeader(r *http.Request, vhostBucket string, params []queryParam, authz string) (*Auth, error) {
	accessKey, signature, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	secret, err := v.lookup(r.Context(), accessKey)
	if err != nil {
		return nil, err
	}
	t, sent, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if now := v.now(); t.Sub(now).Abs() > v.maxSkew {
		return nil, (&s3err.Error{Code: s3err.RequestTimeTooSkewed}).
			With("RequestTime", sent).
			With("ServerTime", now.UTC().Format(time.RFC3339)).
			With("MaxAllowedSkewMilliseconds", strconv.FormatInt(v.maxSkew.Milliseconds(), 10))
	}
	req := request{
		method:    r.Method,
		md5:       r.Header.Get("Content-MD5"),
		typ:       r.Header.Get("Content-Type"),
		date:      r.Header.Get("Date"),
		amz:       amzHeaders(r.Header, nil),
		paths:     resourcePaths(r, vhostBucket),
		resources: subresources(params),
	}
	if err := match(secret, req.candidates(), accessKey, signature); err != nil {
		return nil, err
	}
	return &Auth{AccessKey: accessKey, Time: t}, nil
}

func hasParam(params []queryParam, name string) bool {
	_, ok := param(params, name)
	return ok
}

func param(params []queryParam, name string) (string, bool) {
	for _, p := range params {
		if p.name == name {
			return p.value, true
		}
	}
	return "", false
}

func (v *Verifier) verifyPresigned(r *http.Request, vhostBucket string, params []queryParam) (*Auth, error) {
	accessKey, okKey := param(params, "AWSAccessKeyId")
	signature, okSig := param(params, "Signature")
	expires, okExp := param(params, "Expires")
	if !okKey || !okSig || !okExp || accessKey == "" || signature == "" {
		return nil, s3err.New(s3err.AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
	}
	// A '+' of the base64 signature sent unencoded arrives as a space;
	// base64 has no spaces, so this undoes exactly that.
	signature = strings.ReplaceAll(signature, " ", "+")
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || exp < 0 {
		return nil, s3err.New(s3err.AccessDenied, "Invalid date (should be seconds since epoch): %s", expires)
	}
	secret, err := v.lookup(r.Context(), accessKey)
	if err != nil {
		return nil, err
	}
	expiry := time.Unix(exp, 0)
	if now := v.now(); now.After(expiry) {
		return nil, s3err.New(s3err.AccessDenied, "Request has expired").
			With("Expires", expiry.UTC().Format(time.RFC3339)).
			With("ServerTime", now.UTC().Format(time.RFC3339))
	}
	req := request{
		method:    r.Method,
		md5:       headerOrParam(r, params, "Content-MD5"),
		typ:       headerOrParam(r, params, "Content-Type"),
		date:      expires,
		expires:   true,
		amz:       amzHeaders(r.Header, params),
		paths:     resourcePaths(r, vhostBucket),
		resources: subresources(params),
	}
	if err := match(secret, req.candidates(), accessKey, signature); err != nil {
		return nil, err
	}
	return &Auth{AccessKey: accessKey, Presigned: true, Expires: expiry}, nil
}

// headerOrParam is header name of r, or when absent the query parameter of
// its lower-cased name (botocore moves Content-Type and Content-MD5 into
// the query of a presigned URL).
func headerOrParam(r *http.Request, params []queryParam, name string) string {
	if v := r.Header.Get(name); v != "" {
		return v
	}
	v, _ := param(params, strings.ToLower(name))
	return v
}

func (v *Verifier) lookup(ctx context.Context, accessKey string) (string, error) {
	secret, err := v.creds.Secret(ctx, accessKey)
	if errors.Is(err, sigv4.ErrUnknownKey) {
		return "", (&s3err.Error{Code: s3err.InvalidAccessKeyID}).With("AWSAccessKeyId", accessKey)
	}
	if err != nil {
		return "", fmt.Errorf("look up access key %s: %w", accessKey, err)
	}
	return secret, nil
}

var errNoDate = s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")

// requestTime reads x-amz-date, or Date when x-amz-date is absent, and
// returns the time with the value as sent.
func requestTime(r *http.Request) (time.Time, string, error) {
	d := r.Header.Get("X-Amz-Date")
	if d == "" {
		d = r.Header.Get("Date")
	}
	if d == "" {
		return time.Time{}, "", errNoDate
	}
	t, ok := parseTime(d)
	if !ok {
		return time.Time{}, "", errNoDate
	}
	return t, d, nil
}

// timeFormats are the forms of Date and x-amz-date accepted: RFC 1123 with
// "GMT" (what clients send) or a numeric zone (the S3 documentation's
// examples), RFC 850, asctime, and ISO 8601 basic (some clients send
// x-amz-date as SigV4 does).
var timeFormats = []string{
	http.TimeFormat, time.RFC1123, time.RFC1123Z, time.RFC850, time.ANSIC, sigv4.TimeFormat,
}

func parseTime(s string) (time.Time, bool) {
	for _, f := range timeFormats {
		if t, err := time.Parse(f, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// match signs each StringToSign candidate and compares it with the
// provided signature in constant time.
func match(secret string, candidates []string, accessKey, provided string) error {
	for _, sts := range candidates {
		if hmac.Equal([]byte(Sign(secret, sts)), []byte(provided)) {
			return nil
		}
	}
	return (&s3err.Error{Code: s3err.SignatureDoesNotMatch}).
		With("AWSAccessKeyId", accessKey).
		With("StringToSign", candidates[0]).
		With("SignatureProvided", provided)
}

// Sign returns base64(HMAC-SHA1(secret, stringToSign)), the signature of
// a StringToSign.
func Sign(secret, stringToSign string) string {
	h := hmac.New(sha1.New, []byte(secret))
	h.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// VerifyPostPolicy checks the signature of a browser POST upload signed
// with SigV2: the form's signature field is base64(HMAC-SHA1(secret,
// policy)), over the base64 policy document as sent.
func (v *Verifier) VerifyPostPolicy(ctx context.Context, accessKey, policy, signature string) (*Auth, error) {
	secret, err := v.lookup(ctx, accessKey)
	if err != nil {
		return nil, err
	}
	if err := match(secret, []string{policy}, accessKey, signature); err != nil {
		return nil, err
	}
	return &Auth{AccessKey: accessKey}, nil
}
