package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// fsm adapts State to Raft. It only decodes and delegates: the state
// machine's logic lives in State, which knows nothing of Raft.
//
// Restart: Raft runs with NoSnapshotRestoreOnStart (see openSnapshots), so
// after a restart the FSM keeps its Badger and Raft replays the log from the
// newest snapshot's index; State skips every entry at or below its own
// applied index, so each command takes effect exactly once.
type fsm struct {
	state *State

	// seen is the highest Raft index handed to ApplyBatch (applied or
	// skipped as already applied) or covered by a restored snapshot. Raft
	// never hands barrier and no-op entries to the FSM, so seen can stay
	// below Raft's commit index; see Server.readTarget.
	seen atomic.Uint64
	// mu guards advanced, closed and replaced each time seen moves.
	mu       sync.Mutex
	advanced chan struct{}
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(state *State) *fsm {
	f := &fsm{state: state, advanced: make(chan struct{})}
	f.seen.Store(state.AppliedIndex())
	return f
}

// ApplyBatch implements raft.BatchingFSM. A plain command entry's response
// is a Result, a batch entry's (propose.go) a []Result, one per command;
// configuration entries get nil.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	entries := make([]Entry, 0, len(logs))
	// The Entries of logs[i] are entries[first[i]:first[i]+count[i]].
	first := make([]int, len(logs))
	count := make([]int, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			// Configuration changes are Raft's business; barriers and
			// no-ops never get here.
			continue
		}
		first[i] = len(entries)
		if isBatchEntry(l.Data) {
			cmds, err := decodeBatch(l.Data)
			if err != nil {
				panic(undecodable(l, err))
			}
			for _, cmd := range cmds {
				entries = append(entries, Entry{Index: l.Index, Cmd: cmd, owned: true})
			}
			count[i] = len(cmds)
			continue
		}
		cmd := &metadatapb.Command{}
		if err := grpcbuf.UnmarshalUnchecked(l.Data, cmd); err != nil || cmd.Op == nil {
			panic(undecodable(l, err))
		}
		entries = append(entries, Entry{Index: l.Index, Cmd: cmd, owned: true})
		count[i] = 1
	}
	if len(entries) > 0 {
		results := f.state.ApplyBatch(entries)
		for j, r := range results {
			var cond *metaerr.Error
			if r.Err != nil && !errors.As(r.Err, &cond) {
				// The state machine itself failed (I/O, corruption): the
				// entry was not applied. Going on would skip it.
				panic(fmt.Sprintf("metadata: applying raft entry %d failed: %v", entries[j].Index, r.Err))
			}
		}
		for i, l := range logs {
			switch {
			case count[i] == 0:
			case isBatchEntry(l.Data):
				out[i] = results[first[i] : first[i]+count[i] : first[i]+count[i]]
			default:
				out[i] = results[first[i]]
			}
		}
	}
	f.advance(logs[len(logs)-1].Index)
	return out
}

// undecodable is the panic message for a committed entry this version
// cannot read: every replica would disagree about what it means or skip it
// differently, and continuing would fork the state.
func undecodable(l *raft.Log, err error) string {
	return fmt.Sprintf("metadata: committed raft entry %d (term %d, %d bytes) is not a metadata command this version understands (decode error: %v); refusing to skip it",
		l.Index, l.Term, len(l.Data), err)
}

// Apply implements raft.FSM; Raft calls ApplyBatch instead.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// advance records that everything up to index has been handed to the
// state machine and wakes waiters.
func (f *fsm) advance(index uint64) {
	f.mu.Lock()
	f.seen.Store(index)
	close(f.advanced)
	f.advanced = make(chan struct{})
	f.mu.Unlock()
}

// waitSeen waits until seen >= index.
func (f *fsm) waitSeen(ctx context.Context, index uint64) error {
	for {
		f.mu.Lock()
		ch := f.advanced
		f.mu.Unlock()
		if f.seen.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for state machine to reach index %d (at %d): %w", index, f.seen.Load(), ctx.Err())
		}
	}
}

// Snapshot implements raft.FSM. It runs on the FSM goroutine between
// batches. The Sync is what makes NoSnapshotRestoreOnStart safe: once Raft
// has this snapshot it may truncate the log up to the snapshot's index, so
// the state must already be durable at least that far. The dump itself is
// written later, in Persist, concurrently with new batches; it may then
// include entries past the snapshot's index, which State skips when Raft
// replays them after a restore.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.state.Sync(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return &fsmSnapshot{state: f.state}, nil
}

// Restore implements raft.FSM: a follower too far behind gets the leader's
// snapshot. The restored state is synced before Raft drops its log, for the
// same reason Snapshot syncs.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.state.Restore(rc); err != nil {
		return err
	}
	if err := f.state.Sync(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	f.advance(f.state.AppliedIndex())
	return nil
}
