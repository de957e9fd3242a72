package gateway_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// clusterStarter boots one in-process cluster (3 metad, 6 blob nodes in 3
// zones, EC 4+2) and returns a starter giving each test its own gateway
// over it: gateways share nothing but metad.
func clusterStarter(t *testing.T) starter {
	t.Helper()
	if testing.Short() {
		t.Skip("in-process cluster test; skipped with -short")
	}
	c := testcluster.New(t, testcluster.Config{Meta: 3, Blob: 6, Zones: 3, Quiet: true})
	return func(t testing.TB) *env {
		// A short access-key TTL: the tests of revoked keys and grants
		// wait for it.
		srv := c.StartGateway(t, gateway.Config{Credentials: gateway.Credentials{AccessKey: testAccess, SecretKey: testSecret},
			AccessKeyTTL:            500 * time.Millisecond,
			SSEMasterKeys:           testMasterKeys(t, "test-1"),
			SSECustomerKeysOverHTTP: true,
		})
		u, _ := url.Parse(srv.URL())
		var dirs []string
		for _, b := range c.Blobs {
			dirs = append(dirs, b.DataDir())
		}
		return &env{url: srv.URL(), host: u.Host, srv: srv, meta: c.MetaClient(t), blobDirs: dirs,
			restart: func(t testing.TB, cfg gateway.Config) *gateway.Server { return c.StartGateway(t, cfg) }}
	}
}

// TestClusterSuite runs the client suite (aws-sdk-go-v2 with its default
// checksums, minio-go, raw signed requests) against real metad and blobd
// servers, and what needs metad's own state (access keys).
func TestClusterSuite(t *testing.T) {
	start := clusterStarter(t)
	suite(t, start)
	t.Run("AccessKeys", func(t *testing.T) { testAccessKeys(t, start(t)) })
	t.Run("AccessKeyExpiry", func(t *testing.T) { testAccessKeyExpiry(t, start(t)) })
	t.Run("BucketQuota", func(t *testing.T) { testBucketQuota(t, start(t)) })
	t.Run("Encryption", func(t *testing.T) { testEncryption(t, start(t)) })
	t.Run("Versioning", func(t *testing.T) { testVersioning(t, start(t)) })
	t.Run("VersionPages", func(t *testing.T) { testVersionPages(t, start(t)) })
	t.Run("ObjectLock", func(t *testing.T) { testObjectLock(t, start(t)) })
	t.Run("ObjectLockWrites", func(t *testing.T) { testObjectLockWrites(t, start(t)) })
	t.Run("BucketPolicies", func(t *testing.T) { testBucketPolicies(t, start(t)) })
}
