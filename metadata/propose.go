package metadata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
)

// Group commit of commands into Raft entries.
//
// Raft already stores and replicates whatever entries are queued in one
// StoreLogs and one AppendEntries, but every entry still costs a log key
// on each member, its own encoding on the wire, a future and a channel
// round on the leader. The proposer packs the small commands that arrived
// while earlier entries were in flight into one entry: at most
// Config.ProposeInflight entries of the proposer are in flight at once,
// and whatever queued meanwhile (up to Config.ProposeBatch commands and
// maxBatchBytes) becomes the next entry. Each command keeps its own result:
// the state machine applies the commands of an entry one by one, each
// staged on its own, so a failed condition fails only that command.
// With Config.ProposePipeline the next entry is formed as soon as the
// leader's Raft has stored the previous one (its loop is then free to take
// it), still bounded by ProposeInflight entries in flight.
//
// The gather (Config.ProposeGather): callers that wait for their commits
// come back soon after an entry answers them, and with one entry in flight
// the queue then already holds whoever arrived meanwhile. Proposing that
// at once splits the callers into groups that alternate, each entry
// carrying one group (docs/perf/metad.md §16). So once an entry is
// answered, the next waits until as many calls have arrived since as the
// answered entry carried, at most a quarter of the time that entry took
// and never more than ProposeGather. A call is an enqueue: one gRPC
// CommitObjects call of a client, or one command proposed on its own; a
// lone client with one call in flight is answered and back with one call,
// so it never waits here.
//
// The entry format: batchMagic, batchVersion, then for each command its
// protobuf encoding prefixed with its uvarint length. A protobuf-encoded
// Command never starts with a zero byte (there is no field number 0), so
// the first byte tells a batch from a plain command entry. A metad from
// before batching cannot decode a batch entry and stops (fsm.ApplyBatch
// panics on an undecodable committed entry) rather than skip it: upgrade
// every member before the new version leads.
const (
	batchMagic   = 0x00
	batchVersion = 0x01
	// maxBatchBytes bounds the encoded commands of one batch entry, and
	// maxBatchedCommand the size of a command the proposer batches at all
	// (bigger ones go alone): a batch's writes must fit comfortably in one
	// state transaction (Badger refuses a transaction beyond ~15% of a
	// memtable; minStateMemTable keeps that above a few MiB), since the
	// commands of one entry are never split across transactions.
	maxBatchBytes     = 256 << 10
	maxBatchedCommand = 16 << 10
)

// encodeBatch builds a batch entry from encoded commands.
func encodeBatch(cmds [][]byte) []byte {
	n := 2
	for _, c := range cmds {
		n += binary.MaxVarintLen32 + len(c)
	}
	b := make([]byte, 2, n)
	b[0], b[1] = batchMagic, batchVersion
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

func isBatchEntry(data []byte) bool { return len(data) > 0 && data[0] == batchMagic }

// decodeBatch decodes a batch entry into its commands.
func decodeBatch(data []byte) ([]*metadatapb.Command, error) {
	if len(data) < 2 || data[0] != batchMagic {
		return nil, errors.New("not a batch entry")
	}
	if data[1] != batchVersion {
		return nil, fmt.Errorf("batch entry version %d, this version reads %d", data[1], batchVersion)
	}
	b := data[2:]
	var cmds []*metadatapb.Command
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n == 0 || n > uint64(len(b)-w) {
			return nil, fmt.Errorf("batch entry: command %d has a bad length", len(cmds))
		}
		cmd := &metadatapb.Command{}
		if err := grpcbuf.UnmarshalUnchecked(b[w:w+int(n)], cmd); err != nil {
			return nil, fmt.Errorf("batch entry: command %d: %w", len(cmds), err)
		}
		if cmd.Op == nil {
			return nil, fmt.Errorf("batch entry: command %d has no operation", len(cmds))
		}
		cmds = append(cmds, cmd)
		b = b[w+int(n):]
	}
	if len(cmds) == 0 {
		return nil, errors.New("batch entry holds no command")
	}
	return cmds, nil
}

// proposal is one command waiting in the proposer's queue.
type proposal struct {
	ctx  context.Context
	data []byte
	// done is closed once res or err is set.
	done chan struct{}
	res  Result
	err  error
	// ends marks the last proposal of an enqueue: the entry that carries
	// it answers one call.
	ends bool
}

// proposer is the leader's group-commit loop (see the top of this file).
type proposer struct {
	s        *Server
	maxBatch int
	// slots holds a token per entry in flight.
	slots chan struct{}
	// wake has room for one signal: something was queued.
	wake chan struct{}
	// pipeline (Config.ProposePipeline): stored has room for one signal,
	// sent after every StoreLogs of this member's Raft log.
	pipeline bool
	stored   chan struct{}
	// gatherLimit is Config.ProposeGather; 0 turns the gather off.
	gatherLimit time.Duration

	mu    sync.Mutex
	queue []*proposal
	// The gather's state, under mu: the calls the last answered entry
	// carried, how many calls were enqueued since it was answered, until
	// when the next entry may wait for them, and the channel enqueue
	// closes when they have arrived (nil unless run is waiting).
	answered, arrived int
	gatherUntil       time.Time
	gathered          chan struct{}
}

