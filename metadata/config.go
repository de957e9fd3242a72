package metadata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures one metad member. Build it with RegisterFlags (daemons)
// or by hand (tests, `cairn dev`), then call Validate, or let NewServer do it.
type Config struct {
	// ID names this member in the Raft configuration; stable for its life.
	ID string
	// DataDir holds raft/ (the log), snapshots/ and state/ (the state
	// machine's Badger).
	DataDir string
	// RaftAddr is the host:port peers reach this member's Raft transport
	// at; it is bound as given, so the host must be an address this machine
	// owns (not 0.0.0.0).
	RaftAddr string
	// GRPCAddr is where the metadata API listens; GRPCAdvertise, if set, is
	// the address given to clients and other members instead (needed when
	// GRPCAddr is a wildcard like ":7100").
	GRPCAddr      string
	GRPCAdvertise string
	// HTTPAddr serves /healthz and /metrics; empty disables it.
	HTTPAddr string
	// InitialCluster is the Raft configuration a brand-new cluster starts
	// with; every initial member is given the same list (itself included).
	// It is used only when DataDir holds no Raft state, and ignored on
	// every later start. A member started with an empty DataDir and no
	// InitialCluster waits to be contacted by a leader that already has it
	// in its configuration.
	InitialCluster []Peer
	// Join lists gRPC addresses of members of an existing cluster. A member
	// whose DataDir holds no Raft state asks them (AddMember) to add it
	// with its ID and Raft address, then waits to be contacted by the
	// leader; with Raft state, Join is ignored. Exclusive with
	// InitialCluster.
	Join []string
	// DefaultScheme is the erasure-coding scheme recorded when the cluster
	// is bootstrapped (flag --ec "4+2").
	DefaultScheme ECScheme

	// Raft timing. Defaults suit a LAN; tests use shorter ones.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries caps how many entries Raft sends, stores and applies
	// as one batch: the group-commit size.
	MaxAppendEntries int
	// ProposeBatch is the most commands the leader packs into one Raft
	// entry (propose.go); 1 gives every command an entry of its own.
	// ProposeInflight is how many such entries may be in flight at once:
	// fewer means larger entries, more means less waiting for a slot. 1
	// measured best through gRPC on 2 cores (docs/perf/metad.md, 7).
	ProposeBatch    int
	ProposeInflight int
	// ProposePipeline hands the next entry to Raft as soon as the leader
	// has stored the previous one, instead of when a slot frees (so it
	// needs ProposeInflight ≥ 2 to change anything). Faster without gRPC,
	// not through it on 2 cores (docs/perf/metad.md, 7): off by default.
	ProposePipeline bool
	// ProposeGather bounds how long the next entry waits, once an entry is
	// answered, for as many calls as it carried to arrive (propose.go);
	// 0 proposes whatever is queued at once.
	ProposeGather time.Duration
	// Snapshots: taken when SnapshotThreshold entries were committed since
	// the last one, checked every SnapshotInterval; TrailingLogs entries
	// stay in the log after a snapshot so a briefly lagging follower needs
	// no InstallSnapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// ApplyTimeout bounds how long a request waits for Raft to accept a
	// command when the caller's context has no deadline.
	ApplyTimeout time.Duration
	// HealthMaxLag is how many committed entries this member's state
	// machine may lag before /healthz reports 503.
	HealthMaxLag uint64
	// DiskStallTimeout is how long a write to the Raft log (an append, the
	// term or vote) may take before the disk counts as stalled and
	// OnDiskStall runs (disk_stall.go); negative: never.
	DiskStallTimeout time.Duration
	// OnDiskStall runs, once, when a write to the Raft log has taken
	// DiskStallTimeout; nil logs the error and exits the process.
	OnDiskStall func(error)

	// State sizes the state machine's Badger (storeopts.go).
	State StoreConfig

	// Self-healing: the leader's liveness, repair, GC and health loops
	// (heal.go documents each; flags in registerHealFlags).
	Heal HealConfig

	// Logger receives everything, Raft's own logging included (at
	// RaftLogLevel and above: "debug", "info", "warn", "error").
	Logger       *slog.Logger
	RaftLogLevel string
	// Registry receives this member's metrics; nil gives the member a
	// registry of its own (served on /metrics).
	Registry *prometheus.Registry
	// RaftListener, if set, is an already bound listener for the Raft
	// transport, used instead of binding RaftAddr; tests bind 127.0.0.1:0
	// first to learn every member's address before writing InitialCluster.
	RaftListener net.Listener
	// RaftDial, if set, opens connections to peers' Raft transports instead
	// of a plain TCP dial: the seam tests use to route Raft traffic through
	// a network they can cut (internal/faultnet).
	RaftDial func(ctx context.Context, addr string) (net.Conn, error)

	// testLogStore, if set, wraps the Raft log store (tests stall it).
	testLogStore func(raft.LogStore) raft.LogStore
}

