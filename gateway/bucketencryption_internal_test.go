package gateway

import (
	"errors"
	"testing"
)

func TestParseSSEConfiguration(t *testing.T) {
	const ns = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`
	for _, tc := range []struct {
		name, doc string
		err       error // nil: AES256 accepted
	}{
		{"aws cli", `<ServerSideEncryptionConfiguration ` + ns + `><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`, nil},
		{"no namespace, bucket key", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm> AES256 </SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`, nil},
		{"kms", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, errKMS},
		{"dsse", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, errKMS},
		{"kms key with AES256", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, errSSEConfig},
		{"unknown algorithm", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, errSSEConfig},
		{"no rule", `<ServerSideEncryptionConfiguration></ServerSideEncryptionConfiguration>`, errSSEConfig},
		{"rule without default", `<ServerSideEncryptionConfiguration><Rule><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`, errSSEConfig},
		{"two rules", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`, errSSEConfig},
		{"other root", `<CORSConfiguration><Rule/></CORSConfiguration>`, errSSEConfig},
		{"trailing data", `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration><x/>`, errSSEConfig},
		{"not XML", `AES256`, errSSEConfig},
		{"empty", ``, errSSEConfig},
	} {
		alg, err := parseSSEConfiguration([]byte(tc.doc))
		switch {
		case tc.err == nil && (err != nil || alg != sseAES256):
			t.Errorf("%s: %q, %v; want AES256", tc.name, alg, err)
		case tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%s: %q, %v; want %v", tc.name, alg, err, tc.err)
		}
	}
}

func FuzzParseSSEConfiguration(f *testing.F) {
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		alg, err := parseSSEConfiguration(doc)
		if err == nil && alg != sseAES256 {
			t.Fatalf("accepted %q as %q", doc, alg)
		}
		if err != nil && !errors.Is(err, errSSEConfig) && !errors.Is(err, errKMS) {
			t.Fatalf("error %v is neither a bad configuration nor KMS", err)
		}
	})
}