func newProposer(s *Server) *proposer {
	return &proposer{
		s:        s,
		maxBatch: s.cfg.ProposeBatch,
		slots:    make(chan struct{}, s.cfg.ProposeInflight),
		wake:     make(chan struct{}, 1),
		pipeline: s.cfg.ProposePipeline,
		stored:   s.logStored,

		gatherLimit: s.cfg.ProposeGather,
	}
}

func newProposal(ctx context.Context, data []byte) *proposal {
	return &proposal{ctx: ctx, data: data, done: make(chan struct{})}
}

// enqueue queues proposals together, so that they go into the same entry
// when they fit.
func (p *proposer) enqueue(prs ...*proposal) {
	if len(prs) == 0 {
		return
	}
	prs[len(prs)-1].ends = true
	p.mu.Lock()
	p.queue = append(p.queue, prs...)
	p.arrived++
	if p.gathered != nil && p.arrived >= p.answered {
		close(p.gathered)
		p.gathered = nil
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wait waits for a queued proposal's outcome.
func (p *proposer) wait(ctx context.Context, pr *proposal) (Result, error) {
	select {
	case <-pr.done:
		return pr.res, pr.err
	case <-ctx.Done():
		// Possibly proposed already: the outcome is unknown, as it is for
		// a caller that gives up on a Raft future.
		return Result{}, ctx.Err()
	case <-p.s.shutdown:
		return Result{}, shutdownUnknown()
	}
}

// shutdownUnknown is the error for a command whose member shut down while
// it waited, as applyEntry words it: it may have been appended, and the
// next leader may still commit it.
func shutdownUnknown() error {
	return status.Errorf(codes.Unavailable, "commit outcome unknown: %v", raft.ErrRaftShutdown)
}

// run proposes queued commands until the server shuts down.
func (p *proposer) run() {
	for {
		select {
		case <-p.wake:
		case <-p.s.shutdown:
			p.failQueued(shutdownUnknown())
			return
		}
		for {
			// Take a slot first: what queues while every slot is busy
			// joins the next entry.
			select {
			case p.slots <- struct{}{}:
			case <-p.s.shutdown:
				p.failQueued(shutdownUnknown())
				return
			}
			if !p.gather() {
				<-p.slots
				p.failQueued(shutdownUnknown())
				return
			}
			batch := p.take()
			if len(batch) == 0 {
				<-p.slots
				break
			}
			if p.pipeline {
				// A stored signal from before this entry says nothing about it.
				select {
				case <-p.stored:
				default:
				}
			}
			proposed := time.Now()
			f := p.s.raft.Apply(p.encode(batch), p.s.cfg.ApplyTimeout)
			done := make(chan struct{})
			go func() {
				p.finish(batch, f, proposed)
				close(done)
				<-p.slots
			}()
			if !p.pipeline {
				continue
			}
			// Pipelined: the next entry is formed once the leader has stored
			// this one (its loop is then free to take another), not once this
			// one is committed, so the leader's write of the next entry
			// overlaps the followers' write of this one.
			select {
			case <-p.stored:
			case <-done:
			case <-p.s.shutdown:
				p.failQueued(shutdownUnknown())
				return
			}
		}
	}
}

// gather waits, holding the slot run has taken, until the callers the
// last answered entry carried are back or the gather's time is up (see
// the top of this file). It returns false if the server shut down. Only
// the last entry in flight is waited for: with others in flight, what
// queues joins the entry after them anyway.
func (p *proposer) gather() bool {
	if p.gatherLimit <= 0 || len(p.slots) > 1 {
		return true
	}
	p.mu.Lock()
	wait := time.Until(p.gatherUntil)
	if p.arrived >= p.answered || wait <= 0 {
		p.mu.Unlock()
		return true
	}
	gathered := make(chan struct{})
	p.gathered = gathered
	p.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-p.s.shutdown:
		return false
	}
	p.mu.Lock()
	if p.gathered == gathered {
		p.gathered = nil
	}
	p.mu.Unlock()
	return true
}

// answeredEntry records, for the gather, that an entry proposed at
// proposed and carrying batch has been answered.
func (p *proposer) answeredEntry(batch []*proposal, proposed time.Time, ok bool) {
	if p.gatherLimit <= 0 {
		return
	}
	calls := 0
	if ok {
		// A failed entry's callers may not come back (a leader that lost
		// its office sends them elsewhere): no gather after it.
		for _, pr := range batch {
			if pr.ends {
				calls++
			}
		}
	}
	now := time.Now()
	p.mu.Lock()
	p.answered, p.arrived = calls, 0
	p.gatherUntil = now.Add(min(now.Sub(proposed)/4, p.gatherLimit))
	p.mu.Unlock()
}

// take removes the next batch from the queue: up to maxBatch commands and
// maxBatchBytes, dropping those whose callers have gone.
func (p *proposer) take() []*proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	var batch []*proposal
	size, i := 0, 0
	for ; i < len(p.queue) && len(batch) < p.maxBatch; i++ {
		pr := p.queue[i]
		if pr.ctx.Err() != nil {
			pr.err = pr.ctx.Err()
			close(pr.done)
			continue
		}
		if len(batch) > 0 && size+len(pr.data) > maxBatchBytes {
			break
		}
		batch = append(batch, pr)
		size += len(pr.data)
	}
	p.queue = p.queue[i:]
	if len(p.queue) == 0 {
		p.queue = nil
	}
	return batch
}

