// Package sigv4 verifies AWS Signature Version 4 on S3 requests, the way
// Amazon S3 does, without reading the body.
//
// What is verified, and where each rule comes from (S3 API reference,
// "Authenticating Requests (AWS Signature Version 4)" and its sub-pages;
// IAM user guide, "Create a signed AWS API request"):
//
//   - Authorization header (sig-v4-header-based-auth): "AWS4-HMAC-SHA256
//     Credential=AK/yyyymmdd/region/s3/aws4_request, SignedHeaders=a;b,
//     Signature=hex". The date comes from x-amz-date (or Date); the
//     credential date must be its day; the request time must be within
//     Config.MaxSkew (15 minutes, as S3) of the server's clock, else
//     RequestTimeTooSkewed. x-amz-content-sha256 is required and is the
//     last line of the canonical request: a hex SHA-256, UNSIGNED-PAYLOAD or
//     one of the STREAMING-* values (sigv4-streaming, sigv4-streaming-trailers).
//   - Presigned URLs (sigv4-query-string-auth): X-Amz-Algorithm,
//     X-Amz-Credential, X-Amz-Date, X-Amz-Expires (0..604800, else
//     AuthorizationQueryParametersError), X-Amz-SignedHeaders and
//     X-Amz-Signature, which is left out of the canonical query. Expired
//     URLs get AccessDenied "Request has expired". The payload hash is
//     UNSIGNED-PAYLOAD unless the URL carries X-Amz-Content-Sha256.
//   - The canonical request (canonical.go): the path as S3 signs it, each
//     segment URI-encoded once and never normalised; the query sorted by
//     encoded name then value; signed headers lower-cased, trimmed, inner
//     spaces collapsed, host from the Host header.
//   - The credential scope must name service s3 and the configured region;
//     another region is AuthorizationHeaderMalformed (or, presigned,
//     AuthorizationQueryParametersError) naming the expected region, as S3
//     does, so SDKs can retry in the right region.
//   - Every x-amz-* header present must be signed (S3: AccessDenied "There
//     were headers present in the request which were not signed"), so an
//     intermediary holding a presigned URL cannot add, say,
//     x-amz-copy-source to it.
//
// What is not verified here, because it needs the body: that the body
// matches a hex x-amz-content-sha256 (the caller hashes while streaming and
// answers XAmzContentSHA256Mismatch), and the chunk signatures of a
// streaming upload (package awschunked, with Auth.Chain).
//
// Errors are *s3err.Error values carrying the S3 code and message.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// Signature constants of SigV4 for S3.
const (
	Algorithm = "AWS4-HMAC-SHA256"
	Service   = "s3"
	// TimeFormat is the ISO 8601 basic format of X-Amz-Date.
	TimeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	terminator = "aws4_request"

	// Values of x-amz-content-sha256 other than a hex SHA-256.
	UnsignedPayload          = "UNSIGNED-PAYLOAD"
	StreamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	// EmptySHA256 is the hex SHA-256 of no bytes.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// MaxPresignExpires is the longest X-Amz-Expires S3 accepts: 7 days.
	MaxPresignExpires = 7 * 24 * 60 * 60
	// DefaultMaxSkew is S3's tolerance between request and server clocks.
	DefaultMaxSkew = 15 * time.Minute
	// DefaultRegion is the region when Config.Region is empty.
	DefaultRegion = "us-east-1"
)

// CredentialStore finds the secret key of an access key: ErrUnknownKey
// when there is no such key, another error when it could not tell or
// refuses the key (the request then fails with that error, an S3 error
// among them answered as it says, not InvalidAccessKeyId).
type CredentialStore interface {
	Secret(ctx context.Context, accessKey string) (secret string, err error)
}

// ErrUnknownKey is a CredentialStore's answer for a key it does not have.
var ErrUnknownKey = errors.New("no such access key")

// StaticCredentials is a CredentialStore of one key pair, the root
// credentials (the gateway reads them from CAIRN_ACCESS_KEY and
// CAIRN_SECRET_KEY).
type StaticCredentials struct {
	AccessKey string
	SecretKey string
}

// Secret implements CredentialStore.
func (s StaticCredentials) Secret(_ context.Context, accessKey string) (string, error) {
	if s.AccessKey == "" || accessKey != s.AccessKey {
		return "", ErrUnknownKey
	}
	return s.SecretKey, nil
}

