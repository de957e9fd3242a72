package sigv2

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// FuzzAuthorizationHeader feeds arbitrary Authorization, Date and
// x-amz-date headers: Verify must not panic, must answer with an
// *s3err.Error, and may accept only the signature of this exact request.
func FuzzAuthorizationHeader(f *testing.F) {
	r := signed("GET", "/b/k", testNow, nil, nil)
	f.Add(r.Header.Get("Authorization"), r.Header.Get("Date"), "")
	r = signed("GET", "/b/k", testNow, func(r *http.Request) { r.Header.Set("X-Amz-Date", testNow.Format(time.RFC1123Z)) }, nil)
	f.Add(r.Header.Get("Authorization"), "", r.Header.Get("X-Amz-Date"))
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=", "Tue, 27 Mar 2007 19:36:42 +0000", "")
	f.Add("AWS :", "x", "y")
	f.Add("AWS a:b:c", "Sun, 01 Mar 2026 12:00:00 GMT", "20260301T120000Z")
	f.Add("AWS\t AK : sig", "", "")
	v := exampleVerifier(f, testNow)
	f.Fuzz(func(t *testing.T, authz, date, amzDate string) {
		r := &http.Request{Method: "GET", Host: "example.com", RequestURI: "/b/k",
			Header: http.Header{}, URL: &url.URL{Path: "/b/k"}}
		r.Header.Set("Authorization", authz)
		if date != "" {
			r.Header.Set("Date", date)
		}
		if amzDate != "" {
			r.Header.Set("X-Amz-Date", amzDate)
		}
		a, err := v.Verify(r, "")
		if err == nil {
			// The signature must be one computed over this request.
			_, sig, perr := parseAuthorization(authz)
			if perr != nil || a.AccessKey != exampleAccessKey || !signsOneOf(sig, candidatesOf(r, "")) {
				t.Fatalf("accepted %q (Date %q, x-amz-date %q) as %+v", authz, date, amzDate, a)
			}
			return
		}
		var e *s3err.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *s3err.Error", err)
		}
		ak, sig, perr := parseAuthorization(authz)
		if perr == nil {
			// A parsed header reassembles into one that parses the same.
			ak2, sig2, err2 := parseAuthorization("AWS " + ak + ":" + sig)
			if err2 != nil || ak2 != ak || sig2 != sig {
				t.Fatalf("parse %q: %q %q; reparse: %q %q %v", authz, ak, sig, ak2, sig2, err2)
			}
		}
	})
}

func signsOneOf(sig string, candidates []string) bool {
	for _, c := range candidates {
		if Sign(exampleSecret, c) == sig {
			return true
		}
	}
	return false
}

// FuzzPresignedQuery feeds arbitrary query strings to a presigned request.
func FuzzPresignedQuery(f *testing.F) {
	r := presigned("GET", "/b/k?acl&versionId=v%20x", testNow.Add(time.Hour), nil, nil)
	f.Add(r.URL.RawQuery)
	f.Add("AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620")
	f.Add("AWSAccessKeyId=&Signature=&Expires=99999999999999999999&%zz;&=&&")
	f.Add("Signature=a+b&Expires=-1&AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&x-amz-meta-a=%")
	v := exampleVerifier(f, testNow)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{Method: "GET", Host: "example.com", Header: http.Header{},
			URL: &url.URL{Path: "/b/k", RawQuery: rawQuery}}
		r.RequestURI = "/b/k?" + rawQuery
		a, err := v.Verify(r, "")
		if err == nil {
			params := parseQuery(rawQuery)
			sig, _ := param(params, "Signature")
			sig = strings.ReplaceAll(sig, " ", "+")
			if a.AccessKey != exampleAccessKey || !a.Presigned || !signsOneOf(sig, candidatesOf(r, "")) {
				t.Fatalf("accepted %q as %+v", rawQuery, a)
			}
			return
		}
		var e *s3err.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v is not an *s3err.Error", err)
		}
		// The sub-resource renderings never panic, start with '?' and
		// are at most two.
		subs := subresources(parseQuery(rawQuery))
		if len(subs) == 0 || len(subs) > 2 {
			t.Fatalf("subresources(%q) = %q", rawQuery, subs)
		}
		for _, s := range subs {
			if s != "" && s[0] != '?' {
				t.Fatalf("subresources(%q) = %q", rawQuery, subs)
			}
		}
	})
}
