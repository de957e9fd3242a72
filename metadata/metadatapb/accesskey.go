package metadatapb

import (
	"fmt"
)

// The shape of access key ids, secrets and names metad stores; the CLI
// checks the same before it sends them. AWS ids are 16–128 characters of
// [A-Z0-9], and tools written for S3 (and some SDKs' credential files)
// break on anything else, so ids keep to letters and digits. Secrets are
// what a SigV4 HMAC key may be, 8 characters at least.
const (
	MinAccessKeyID     = 3
	MaxAccessKeyID     = 128
	MinAccessKeySecret = 8
	MaxAccessKeySecret = 128
	MaxAccessKeyName   = 256
)

// CheckAccessKeyID reports what is wrong with an access key id.
func CheckAccessKeyID(id string) error {
	ok := len(id) >= MinAccessKeyID && len(id) <= MaxAccessKeyID
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
	}
	if !ok {
		return fmt.Errorf("access key id %q: an id is %d..%d letters and digits", id, MinAccessKeyID, MaxAccessKeyID)
	}
	return nil
}

// CheckAccessKeySecret reports what is wrong with a secret key, without
// repeating it: error messages end up in logs.
func CheckAccessKeySecret(secret string) error {
	ok := len(secret) >= MinAccessKeySecret && len(secret) <= MaxAccessKeySecret
	for i := 0; ok && i < len(secret); i++ {
		ok = secret[i] > ' ' && secret[i] < 0x7f
	}
	if !ok {
		return fmt.Errorf("a secret key is %d..%d printable ASCII characters without spaces", MinAccessKeySecret, MaxAccessKeySecret)
	}
	return nil
}

// CheckAccessKeyName reports what is wrong with a key's name.
func CheckAccessKeyName(name string) error {
	if len(name) > MaxAccessKeyName {
		return fmt.Errorf("an access key name has at most %d bytes", MaxAccessKeyName)
	}
	return nil
}
