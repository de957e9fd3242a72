package s3bench

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Server-side encryption a run can ask for (Config.SSE).
const (
	// SSENone sends no encryption headers: the bucket's default applies.
	SSENone = ""
	// SSES3 sends x-amz-server-side-encryption: AES256 on every PUT.
	SSES3 = "AES256"
	// SSEC sends a customer key (Config.SSECustomerKey) on every PUT,
	// GET and HEAD, as S3 requires for every request on such an object.
	SSEC = "SSE-C"
)

// customerKeySize is the size of an SSE-C key (AES-256).
const customerKeySize = 32

// checkSSE checks c.SSE and, for SSE-C, draws the run's key unless one
// was given.
func (c *Config) checkSSE() error {
	switch c.SSE {
	case SSENone, SSES3:
		if c.SSECustomerKey != nil {
			return fmt.Errorf("a customer key is only for SSE %q", SSEC)
		}
	case SSEC:
		if c.SSECustomerKey == nil {
			c.SSECustomerKey = make([]byte, customerKeySize)
			rand.Read(c.SSECustomerKey) // never fails
		}
		if len(c.SSECustomerKey) != customerKeySize {
			return fmt.Errorf("SSE-C key of %d bytes: want %d", len(c.SSECustomerKey), customerKeySize)
		}
	default:
		return fmt.Errorf("unknown server-side encryption %q (%q, %q or none)", c.SSE, SSES3, SSEC)
	}
	return nil
}

// encryption is what a run adds to its requests for Config.SSE.
type encryption struct {
	mode string
	// alg, key and keyMD5 are the SSE-C headers: the algorithm, the key
	// in base64 and the base64 of its MD5 (the SDK computes neither).
	alg, key, keyMD5 *string
}

func newEncryption(mode string, customerKey []byte) encryption {
	e := encryption{mode: mode}
	if mode == SSEC {
		sum := md5.Sum(customerKey)
		e.alg = aws.String("AES256")
		e.key = aws.String(base64.StdEncoding.EncodeToString(customerKey))
		e.keyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	}
	return e
}

func (e encryption) put(in *s3.PutObjectInput) {
	switch e.mode {
	case SSES3:
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	case SSEC:
		in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = e.alg, e.key, e.keyMD5
	}
}

func (e encryption) get(in *s3.GetObjectInput) {
	in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = e.alg, e.key, e.keyMD5
}

func (e encryption) head(in *s3.HeadObjectInput) {
	in.SSECustomerAlgorithm, in.SSECustomerKey, in.SSECustomerKeyMD5 = e.alg, e.key, e.keyMD5
}