func (p *proposer) failQueued(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.queue {
		pr.err = err
		close(pr.done)
	}
	p.queue = nil
}

// encode builds the entry for batch: a lone command as it is, several
// as a batch entry.
func (p *proposer) encode(batch []*proposal) []byte {
	if len(batch) == 1 {
		return batch[0].data
	}
	cmds := make([][]byte, len(batch))
	for i, pr := range batch {
		cmds[i] = pr.data
	}
	return encodeBatch(cmds)
}

// finish waits for batch's entry, proposed at proposed, and hands each
// command its result.
func (p *proposer) finish(batch []*proposal, f raft.ApplyFuture, proposed time.Time) {
	resp, index, err := p.s.awaitEntry(context.Background(), f, p.s.cfg.ApplyTimeout)
	// Before the answers: a caller answered may be back before this
	// returns, and must count as arrived after the answer.
	p.answeredEntry(batch, proposed, err == nil)
	for i, pr := range batch {
		switch {
		case err != nil:
			pr.err = err
		case len(batch) == 1:
			pr.res, pr.err = asResult(resp, index)
		default:
			rs, ok := resp.([]Result)
			if !ok || len(rs) != len(batch) {
				pr.err = fmt.Errorf("state machine answered %T for a batch of %d at index %d", resp, len(batch), index)
				break
			}
			pr.res = rs[i]
		}
		close(pr.done)
	}
}

func asResult(resp any, index uint64) (Result, error) {
	res, ok := resp.(Result)
	if !ok {
		return Result{}, fmt.Errorf("state machine answered %T at index %d, want Result", resp, index)
	}
	return res, nil
}

// applyEntry appends data to the Raft log and waits until it is applied,
// returning the state machine's response and the entry's index. timeout
// bounds the wait for Raft to accept the entry. Errors: *metaerr.NotLeaderError
// when the entry was certainly not appended; ctx's error; otherwise an
// error after which the entry may or may not have been committed.
func (s *Server) applyEntry(ctx context.Context, data []byte, timeout time.Duration) (any, uint64, error) {
	return s.awaitEntry(ctx, s.raft.Apply(data, timeout), timeout)
}

// awaitEntry waits for an entry handed to Raft.Apply with timeout, as
// applyEntry does.
func (s *Server) awaitEntry(ctx context.Context, f raft.ApplyFuture, timeout time.Duration) (any, uint64, error) {
	err := awaitFuture(ctx, s.shutdown, f)
	switch {
	case err == nil:
		return f.Response(), f.Index(), nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before being appended to the log.
		return nil, 0, s.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return nil, 0, status.Errorf(codes.Unavailable, "metadata leader busy: command not accepted within %v", timeout)
	case ctx.Err() != nil:
		return nil, 0, err
	default:
		// Leadership lost or shutdown after the entry was appended: it may
		// still be committed by the next leader.
		return nil, 0, status.Errorf(codes.Unavailable, "commit outcome unknown: %v", err)
	}
}

// storeNotifier tells the proposer when this member's Raft stored entries:
// on the leader, its loop is then back to taking new entries.
type storeNotifier struct {
	raft.LogStore
	notify func()
}

var _ raft.MonotonicLogStore = storeNotifier{}

// IsMonotonic passes the store's raft.MonotonicLogStore on: without it
// Raft would keep the old log after installing a snapshot, which the WAL
// cannot hold (it refuses a gap).
func (n storeNotifier) IsMonotonic() bool {
	m, ok := n.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (n storeNotifier) StoreLog(l *raft.Log) error {
	err := n.LogStore.StoreLog(l)
	n.notify()
	return err
}

func (n storeNotifier) StoreLogs(ls []*raft.Log) error {
	err := n.LogStore.StoreLogs(ls)
	n.notify()
	return err
}
