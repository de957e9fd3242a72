package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/internal/hclogslog"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// KeepaliveEnforcement lets clients ping every 5 s, with or without calls
// in flight: metaclient.Keepalive pings after 10 s of silence to find a
// member that stopped without closing its connections. gRPC's default (5
// minutes) answers such pings with GOAWAY "too_many_pings".
var KeepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}

// Server is one metad member: a Raft node whose state machine is State,
// serving the metadata gRPC API and /healthz and /metrics over HTTP.
//
// Life: NewServer opens the stores, starts Raft and binds every listener;
// Run serves until its context ends; Close stops everything. Run may be
// skipped (Raft still takes part in the cluster; the API is not served).
type Server struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *serverMetrics

	state    *State
	logs     *LogStore
	fsm      *fsm
	raft     *raft.Raft
	verifier *verifier
	// proposer batches small commands into Raft entries; nil when
	// Config.ProposeBatch is 1.
	proposer *proposer
	// logStored has room for one signal, sent after each StoreLogs of the
	// Raft log (the pipelined proposer's pace); nil unless
	// Config.ProposePipeline.
	logStored chan struct{}

	raftAddr      string
	grpcLn        net.Listener
	grpcSrv       *grpc.Server
	grpcAdvertise string
	httpLn        net.Listener
	httpSrv       *http.Server

	leaderCh chan bool // Raft's NotifyCh

	// joining: started with no Raft state and Config.Join; Run asks the
	// cluster to add this member (join.go).
	joining bool

	termMu sync.Mutex
	term   *leaderTerm // non-nil while this member leads

	hb heartbeats
	// heal is the self-healing machinery of the term this member leads
	// (heal.go); nil when it does not lead.
	heal atomic.Pointer[healer]

	// shutdown is closed by Close; everything waiting on Raft watches it.
	shutdown  chan struct{}
	closing   atomic.Bool
	running   sync.WaitGroup // Run
	closeOnce sync.Once
	closeErr  error
}

// leaderTerm is this member's leadership of one term, as seen by the
// leadership loop.
type leaderTerm struct {
	// term is the Raft term the barrier below was committed in; written
	// before ready is closed.
	term atomic.Uint64
	// ready is closed when this term's first Barrier has been applied:
	// from then on the state holds everything committed before the term.
	ready chan struct{}
	// over is closed when this member stops leading.
	over   chan struct{}
	cancel context.CancelFunc
}

func (s *Server) currentTerm() *leaderTerm {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	return s.term
}

