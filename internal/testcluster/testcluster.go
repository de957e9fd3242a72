// Package testcluster boots an in-process Cairn cluster for tests: the
// production metad and blobd servers on 127.0.0.1 ports with t.TempDir()
// data, per-node logs on t.Log, and the faults tests need — stop (crash),
// restart, wipe and cut off the network.
//
//	c := testcluster.New(t, testcluster.Config{Meta: 3, Blob: 6, Zones: 3})
//	c.WaitLeader(t)
//	store := c.ObjectStore(t)
package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/faultnet"
	"github.com/cairnstore/cairn/internal/localcluster"
	"github.com/cairnstore/cairn/metadata"
	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/cairnstore/cairn/object"
)

// Config sizes the cluster; zero values give 3 metad, 6 blob nodes in 3
// zones, EC 4+2.
type Config struct {
	Meta, Blob, Zones int
	Scheme            metadata.ECScheme
	// BlobCapacity is each blob node's capacity in bytes (0: 1 GiB).
	BlobCapacity int64
	// Object configures the object layer ObjectStore returns (Meta and
	// Blobs are filled in).
	Object object.Config
	// Quiet drops node logs below warnings.
	Quiet bool
	// Heal, when set, replaces metad's self-healing timings and budgets.
	Heal *metadata.HealConfig
}

// Cluster is a running test cluster, stopped when the test ends.
type Cluster struct {
	*localcluster.Cluster
	Net       *faultnet.Net
	objectCfg object.Config
}

// ReadyTimeout bounds every wait for the cluster to settle.
const ReadyTimeout = 30 * time.Second

// New starts a cluster and waits until it is ready to store objects: a
// leader exists, the cluster is bootstrapped and every blob node is
// registered.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Meta == 0 {
		cfg.Meta = 3
	}
	if cfg.Blob == 0 {
		cfg.Blob = 6
	}
	if cfg.Zones == 0 {
		cfg.Zones = 3
	}
	if cfg.BlobCapacity == 0 {
		cfg.BlobCapacity = 1 << 30
	}
	level := slog.LevelInfo
	if cfg.Quiet {
		level = slog.LevelWarn
	}
	n := faultnet.NewNet()
	lc, err := localcluster.Start(context.Background(), localcluster.Config{
		Dir:          t.TempDir(),
		Meta:         cfg.Meta,
		Blob:         cfg.Blob,
		Zones:        cfg.Zones,
		Scheme:       cfg.Scheme,
		BlobCapacity: cfg.BlobCapacity,
		Fast:         true,
		Heal:         cfg.Heal,
		Logger:       slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level})),
		Net:          n,
	})
	if err != nil {
		t.Fatalf("start test cluster: %v", err)
	}
	c := &Cluster{Cluster: lc, Net: n, objectCfg: withTestBudgets(cfg.Object)}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("close test cluster: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("test cluster: %v", err)
	}
	return c
}

// tWriter sends log lines to t.Log (dropped once the test is over, since
// servers may still log while shutting down).
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // t.Log after the test ended panics
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// MetaClient returns the cluster's shared metadata client.
func (c *Cluster) MetaClient(t testing.TB) *metaclient.Client {
	t.Helper()
	mc, err := c.Client()
	if err != nil {
		t.Fatalf("metadata client: %v", err)
	}
	return mc
}

// ObjectStore returns an object layer over the cluster.
func (c *Cluster) ObjectStore(t testing.TB, cfg object.Config) *object.Store {
	t.Helper()
	s, err := c.Cluster.ObjectStore(withTestBudgets(cfg))
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	return s
}

// testWriteBudget is the write budget of the object layers the cluster
// makes, unless a test sets its own: a loaded 2-core CI machine has been
// seen to stall every process for ~10 s, and a write that gives up on
// every chunk upload at once fails its PUT, where waiting would not. Tests
// of the budget set theirs.
const testWriteBudget = 60 * time.Second

