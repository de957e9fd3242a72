package metaclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Commit batching. A gateway under load commits many objects at once, and
// one RPC per commit cost as much CPU as Raft itself (docs/perf/metad.md
// §7). So CommitObject calls share CommitObjects RPCs: while
// Options.CommitCalls calls are in flight, new commits queue, and the next
// call carries everything that queued. A lone commit on an idle client is
// sent at once; batching groups what would have waited anyway, plus the
// short gather below.
//
// A call that returns hands the next call whatever queued meanwhile, but
// when its own commits' callers are about to commit again, that is too
// early: a client whose writers commit one after another split into two
// groups that took turns, each waiting for the other's call, with calls
// and the leader's entries half the size they could be. So when the last
// call in flight returns with fewer queued than the calls carried, the
// next waits for that many, but not longer than a quarter of the call it
// follows took (at most maxCommitGather): the callers it just answered
// come back within microseconds if they are coming (docs/perf/metad.md
// §15).
//
// A call a member leaves unanswered (a frozen leader: see Keepalive) would
// hold every commit queued behind it until keepalive gives up on the
// connection, ~13 s. So once every call in flight has waited
// Options.CommitStuckAfter, the queued commits go in a call of their own
// (at most maxStuckCalls such calls at once), and the client moves on from
// the member the stuck call went to, as an unanswered read does: the next
// member redirects to the new leader. Those commits were never sent, so
// sending them elsewhere cannot commit anything twice; the stuck call's
// commits keep waiting for its outcome.
//
// Each commit keeps CommitObject's meaning: the leader proposes it on its
// own, with its own condition, and answers it on its own. Its outcome is
// known as exactly as for a call of its own:
//
//   - a NotLeader answer, for the whole call or for the commit, means it was
//     not proposed, and it is sent again (to the leader, once known);
//   - a failed call whose outcome is unknown fails every commit in it with
//     that error, as a lost reply fails a CommitObject;
//   - a caller whose context ends gets its context's error: the commit was
//     certainly not sent if it was still queued, and its outcome is unknown
//     if it was.
const (
	// DefaultCommitCalls is Options.CommitCalls' default. One call in
	// flight makes the biggest calls, so the leader's entries are big: the
	// commits made while a call is out all go in the next. With two, the
	// first writer woken by an answer took the free slot alone, and the
	// rest waited behind it: calls alternated between 1 commit and ~60,
	// and so did the entries (docs/perf/metad.md §11).
	DefaultCommitCalls = 1
	// maxCommitsPerCall and maxCallBytes bound one CommitObjects call well
	// inside the leader's limits (metadata.MaxCommitsPerCall, gRPC's 4 MiB
	// message).
	maxCommitsPerCall = 256
	maxCallBytes      = 1 << 20
	// maxBatchedCommit: larger commits (big inline objects, objects of
	// many segments) go alone, as the leader's proposer also proposes them
	// alone.
	maxBatchedCommit = 16 << 10
	// maxCommitGather bounds how long the next call waits for the callers
	// of the last one to commit again; see the top of this file.
	maxCommitGather = time.Millisecond
	// maxStuckCalls is how many calls may be in flight beyond maxCalls
	// because the others went unanswered; see the top of this file.
	maxStuckCalls = 2
)

// inflightCall is a CommitObjects call under way.
type inflightCall struct {
	at   time.Time
	addr string // the member it was sent to, as far as the router knew
}

// commitState is where a queued commit is; it changes under batcher.mu.
type commitState int

const (
	commitQueued commitState = iota
	commitSent
	commitAbandoned // its caller has returned
)

type queuedCommit struct {
	ctx   context.Context
	req   *metadatapb.CommitObjectRequest
	size  int
	state commitState
	// done is closed once resp or err is set.
	done chan struct{}
	resp *metadatapb.CommitObjectResponse
	err  error
}