// NewServer opens cfg.DataDir, starts Raft and binds the listeners. A member
// whose data directory has no Raft state and that is given an initial
// cluster bootstraps it; every initial member does the same with the same
// list, and Raft agrees on one leader.
func NewServer(cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("metad config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "metad", "member", cfg.ID),
		registry: cfg.Registry,
		leaderCh: make(chan bool, 1),
		shutdown: make(chan struct{}),
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	// Undo whatever was opened if a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.logs, err = OpenLogStore(filepath.Join(cfg.DataDir, "raft"), s.log); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = s.logs.Close() })
	if s.state, err = openState(filepath.Join(cfg.DataDir, "state"), s.log, cfg.State.apply); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = s.state.Close() })

	level, _ := raftLogLevel(cfg.RaftLogLevel) // checked by Validate
	hlog := hclogslog.New(s.log.With("component", "raft"), level).WithRelevel(raftRelevel)
	snaps, restoreOnStart, err := openSnapshots(cfg.DataDir, s.state, hlog)
	if err != nil {
		return nil, err
	}

	trans, err := s.newTransport(hlog)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = trans.Close() })
	s.raftAddr = string(trans.LocalAddr())

	hasState, err := raft.HasExistingState(s.logs, s.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	s.joining = !hasState && len(cfg.Join) > 0
	s.fsm = newFSM(s.state)
	// The leader reads every entry it replicates back from the log store
	// (hashicorp/raft keeps none in memory): under load that was a Badger
	// lookup, a copy and a decode per entry per follower. The cache holds
	// the last logCacheEntries entries as stored; batch entries are at most
	// maxBatchBytes, so it stays small.
	var logStore raft.LogStore = s.logs
	var stable raft.StableStore = s.logs
	if cfg.testLogStore != nil {
		logStore = cfg.testLogStore(logStore)
	}
	if cfg.DiskStallTimeout > 0 {
		stalled := cfg.OnDiskStall
		if stalled == nil {
			stalled = exitOnDiskStall(s.log)
		}
		w := &stallWatch{timeout: cfg.DiskStallTimeout, stalled: stalled}
		logStore, stable = stallGuardLogs{LogStore: logStore, w: w}, stallGuardStable{StableStore: stable, w: w}
	}
	logs, err := raft.NewLogCache(logCacheEntries, logStore)
	if err != nil {
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	var raftLogs raft.LogStore = logs
	if cfg.ProposePipeline {
		s.logStored = make(chan struct{}, 1)
		raftLogs = storeNotifier{LogStore: logs, notify: func() {
			select {
			case s.logStored <- struct{}{}:
			default:
			}
		}}
	}
	if s.raft, err = raft.NewRaft(s.raftConfig(hlog, restoreOnStart), s.fsm, raftLogs, stable, snaps, trans); err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	undo = append(undo, func() { _ = s.raft.Shutdown().Error() })
	if err := s.bootstrap(hasState, trans.LocalAddr()); err != nil {
		return nil, err
	}
	s.verifier = &verifier{verify: s.raft.VerifyLeader, shutdown: s.shutdown}

	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("listen for grpc on %s: %w", cfg.GRPCAddr, err)
	}
	undo = append(undo, func() { _ = s.grpcLn.Close() })
	s.grpcAdvertise = cfg.GRPCAdvertise
	if s.grpcAdvertise == "" {
		s.grpcAdvertise = s.grpcLn.Addr().String()
	}
	if cfg.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen for http on %s: %w", cfg.HTTPAddr, err)
		}
		undo = append(undo, func() { _ = s.httpLn.Close() })
	}

	s.metrics = newServerMetrics(s)
	s.verifier.rounds = s.metrics.verifications.Inc
	if err := s.metrics.register(s.registry); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.grpcSrv = grpc.NewServer(append(grpcbuf.ServerOptions(),
		grpc.KeepaliveEnforcementPolicy(KeepaliveEnforcement),
		grpc.ChainUnaryInterceptor(s.countRPC),
		// Close relies on Stop waiting for handlers before State closes.
		grpc.WaitForHandlers(true),
	)...)
	metadatapb.RegisterMetadataServer(s.grpcSrv, &api{s: s})
	s.httpSrv = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	if cfg.ProposeBatch > 1 {
		// Last: nothing below can fail, and the loop ends with Close.
		s.proposer = newProposer(s)
		go s.proposer.run()
	}
	s.log.Info("metad member started", "raft_addr", trans.LocalAddr(), "grpc_addr", s.grpcAdvertise,
		"http_addr", s.HTTPAddr(), "existing_state", hasState, "applied_index", s.state.AppliedIndex(),
		"restore_snapshot_on_start", restoreOnStart)
	return s, nil
}

func (s *Server) newTransport(logger hclog.Logger) (*raftTransport, error) {
	ln := s.cfg.RaftListener
	advertise := s.cfg.RaftAddr
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("listen for raft on %s: %w", s.cfg.RaftAddr, err)
		}
	} else if advertise == "" {
		advertise = ln.Addr().String()
	}
	for _, p := range s.cfg.InitialCluster {
		if p.ID == s.cfg.ID && p.RaftAddr != advertise {
			_ = ln.Close()
			return nil, fmt.Errorf("--initial-cluster places %s at %s but its raft address is %s", p.ID, p.RaftAddr, advertise)
		}
	}
	return &raftTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: ln, advertise: configuredAddr(advertise), dial: s.cfg.RaftDial},
		MaxPool: 4,
		Timeout: 10 * time.Second,
		Logger:  logger,
	})}, nil
}