func withTestBudgets(cfg object.Config) object.Config {
	if cfg.WriteBudget == 0 {
		cfg.WriteBudget = testWriteBudget
	}
	return cfg
}

// Test credentials of gateways started with StartGateway.
const (
	AccessKey = "cairn-test-access"
	SecretKey = "cairn-test-secret-key"
)

// StartGateway starts an S3 gateway over the cluster on 127.0.0.1:0 (unless
// cfg.Addr is set) with the test credentials (unless cfg.Credentials is).
func (c *Cluster) StartGateway(t testing.TB, cfg gateway.Config) *gateway.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Credentials == (gateway.Credentials{}) {
		cfg.Credentials = gateway.Credentials{AccessKey: AccessKey, SecretKey: SecretKey}
	}
	srv, err := c.Cluster.StartGateway(context.Background(), cfg, c.objectCfg)
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	return srv
}

// Leader waits for a leader and returns its index in Metas.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	var leader int
	WaitFor(t, ReadyTimeout, "a metad leader", func() error {
		for i, m := range c.Metas {
			if srv := m.Server(); srv != nil && srv.IsLeader() {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("no member is leader")
	})
	return leader
}

// WaitLeader waits until some member leads.
func (c *Cluster) WaitLeader(t testing.TB) { c.Leader(t) }

// Cut isolates metad member i from its peers (both directions) until Heal.
func (c *Cluster) Cut(i int) { c.Net.Cut(c.Metas[i].ID) }

// Heal reconnects metad member i.
func (c *Cluster) Heal(i int) { c.Net.Heal(c.Metas[i].ID) }

// WaitFor polls cond until it returns nil, failing the test with what and
// cond's last error after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval of a condition wait, not a wait for an event
	}
}

// KillMeta stops metad member i abruptly, as a crash would.
func (c *Cluster) KillMeta(t testing.TB, i int) {
	t.Helper()
	if err := c.Metas[i].Stop(); err != nil {
		t.Logf("kill %s: %v", c.Metas[i].ID, err)
	}
}

// RestartMeta starts a stopped metad member again on its data.
func (c *Cluster) RestartMeta(t testing.TB, i int) {
	t.Helper()
	if err := c.Metas[i].Restart(context.Background()); err != nil {
		t.Fatalf("restart %s: %v", c.Metas[i].ID, err)
	}
}

// KillBlob stops blob node i abruptly: its connections are cut.
func (c *Cluster) KillBlob(t testing.TB, i int) {
	t.Helper()
	if err := c.Blobs[i].Stop(); err != nil {
		t.Logf("kill %s: %v", c.Blobs[i].ID, err)
	}
}

// RestartBlob starts a stopped blob node again on its data and address.
func (c *Cluster) RestartBlob(t testing.TB, i int) {
	t.Helper()
	if err := c.Cluster.RestartBlob(context.Background(), i); err != nil {
		t.Fatalf("restart %s: %v", c.Blobs[i].ID, err)
	}
}

// BlobSpec places and sizes a node added with AddBlob (empty fields: the
// next node's defaults).
type BlobSpec = localcluster.BlobSpec

// AddBlob starts one more blob node and waits until metad has it in the
// cluster map; it returns the node's index in Blobs.
func (c *Cluster) AddBlob(t testing.TB, spec BlobSpec) int {
	t.Helper()
	b, err := c.Cluster.AddBlob(context.Background(), spec)
	if err != nil {
		t.Fatalf("add blob node: %v", err)
	}
	mc := c.MetaClient(t)
	WaitFor(t, ReadyTimeout, b.ID+" to register", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := mc.GetClusterMap(ctx, nil)
		if err != nil {
			return err
		}
		for _, n := range resp.GetClusterMap().GetNodes() {
			if n.GetId() == b.ID {
				return nil
			}
		}
		return fmt.Errorf("%s not in the cluster map", b.ID)
	})
	return len(c.Blobs) - 1
}