// commitBatcher groups concurrent CommitObject calls into CommitObjects
// calls, at most maxCalls in flight.
type commitBatcher struct {
	client   metadatapb.MetadataClient // the unbatched client
	maxCalls int
	// unbatched is set once a member answered Unimplemented (a metad older
	// than CommitObjects): every commit then goes on its own.
	unbatched atomic.Bool

	mu    sync.Mutex
	queue []*queuedCommit
	calls int // in flight
	// sent holds the sizes of the last maxCalls calls, next the slot the
	// next size goes in; see mayStartLocked.
	sent []int
	next int
	// gatherLimit is how long the next call may wait for a share after a
	// call that took callTook (gatherLimit; tests change it).
	gatherLimit func(callTook time.Duration) time.Duration
	// gathered, while a returned call waits for the queue to hold
	// gatherSize commits, is closed once it does.
	gathered   chan struct{}
	gatherSize int

	// stuckAfter is Options.CommitStuckAfter (≤ 0: never); r, when set,
	// is the router the calls go through, told to move on from a member
	// that left a call unanswered.
	stuckAfter time.Duration
	r          *router
	inflight   []*inflightCall
	stuckTimer *time.Timer // armed while every slot is taken and commits queue
}

func newCommitBatcher(client metadatapb.MetadataClient, maxCalls int) *commitBatcher {
	return &commitBatcher{client: client, maxCalls: maxCalls, sent: make([]int, maxCalls), gatherLimit: gatherLimit}
}

// stuckLocked reports whether every call in flight has waited stuckAfter
// and another may start for what is queued.
func (b *commitBatcher) stuckLocked(now time.Time) bool {
	if b.stuckAfter <= 0 || len(b.queue) == 0 || b.calls >= b.maxCalls+maxStuckCalls || len(b.inflight) == 0 {
		return false
	}
	newest := b.inflight[len(b.inflight)-1].at
	return now.Sub(newest) >= b.stuckAfter
}

// watchStuckLocked arms a timer for when the calls in flight will count as
// stuck, if commits wait for a slot.
func (b *commitBatcher) watchStuckLocked() {
	if b.stuckAfter <= 0 || b.stuckTimer != nil || len(b.queue) == 0 || len(b.inflight) == 0 || b.calls >= b.maxCalls+maxStuckCalls {
		return
	}
	wait := b.stuckAfter - time.Since(b.inflight[len(b.inflight)-1].at)
	b.stuckTimer = time.AfterFunc(max(wait, 0), b.unstick)
}

// unstick starts a call for the queued commits if the calls in flight are
// stuck, moving the client on from the member the newest went to.
func (b *commitBatcher) unstick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stuckTimer = nil
	may := b.mayStartLocked()
	stuck := !may && b.stuckLocked(time.Now())
	if !may && !stuck {
		b.watchStuckLocked()
		return
	}
	if stuck && b.r != nil {
		b.r.next(b.inflight[len(b.inflight)-1].addr)
	}
	if batch, call := b.startLocked(); batch != nil {
		go b.run(batch, call)
	}
	b.watchStuckLocked()
}

// shareLocked is the mean size of the last maxCalls calls.
func (b *commitBatcher) shareLocked() int {
	total := 0
	for _, n := range b.sent {
		total += n
	}
	return max(1, total/len(b.sent))
}

// mayStartLocked reports whether a call may start now. The first call in
// flight starts at once. Another starts only once the queue holds a fair
// share: the mean size of the last maxCalls calls. Starting one whenever a
// slot was free split the writers into a group of one and a group of all
// the rest, which stayed that way (docs/perf/metad.md §11, §13); waiting
// for a share keeps the calls, and so the leader's entries, the same size,
// and lets the next call travel while the last is in the leader.
func (b *commitBatcher) mayStartLocked() bool {
	if b.calls == 0 {
		return true
	}
	if b.calls >= b.maxCalls {
		return false
	}
	return len(b.queue) >= b.shareLocked()
}

