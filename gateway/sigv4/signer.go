package sigv4

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Signer signs requests the way AWS clients do, for tests and tools. It
// signs the host header and every header present except those clients
// never sign (Authorization, User-Agent, Expect, Transfer-Encoding,
// X-Amzn-Trace-Id).
type Signer struct {
	AccessKey string
	SecretKey string
	Region    string // DefaultRegion when empty
}

var unsignable = map[string]bool{
	"authorization": true, "user-agent": true, "expect": true,
	"transfer-encoding": true, "x-amzn-trace-id": true,
}

func (s Signer) region() string {
	if s.Region == "" {
		return DefaultRegion
	}
	return s.Region
}

func (s Signer) scope(t time.Time) string {
	return t.UTC().Format(dateFormat) + "/" + s.region() + "/" + Service + "/" + terminator
}

func signedNames(r *http.Request) []string {
	names := []string{"host"}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if lk != "host" && !unsignable[lk] && !contains(names, lk) {
			names = append(names, lk)
		}
	}
	sort.Strings(names)
	return names
}

// Sign sets X-Amz-Date, X-Amz-Content-Sha256 (payload: a hex SHA-256,
// UnsignedPayload or a Streaming* mode) and Authorization on r, and
// returns the signature (the seed of a streaming upload's chain).
func (s Signer) Sign(r *http.Request, payload string, t time.Time) string {
	amzDate := t.UTC().Format(TimeFormat)
	r.URL.RawPath = EncodePath(r.URL.Path) // send what is signed
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	signed := signedNames(r)
	creq := canonicalRequest(r.Method, EncodePath(r.URL.Path), canonicalQuery(parseQuery(r.URL.RawQuery), ""),
		canonicalHeaders(r, signed), signed, payload)
	key := SigningKey(s.SecretKey, t.UTC().Format(dateFormat), s.region())
	sig := hexOf(hmacSHA256(key, stringToSign(amzDate, s.scope(t), creq)))
	r.Header.Set("Authorization", Algorithm+" Credential="+s.AccessKey+"/"+s.scope(t)+
		", SignedHeaders="+strings.Join(signed, ";")+", Signature="+string(sig))
	return string(sig)
}

// Chain returns the chunk signature chain that follows a request signed
// at t with seed signature seed.
func (s Signer) Chain(seed string, t time.Time) *Chain {
	key := SigningKey(s.SecretKey, t.UTC().Format(dateFormat), s.region())
	return NewChain(key, t.UTC().Format(TimeFormat), s.scope(t), seed)
}

// Presign adds the X-Amz-* query parameters of a presigned URL valid for
// expires after t to r.URL, signing the host header and the headers present
// in r.Header, and returns the URL.
func (s Signer) Presign(r *http.Request, expires time.Duration, t time.Time) string {
	amzDate := t.UTC().Format(TimeFormat)
	r.URL.RawPath = EncodePath(r.URL.Path) // send what is signed
	signed := signedNames(r)
	q := r.URL.RawQuery
	add := func(k, v string) {
		var b strings.Builder
		uriEncode(&b, k, false)
		b.WriteByte('=')
		uriEncode(&b, v, false)
		if q != "" {
			q += "&"
		}
		q += b.String()
	}
	add("X-Amz-Algorithm", Algorithm)
	add("X-Amz-Credential", s.AccessKey+"/"+s.scope(t))
	add("X-Amz-Date", amzDate)
	add("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	add("X-Amz-SignedHeaders", strings.Join(signed, ";"))
	creq := canonicalRequest(r.Method, EncodePath(r.URL.Path), canonicalQuery(parseQuery(q), ""),
		canonicalHeaders(r, signed), signed, UnsignedPayload)
	key := SigningKey(s.SecretKey, t.UTC().Format(dateFormat), s.region())
	add("X-Amz-Signature", string(hexOf(hmacSHA256(key, stringToSign(amzDate, s.scope(t), creq)))))
	r.URL.RawQuery = q
	return r.URL.String()
}
