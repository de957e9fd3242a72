package s3bench_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/gateway/sse"
	"github.com/cairnstore/cairn/internal/s3bench"
	"github.com/cairnstore/cairn/internal/selfsigned"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// TestSmokeAgainstGateway drives a gateway on an in-process cluster with
// every workload for a second each and checks that requests succeed,
// bodies read back intact, the figures add up and nothing is left behind.
func TestSmokeAgainstGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	srv := c.StartGateway(t, gateway.Config{})
	base := s3bench.Config{
		ClientConfig: s3bench.ClientConfig{
			Endpoint: srv.URL(), AccessKey: testcluster.AccessKey, SecretKey: testcluster.SecretKey,
		},
		Bucket:      "smoke",
		Concurrency: 4,
		Duration:    time.Second,
		Verify:      true,
		Seed:        7,
	}
	for _, tc := range []struct {
		workload string
		size     int64
		objects  int
		ops      []s3bench.Op
	}{
		{s3bench.WorkloadPut, 100 << 10, 0, []s3bench.Op{s3bench.OpPut}},
		{s3bench.WorkloadGet, 5<<20 + 3, 8, []s3bench.Op{s3bench.OpGet}}, // several stripes, not a whole one
		{s3bench.WorkloadMixed, 2 << 10, 16, []s3bench.Op{s3bench.OpGet, s3bench.OpPut, s3bench.OpStat}},
		{s3bench.WorkloadList, 1 << 10, 50, []s3bench.Op{s3bench.OpList}},
		{s3bench.WorkloadDelete, 1 << 10, 30, []s3bench.Op{s3bench.OpDelete}},
	} {
		t.Run(tc.workload, func(t *testing.T) {
			cfg := base
			cfg.Workload, cfg.Size, cfg.Objects = tc.workload, tc.size, tc.objects
			cfg.Prefix = "smoke/" + tc.workload
			res, err := s3bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.objects > 0 && res.Objects != tc.objects {
				t.Errorf("prepared %d objects, want %d", res.Objects, tc.objects)
			}
			for _, op := range tc.ops {
				o := res.Op(op)
				if o == nil || o.Count == 0 {
					t.Fatalf("no successful %s: %+v", op, res.Ops)
				}
				if o.Errors != 0 {
					t.Errorf("%s: %d errors, first: %s", op, o.Errors, o.FirstError)
				}
				if o.P50Ms <= 0 || o.P50Ms > o.P99Ms || o.P99Ms > o.MaxMs {
					t.Errorf("%s latencies out of order: p50 %v p99 %v max %v", op, o.P50Ms, o.P99Ms, o.MaxMs)
				}
				if (op == s3bench.OpPut || op == s3bench.OpGet) && o.Bytes != o.Count*tc.size {
					t.Errorf("%s moved %d bytes in %d requests of %d", op, o.Bytes, o.Count, tc.size)
				}
			}
			if tc.workload == s3bench.WorkloadList {
				if o := res.Op(s3bench.OpList); o.Items != o.Count*int64(tc.objects) {
					t.Errorf("list pages held %d keys in %d pages, want %d each", o.Items, o.Count, tc.objects)
				}
			}
			if tc.workload == s3bench.WorkloadDelete {
				if o := res.Op(s3bench.OpDelete); o.Count > int64(tc.objects) {
					t.Errorf("deleted %d of %d objects", o.Count, tc.objects)
				}
			}
			if len(res.Procs) == 0 || res.Procs[0].Name != "s3bench" {
				t.Errorf("the generator's own process is not sampled: %+v", res.Procs)
			}
			left := listAll(t, cfg)
			if left != 0 {
				t.Errorf("%d objects left under %s after cleanup", left, cfg.Prefix)
			}
		})
	}
}

