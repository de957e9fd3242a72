package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"
)

// The balancer (`cairn rebalance start | status | stop`).
//
// Start plans once over every segment, for the totals the progress is
// measured against, and commits SetRebalance{running}. From then on the
// leader's balancer works incrementally, a bounded amount per round
// (balanceLoop): it reads one page of segments after the cursor, plans
// their moves against the utilisation the node counts show plus the moves
// still in flight, hands them out within the repair budgets and --rate, and
// commits the new cursor and the moves it handed out (pending) in one
// SetRebalance — before handing them out, so that a new leader knows what
// may still be in flight. A pending move is settled once: counted into
// bytes_moved/moves_done when its placement shows the new node (the move's
// CommitPlacement), or dropped when its task failed or expired. When a pass
// over all segments ends having planned nothing, with nothing deferred and
// nothing pending, the rebalance is done. A move dropped in the middle of a
// pass counts as deferred: the segments examined before were planned as if
// it would happen.
//
// A move dropped because it failed is not planned again until its backoff
// has passed, and not at all after balanceMoveAttempts failures.
//
// So a leader change neither loses nor repeats work: the new leader reads
// the cursor, counters and pending moves from the state, and hands the
// pending moves out again under their task ids (adoptPending); placements are
// compare-and-set, so a move reported twice commits once, and it is
// counted when settled, which removes it from pending in the same command.
//
// Every SetRebalance the leader commits is read-modify-write under the
// term's balancer lock, which Start and Stop also take: a round cannot
// overwrite a stop, and no move is handed out after Stop returns (moves
// already handed out finish and commit).
//
// Rate: --rate is a token bucket in the leader's memory. A new leader's
// bucket starts empty rather than full, so a leader change does not grant
// a fresh burst; the old leader's debt is forgiven, so across a change the
// balancer can run ahead of the rate by at most one move.

// balancePage bounds the segments one balancer round examines.
const balancePage = 256

// balanceUsageMaxAge bounds how long the balancer plans on node usage it
// read from the node counts (nu/; it was a scan of every chunk entry when
// this was chosen); moves settled meanwhile are applied to it, and it is
// read again at the start of each pass.
const balanceUsageMaxAge = 30 * time.Second

// balanceUsageMinAge: a new pass reads the node usage again only if it
// is older than this (in a small cluster every round is a pass).
const balanceUsageMinAge = time.Second

// balanceCursorCommit is how often the balancer commits a cursor that
// moved while nothing else changed.
const balanceCursorCommit = time.Second

// balancer is the balancer's state for one term (the healer's bal).
type balancer struct {
	// mu serialises this term's SetRebalance commits (rounds, Start, Stop).
	mu sync.Mutex

	// Observed by tests: rounds of the balancer loop (running or not),
	// moves handed out.
	rounds atomic.Uint64
	moves  atomic.Uint64
	// drainRounds counts the drain loop's rounds.
	drainRounds atomic.Uint64
	// drain is the drain's memory of its moves that failed
	// (balance_drain.go); it has its own lock.
	drain drainBackoff

	// The rest belongs to the loop's goroutine (and is read under mu).
	run        int64            // started_unix_nano of the run the fields below are for
	usage      map[string]int64 // node counts' bytes per node
	usageAt    time.Time
	usagePass  int64
	bucket     *tokenBucket
	bucketRate int64
	// drop: pending moves whose hand-out failed after they were committed,
	// with why when that counts as a failure of the move ("" when it does
	// not: its target was busy, or the placement changed).
	drop map[string]string
	// moveBackoff: the moves that failed this run (balance_backoff.go).
	moveBackoff
	// counted: pending moves (by pendingKey) whose commit the last usage
	// read already shows, so that neither the planner nor settlePending
	// applies them a second time.
	counted map[string]bool
	// shadow is the record with the cursor and pass counters of the last
	// rounds, not committed yet; it applies while the state still holds
	// base (a stop or start replaces that, and the shadow with it).
	shadow, base *pb.SetRebalance
	committedAt  time.Time

	// fmu guards mine and finished, which task results update.
	fmu sync.Mutex
	// mine: pending moves this leader handed out (by pendingKey), true
	// once their result has been handled (committed or not) or their task
	// expired. A move leaves the task table when its result arrives, before
	// its placement commits: only finished tells "failed" from "committing".
	mine map[string]bool
	// why: what the blob node or the expiry said of a finished move of
	// mine that failed.
	why map[string]string
}

