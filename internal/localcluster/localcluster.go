// Package localcluster boots a whole Cairn cluster inside one process on
// loopback: metad members, blob nodes and (optionally) an S3 gateway, each
// the production server object with its own data directory, talking to the
// others over real TCP. `cairn dev` runs one; internal/testcluster wraps it
// for tests with kill, restart and network cuts.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/blobreg"
	"github.com/cairnstore/cairn/internal/faultnet"
	"github.com/cairnstore/cairn/metadata"
	"github.com/cairnstore/cairn/metadata/metaclient"
	"github.com/cairnstore/cairn/object"
)

// Config describes the cluster.
type Config struct {
	// Dir holds every node's data: Dir/metad-N, Dir/blobd-N.
	Dir string
	// Meta and Blob are the numbers of metad members and blob nodes; Zones
	// spreads the blob nodes round-robin over zone-1..zone-Zones.
	Meta, Blob, Zones int
	// Scheme is the cluster's default erasure-coding scheme (4+2 if zero).
	Scheme metadata.ECScheme
	// Host is the loopback address everything binds (default 127.0.0.1).
	Host string
	// BasePort, when non-zero, gives fixed ports: metad i serves Raft on
	// BasePort+i and gRPC on BasePort+100+i, blob node i on BasePort+200+i.
	// Zero picks free ports.
	BasePort int
	// BlobCapacity is each blob node's advertised capacity (0: its disk).
	BlobCapacity int64
	// Fast selects short Raft and heartbeat timings (tests).
	Fast bool
	// Heal, when set, replaces metad's self-healing timings and budgets
	// (tests of liveness and repair).
	Heal *metadata.HealConfig
	// Logger names each node's logs with a "node" attribute.
	Logger *slog.Logger
	// Net, when set, carries the Raft traffic so tests can cut members off
	// (see internal/faultnet).
	Net *faultnet.Net
	// LocalSockets has the gateway's object layer and the blob nodes'
	// peer reads reach the blob nodes over their Unix sockets, as
	// gatewayd and blobd do by default (blob.ClientConfig.LocalSockets).
	// Off for tests, whose fault proxies cut TCP connections.
	LocalSockets bool
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg   Config
	Metas []*MetaNode
	Blobs []*BlobNode
	// Proxies[i], when the cluster runs with Net, stands in front of blob
	// node i so that it can be cut off from its clients.
	blobProxies []*faultnet.Proxy

	clientOnce sync.Once
	client     *metaclient.Client
	clientErr  error

	gwMu     sync.Mutex
	gateways []*runningGateway
}

type runningGateway struct {
	srv  *gateway.Server
	stop context.CancelFunc
	done chan error
}

// MetaNode is one metad member.
type MetaNode struct {
	ID       string
	RaftAddr string
	GRPCAddr string
	cfg      metadata.Config
	mu       sync.Mutex
	srv      *metadata.Server
	stop     context.CancelFunc
	done     chan error
}

// BlobNode is one blob node.
type BlobNode struct {
	ID   string
	Addr string // what the cluster map holds (a proxy's address under Net)
	cfg  blob.Config
	mu   sync.Mutex
	srv  *blob.Server
	stop context.CancelFunc
	done chan error
	meta *metaclient.Client
}