// TestSmokeTLS checks --insecure against a gateway with a self-signed
// certificate: over https the SDK streams aws-chunked bodies with trailing
// checksums, a different path from plain http.
func TestSmokeTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	cert, key, err := selfsigned.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := c.StartGateway(t, gateway.Config{TLSCert: cert, TLSKey: key})
	cfg := s3bench.Config{
		ClientConfig: s3bench.ClientConfig{
			Endpoint: srv.URL(), AccessKey: testcluster.AccessKey, SecretKey: testcluster.SecretKey,
		},
		Bucket: "tls", Workload: s3bench.WorkloadMixed, Size: 300 << 10, Objects: 8,
		Concurrency: 4, Duration: time.Second, Verify: true, Prefix: "tls",
	}
	if !strings.HasPrefix(cfg.Endpoint, "https://") {
		t.Fatalf("gateway URL %s is not https", cfg.Endpoint)
	}
	if _, err := s3bench.Run(context.Background(), cfg); err == nil {
		t.Fatal("a self-signed certificate was accepted without --insecure")
	}
	cfg.Insecure = true
	res, err := s3bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Ops {
		if o.Errors != 0 {
			t.Errorf("%s: %d errors, first: %s", o.Op, o.Errors, o.FirstError)
		}
	}
	if o := res.Op(s3bench.OpPut); o == nil || o.Count == 0 {
		t.Errorf("no successful PUT over https: %+v", res.Ops)
	}
}

func listAll(t *testing.T, cfg s3bench.Config) int {
	t.Helper()
	cl, tr := s3bench.NewClient(cfg.ClientConfig)
	defer tr.CloseIdleConnections()
	return countKeys(t, cl, cfg.Bucket, cfg.Prefix+"/")
}

// TestSmokeEncrypted runs the mixed workload (PUT, GET, HEAD) with SSE-S3
// and with SSE-C against a gateway that holds a master key and takes
// SSE-C over plain http, then checks that what was written is encrypted
// the way asked: HEAD reports AES256 for SSE-S3, and an SSE-C object
// cannot be read without the run's key.
func TestSmokeEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	k := sha256.Sum256([]byte("s3bench smoke master key"))
	keys, err := sse.ParseMasterKeys("smoke:" + base64.StdEncoding.EncodeToString(k[:]))
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	srv := c.StartGateway(t, gateway.Config{SSEMasterKeys: keys, SSECustomerKeysOverHTTP: true})
	for _, mode := range []string{s3bench.SSES3, s3bench.SSEC} {
		t.Run(mode, func(t *testing.T) {
			cfg := s3bench.Config{
				ClientConfig: s3bench.ClientConfig{
					Endpoint: srv.URL(), AccessKey: testcluster.AccessKey, SecretKey: testcluster.SecretKey,
				},
				Bucket: "sse", Workload: s3bench.WorkloadMixed, Size: 300 << 10, Objects: 8,
				Concurrency: 4, Duration: time.Second, Verify: true, Prefix: "sse-" + mode, Keep: true,
				SSE: mode,
			}
			res, err := s3bench.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.SSE != mode {
				t.Errorf("result says SSE %q, want %q", res.SSE, mode)
			}
			for _, op := range []s3bench.Op{s3bench.OpPut, s3bench.OpGet, s3bench.OpStat} {
				if o := res.Op(op); o == nil || o.Count == 0 || o.Errors != 0 {
					t.Errorf("%s: %+v", op, o)
				}
			}
			cl, tr := s3bench.NewClient(cfg.ClientConfig)
			defer tr.CloseIdleConnections()
			head, err := cl.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: aws.String(cfg.Prefix + "/obj-00000000")})
			switch mode {
			case s3bench.SSES3:
				if err != nil || head.ServerSideEncryption != types.ServerSideEncryptionAes256 {
					t.Errorf("HEAD of a prepared object: %v, encryption %q; want AES256", err, head.ServerSideEncryption)
				}
			case s3bench.SSEC:
				if err == nil {
					t.Error("HEAD of a prepared SSE-C object without its key succeeded")
				}
			}
		})
	}
}
