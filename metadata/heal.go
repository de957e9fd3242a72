package metadata

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Self-healing on the leader. While a member leads (from its first barrier
// and its leader records on), a healer runs five loops:
//
//   - liveness (liveness.go): silent blob nodes become SUSPECT, then DOWN;
//   - repair (repair.go): segments with missing shards or shards on DOWN
//     nodes are queued, most endangered first, and rebuilt by RepairTasks
//     on target nodes that keep the failure-domain rule;
//   - GC (gc.go): GC entries become DeleteTasks, acknowledged when done;
//   - health (health.go): a paced pass over every segment computes the
//     figures of HealthStatus and the gauges;
//   - expiry (expire.go): multipart uploads older than UploadExpiry or
//     their bucket's lifecycle rules allow are aborted, and objects the
//     lifecycle rules expire are deleted.
//
// Everything the healer holds is derived from the replicated state and is
// dropped when the term ends; the next leader derives it again. Commands it
// commits (SetNodeState, CommitPlacement, MarkChunks, AckGC, AbortMultipart,
// DeleteObject) are each one
// Raft entry through Server.propose, like every other mutation.

// healState is what the healer reads from the replicated state (State).
type healState interface {
	ClusterMap() (*pb.ClusterMap, error)
	Segment(id []byte) (SegmentInfo, error)
	SegmentsWithMissing(after []byte, limit int) ([]SegmentInfo, []byte, error)
	SegmentsOnNode(node string, after []byte, limit int) ([]SegmentInfo, []byte, error)
	SegmentsOnNodes(nodes []string, after []byte, limit int) ([]SegmentInfo, []byte, error)
	ScanSegments(after []byte, limit int) ([]SegmentInfo, []byte, error)
	GCEntries(after []byte, limit int) ([]GCItem, error)
	GCBacklog() (int64, error)
	ChunkDeletePending(id []byte, shard int, node string) (bool, error)
	Uploads(after []byte, limit int) ([]*pb.MultipartUpload, []byte, error)
	ListBuckets(*pb.ListBucketsRequest) (*pb.ListBucketsResponse, error)
	ListObjects(*pb.ListObjectsRequest) (*pb.ListObjectsResponse, error)
	Versions(bucket string, after *VersionCursor, limit int) ([]VersionInfo, *VersionCursor, error)
}

var _ healState = (*State)(nil)

// healer is one term's self-healing machinery.
type healer struct {
	cfg     HealConfig
	log     *slog.Logger
	st      healState
	propose func(context.Context, *pb.Command) (proto.Message, error)
	// requireFeature, when set, answers ErrUpgradeRequired unless every
	// member applies the commands of a feature level (members.go).
	requireFeature func(ctx context.Context, level uint32, what string) error
	now            func() time.Time
	m              *healMetrics

	tasks *taskTable
	nonce atomic.Uint64
	// wake asks the repair loop for a dispatch round; rescan for a scan.
	wake   chan struct{}
	rescan atomic.Bool

	mu     sync.Mutex
	queue  repairQueue
	bucket tokenBucket
	meter  rateMeter
	gc     gcTracker

	figures   atomic.Pointer[healthFigures]
	gcBacklog atomic.Int64

	// bal is the balancer's per-term state (balance_round.go).
	bal balancer
}

func newHealer(cfg HealConfig, log *slog.Logger, st healState, propose func(context.Context, *pb.Command) (proto.Message, error), m *healMetrics) *healer {
	h := &healer{
		cfg:     cfg,
		log:     log.With("component", "heal"),
		st:      st,
		propose: propose,
		now:     time.Now,
		m:       m,
		tasks:   newTaskTable(),
		wake:    make(chan struct{}, 1),
	}
	h.bucket = tokenBucket{rate: float64(cfg.RepairBytesPerSecond)}
	h.meter = rateMeter{window: time.Minute, start: time.Now()}
	h.queue.items = map[string]*repairItem{}
	h.gc.entries = map[string]*gcWork{}
	return h
}

func (h *healer) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// wantScan asks the repair loop to rebuild its queue soon.
func (h *healer) wantScan() {
	h.rescan.Store(true)
	h.poke()
}

// runHeal runs the healer for this term until ctx ends.
func (s *Server) runHeal(ctx context.Context) {
	h := newHealer(s.cfg.Heal, s.log, s.state, s.propose, s.metrics.heal)
	h.requireFeature = s.requireFeature
	s.heal.Store(h)
	defer s.heal.CompareAndSwap(h, nil)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		s.livenessLoop(ctx, start, func(id string, st pb.NodeState) {
			if st == pb.NodeState_NODE_STATE_DOWN || st == pb.NodeState_NODE_STATE_UP {
				h.wantScan()
			}
		})
	})
	wg.Go(func() { h.repairLoop(ctx) })
	wg.Go(func() { h.gcLoop(ctx) })
	wg.Go(func() { h.healthLoop(ctx) })
	wg.Go(func() { h.expiryLoop(ctx) })
	wg.Go(func() { s.drainLoop(ctx, h) })
	wg.Go(func() { s.balanceLoop(ctx, h) })
	wg.Wait()
}

// currentHealer returns this term's healer, or NotLeader.
func (s *Server) currentHealer() (*healer, error) {
	h := s.heal.Load()
	if h == nil {
		return nil, s.notLeader()
	}
	return h, nil
}

// isPrecondition reports whether err is a refused compare-and-set.
func isPrecondition(err error) bool { return errors.Is(err, metaerr.ErrPreconditionFailed) }

// sleepCtx waits d or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