// Config configures a Verifier.
type Config struct {
	Credentials CredentialStore
	// Region the gateway answers for; DefaultRegion when empty.
	Region string
	// MaxSkew between the request time and the server clock;
	// DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier checks request signatures. It is safe for concurrent use.
type Verifier struct {
	creds   CredentialStore
	region  string
	maxSkew time.Duration
	now     func() time.Time
	keys    keyCache
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("sigv4: Config.Credentials is nil")
	}
	v := &Verifier{creds: cfg.Credentials, region: cfg.Region, maxSkew: cfg.MaxSkew, now: cfg.Now}
	if v.region == "" {
		v.region = DefaultRegion
	}
	if v.maxSkew == 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Region is the region this verifier accepts.
func (v *Verifier) Region() string { return v.region }

// Auth is the outcome of a successful verification.
type Auth struct {
	AccessKey string
	// Presigned is true for query-string authentication.
	Presigned bool
	// Payload is what the signature says about the body: a lower-case hex
	// SHA-256 the body must hash to, UnsignedPayload, or one of the
	// Streaming* modes (then the body is aws-chunked; see Chain). Use this,
	// never the raw x-amz-content-sha256 header, which a presigned request
	// does not sign.
	Payload string
	// SignedHeaders are the lower-cased names the signature covers.
	SignedHeaders []string
	// Time is the signing time (X-Amz-Date).
	Time time.Time
	// Signature is the request's hex signature: the seed of the chunk
	// signature chain of a streaming upload.
	Signature string

	scope      string // yyyymmdd/region/s3/aws4_request
	signingKey []byte
}

// Streaming reports whether the body is aws-chunked.
func (a *Auth) Streaming() bool { return strings.HasPrefix(a.Payload, "STREAMING-") }

// PayloadHash returns the SHA-256 the body must hash to, if the signature
// covers the body that way.
func (a *Auth) PayloadHash() (sum [sha256.Size]byte, ok bool) {
	if len(a.Payload) != 2*sha256.Size {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(a.Payload))
	return sum, err == nil
}

// Signed reports whether the lower-cased header name is covered by the
// signature.
func (a *Auth) Signed(name string) bool {
	for _, h := range a.SignedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// Chain returns the chunk signature chain of a streaming upload, seeded
// with the request signature. Each call starts a new chain.
func (a *Auth) Chain() *Chain {
	return NewChain(a.signingKey, a.Time.UTC().Format(TimeFormat), a.scope, a.Signature)
}

// ErrUnsigned is returned by Verify for a request without any signature.
// It renders as AccessDenied; callers that serve anonymous requests test
// for it with errors.Is.
var ErrUnsigned = &s3err.Error{Code: s3err.AccessDenied, Message: "Anonymous access is not allowed."}

// Verify checks the signature of r, from its Authorization header or its
// presigned query. It does not read the body.
func (v *Verifier) Verify(r *http.Request) (*Auth, error) {
	params := parseQuery(r.URL.RawQuery)
	authz := r.Header.Get("Authorization")
	presigned := hasParam(params, "X-Amz-Algorithm") || hasParam(params, "X-Amz-Credential") ||
		hasParam(params, "X-Amz-Signature")
	switch {
	case authz != "" && presigned:
		return nil, s3err.New(s3err.InvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case authz != "":
		return v.verifyHeader(r, authz, params)
	case presigned:
		return v.verifyPresigned(r, params)
	}
	return nil, ErrUnsigned
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

var errUnsupported = s3err.New(s3err.InvalidRequest, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")

// authorization is a parsed Authorization header.
type authorization struct {
	cred          credential
	signedHeaders []string
	signature     string
}

// credential is a parsed AK/yyyymmdd/region/service/aws4_request.
type credential struct {
	accessKey, date, region, service string
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + terminator
}

func malformed(format string, args ...any) *s3err.Error {
	return s3err.New(s3err.AuthorizationHeaderMalformed, "The authorization header is malformed; "+format, args...)
}

// parseAuthorization parses an AWS4-HMAC-SHA256 Authorization header. It
// checks the syntax only.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != Algorithm {
		if strings.HasPrefix(alg, "AWS4-") || alg == "AWS" {
			return a, errUnsupported
		}
		return a, malformed("the authorization header requires the %s algorithm.", Algorithm)
	}
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformed("the authorization component %q is malformed.", part)
		}
		switch k {
		case "Credential":
			if haveCred {
				return a, malformed("the Credential is given twice.")
			}
			haveCred = true
			c, err := parseCredential(val)
			if err != nil {
				return a, malformed("%s", err.Error())
			}
			a.cred = c
		case "SignedHeaders":
			if haveSigned {
				return a, malformed("the SignedHeaders are given twice.")
			}
			haveSigned = true
			sh, err := parseSignedHeaders(val)
			if err != nil {
				return a, malformed("%s", err.Error())
			}
			a.signedHeaders = sh
		case "Signature":
			if haveSig {
				return a, malformed("the Signature is given twice.")
			}
			haveSig = true
			if !isHex64(val) {
				return a, malformed("the Signature is not 64 hexadecimal digits.")
			}
			a.signature = val
		default:
			return a, malformed("the authorization component %q is not known.", k)
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return a, malformed("the authorization header requires Credential, SignedHeaders and Signature.")
	}
	return a, nil
}

var errCredential = errors.New(`the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`)

func parseCredential(s string) (credential, error) {
	parts := strings.Split(s, "/")
	n := len(parts)
	if n < 5 || parts[n-1] != terminator {
		return credential{}, errCredential
	}
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		date:      parts[n-4],
		region:    parts[n-3],
		service:   parts[n-2],
	}
	if c.accessKey == "" || c.region == "" || len(c.date) != 8 || !allDigits(c.date) {
		return credential{}, errCredential
	}
	if c.service != Service {
		return credential{}, errors.New("incorrect service \"" + c.service + "\". This endpoint belongs to \"" + Service + "\".")
	}
	return c, nil
}

func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("the SignedHeaders are empty.")
	}
	sh := strings.Split(s, ";")
	host := false
	for _, h := range sh {
		if h == "" || strings.ToLower(h) != h || strings.ContainsAny(h, " \t:") {
			return nil, errors.New("the SignedHeaders are not a list of lower-case header names.")
		}
		host = host || h == "host"
	}
	if !host {
		return nil, errors.New("the SignedHeaders must include host.")
	}
	return sh, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ishex(s[i]) {
			return false
		}
	}
	return true
}