// Start boots the cluster and returns once every server is serving (not
// necessarily once a leader is elected: see WaitReady).
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Meta <= 0 || cfg.Blob <= 0 {
		return nil, fmt.Errorf("local cluster needs at least one metad and one blob node (got %d, %d)", cfg.Meta, cfg.Blob)
	}
	if cfg.Zones <= 0 {
		cfg.Zones = 1
	}
	if cfg.Scheme == (metadata.ECScheme{}) {
		cfg.Scheme = metadata.ECScheme{K: 4, M: 2}
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg}
	if err := c.startMetas(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.startBlobs(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) port(offset, i int) int {
	if c.cfg.BasePort == 0 {
		return 0
	}
	return c.cfg.BasePort + offset + i
}

func (c *Cluster) addr(port int) string {
	return net.JoinHostPort(c.cfg.Host, strconv.Itoa(port))
}

func (c *Cluster) startMetas(ctx context.Context) error {
	// Bind every Raft listener first: the initial configuration must name
	// every member's address before any of them starts.
	lns := make([]net.Listener, c.cfg.Meta)
	var peers []metadata.Peer
	for i := range c.cfg.Meta {
		ln, err := net.Listen("tcp", c.addr(c.port(0, i)))
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return fmt.Errorf("bind raft listener of metad-%d: %w", i+1, err)
		}
		lns[i] = ln
		id := "metad-" + strconv.Itoa(i+1)
		peers = append(peers, metadata.Peer{ID: id, RaftAddr: ln.Addr().String()})
	}
	for i := range c.cfg.Meta {
		mcfg := metadata.DefaultConfig()
		mcfg.ID = peers[i].ID
		mcfg.DataDir = filepath.Join(c.cfg.Dir, mcfg.ID)
		mcfg.RaftAddr = peers[i].RaftAddr
		mcfg.RaftListener = lns[i]
		mcfg.GRPCAddr = c.addr(c.port(100, i))
		mcfg.InitialCluster = peers
		mcfg.DefaultScheme = c.cfg.Scheme
		mcfg.Logger = c.cfg.Logger.With("node", mcfg.ID)
		mcfg.RaftLogLevel = "warn"
		if c.cfg.Fast {
			// Short enough that elections take a second or two, long
			// enough that a leader keeps its lease on a loaded 2-core
			// machine running the race detector while every package
			// tests at once (100 ms leases made leaders step down
			// mid-test at load average 7, 300 ms ones at load 20).
			mcfg.HeartbeatTimeout = 800 * time.Millisecond
			mcfg.ElectionTimeout = 800 * time.Millisecond
			mcfg.LeaderLeaseTimeout = 600 * time.Millisecond
			mcfg.CommitTimeout = 5 * time.Millisecond
		}
		if c.cfg.Heal != nil {
			mcfg.Heal = *c.cfg.Heal
		}
		if c.cfg.Net != nil {
			c.cfg.Net.Own(mcfg.ID, mcfg.RaftAddr)
			mcfg.RaftDial = c.cfg.Net.Dialer(mcfg.ID)
		}
		m := &MetaNode{ID: mcfg.ID, RaftAddr: mcfg.RaftAddr, cfg: mcfg}
		c.Metas = append(c.Metas, m)
		if err := m.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (m *MetaNode) start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv != nil {
		return fmt.Errorf("%s is already running", m.ID)
	}
	if m.cfg.RaftListener == nil {
		// A restart: bind the same address again.
		ln, err := net.Listen("tcp", m.RaftAddr)
		if err != nil {
			return fmt.Errorf("rebind raft listener of %s: %w", m.ID, err)
		}
		m.cfg.RaftListener = ln
	}
	if m.GRPCAddr != "" {
		m.cfg.GRPCAddr = m.GRPCAddr // keep the port across restarts
	}
	srv, err := metadata.NewServer(m.cfg)
	m.cfg.RaftListener = nil // consumed
	if err != nil {
		return fmt.Errorf("start %s: %w", m.ID, err)
	}
	m.GRPCAddr = srv.GRPCAddr()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.srv, m.stop, m.done = srv, stop, make(chan error, 1)
	go func() { m.done <- srv.Run(runCtx) }()
	return nil
}

// Server returns the running server, or nil when the member is stopped.
func (m *MetaNode) Server() *metadata.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// Stop closes the member abruptly (no leadership transfer), as a crash
// would, though the process lives on.
func (m *MetaNode) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	m.stop()
	<-m.done
	m.srv = nil
	return err
}

// Restart starts a stopped member again on the same data and addresses.
func (m *MetaNode) Restart(ctx context.Context) error { return m.start(ctx) }

// Wipe deletes a stopped member's data (a replaced disk).
func (m *MetaNode) Wipe() error {
	if m.Server() != nil {
		return fmt.Errorf("wipe %s: still running", m.ID)
	}
	return os.RemoveAll(m.cfg.DataDir)
}