// Peer is one member of the initial Raft configuration.
type Peer struct {
	ID       string
	RaftAddr string
}

// ECScheme is an erasure-coding scheme: K data and M parity shards.
type ECScheme struct{ K, M int }

func (s ECScheme) String() string { return fmt.Sprintf("%d+%d", s.K, s.M) }

// ParseECScheme parses "K+M", e.g. "4+2".
func ParseECScheme(v string) (ECScheme, error) {
	ks, ms, ok := strings.Cut(v, "+")
	k, err1 := strconv.Atoi(strings.TrimSpace(ks))
	m, err2 := strconv.Atoi(strings.TrimSpace(ms))
	if !ok || err1 != nil || err2 != nil {
		return ECScheme{}, fmt.Errorf("erasure-coding scheme %q: want K+M, e.g. 4+2", v)
	}
	s := ECScheme{K: k, M: m}
	if err := s.validate(); err != nil {
		return ECScheme{}, err
	}
	return s, nil
}

func (s ECScheme) validate() error {
	// The limits of chunk.Scheme, which the state machine enforces too.
	if s.K < 1 || s.K > 16 || s.M < 0 || s.M > 8 {
		return fmt.Errorf("erasure-coding scheme %s: need 1 <= K <= 16 and 0 <= M <= 8", s)
	}
	return nil
}

// ParseInitialCluster parses "id=host:port,id=host:port".
func ParseInitialCluster(v string) ([]Peer, error) {
	var peers []Peer
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, addr, ok := strings.Cut(item, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("initial cluster member %q: want ID=HOST:PORT", item)
		}
		peers = append(peers, Peer{ID: id, RaftAddr: addr})
	}
	return peers, nil
}

func formatInitialCluster(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.ID + "=" + p.RaftAddr
	}
	return strings.Join(parts, ",")
}

// Defaults for a LAN: an election starts after ~1s without a leader, which
// keeps writes paused for about that long when a leader dies while riding
// out ordinary GC pauses and network hiccups. The lease is the heartbeat
// timeout (hashicorp/raft's own default ratio): at 250 ms a leader on a
// busy 2-core machine stepped down every 7-30 s with nothing wrong, and
// each step-down fails the writes in flight; a leader cut off from its
// quorum cannot commit anything meanwhile, so the longer lease costs only
// a later step-down. Reads verify leadership and do not rely on it.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 1000 * time.Millisecond
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	// DefaultCommitTimeout: with nothing new to replicate, hashicorp/raft
	// still sends each follower an AppendEntries every CommitTimeout to
	// 2×CommitTimeout so it learns the commit index. Writes never wait on
	// it (new entries go out at once and carry the commit index), only a
	// follower's apply after the last write of a burst. At 20 ms those
	// sends were ~33/s per follower and a quarter of an idle cluster's
	// metad CPU.
	DefaultCommitTimeout     = 100 * time.Millisecond
	DefaultMaxAppendEntries  = 512
	DefaultProposeBatch      = 256
	DefaultProposeInflight   = 1
	DefaultProposeGather     = time.Millisecond
	DefaultSnapshotThreshold = 16384
	DefaultSnapshotInterval  = 60 * time.Second
	DefaultTrailingLogs      = 10240
	DefaultApplyTimeout      = 10 * time.Second
	DefaultHealthMaxLag      = 1000
	DefaultDiskStallTimeout  = 30 * time.Second
)