func (v *Verifier) verifyHeader(r *http.Request, authz string, params []queryParam) (*Auth, error) {
	a, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, s3err.New(s3err.InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
	}
	if !validPayload(payload, true) {
		return nil, s3err.New(s3err.InvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
	}
	amzDate, t, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if a.cred.date != amzDate[:8] {
		return nil, malformed("Invalid credential date \"%s\". This date is not the same as X-Amz-Date: \"%s\".", a.cred.date, amzDate[:8])
	}
	secret, err := v.lookup(r.Context(), a.cred.accessKey)
	if err != nil {
		return nil, err
	}
	if a.cred.region != v.region {
		return nil, malformed("the region '%s' is wrong; expecting '%s'", a.cred.region, v.region).With("Region", v.region)
	}
	if now := v.now(); t.Sub(now).Abs() > v.maxSkew {
		return nil, (&s3err.Error{Code: s3err.RequestTimeTooSkewed}).
			With("RequestTime", amzDate).
			With("ServerTime", now.UTC().Format(time.RFC3339)).
			With("MaxAllowedSkewMilliseconds", strconv.FormatInt(v.maxSkew.Milliseconds(), 10))
	}
	if err := checkUnsigned(r, a.signedHeaders); err != nil {
		return nil, err
	}
	key := v.keys.get(secret, a.cred.date, a.cred.region)
	headers := canonicalHeaders(r, a.signedHeaders)
	query := canonicalQuery(params, "")
	if err := v.match(r, a.cred, key, amzDate, query, headers, a.signedHeaders, payload, a.signature); err != nil {
		return nil, err
	}
	if isHex64(payload) {
		payload = strings.ToLower(payload)
	}
	return &Auth{
		AccessKey:     a.cred.accessKey,
		Payload:       payload,
		SignedHeaders: a.signedHeaders,
		Time:          t,
		Signature:     strings.ToLower(a.signature),
		scope:         a.cred.scope(),
		signingKey:    key,
	}, nil
}

// match computes the signature over each canonical URI candidate and
// compares it with the one provided, in constant time.
func (v *Verifier) match(r *http.Request, cred credential, key []byte, amzDate, query, headers string, signed []string, payload, provided string) error {
	provided = strings.ToLower(provided)
	var first, firstSTS string
	for _, uri := range canonicalURIs(r) {
		creq := canonicalRequest(r.Method, uri, query, headers, signed, payload)
		sts := stringToSign(amzDate, cred.scope(), creq)
		if hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(key, sts))), []byte(provided)) {
			return nil
		}
		if first == "" {
			first, firstSTS = creq, sts
		}
	}
	return (&s3err.Error{Code: s3err.SignatureDoesNotMatch}).
		With("AWSAccessKeyId", cred.accessKey).
		With("StringToSign", firstSTS).
		With("SignatureProvided", provided).
		With("CanonicalRequest", first)
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func (v *Verifier) lookup(ctx context.Context, accessKey string) (string, error) {
	secret, err := v.creds.Secret(ctx, accessKey)
	if errors.Is(err, ErrUnknownKey) {
		return "", (&s3err.Error{Code: s3err.InvalidAccessKeyID}).With("AWSAccessKeyId", accessKey)
	}
	if err != nil {
		return "", fmt.Errorf("look up access key %s: %w", accessKey, err)
	}
	return secret, nil
}

