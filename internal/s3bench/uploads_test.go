package s3bench_test

import (
	"context"
	"os"
	"testing"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/s3bench"
	"github.com/cairnstore/cairn/internal/testcluster"
)

// TestUploadsAgainstGateway runs the memory test at a small scale: the
// complete uploads are stored whole, the cut-off ones stay open until the
// cut and leave nothing behind, and the timeline and figures are filled.
func TestUploadsAgainstGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	srv := c.StartGateway(t, gateway.Config{})
	cfg := s3bench.UploadsConfig{
		ClientConfig: s3bench.ClientConfig{
			Endpoint: srv.URL(), AccessKey: testcluster.AccessKey, SecretKey: testcluster.SecretKey,
		},
		Bucket:   "uploads",
		Uploads:  6,
		Size:     3<<20 + 5, // several stripes and a partial one
		Send:     1 << 20,
		Complete: 2,
		Prefix:   "mem",
		// The cluster runs in this process: its memory is ours.
		Watch: []s3bench.Proc{{Name: "cluster", PID: os.Getpid()}},
		Keep:  true,
	}
	res, err := s3bench.Uploads(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed != 2 || len(res.CompleteErrors) != 0 {
		t.Errorf("complete uploads stored: %d of 2, errors %q", res.Completed, res.CompleteErrors)
	}
	if res.Stalled != 4 || len(res.EarlyEnds) != 0 {
		t.Errorf("cut-off uploads open until the cut: %d of 4, early ends %q", res.Stalled, res.EarlyEnds)
	}
	if len(res.Leftover) != 0 {
		t.Errorf("cut-off uploads left objects: %q", res.Leftover)
	}
	if want := 2*cfg.Size + 4*cfg.Send; res.SentBytes != want {
		t.Errorf("sent %d bytes, want %d", res.SentBytes, want)
	}
	if len(res.Samples) == 0 || res.Samples[len(res.Samples)-1].RSSMiB["cluster"] <= 0 {
		t.Errorf("no memory timeline: %+v", res.Samples)
	}
	if res.Before["cluster"] <= 0 || res.After["cluster"] <= 0 || res.InFlightS <= 0 || res.ElapsedS < res.InFlightS {
		t.Errorf("figures missing: before %v after %v in flight at %vs, elapsed %vs", res.Before, res.After, res.InFlightS, res.ElapsedS)
	}
	cl, tr := s3bench.NewClient(cfg.ClientConfig)
	defer tr.CloseIdleConnections()
	if n := countKeys(t, cl, cfg.Bucket, "mem/"); n != 2 {
		t.Errorf("%d objects under mem/, want the 2 complete uploads", n)
	}
}