func (s *Server) raftConfig(logger hclog.Logger, restoreOnStart bool) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(s.cfg.ID)
	c.HeartbeatTimeout = s.cfg.HeartbeatTimeout
	c.ElectionTimeout = s.cfg.ElectionTimeout
	c.LeaderLeaseTimeout = s.cfg.LeaderLeaseTimeout
	c.CommitTimeout = s.cfg.CommitTimeout
	// A leader that removes itself steps down to a follower outside the
	// configuration (which never campaigns) instead of shutting Raft down
	// from inside Raft: after such a shutdown, Close's Shutdown is a no-op
	// that neither waits for Raft's goroutines nor closes the transport, so
	// the stores were closed under a Raft still finishing and the Raft port
	// stayed open.
	c.ShutdownOnRemove = false
	// Group commit: the leader takes up to MaxAppendEntries queued commands
	// into one StoreLogs (one fsync) and one AppendEntries, and the FSM
	// applies them in one Badger transaction.
	c.MaxAppendEntries = s.cfg.MaxAppendEntries
	c.BatchApplyCh = true
	c.SnapshotThreshold = s.cfg.SnapshotThreshold
	c.SnapshotInterval = s.cfg.SnapshotInterval
	c.TrailingLogs = s.cfg.TrailingLogs
	c.NoSnapshotRestoreOnStart = !restoreOnStart
	c.NotifyCh = s.leaderCh
	c.Logger = logger
	c.NoLegacyTelemetry = true
	return c
}

// bootstrap starts a new cluster from cfg.InitialCluster when this member
// has no Raft state. On every later start the stored configuration rules
// and InitialCluster is ignored.
func (s *Server) bootstrap(hasState bool, localAddr raft.ServerAddress) error {
	if hasState || len(s.cfg.InitialCluster) == 0 {
		if !hasState {
			s.log.Info("no raft state and no initial cluster: waiting for a leader to contact this member", "raft_addr", localAddr)
		}
		return nil
	}
	var conf raft.Configuration
	for _, p := range s.cfg.InitialCluster {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft cluster: %w", err)
	}
	s.log.Info("bootstrapped raft cluster", "members", formatInitialCluster(s.cfg.InitialCluster))
	return nil
}

// logCacheEntries is how many of the newest Raft entries the leader keeps
// in memory for replication (see NewServer).
const logCacheEntries = 64

// GRPCAddr is the address this member gives clients for its gRPC API.
func (s *Server) GRPCAddr() string { return s.grpcAdvertise }

// HTTPAddr is the bound address of /healthz and /metrics ("" when off).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// RaftAddr is the address peers reach this member's Raft transport at.
func (s *Server) RaftAddr() string { return s.raftAddr }

// ID is this member's id.
func (s *Server) ID() string { return s.cfg.ID }

// RaftState is this member's Raft state.
func (s *Server) RaftState() raft.RaftState { return s.raft.State() }

// IsLeader reports whether this member leads and has applied everything
// committed before its term, i.e. serves reads and writes.
func (s *Server) IsLeader() bool {
	if s.raft.State() != raft.Leader {
		return false
	}
	t := s.currentTerm()
	if t == nil {
		return false
	}
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}

// Leader returns the leader's member id as this member knows it ("" if
// none).
func (s *Server) Leader() string {
	_, id := s.raft.LeaderWithID()
	return string(id)
}

// AppliedIndex is the index of the last command applied to this member's
// state.
func (s *Server) AppliedIndex() uint64 { return s.state.AppliedIndex() }