// requestTime reads X-Amz-Date, or Date in HTTP format when X-Amz-Date is
// absent, and returns it in ISO 8601 basic format with its time.
func requestTime(r *http.Request) (string, time.Time, error) {
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		t, err := time.Parse(TimeFormat, d)
		if err != nil {
			return "", time.Time{}, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
		}
		return d, t, nil
	}
	if d := r.Header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			return t.UTC().Format(TimeFormat), t, nil
		}
	}
	return "", time.Time{}, s3err.New(s3err.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
}

// validPayload accepts a hex SHA-256, UNSIGNED-PAYLOAD and, with
// streaming, the STREAMING-* modes.
func validPayload(p string, streaming bool) bool {
	switch p {
	case UnsignedPayload:
		return true
	case StreamingSigned, StreamingSignedTrailer, StreamingUnsignedTrailer:
		return streaming
	}
	return isHex64(p)
}

// unsignedExempt are x-amz-* headers clients send without signing them.
var unsignedExempt = map[string]bool{
	"x-amz-user-agent": true, // the AWS SDK for JavaScript in browsers
}

// checkUnsigned refuses requests carrying x-amz-* headers the signature
// does not cover.
func checkUnsigned(r *http.Request, signed []string) error {
	var missing []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") || unsignedExempt[lk] || contains(signed, lk) {
			continue
		}
		missing = append(missing, lk)
	}
	if len(missing) == 0 {
		return nil
	}
	return s3err.New(s3err.AccessDenied, "There were headers present in the request which were not signed").
		With("HeadersNotSigned", strings.Join(sortedCopy(missing), ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c
}

func queryError(format string, args ...any) *s3err.Error {
	return s3err.New(s3err.AuthorizationQueryParametersError, format, args...)
}

func (v *Verifier) verifyPresigned(r *http.Request, params []queryParam) (*Auth, error) {
	get := func(name string) string { s, _ := param(params, name); return s }
	if alg := get("X-Amz-Algorithm"); alg != Algorithm {
		if alg == "" {
			return nil, queryError("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
		return nil, queryError("X-Amz-Algorithm only supports \"%s\"", Algorithm)
	}
	for _, name := range []string{"X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		if !hasParam(params, name) {
			return nil, queryError("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	cred, err := parseCredential(get("X-Amz-Credential"))
	if err != nil {
		return nil, queryError("Error parsing the X-Amz-Credential parameter; %s", err.Error())
	}
	amzDate := get("X-Amz-Date")
	t, err := time.Parse(TimeFormat, amzDate)
	if err != nil {
		return nil, queryError("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if cred.date != amzDate[:8] {
		return nil, queryError("Error parsing the X-Amz-Credential parameter; the date \"%s\" is not the date of X-Amz-Date \"%s\".", cred.date, amzDate[:8])
	}
	expires, err := strconv.ParseInt(get("X-Amz-Expires"), 10, 64)
	switch {
	case err != nil:
		return nil, queryError("X-Amz-Expires should be a number")
	case expires < 0:
		return nil, queryError("X-Amz-Expires must be non-negative")
	case expires > MaxPresignExpires:
		return nil, queryError("X-Amz-Expires must be less than a week (in seconds) that is; the maximum expires is 604800 seconds")
	}
	signed, err := parseSignedHeaders(get("X-Amz-SignedHeaders"))
	if err != nil {
		return nil, queryError("Error parsing the X-Amz-SignedHeaders parameter; %s", err.Error())
	}
	signature := get("X-Amz-Signature")
	if !isHex64(signature) {
		return nil, queryError("X-Amz-Signature is not 64 hexadecimal digits.")
	}
	payload := UnsignedPayload
	if p, ok := param(params, "X-Amz-Content-Sha256"); ok {
		if !validPayload(p, false) {
			return nil, queryError("X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.")
		}
		payload = p
	}
	secret, err := v.lookup(r.Context(), cred.accessKey)
	if err != nil {
		return nil, err
	}
	if cred.region != v.region {
		return nil, queryError("Error parsing the X-Amz-Credential parameter; the region '%s' is wrong; expecting '%s'", cred.region, v.region).With("Region", v.region)
	}
	now := v.now()
	if t.Sub(now) > v.maxSkew {
		return nil, s3err.New(s3err.AccessDenied, "Request is not valid yet")
	}
	if now.Sub(t) > time.Duration(expires)*time.Second {
		return nil, s3err.New(s3err.AccessDenied, "Request has expired").
			With("X-Amz-Expires", strconv.FormatInt(expires, 10)).
			With("Expires", t.Add(time.Duration(expires)*time.Second).UTC().Format(time.RFC3339)).
			With("ServerTime", now.UTC().Format(time.RFC3339))
	}
	if err := checkUnsigned(r, signed); err != nil {
		return nil, err
	}
	key := v.keys.get(secret, cred.date, cred.region)
	headers := canonicalHeaders(r, signed)
	query := canonicalQuery(params, "X-Amz-Signature")
	if err := v.match(r, cred, key, amzDate, query, headers, signed, payload, signature); err != nil {
		return nil, err
	}
	if isHex64(payload) {
		payload = strings.ToLower(payload)
	}
	return &Auth{
		AccessKey:     cred.accessKey,
		Presigned:     true,
		Payload:       payload,
		SignedHeaders: signed,
		Time:          t,
		Signature:     strings.ToLower(signature),
		scope:         cred.scope(),
		signingKey:    key,
	}, nil
}

// hmacSHA256 returns HMAC-SHA256(key, data).
func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// SigningKey derives the SigV4 signing key for a secret, a yyyymmdd date
// and a region, for service s3.
func SigningKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, Service)
	return hmacSHA256(k, terminator)
}

// keyCache caches signing keys per (secret, date, region): deriving one
// costs four HMACs, and nearly every request of a day reuses the same one.
type keyCache struct {
	mu sync.Mutex
	m  map[keyID][]byte
}

type keyID struct{ secret, date, region string }

// maxCachedKeys bounds the cache; it is emptied when full (keys change
// daily, so the steady state is one entry per active secret).
const maxCachedKeys = 4096

func (c *keyCache) get(secret, date, region string) []byte {
	id := keyID{secret, date, region}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.m[id]; ok {
		return k
	}
	k := SigningKey(secret, date, region)
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[keyID][]byte)
	}
	c.m[id] = k
	return k
}

// VerifyPostPolicy checks the signature of a browser POST upload: the
// form's x-amz-credential, x-amz-date and x-amz-signature over its
// base64 policy document, which the signature covers instead of a
// canonical request. The policy's expiration, not the request time,
// bounds its use, so no clock skew is checked here.
func (v *Verifier) VerifyPostPolicy(ctx context.Context, credentialField, amzDate, policy, signature string) (*Auth, error) {
	c, err := parseCredential(credentialField)
	if err != nil {
		return nil, s3err.New(s3err.InvalidArgument, "x-amz-credential: %s", err.Error())
	}
	t, err := time.Parse(TimeFormat, amzDate)
	if err != nil {
		return nil, s3err.New(s3err.InvalidArgument, "x-amz-date must be in ISO 8601 basic format (yyyyMMddTHHmmssZ), not %q.", amzDate)
	}
	if c.date != amzDate[:8] {
		return nil, s3err.New(s3err.InvalidArgument, "Invalid credential date \"%s\". This date is not the same as x-amz-date: \"%s\".", c.date, amzDate[:8])
	}
	secret, err := v.lookup(ctx, c.accessKey)
	if err != nil {
		return nil, err
	}
	if c.region != v.region {
		return nil, s3err.New(s3err.InvalidArgument, "The region '%s' of x-amz-credential is wrong; expecting '%s'.", c.region, v.region).With("Region", v.region)
	}
	key := v.keys.get(secret, c.date, c.region)
	if !hmac.Equal([]byte(hex.EncodeToString(hmacSHA256(key, policy))), []byte(strings.ToLower(signature))) {
		return nil, (&s3err.Error{Code: s3err.SignatureDoesNotMatch}).
			With("AWSAccessKeyId", c.accessKey).
			With("StringToSign", policy).
			With("SignatureProvided", signature)
	}
	return &Auth{AccessKey: c.accessKey, Payload: UnsignedPayload, Time: t}, nil
}