// startLocked takes the next call's commits, if any, and counts the call
// in flight.
func (b *commitBatcher) startLocked() ([]*queuedCommit, *inflightCall) {
	batch := b.takeLocked()
	if len(batch) == 0 {
		return nil, nil
	}
	b.calls++
	b.sent[b.next] = len(batch)
	b.next = (b.next + 1) % len(b.sent)
	call := &inflightCall{at: time.Now()}
	if b.r != nil {
		call.addr = b.r.current()
	}
	b.inflight = append(b.inflight, call)
	return batch, call
}

// endLocked forgets a call that returned.
func (b *commitBatcher) endLocked(call *inflightCall) {
	b.calls--
	if i := slices.Index(b.inflight, call); i >= 0 {
		b.inflight = slices.Delete(b.inflight, i, i+1)
	}
}

// CommitObject commits req, sharing a CommitObjects call with concurrent
// commits (see the top of this file). With call options it is sent on its
// own.
func (c *Client) CommitObject(ctx context.Context, req *metadatapb.CommitObjectRequest, opts ...grpc.CallOption) (*metadatapb.CommitObjectResponse, error) {
	b := c.commits
	if b == nil || len(opts) > 0 || b.unbatched.Load() {
		return c.MetadataClient.CommitObject(ctx, req, opts...)
	}
	size := proto.Size(req)
	if size > maxBatchedCommit {
		return c.MetadataClient.CommitObject(ctx, req)
	}
	return b.commit(ctx, req, size)
}