// handedOut records a move this leader handed out.
func (b *balancer) handedOut(key string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if b.mine == nil {
		b.mine = map[string]bool{}
	}
	b.mine[key] = false
}

// finish records that the result of a move was handled (its placement
// committed or refused), or that its task expired; why, when not "", says
// why it failed.
func (b *balancer) finish(key, why string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if _, ok := b.mine[key]; ok {
		b.mine[key] = true
		if why != "" {
			if b.why == nil {
				b.why = map[string]string{}
			}
			b.why[key] = why
		}
	}
}

// failure returns why a finished move of mine failed ("" when not told).
func (b *balancer) failure(key string) string {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	return b.why[key]
}

// state reports whether key is a move this leader handed out, and whether
// it has finished.
func (b *balancer) state(key string) (mine, finished bool) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	finished, mine = b.mine[key]
	return mine, finished
}

// unfinished counts the moves handed out whose result is not handled.
func (b *balancer) unfinished() int {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	n := 0
	for _, done := range b.mine {
		if !done {
			n++
		}
	}
	return n
}

func (b *balancer) forget(key string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	delete(b.mine, key)
	delete(b.why, key)
}

func pendingKey(segment []byte, shard uint32, to string) string {
	return fmt.Sprintf("%x/%d/%s", segment, shard, to)
}

type pendingState int

const (
	pendingOpen      pendingState = iota // may still commit
	pendingCommitted                     // the placement shows the new node
	pendingGone                          // the segment is gone, or the shard moved elsewhere
)

// pendingOutcome reads where p's shard is now.
func (s *Server) pendingOutcome(p *pb.PendingMove) pendingState {
	info, err := s.state.Segment(p.GetSegmentId())
	if errors.Is(err, metaerr.ErrNoSuchKey) {
		return pendingGone
	}
	if err != nil {
		return pendingOpen
	}
	return outcomeOn(info.Segment.GetNodes(), p)
}

// outcomeOn reads where p's shard is in a placement of its segment.
func outcomeOn(nodes []string, p *pb.PendingMove) pendingState {
	switch sh := int(p.GetShard()); {
	case sh >= len(nodes):
		return pendingGone
	case nodes[sh] == p.GetToNode():
		return pendingCommitted
	case nodes[sh] != p.GetFromNode():
		return pendingGone // repaired or moved by someone else
	}
	return pendingOpen
}