func (c *Cluster) startBlobs(ctx context.Context) error {
	for i := range c.cfg.Blob {
		b := c.newBlob(i)
		c.Blobs = append(c.Blobs, b)
		if err := c.startBlob(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// BlobSpec places and sizes a blob node added with AddBlob; empty fields
// get the next node's defaults (round-robin zone, its own rack, the
// cluster's BlobCapacity).
type BlobSpec struct {
	Zone, Rack string
	Capacity   int64
}

// AddBlob starts one more blob node, blobd-<len(Blobs)+1>, and returns it
// once it serves (it registers with metad on its own, shortly after).
func (c *Cluster) AddBlob(ctx context.Context, spec BlobSpec) (*BlobNode, error) {
	i := len(c.Blobs)
	b := c.newBlob(i)
	if spec.Zone != "" {
		b.cfg.Zone = spec.Zone
	}
	if spec.Rack != "" {
		b.cfg.Rack = spec.Rack
	}
	if spec.Capacity != 0 {
		b.cfg.Capacity = spec.Capacity
	}
	c.Blobs = append(c.Blobs, b)
	if err := c.startBlob(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *Cluster) newBlob(i int) *BlobNode {
	id := "blobd-" + strconv.Itoa(i+1)
	bcfg := blob.Config{
		ID:       id,
		DataDir:  filepath.Join(c.cfg.Dir, id),
		Addr:     c.addr(c.port(200, i)),
		Zone:     "zone-" + strconv.Itoa(i%c.cfg.Zones+1),
		Rack:     "rack-" + strconv.Itoa(i+1),
		Capacity: c.cfg.BlobCapacity,
		Logger:   c.cfg.Logger.With("node", id),

		PeerLocalSockets: c.cfg.LocalSockets,
	}
	if c.cfg.Fast {
		bcfg.HeartbeatInterval = 200 * time.Millisecond
	}
	return &BlobNode{ID: id, cfg: bcfg}
}

func (c *Cluster) startBlob(ctx context.Context, b *BlobNode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return fmt.Errorf("%s is already running", b.ID)
	}
	meta, err := metaclient.New(c.MetaAddrs(), metaclient.Options{})
	if err != nil {
		return fmt.Errorf("start %s: metadata client: %w", b.ID, err)
	}
	cfg := b.cfg
	cfg.Registrar = blobreg.New(meta, b.ID)
	if b.Addr != "" {
		cfg.Addr = b.Addr // keep the port across restarts
	}
	srv, err := blob.NewServer(cfg)
	if err != nil {
		meta.Close()
		return fmt.Errorf("start %s: %w", b.ID, err)
	}
	b.Addr = srv.Addr()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.srv, b.stop, b.done, b.meta = srv, stop, make(chan error, 1), meta
	go func() { b.done <- srv.Run(runCtx) }()
	return nil
}

// Server returns the running blob server, or nil when stopped.
func (b *BlobNode) Server() *blob.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// DataDir is where the node keeps its chunks.
func (b *BlobNode) DataDir() string { return b.cfg.DataDir }

// Stop closes the blob node abruptly: open connections are cut.
func (b *BlobNode) Stop() error { return b.halt(false) }

func (b *BlobNode) halt(graceful bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return nil
	}
	var err error
	if graceful {
		b.stop()
		err = errors.Join(<-b.done, b.srv.Close())
	} else {
		err = b.srv.Close()
		b.stop()
		<-b.done
	}
	b.meta.Close()
	b.srv = nil
	return err
}

// RestartBlob starts a stopped blob node again on its data and address.
func (c *Cluster) RestartBlob(ctx context.Context, i int) error {
	return c.startBlob(ctx, c.Blobs[i])
}

// MetaAddrs are the metad members' gRPC addresses.
func (c *Cluster) MetaAddrs() []string {
	addrs := make([]string, len(c.Metas))
	for i, m := range c.Metas {
		addrs[i] = m.GRPCAddr
	}
	return addrs
}

// Client is a metadata client over every member, shared by the cluster's
// users (gateway, tests); it is closed with the cluster.
func (c *Cluster) Client() (*metaclient.Client, error) {
	c.clientOnce.Do(func() {
		c.client, c.clientErr = metaclient.New(c.MetaAddrs(), metaclient.Options{})
	})
	return c.client, c.clientErr
}

// ObjectStore returns an object layer over the cluster (over the shared
// metadata client and a new blob client unless cfg names its own).
func (c *Cluster) ObjectStore(cfg object.Config) (*object.Store, error) {
	if cfg.Meta == nil {
		meta, err := c.Client()
		if err != nil {
			return nil, err
		}
		cfg.Meta = meta
	}
	if cfg.Blobs == nil {
		cfg.Blobs = blob.NewClient(blob.ClientConfig{LocalSockets: c.cfg.LocalSockets})
	}
	if cfg.Logger == nil {
		cfg.Logger = c.cfg.Logger.With("node", "object")
	}
	return object.New(cfg)
}

// StartGateway starts an S3 gateway over the cluster (Meta and Objects are
// filled in; ocfg configures its object layer) and returns once it listens.
// It stops with the cluster.
func (c *Cluster) StartGateway(ctx context.Context, cfg gateway.Config, ocfg object.Config) (*gateway.Server, error) {
	meta, err := c.Client()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = c.cfg.Logger.With("node", "gateway")
	}
	if ocfg.Logger == nil {
		ocfg.Logger = cfg.Logger
	}
	if ocfg.Registry == nil && cfg.Registry != nil {
		ocfg.Registry = cfg.Registry
	}
	store, err := c.ObjectStore(ocfg)
	if err != nil {
		return nil, err
	}
	cfg.Meta, cfg.Objects = meta, store
	srv, err := gateway.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g := &runningGateway{srv: srv, stop: stop, done: make(chan error, 1)}
	go func() { g.done <- srv.Run(runCtx) }()
	c.gwMu.Lock()
	c.gateways = append(c.gateways, g)
	c.gwMu.Unlock()
	return srv, nil
}

// WaitReady waits until the metadata service has a leader, the cluster is
// bootstrapped and every blob node is in the cluster map.
func (c *Cluster) WaitReady(ctx context.Context) error {
	meta, err := c.Client()
	if err != nil {
		return err
	}
	var last error
	for {
		last = c.ready(ctx, meta)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready(ctx context.Context, meta *metaclient.Client) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := meta.GetClusterMap(cctx, nil)
	if err != nil {
		return err
	}
	if resp.ClusterMap.GetDefaultScheme() == nil {
		return errors.New("not bootstrapped")
	}
	if n := len(resp.ClusterMap.Nodes); n < len(c.Blobs) {
		return fmt.Errorf("%d of %d blob nodes registered", n, len(c.Blobs))
	}
	return nil
}

// Close stops everything at once, as a crash would (tests).
func (c *Cluster) Close() error { return c.halt(false) }

// Shutdown stops everything in order, letting requests in flight finish:
// gateways, then blob nodes, then the metad members (closed all at once,
// without handing leadership over, so they do not pass it around while
// going down).
func (c *Cluster) Shutdown() error { return c.halt(true) }

func (c *Cluster) halt(graceful bool) error {
	var errs []error
	c.gwMu.Lock()
	for _, g := range c.gateways {
		if graceful {
			g.stop()
			errs = append(errs, <-g.done, g.srv.Close())
		} else {
			errs = append(errs, g.srv.Close())
			g.stop()
			<-g.done
		}
	}
	c.gateways = nil
	c.gwMu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	halt := func(f func() error) {
		wg.Go(func() {
			err := f()
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	for _, b := range c.Blobs {
		halt(func() error { return b.halt(graceful) })
	}
	wg.Wait()
	// With the gateways and blob nodes gone, no request waits on metad, and
	// a graceful stop would only hand leadership around among members that
	// are stopping too (a new leader's vote requests then fail loudly
	// against the ones already gone). Close them all at once instead, as a
	// power cut would: every acknowledged entry is already on disk.
	for _, m := range c.Metas {
		halt(m.Stop)
	}
	wg.Wait()
	if c.client != nil {
		errs = append(errs, c.client.Close())
	}
	for _, p := range c.blobProxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