// Snapshot takes a Raft snapshot now (and lets Raft truncate the log to
// TrailingLogs entries), as an operator or a test may want.
func (s *Server) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Run serves the gRPC API and HTTP endpoints and runs the leadership and
// membership loops until ctx ends or Close is called. When ctx ends, a
// leader first hands leadership to another member so the cluster does not
// wait out an election timeout.
func (s *Server) Run(ctx context.Context) error {
	s.running.Add(1)
	defer s.running.Done()
	if s.closing.Load() {
		return errors.New("metad: Run after Close")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()

	errc := make(chan error, 2)
	go func() {
		if err := s.grpcSrv.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("serve grpc: %w", err)
		}
	}()
	if s.httpLn != nil {
		go func() {
			if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve http: %w", err)
			}
		}()
	}
	var loops sync.WaitGroup
	loops.Go(func() { s.leadershipLoop(ctx) })
	loops.Go(func() { s.announceLoop(ctx) })
	if s.joining {
		loops.Go(func() { s.joinLoop(ctx) })
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	if !s.closing.Load() && s.raft.State() == raft.Leader {
		tctx, tcancel := context.WithTimeout(context.Background(), 2*s.cfg.ElectionTimeout)
		if terr := awaitFuture(tctx, s.shutdown, s.raft.LeadershipTransfer()); terr != nil {
			s.log.Warn("leadership transfer before stopping failed", "err", terr)
		}
		tcancel()
	}
	// Let calls in flight finish (Raft still runs), but not for long.
	stopped := make(chan struct{})
	go func() { s.grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpcSrv.Stop()
		<-stopped
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = s.httpSrv.Shutdown(sctx)
	scancel()
	loops.Wait()
	return err
}

// Close stops the member at once, as a crash would as far as the cluster
// is concerned (no leadership transfer; Run does that first when its
// context ends), and releases everything. Raft stops first so that every
// request waiting on it is answered, then the API, then the stores.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.shutdown)
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil { // also closes the transport
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		s.grpcSrv.Stop()
		_ = s.grpcLn.Close()
		_ = s.httpSrv.Close()
		if s.httpLn != nil {
			_ = s.httpLn.Close()
		}
		s.running.Wait()
		s.metrics.unregister(s.registry)
		if err := s.state.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := s.logs.Close(); err != nil {
			errs = append(errs, err)
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// leadershipLoop follows Raft's leadership notifications.
func (s *Server) leadershipLoop(ctx context.Context) {
	defer s.stepDown()
	for {
		select {
		case <-ctx.Done():
			return
		case leading := <-s.leaderCh:
			// Raft keeps only the latest notification, so "true" may
			// stand for a lost and regained leadership: always start over.
			s.stepDown()
			if leading {
				s.takeOver(ctx)
			}
		}
	}
}

func (s *Server) takeOver(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	t := &leaderTerm{ready: make(chan struct{}), over: make(chan struct{}), cancel: cancel}
	s.termMu.Lock()
	s.term = t
	s.termMu.Unlock()
	s.hb.reset()
	s.log.Info("became raft leader", "term", s.raft.CurrentTerm())
	go s.leaderWork(ctx, t)
}

func (s *Server) stepDown() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.term == nil {
		return
	}
	s.term.cancel()
	close(s.term.over)
	s.term = nil
	s.log.Info("no longer raft leader")
}

// leaderWork runs at the start of every term this member leads: a Barrier
// (after which reads may be served), then the commands a new leader owes
// the cluster: Bootstrap on a brand-new cluster, and its own gRPC address.
func (s *Server) leaderWork(ctx context.Context, t *leaderTerm) {
	backoff := newBackoff(s.cfg.HeartbeatTimeout/4, 2*s.cfg.ElectionTimeout)
	for {
		t.term.Store(s.raft.CurrentTerm())
		err := awaitFuture(ctx, s.shutdown, s.raft.Barrier(s.cfg.ApplyTimeout))
		if err == nil {
			break
		}
		if ctx.Err() != nil || isNotLeader(err) {
			return
		}
		s.log.Warn("leader barrier failed; retrying", "err", err)
		if !backoff.wait(ctx) {
			return
		}
	}
	close(t.ready)
	for {
		err := s.ensureLeaderRecords(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("recording bootstrap or member address failed; retrying", "err", err)
		if !backoff.wait(ctx) {
			return
		}
	}
	// Self-healing runs for the rest of the term (on a bootstrapped state).
	s.runHeal(ctx)
}

func (s *Server) ensureLeaderRecords(ctx context.Context) error {
	done, err := s.state.Bootstrapped()
	if err != nil {
		return err
	}
	if !done {
		sch := s.cfg.DefaultScheme
		_, err := s.propose(ctx, &metadatapb.Command{Op: &metadatapb.Command_Bootstrap{Bootstrap: &metadatapb.Bootstrap{
			DefaultScheme: &metadatapb.Scheme{K: uint32(sch.K), M: uint32(sch.M)},
		}}})
		if err != nil {
			return fmt.Errorf("commit bootstrap: %w", err)
		}
		s.log.Info("bootstrapped metadata state", "default_scheme", sch)
	}
	return s.ensureMemberAddress(ctx, s.cfg.ID, s.grpcAdvertise, FeatureLevel)
}

// ensureMemberAddress commits a member's gRPC address and feature level
// unless the state has them already.
func (s *Server) ensureMemberAddress(ctx context.Context, id, addr string, level uint32) error {
	members, err := s.state.members()
	if err != nil {
		return err
	}
	if m := members[id]; m != nil && m.GetGrpcAddress() == addr && m.GetFeatureLevel() == level {
		return nil
	}
	_, err = s.propose(ctx, &metadatapb.Command{Op: &metadatapb.Command_SetMemberAddress{SetMemberAddress: &metadatapb.SetMemberAddress{
		Id: id, GrpcAddress: addr, FeatureLevel: level,
	}}})
	if err != nil {
		return fmt.Errorf("commit address of member %s: %w", id, err)
	}
	s.log.Info("recorded member grpc address", "id", id, "grpc_addr", addr, "feature_level", level)
	return nil
}

// propose commits cmd through Raft and returns the state machine's answer.
// Small commands go through the proposer (propose.go) and may share a Raft
// entry with others. Errors: *metaerr.NotLeaderError when the command was
// certainly not appended; a metadata condition from the state machine;
// otherwise an error after which the command may or may not have been
// committed.
func (s *Server) propose(ctx context.Context, cmd *metadatapb.Command) (proto.Message, error) {
	resps, errs := s.proposeMany(ctx, []*metadatapb.Command{cmd})
	return resps[0], errs[0]
}

// proposeMany proposes each of cmds as propose describes and returns their
// answers in order. The proposer gets the small ones together (one
// queueing, one wake-up, no goroutine each), so they share entries.
func (s *Server) proposeMany(ctx context.Context, cmds []*metadatapb.Command) ([]proto.Message, []error) {
	resps, errs := make([]proto.Message, len(cmds)), make([]error, len(cmds))
	fail := func(err error) ([]proto.Message, []error) {
		for i := range errs {
			errs[i] = err
		}
		return resps, errs
	}
	if s.raft.State() != raft.Leader {
		return fail(s.notLeader())
	}
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return fail(context.DeadlineExceeded)
	}
	start := time.Now()
	// Observed per command, queueing in the proposer included.
	observe := func() { s.metrics.apply.Observe(time.Since(start).Seconds()) }
	var (
		queued []*proposal
		at     []int // queued[j] is cmds[at[j]]
		alone  sync.WaitGroup
	)
	for i, cmd := range cmds {
		cmd.ProposedUnixNano = start.UnixNano()
		data, err := grpcbuf.Append(nil, cmd, false)
		if err != nil {
			errs[i] = fmt.Errorf("encode command: %w", err)
			continue
		}
		if s.proposer != nil && len(data) <= maxBatchedCommand {
			queued = append(queued, newProposal(ctx, data))
			at = append(at, i)
			continue
		}
		// An entry of its own.
		alone.Go(func() {
			defer observe()
			resp, index, err := s.applyEntry(ctx, data, timeout)
			var res Result
			if err == nil {
				res, err = asResult(resp, index)
			}
			resps[i], errs[i] = answer(res, err)
		})
	}
	if len(queued) > 0 {
		s.proposer.enqueue(queued...)
	}
	for j, pr := range queued {
		resps[at[j]], errs[at[j]] = answer(s.proposer.wait(ctx, pr))
		observe()
	}
	alone.Wait()
	return resps, errs
}

// answer is a command's outcome as propose returns it.
func answer(res Result, err error) (proto.Message, error) {
	if err != nil {
		return nil, err
	}
	if res.Skipped {
		return nil, errors.New("state machine skipped a new entry")
	}
	return res.Resp, res.Err
}

// notLeader is the error for a request this member cannot serve because it
// does not lead: it names the leader's gRPC address when known.
func (s *Server) notLeader() error {
	_, id := s.raft.LeaderWithID()
	if id == "" || string(id) == s.cfg.ID {
		return &metaerr.NotLeaderError{}
	}
	addrs, err := s.state.MemberAddresses()
	if err != nil {
		s.log.Warn("read member addresses", "err", err)
		return &metaerr.NotLeaderError{}
	}
	return &metaerr.NotLeaderError{LeaderAddr: addrs[string(id)]}
}

func raftLogLevel(v string) (hclog.Level, error) {
	switch strings.ToLower(v) {
	case "trace":
		return hclog.Trace, nil
	case "debug":
		return hclog.Debug, nil
	case "", "info":
		return hclog.Info, nil
	case "warn":
		return hclog.Warn, nil
	case "error":
		return hclog.Error, nil
	}
	return hclog.NoLevel, fmt.Errorf("raft log level %q: want debug, info, warn or error", v)
}

// backoff is a doubling pause between retries of background work.
type backoff struct{ cur, max time.Duration }

func newBackoff(start, max time.Duration) *backoff { return &backoff{cur: start, max: max} }

// wait sleeps for the current pause and doubles it; false if ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