// settlePending counts r's pending moves that committed and drops those
// that cannot commit any more (gone; failed on this leader; or older than
// a task's timeout, when handed out by an earlier leader). With stopping,
// moves still open stay pending (they may still commit; a later status or
// start counts them). It reports whether r changed, and how many moves it
// dropped: the balancer planned on those happening.
func (s *Server) settlePending(h *healer, r *pb.SetRebalance, applyUsage bool) (changed bool, lost int) {
	b := &h.bal
	now := h.now()
	kept := r.GetPending()[:0:0]
	for _, p := range r.GetPending() {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		// Whether the move finished is read before where its shard is, so
		// that a result handled in between is seen as committed.
		mine, finished := b.state(key)
		switch s.pendingOutcome(p) {
		case pendingCommitted:
			r.BytesMoved += p.GetBytes()
			r.MovesDone++
			b.recordSuccess(p.GetSegmentId(), p.GetShard(), p.GetToNode())
			if applyUsage && b.usage != nil && !b.counted[key] {
				b.usage[p.GetFromNode()] -= p.GetBytes()
				b.usage[p.GetToNode()] += p.GetBytes()
			}
			changed = true
			b.forget(key)
			delete(b.counted, key)
			continue
		case pendingGone:
			changed = true
			lost++
			b.forget(key)
			delete(b.counted, key)
			continue
		}
		// Open: drop it when handed out by this leader and finished
		// without committing (failed, expired, or its commit refused), or
		// past a task's timeout without a task here (an earlier leader's,
		// or a result whose commit failed and was never reported again).
		expired := now.Sub(time.Unix(0, p.GetHandedUnixNano())) > h.cfg.RepairTaskTimeout+time.Second
		inTable := h.tasks.isWriting(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		dropReason, dropped := b.drop[key]
		if dropped || mine && finished || !inTable && expired {
			switch {
			case dropped:
				if dropReason != "" {
					h.moveFailed(p, dropReason)
				}
			case mine && finished:
				why := b.failure(key)
				if why == "" {
					why = "its placement commit was refused"
				}
				h.moveFailed(p, why)
			default:
				h.moveFailed(p, "no result within the task timeout")
			}
			changed = true
			lost++
			b.forget(key)
			delete(b.drop, key)
			delete(b.counted, key)
			continue
		}
		kept = append(kept, p)
	}
	r.Pending = kept
	return changed, lost
}

// moveNonce is the task id nonce of the balancer's move p: the time it was
// handed out, which the pending record keeps, so that every leader derives
// the same task id for it.
func moveNonce(p *pb.PendingMove) uint64 { return uint64(p.GetHandedUnixNano()) }

// adoptPending hands out again, at once, the pending moves of r that this
// leader did not hand out (an earlier leader's) and has no task for. A
// move no blob node fetched from the earlier leader is not in progress
// anywhere, and waiting a task's timeout for it stalled the run after
// every leader change; one that was fetched may be running, so it goes
// out under the task id the earlier leader gave it (moveNonce): a node
// already running that task does not start it twice (blob.Executor drops
// a task whose id is running), and its result, reported to this leader,
// matches the task here. One that cannot go now (its target busy) is
// tried next round; one that cannot go at all (the placement changed) is
// dropped from pending in the next round.
func (s *Server) adoptPending(h *healer, r *pb.SetRebalance) {
	b := &h.bal
	for _, p := range r.GetPending() {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		if mine, _ := b.state(key); mine || b.counted[key] || h.tasks.isWriting(p.GetSegmentId(), p.GetShard(), p.GetToNode()) {
			continue
		}
		if _, dropped := b.drop[key]; dropped {
			continue
		}
		if _, err := h.addMoveNonce(p.GetSegmentId(), p.GetShard(), p.GetToNode(), moveNonce(p)); err != nil {
			if !errors.Is(err, errTargetBusy) {
				b.drop[key] = ""
				h.log.Info("an earlier leader's rebalance move cannot go out again; dropped", "segment", fmt.Sprintf("%x", p.GetSegmentId()), "shard", p.GetShard(), "to", p.GetToNode(), "err", err)
			}
			continue
		}
		b.handedOut(key)
		h.log.Debug("an earlier leader's rebalance move handed out again", "segment", fmt.Sprintf("%x", p.GetSegmentId()), "shard", p.GetShard(), "to", p.GetToNode())
	}
}

// balanceLoop runs the balancer while the replicated state says it runs,
// one bounded round per tick.
func (s *Server) balanceLoop(ctx context.Context, h *healer) {
	tick := time.NewTicker(dispatchTick(h.cfg))
	defer tick.Stop()
	for {
		if err := s.balanceRound(ctx, h); err != nil && ctx.Err() == nil {
			h.log.Warn("rebalance", "err", err)
		}
		h.bal.rounds.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// balanceRound settles pending moves, plans one page of segments and
// hands out what the budgets allow, and commits the progress.
func (s *Server) balanceRound(ctx context.Context, h *healer) error {
	b := &h.bal
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, err := s.state.Rebalance()
	if err != nil || cur == nil || !cur.GetRunning() {
		return err
	}
	if b.run != cur.GetStartedUnixNano() {
		// A new run (or a new term): fresh usage, and a bucket that starts
		// empty (see the rate note above).
		b.run, b.usage, b.counted, b.drop = cur.GetStartedUnixNano(), nil, nil, map[string]string{}
		b.moveBackoff = moveBackoff{}
		b.shadow, b.base = nil, nil
		b.bucket, b.bucketRate = nil, -1
	}
	if rate := cur.GetRateBytesPerSecond(); b.bucket == nil || b.bucketRate != rate {
		b.bucket, b.bucketRate = newMoveBucket(rate, h.now()), rate
	}
	r := proto.CloneOf(cur)
	if b.shadow != nil && proto.Equal(cur, b.base) {
		r = proto.CloneOf(b.shadow) // the cursor has moved on since the last commit
	}
	// The node usage is read (when due) before the pending moves are
	// settled, in one snapshot with the placements of those moves: a move
	// that commits before the read is then in the bytes and in counted
	// (settlePending leaves the bytes alone), one that commits after it
	// is settled into the bytes. Reading after settling, a move
	// committing in between was counted twice.
	var usageErr error
	if age := h.now().Sub(b.usageAt); b.usage == nil || age > balanceUsageMaxAge || b.usagePass != r.GetPasses() && age > balanceUsageMinAge {
		if usageErr = s.readBalanceUsage(h, r.GetPending()); usageErr == nil {
			b.usagePass = r.GetPasses()
		}
	}
	// changed: r must be committed (moves settled or handed out, the run
	// done); progressed: only the cursor and the pass counters moved,
	// which is committed at most every balanceCursorCommit, so that an
	// idle or small cluster does not commit every round. Losing that to a
	// crash only makes the next leader examine some segments again.
	changed, lost := s.settlePending(h, r, true)
	s.adoptPending(h, r)
	progressed := false
	if lost > 0 && len(r.GetCursor()) > 0 {
		// The segments this pass examined before were planned as if these
		// moves would happen: the pass cannot show that nothing is left to
		// move, so it must not end the run (the next pass plans without
		// them).
		r.PassDeferred += int64(lost)
		progressed = true
	}
	commit := func() error {
		now := h.now()
		if !changed && !(progressed && now.Sub(b.committedAt) >= balanceCursorCommit) {
			if progressed {
				b.shadow, b.base = r, cur
			}
			return nil
		}
		if _, err := h.propose(ctx, &pb.Command{Op: &pb.Command_SetRebalance{SetRebalance: r}}); err != nil {
			b.shadow, b.base = nil, nil
			return err
		}
		b.shadow, b.base, b.committedAt = r, proto.CloneOf(r), now
		return nil
	}

	if usageErr != nil {
		return errors.Join(usageErr, commit())
	}
	cm, err := h.st.ClusterMap()
	if err != nil {
		return errors.Join(err, commit())
	}
	var nodes []balanceNode
	for _, n := range cm.GetNodes() {
		nodes = append(nodes, balanceNode{Node: toPlacementNode(n), Used: b.usage[n.GetId()]})
	}
	pendingSeg := map[string]bool{}
	for i := range nodes {
		for _, p := range r.GetPending() {
			if b.counted[pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())] {
				continue // in the bytes already (not settled: its segment could not be read)
			}
			if nodes[i].ID == p.GetFromNode() {
				nodes[i].Used -= p.GetBytes()
			}
			if nodes[i].ID == p.GetToNode() {
				nodes[i].Used += p.GetBytes()
			}
		}
	}
	for _, p := range r.GetPending() {
		pendingSeg[string(p.GetSegmentId())] = true
	}
	planner := newBalancePlanner(nodes, r.GetThreshold())
	// Moves that failed are planned around while they wait for their
	// retry (a segment whose only move waits is deferred: the pass cannot
	// show that nothing is left) or once given up (not deferred, so the
	// run can end).
	roundNow, waiting := h.now(), false
	planner.skip = func(segment []byte, shard uint32, to string) bool {
		skip, wait := b.skipMove(segment, shard, to, roundNow)
		waiting = waiting || wait
		return skip
	}

	infos, next, err := h.st.ScanSegments(r.GetCursor(), balancePage)
	if err != nil {
		return errors.Join(err, commit())
	}
	rate := r.GetRateBytesPerSecond()
	var handOut []*pb.PendingMove
	cursor := r.GetCursor()
	complete := true // the page was examined to its end
	for _, in := range infos {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		seg := in.Segment
		waiting = false
		moves := planner.plan(seg)
		if len(moves) == 0 {
			cursor = seg.GetId()
			if waiting {
				r.PassDeferred++
				progressed = true
			}
			continue
		}
		if _, total := h.tasks.load(""); total+len(handOut) >= h.cfg.RepairMaxInflight || rate > 0 && !b.bucket.allow(h.now()) {
			complete = false // out of budget: this segment and the rest next round
			break
		}
		cursor = seg.GetId()
		m := moves[0] // one move per segment at a time
		if pendingSeg[string(seg.GetId())] || h.tasks.segmentBusy(seg.GetId()) || s.targetBusy(h, m.To, handOut) {
			r.PassDeferred++
			progressed = true
			continue
		}
		if len(moves) > 1 {
			// Its other moves wait for this one: the pass is not the last.
			r.PassDeferred++
		}
		planner.apply(moves[:1])
		if rate > 0 {
			b.bucket.charge(h.now(), m.Bytes)
		}
		handOut = append(handOut, &pb.PendingMove{SegmentId: m.Segment, Shard: m.Shard, FromNode: m.From, ToNode: m.To, Bytes: m.Bytes, HandedUnixNano: h.now().UnixNano()})
		pendingSeg[string(seg.GetId())] = true
	}
	r.Pending = append(r.Pending, handOut...)
	r.PassMoves += int64(len(handOut))
	if len(handOut) > 0 {
		changed = true
	}
	if !bytes.Equal(cursor, r.GetCursor()) {
		progressed = true
	}
	r.Cursor = cursor
	if complete && next == nil {
		// The pass is over.
		progressed = true
		if r.GetPassMoves() == 0 && r.GetPassDeferred() == 0 && len(r.GetPending()) == 0 {
			r.Running, r.Outcome = false, "done"
			changed = true
			h.log.Info("rebalance done", "moves", r.GetMovesDone(), "bytes", r.GetBytesMoved(), "passes", r.GetPasses()+1)
		}
		r.Passes++
		r.Cursor, r.PassMoves, r.PassDeferred = nil, 0, 0
	}
	if err := commit(); err != nil {
		return err
	}
	// Committed: hand the moves out. One that cannot go now is dropped
	// from pending next round.
	var errs []error
	for _, p := range handOut {
		key := pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())
		b.handedOut(key)
		if _, err := h.addMoveNonce(p.GetSegmentId(), p.GetShard(), p.GetToNode(), moveNonce(p)); err != nil {
			b.forget(key)
			b.drop[key] = ""
			if !errors.Is(err, errTargetBusy) && !isPrecondition(err) {
				b.drop[key] = err.Error()
				errs = append(errs, fmt.Errorf("move segment %x shard %d %s -> %s: %w", p.GetSegmentId(), p.GetShard(), p.GetFromNode(), p.GetToNode(), err))
			}
			continue
		}
		b.moves.Add(1)
	}
	return errors.Join(errs...)
}

// newMoveBucket is the balancer's --rate bucket for a new run or term: it
// starts empty, not full, so that a new leader does not grant the run a
// fresh second of budget on top of what its predecessor spent.
func newMoveBucket(rate int64, now time.Time) *tokenBucket {
	return &tokenBucket{rate: float64(rate), last: now}
}

// targetBusy reports whether node has no room for another move, counting
// those this round is about to hand out.
func (s *Server) targetBusy(h *healer, node string, handOut []*pb.PendingMove) bool {
	on, _ := h.tasks.load(node)
	for _, p := range handOut {
		if p.GetToNode() == node {
			on++
		}
	}
	return on >= h.cfg.RepairPerNode
}

// readBalanceUsage reads every node's bytes from the node counts, and
// which of the pending moves those bytes already count (b.counted). A
// pending move applied to bytes that already show it is counted twice: the
// balancer then plans on a node one chunk emptier and another one chunk
// fuller than they are, until the next read — long enough for a pass to
// plan nothing and end the run with imbalance left.
func (s *Server) readBalanceUsage(h *healer, pending []*pb.PendingMove) error {
	usage, counted, err := s.state.balanceUsage(pending)
	if err != nil {
		return fmt.Errorf("read node usage for the balancer: %w", err)
	}
	h.bal.usage, h.bal.counted, h.bal.usageAt = usage, counted, h.now()
	return nil
}

// balanceUsage reads, in one snapshot, the bytes the node counts give
// each node of the cluster map and which moves of pending (by pendingKey)
// the placements show committed. One snapshot, so that a move committing
// meanwhile is seen on both of its nodes and in its placement, or nowhere.
func (s *State) balanceUsage(pending []*pb.PendingMove) (usage map[string]int64, committed map[string]bool, err error) {
	usage, committed = map[string]int64{}, map[string]bool{}
	err = s.view(func(txn *badger.Txn) error {
		cm, err := readClusterMap(txn, func(p []byte, fn func(k, v []byte) error) error { return scanTxn(txn, p, fn) })
		if err != nil {
			return err
		}
		for _, n := range cm.GetNodes() {
			if _, usage[n.GetId()], err = nodeUsageTxn(txn, n.GetId()); err != nil {
				return err
			}
		}
		for _, p := range pending {
			ref, found, err := readSegRefTxn(txn, p.GetSegmentId())
			if err != nil {
				return fmt.Errorf("segment %x of a pending move: %w", p.GetSegmentId(), err)
			}
			if found && outcomeOn(ref.seg.GetNodes(), p) == pendingCommitted {
				committed[pendingKey(p.GetSegmentId(), p.GetShard(), p.GetToNode())] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return usage, committed, nil
}
