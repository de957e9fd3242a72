package gateway

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/cairnstore/cairn/gateway/s3err"
)

// MaxKeyLength is S3's limit on a key, in bytes of UTF-8.
const MaxKeyLength = 1024

// checkBucketName applies S3's general purpose bucket naming rules
// ("Bucket naming rules" in the S3 user guide): 3 to 63 characters of
// lower-case letters, digits, '.' and '-', beginning and ending with a
// letter or digit, no "..", not shaped like an IPv4 address, and none of
// the reserved prefixes and suffixes.
func checkBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: names are 3 to 63 characters long.")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: only lower-case letters, digits, '.' and '-' are allowed.")
		}
	}
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: it must begin and end with a letter or digit.")
	}
	if strings.Contains(name, "..") {
		return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: adjacent periods are not allowed.")
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: it must not be formatted as an IP address.")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: the prefix %q is reserved.", p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return s3err.New(s3err.InvalidBucketName, "The specified bucket is not valid: the suffix %q is reserved.", s)
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkKey applies S3's key rules: 1 to 1024 bytes of UTF-8.
func checkKey(key string) error {
	if len(key) > MaxKeyLength {
		return s3err.KeyTooLongError
	}
	if key == "" {
		return s3err.New(s3err.InvalidArgument, "Object keys must not be empty.")
	}
	if !utf8.ValidString(key) {
		return s3err.New(s3err.InvalidArgument, "Object keys must be UTF-8.")
	}
	return nil
}
