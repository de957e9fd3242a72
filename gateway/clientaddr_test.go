package gateway_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/gateway"
)

// TestTrustedProxies: behind a trusted proxy (here: every loopback peer),
// a bucket policy's aws:SourceIp and aws:SecureTransport see the client
// X-Forwarded-For and X-Forwarded-Proto name; a gateway that trusts no
// proxy goes by the connection, whatever the request claims.
func TestTrustedProxies(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		f := newFake()
		e := startGateway(t, backend{meta: f, objects: f}, func(c *gateway.Config) {
			if trusted {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
		})
		c := e.awsClient(t)
		ctx := context.Background()
		mkBucket(t, c, "behind")
		must[*s3.PutObjectOutput](t)(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("behind"), Key: aws.String("k"), Body: strings.NewReader("body")}))
		must[*s3.PutBucketPolicyOutput](t)(c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("behind"), Policy: aws.String(`{
		  "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::behind/*",
		    "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}, "Bool": {"aws:SecureTransport": "true"}}}]}`)}))
		get := func(forwardedFor, proto string) int {
			t.Helper()
			h := http.Header{}
			if forwardedFor != "" {
				h.Set("X-Forwarded-For", forwardedFor)
			}
			if proto != "" {
				h.Set("X-Forwarded-Proto", proto)
			}
			return unsignedGet(t, e.url+"/behind/k", h)
		}
		allowed := http.StatusForbidden
		if trusted {
			allowed = http.StatusOK
		}
		for _, tc := range []struct {
			name, xff, proto string
			want             int
		}{
			{"a client in the range over https", "203.0.113.7", "https", allowed},
			{"a client in the range behind another proxy", "203.0.113.7, 127.0.0.2", "https", allowed},
			{"over http", "203.0.113.7", "http", http.StatusForbidden},
			{"no scheme forwarded (the proxy's own http)", "203.0.113.7", "", http.StatusForbidden},
			{"a client outside the range", "198.51.100.7", "https", http.StatusForbidden},
			{"the range claimed left of the real client", "203.0.113.7, 198.51.100.7", "https", http.StatusForbidden},
			{"nothing forwarded", "", "", http.StatusForbidden},
		} {
			if got := get(tc.xff, tc.proto); got != tc.want {
				t.Errorf("trusted %v, %s: %d, want %d", trusted, tc.name, got, tc.want)
			}
		}
	}
}
