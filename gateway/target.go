package gateway

import (
	"net"
	"net/http"
	"strings"
)

// target is what a request addresses: the service (no bucket), a bucket
// (no key) or an object.
type target struct {
	bucket string
	key    string
	// vhost is true when the bucket came from the Host header.
	vhost bool
}

// parseTarget finds the bucket and key of r: virtual-host style when the
// host is <bucket>.<domain>, path style (/bucket/key) otherwise. The key is
// the rest of the decoded path, kept exactly as sent (no cleaning of "//",
// "." or "..": S3 keys may contain them).
func parseTarget(r *http.Request, domain string) target {
	path := r.URL.Path
	if domain != "" {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(host)
		if b, ok := strings.CutSuffix(host, "."+strings.ToLower(domain)); ok && b != "" {
			return target{bucket: b, key: strings.TrimPrefix(path, "/"), vhost: true}
		}
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	return target{bucket: bucket, key: key}
}
