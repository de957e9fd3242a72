package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// Linearizable reads (the "read index" of the Raft thesis, §6.4):
//
//  1. On arrival, the read notes Raft's commit index: every write
//     acknowledged before the read arrived is at or below it.
//  2. It waits until this leader's first Barrier of its term has been
//     applied: before that, a new leader's commit index may not yet cover
//     entries committed by its predecessor.
//  3. It waits for a leadership confirmation (VerifyLeader: a heartbeat
//     round answered by a quorum) that started after it arrived, so that no
//     other leader can have committed anything it would miss. Confirmations
//     are batched: one serves every read that arrived before it started.
//  4. It waits until the state machine has applied up to the noted index,
//     then answers from State.

// verifier batches VerifyLeader calls. At most one confirmation is in
// flight; reads arriving meanwhile join the next one, which starts when
// the current one ends. A read never joins a round that has already
// started.
type verifier struct {
	verify func() raft.Future
	// shutdown unblocks waiters if Raft stops with a round in flight.
	shutdown <-chan struct{}
	rounds   func() // counts a confirmation round (metrics)

	mu      sync.Mutex
	next    *verifyRound // not started yet; new reads join it
	running bool
}

type verifyRound struct {
	done chan struct{}
	err  error
}

// wait returns when a confirmation that started after the call has
// finished, with its result.
func (v *verifier) wait(ctx context.Context) error {
	v.mu.Lock()
	if v.next == nil {
		v.next = &verifyRound{done: make(chan struct{})}
	}
	r := v.next
	if !v.running {
		v.running = true
		go v.loop()
	}
	v.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("confirm leadership: %w", ctx.Err())
	}
}

func (v *verifier) loop() {
	for {
		v.mu.Lock()
		r := v.next
		v.next = nil
		if r == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		if v.rounds != nil {
			v.rounds()
		}
		r.err = awaitFuture(context.Background(), v.shutdown, v.verify())
		close(r.done)
	}
}

// awaitFuture waits for f, for ctx, or for Raft to shut down. Raft answers
// every future eventually except one still queued when it shuts down,
// hence shutdown. The waiting goroutine ends when f is answered.
func awaitFuture(ctx context.Context, shutdown <-chan struct{}, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-shutdown:
		return raft.ErrRaftShutdown
	}
}

// linearize makes the caller's next State read linearizable, or says why it
// cannot (NotLeader, context, shutdown).
func (s *Server) linearize(ctx context.Context) error {
	s.metrics.reads.Inc()
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	term := s.currentTerm()
	if term == nil {
		return s.notLeader()
	}
	commit := s.raft.CommitIndex()
	select {
	case <-term.ready:
	case <-term.over:
		return s.notLeader()
	case <-ctx.Done():
		return fmt.Errorf("wait for leader barrier: %w", ctx.Err())
	}
	if err := s.verifier.wait(ctx); err != nil {
		if isNotLeader(err) {
			return s.notLeader()
		}
		return err
	}
	// The confirmation must be of the term whose barrier we waited for.
	if s.raft.CurrentTerm() != term.term.Load() {
		return s.notLeader()
	}
	return s.fsm.waitSeen(ctx, s.readTarget(commit))
}

// readTarget returns the index the FSM must have been handed before a read
// that noted commit index commit may be answered: the last entry at or below
// commit that reaches the FSM. Raft keeps barrier and no-op entries from the
// FSM, so when the log ends with one (always, just after an election) the
// FSM's index stops short of the commit index; waiting for commit itself
// would then wait for the next write.
func (s *Server) readTarget(commit uint64) uint64 {
	seen := s.fsm.seen.Load()
	for i := commit; i > seen; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot, so applied already.
			return seen
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return seen
}

func isNotLeader(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown)
}