// DefaultConfig returns a Config with every tunable at its default.
func DefaultConfig() Config {
	return Config{
		DefaultScheme:      ECScheme{K: 4, M: 2},
		HeartbeatTimeout:   DefaultHeartbeatTimeout,
		ElectionTimeout:    DefaultElectionTimeout,
		LeaderLeaseTimeout: DefaultLeaderLeaseTimeout,
		CommitTimeout:      DefaultCommitTimeout,
		MaxAppendEntries:   DefaultMaxAppendEntries,
		ProposeBatch:       DefaultProposeBatch,
		ProposeInflight:    DefaultProposeInflight,
		ProposeGather:      DefaultProposeGather,
		SnapshotThreshold:  DefaultSnapshotThreshold,
		SnapshotInterval:   DefaultSnapshotInterval,
		TrailingLogs:       DefaultTrailingLogs,
		ApplyTimeout:       DefaultApplyTimeout,
		HealthMaxLag:       DefaultHealthMaxLag,
		DiskStallTimeout:   DefaultDiskStallTimeout,
		RaftLogLevel:       "info",
		Heal:               DefaultHealConfig(),
		State:              DefaultStoreConfig(),
	}
}

// RegisterFlags defines metad's flags on fs, writing into c. Call it on a
// Config from DefaultConfig so the flags show the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ID, "id", c.ID, "member `id`, unique and stable (required)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "`directory` for the Raft log, snapshots and metadata state (required)")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "`host:port` to bind the Raft transport to and that peers dial (required; not a wildcard address)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "`host:port` to serve the metadata gRPC API on (required)")
	fs.StringVar(&c.GRPCAdvertise, "grpc-advertise", c.GRPCAdvertise, "`host:port` clients and members use to reach the gRPC API (default: the bound --grpc-addr)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "`host:port` to serve /healthz and /metrics on (empty: none)")
	fs.Func("initial-cluster", "initial Raft members `ID=HOST:PORT,...` (Raft addresses, this member included); used only on first start with an empty data dir", func(v string) error {
		peers, err := ParseInitialCluster(v)
		if err != nil {
			return err
		}
		c.InitialCluster = peers
		return nil
	})
	fs.Func("join", "gRPC `ADDR,...` of members of an existing cluster to ask to add this member (first start with an empty data dir; instead of --initial-cluster)", func(v string) error {
		c.Join = nil
		for a := range strings.SplitSeq(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Join = append(c.Join, a)
			}
		}
		return nil
	})
	fs.Func("ec", fmt.Sprintf("default erasure-coding `K+M` recorded at bootstrap (default %s)", c.DefaultScheme), func(v string) error {
		s, err := ParseECScheme(v)
		if err != nil {
			return err
		}
		c.DefaultScheme = s
		return nil
	})
	fs.DurationVar(&c.HeartbeatTimeout, "raft-heartbeat-timeout", c.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&c.ElectionTimeout, "raft-election-timeout", c.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&c.LeaderLeaseTimeout, "raft-leader-lease-timeout", c.LeaderLeaseTimeout, "how long a leader stays leader without hearing from a quorum (<= heartbeat timeout)")
	fs.DurationVar(&c.CommitTimeout, "raft-commit-timeout", c.CommitTimeout, "how long an idle leader waits before sending followers the commit index")
	fs.IntVar(&c.MaxAppendEntries, "raft-max-append-entries", c.MaxAppendEntries, "most entries replicated, stored and applied in one batch (1..1024)")
	fs.IntVar(&c.ProposeBatch, "propose-batch", c.ProposeBatch, "most commands the leader packs into one Raft entry (1..4096; 1: one entry per command)")
	fs.IntVar(&c.ProposeInflight, "propose-inflight", c.ProposeInflight, "most batched Raft entries in flight at once (1..64)")
	fs.DurationVar(&c.ProposeGather, "propose-gather", c.ProposeGather, "longest the next Raft entry waits, once one is answered, for as many calls as it carried (0: no wait; at most a quarter of the answered entry's time)")
	fs.BoolVar(&c.ProposePipeline, "propose-pipeline", c.ProposePipeline, "form the next Raft entry as soon as the leader stored the previous one, not when an in-flight slot frees (with --propose-inflight 2 or more)")
	fs.Uint64Var(&c.SnapshotThreshold, "snapshot-threshold", c.SnapshotThreshold, "committed entries between snapshots")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "how often to check whether a snapshot is due")
	fs.Uint64Var(&c.TrailingLogs, "trailing-logs", c.TrailingLogs, "entries kept in the log after a snapshot")
	fs.DurationVar(&c.ApplyTimeout, "apply-timeout", c.ApplyTimeout, "longest wait for Raft to accept a command when the request has no deadline")
	fs.Uint64Var(&c.HealthMaxLag, "health-max-lag", c.HealthMaxLag, "committed entries the state machine may lag before /healthz fails")
	fs.DurationVar(&c.DiskStallTimeout, "disk-stall-timeout", c.DiskStallTimeout, "exit when a write to the Raft log takes this long, so that a member whose disk stalls cannot hold the leadership (negative: never)")
	fs.StringVar(&c.RaftLogLevel, "raft-log-level", c.RaftLogLevel, "least severe Raft `level` logged: debug, info, warn, error")
	c.State.registerFlags(fs)
	c.Heal.registerFlags(fs)
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	var errs []error
	req := func(v, flag string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("--%s is required", flag))
		}
	}
	req(c.ID, "id")
	req(c.DataDir, "data-dir")
	if c.RaftListener == nil {
		req(c.RaftAddr, "raft-addr")
		if c.RaftAddr != "" {
			if err := concreteHostPort(c.RaftAddr); err != nil {
				errs = append(errs, fmt.Errorf("--raft-addr: %w", err))
			}
		}
	}
	req(c.GRPCAddr, "grpc-addr")
	if len(c.InitialCluster) > 0 {
		var ids, addrs []string
		for _, p := range c.InitialCluster {
			if slices.Contains(ids, p.ID) || slices.Contains(addrs, p.RaftAddr) {
				errs = append(errs, fmt.Errorf("--initial-cluster: member %s=%s repeats an id or address", p.ID, p.RaftAddr))
			}
			ids, addrs = append(ids, p.ID), append(addrs, p.RaftAddr)
		}
		if !slices.Contains(ids, c.ID) {
			errs = append(errs, fmt.Errorf("--initial-cluster %s does not include this member (%s)", formatInitialCluster(c.InitialCluster), c.ID))
		}
	}
	if len(c.Join) > 0 && len(c.InitialCluster) > 0 {
		errs = append(errs, errors.New("--join and --initial-cluster exclude each other: a member either starts a new cluster or joins one"))
	}
	if err := c.DefaultScheme.validate(); err != nil {
		errs = append(errs, fmt.Errorf("--ec: %w", err))
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		errs = append(errs, errors.New("raft heartbeat and election timeouts must be at least 5ms"))
	}
	if c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, errors.New("--raft-leader-lease-timeout must be positive and at most the heartbeat timeout"))
	}
	if c.CommitTimeout <= 0 {
		errs = append(errs, errors.New("--raft-commit-timeout must be positive"))
	}
	if c.DiskStallTimeout >= 0 && c.DiskStallTimeout < 100*time.Millisecond {
		errs = append(errs, errors.New("--disk-stall-timeout must be at least 100ms (or negative: never)"))
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		errs = append(errs, errors.New("--raft-max-append-entries must be in 1..1024"))
	}
	if c.ProposeBatch < 1 || c.ProposeBatch > 4096 {
		errs = append(errs, errors.New("--propose-batch must be in 1..4096"))
	}
	if c.ProposeInflight < 1 || c.ProposeInflight > 64 {
		errs = append(errs, errors.New("--propose-inflight must be in 1..64"))
	}
	if c.ProposeGather < 0 || c.ProposeGather > 100*time.Millisecond {
		errs = append(errs, errors.New("--propose-gather must be in 0..100ms"))
	}
	if c.SnapshotThreshold < 1 || c.SnapshotInterval < 5*time.Millisecond {
		errs = append(errs, errors.New("--snapshot-threshold must be positive and --snapshot-interval at least 5ms"))
	}
	if c.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("--apply-timeout must be positive"))
	}
	if _, err := raftLogLevel(c.RaftLogLevel); err != nil {
		errs = append(errs, err)
	}
	if err := c.State.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Heal.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func concreteHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host; peers need an address to dial", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q is a wildcard address; peers need an address to dial", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: need a fixed port (peers dial it)", addr)
	}
	return nil
}
