package metadata

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// snapshotsRetained is how many Raft snapshots stay on disk; the newest is
// enough, one more survives a crash while writing the next.
const snapshotsRetained = 2

// fsmSnapshot streams the state into a Raft snapshot sink.
type fsmSnapshot struct {
	state *State
}

var _ raft.FSMSnapshot = (*fsmSnapshot)(nil)

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.state.Snapshot(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot %s: %w", sink.ID(), err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot %s: %w", sink.ID(), err)
	}
	return nil
}

// Release implements raft.FSMSnapshot; the dump holds no resources between
// Snapshot and Persist.
func (s *fsmSnapshot) Release() {}

// openSnapshots opens the snapshot store in dataDir/snapshots and decides
// whether Raft must restore the newest snapshot into the FSM on start.
//
// Normally it must not: the FSM's Badger survives restarts and remembers its
// applied index, and every snapshot was preceded by State.Sync, so the state
// is at least as new as the newest snapshot and Raft only needs to replay
// the log after it (State skips what it already has). Restoring would throw
// away a good state and rewrite all of it on every start.
//
// The exception is a state with nothing applied while a snapshot exists: a
// crash in the middle of installing a snapshot sent by the leader
// (State.Restore leaves applied index 0 until it finishes), or an operator
// who removed state/. Raft's log before the snapshot may already be gone,
// so only the snapshot can bring the state back: then restoreOnStart is
// true. (Comparing the applied index with the snapshot's index instead would
// restore on most starts: Raft's snapshot index counts barrier and no-op
// entries that State never sees.)
func openSnapshots(dataDir string, state *State, logger hclog.Logger) (store *raft.FileSnapshotStore, restoreOnStart bool, err error) {
	store, err = raft.NewFileSnapshotStoreWithLogger(dataDir, snapshotsRetained, logger)
	if err != nil {
		return nil, false, fmt.Errorf("open snapshot store in %s: %w", dataDir, err)
	}
	metas, err := store.List()
	if err != nil {
		return nil, false, fmt.Errorf("list snapshots in %s: %w", dataDir, err)
	}
	if len(metas) == 0 {
		return store, false, nil
	}
	return store, state.AppliedIndex() == 0, nil
}