func (b *commitBatcher) commit(ctx context.Context, req *metadatapb.CommitObjectRequest, size int) (*metadatapb.CommitObjectResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	qc := &queuedCommit{ctx: ctx, req: req, size: size, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, qc)
	if b.gathered != nil && len(b.queue) >= b.gatherSize {
		close(b.gathered)
		b.gathered = nil
	}
	if b.mayStartLocked() {
		if batch, call := b.startLocked(); batch != nil {
			go b.run(batch, call)
		}
	} else {
		b.watchStuckLocked()
	}
	b.mu.Unlock()
	select {
	case <-qc.done:
		return qc.resp, qc.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	state := qc.state
	qc.state = commitAbandoned
	b.mu.Unlock()
	if state == commitSent {
		select {
		case <-qc.done:
			// Answered while we looked: the answer is certain.
			return qc.resp, qc.err
		default:
		}
		return nil, fmt.Errorf("%w (commit sent, outcome unknown)", ctx.Err())
	}
	return nil, ctx.Err()
}

// takeLocked removes the next call's commits from the queue and marks them
// sent, skipping those whose callers have returned.
func (b *commitBatcher) takeLocked() []*queuedCommit {
	var batch []*queuedCommit
	bytes, i := 0, 0
	for ; i < len(b.queue) && len(batch) < maxCommitsPerCall; i++ {
		qc := b.queue[i]
		if qc.state == commitAbandoned {
			continue
		}
		if len(batch) > 0 && bytes+qc.size > maxCallBytes {
			break
		}
		qc.state = commitSent
		batch = append(batch, qc)
		bytes += qc.size
	}
	b.queue = b.queue[i:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	return batch
}

// run sends batch, then whatever queued meanwhile, for as long as a call
// may start; the last call in flight always takes what is queued, so no
// commit is left waiting (after a gather: see the top of this file).
func (b *commitBatcher) run(batch []*queuedCommit, call *inflightCall) {
	for batch != nil {
		b.send(batch)
		b.mu.Lock()
		if b.calls == 1 {
			b.gatherLocked(time.Since(call.at))
		}
		b.endLocked(call)
		batch = nil
		// While a call is stuck, the others go on taking turns.
		if b.mayStartLocked() || b.stuckLocked(time.Now()) {
			batch, call = b.startLocked()
		}
		b.mu.Unlock()
	}
}

// gatherLimit bounds a gather after a call that took callTook: a quarter
// of it, so that commits wait at most that much longer than they would
// have, and never more than maxCommitGather.
func gatherLimit(callTook time.Duration) time.Duration {
	return min(callTook/4, maxCommitGather)
}

// gatherLocked waits, at most b.gatherLimit(callTook), until the queue
// holds a share (see the top of this file). The caller holds b.mu and
// still counts its call in flight, so no other call starts meanwhile.
func (b *commitBatcher) gatherLocked(callTook time.Duration) {
	share := b.shareLocked()
	limit := b.gatherLimit(callTook)
	if len(b.queue) >= share || limit <= 0 {
		return
	}
	gathered := make(chan struct{})
	b.gathered, b.gatherSize = gathered, share
	b.mu.Unlock()
	timer := time.NewTimer(limit)
	select {
	case <-gathered:
	case <-timer.C:
	}
	timer.Stop()
	b.mu.Lock()
	b.gathered = nil
}

// send makes one CommitObjects call for batch and hands out its answers.
func (b *commitBatcher) send(batch []*queuedCommit) {
	if b.unbatched.Load() {
		b.sendEach(batch)
		return
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	req := &metadatapb.CommitObjectsRequest{Commits: make([]*metadatapb.CommitObjectRequest, len(batch))}
	for i, qc := range batch {
		req.Commits[i] = qc.req
	}
	resp, err := b.client.CommitObjects(ctx, req)
	switch {
	case status.Code(err) == codes.Unimplemented:
		// A metad without CommitObjects refused the call before doing
		// anything: commit one by one from now on.
		b.unbatched.Store(true)
		b.sendEach(batch)
		return
	case err == nil && len(resp.GetResults()) != len(batch):
		err = fmt.Errorf("metaclient: metad answered %d results for %d commits; outcome unknown", len(resp.GetResults()), len(batch))
	}
	if err != nil {
		for _, qc := range batch {
			qc.finish(nil, err)
		}
		return
	}
	var again []*queuedCommit
	for i, r := range resp.GetResults() {
		qc := batch[i]
		if r.GetError() == nil {
			qc.finish(&metadatapb.CommitObjectResponse{Object: r.GetObject(), ModifiedUnixNano: r.GetModifiedUnixNano(), VersionId: r.GetVersionId()}, nil)
			continue
		}
		err := metaerr.FromStatus(r.GetError().Err())
		if errors.Is(err, metaerr.ErrNotLeader) {
			// Leadership moved while the call was in the leader: this
			// commit was not proposed; the next call finds the leader.
			again = append(again, qc)
			continue
		}
		qc.finish(nil, err)
	}
	if len(again) > 0 {
		b.requeue(again)
	}
}

// sendEach commits each of batch with its own CommitObject call.
func (b *commitBatcher) sendEach(batch []*queuedCommit) {
	var wg sync.WaitGroup
	for _, qc := range batch {
		wg.Go(func() { qc.finish(b.client.CommitObject(qc.ctx, qc.req)) })
	}
	wg.Wait()
}

// requeue puts commits that were certainly not proposed back at the front
// of the queue, unless their callers have returned.
func (b *commitBatcher) requeue(commits []*queuedCommit) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keep []*queuedCommit
	for _, qc := range commits {
		if qc.state == commitAbandoned {
			continue
		}
		qc.state = commitQueued
		keep = append(keep, qc)
	}
	b.queue = append(keep, b.queue...)
}

func (qc *queuedCommit) finish(resp *metadatapb.CommitObjectResponse, err error) {
	qc.resp, qc.err = resp, err
	close(qc.done)
}

// batchContext is the context of one call carrying batch: it ends when
// every commit's caller has returned, or at the latest of their deadlines
// (none if any has none). It carries no values of the callers' contexts.
func batchContext(batch []*queuedCommit) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, qc := range batch {
		dl, ok := qc.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if dl.After(latest) {
			latest = dl
		}
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if latest.IsZero() {
		ctx, cancel = context.WithCancel(context.Background())
	} else {
		ctx, cancel = context.WithDeadline(context.Background(), latest)
	}
	var waiting atomic.Int64
	waiting.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, qc := range batch {
		stops[i] = context.AfterFunc(qc.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
