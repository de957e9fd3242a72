package s3bench

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestCheckSSE(t *testing.T) {
	for _, tc := range []struct {
		sse  string
		key  []byte
		want string // error substring; "" for none
	}{
		{SSENone, nil, ""},
		{SSES3, nil, ""},
		{SSEC, nil, ""},
		{SSEC, bytes.Repeat([]byte{7}, 32), ""},
		{SSEC, make([]byte, 16), "want 32"},
		{SSES3, make([]byte, 32), "only for SSE"},
		{"aws:kms", nil, "unknown server-side encryption"},
		{"aes256", nil, "unknown server-side encryption"},
	} {
		c := Config{SSE: tc.sse, SSECustomerKey: tc.key}
		err := c.checkSSE()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("SSE %q, key of %d bytes: %v", tc.sse, len(tc.key), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("SSE %q, key of %d bytes: %v; want an error with %q", tc.sse, len(tc.key), err, tc.want)
		case tc.want == "" && tc.sse == SSEC && len(c.SSECustomerKey) != 32:
			t.Errorf("SSE-C: key of %d bytes after the check", len(c.SSECustomerKey))
		case tc.key != nil && tc.want == "" && !bytes.Equal(c.SSECustomerKey, tc.key):
			t.Error("SSE-C: the key given was replaced")
		}
	}
	// A key drawn for each run.
	a, b := Config{SSE: SSEC}, Config{SSE: SSEC}
	if a.checkSSE() != nil || b.checkSSE() != nil || bytes.Equal(a.SSECustomerKey, b.SSECustomerKey) {
		t.Errorf("two runs drew the same SSE-C key %x", a.SSECustomerKey)
	}
}

func TestEncryptionHeaders(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	sum := md5.Sum(key)
	wantKey, wantMD5 := base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(sum[:])
	for _, mode := range []string{SSENone, SSES3, SSEC} {
		e := newEncryption(mode, key)
		var put s3.PutObjectInput
		var get s3.GetObjectInput
		var head s3.HeadObjectInput
		e.put(&put)
		e.get(&get)
		e.head(&head)
		wantSSE := types.ServerSideEncryption("")
		if mode == SSES3 {
			wantSSE = types.ServerSideEncryptionAes256
		}
		if put.ServerSideEncryption != wantSSE {
			t.Errorf("%q: PUT x-amz-server-side-encryption %q, want %q", mode, put.ServerSideEncryption, wantSSE)
		}
		type customer struct{ alg, key, md5 string }
		var want customer
		if mode == SSEC {
			want = customer{"AES256", wantKey, wantMD5}
		}
		for name, got := range map[string]customer{
			"PUT":  {aws.ToString(put.SSECustomerAlgorithm), aws.ToString(put.SSECustomerKey), aws.ToString(put.SSECustomerKeyMD5)},
			"GET":  {aws.ToString(get.SSECustomerAlgorithm), aws.ToString(get.SSECustomerKey), aws.ToString(get.SSECustomerKeyMD5)},
			"HEAD": {aws.ToString(head.SSECustomerAlgorithm), aws.ToString(head.SSECustomerKey), aws.ToString(head.SSECustomerKeyMD5)},
		} {
			if got != want {
				t.Errorf("%q: %s customer key headers %+v, want %+v", mode, name, got, want)
			}
		}
	}
}
