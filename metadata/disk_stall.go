package metadata

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A member whose disk stalls must not keep the leadership. hashicorp/raft
// appends to the leader's log from its leader loop, while heartbeats go out
// from goroutines of their own: a leader whose log write hangs goes on
// telling its followers it leads, so they never elect another, and every
// commit and every linearizable read (its leadership check goes through the
// leader loop too) waits for the disk, for as long as it hangs. Nothing in
// the process can cut a write(2) or fdatasync(2) short, so when a write to
// the Raft log has taken DiskStallTimeout the member exits (OnDiskStall's
// default): the others elect a new leader within an election timeout, and a
// supervisor restarts this one, which catches up once its disk answers.
// CockroachDB ends a node whose disk stalls for the same reason.

// exitOnDiskStall is OnDiskStall's default.
func exitOnDiskStall(log *slog.Logger) func(error) {
	return func(err error) {
		log.Error("disk stalled: exiting so that the other members can elect a leader", "err", err)
		os.Exit(3)
	}
}

// stallWatch times the writes to the Raft log store and the stable store.
type stallWatch struct {
	timeout time.Duration
	stalled func(error)
	once    sync.Once
}

// watch starts timing one write; the returned func ends it.
func (w *stallWatch) watch(what string) (done func() bool) {
	return time.AfterFunc(w.timeout, func() {
		w.once.Do(func() {
			w.stalled(fmt.Errorf("raft log: %s has not returned after %v", what, w.timeout))
		})
	}).Stop
}

// stallGuardLogs is a raft.LogStore whose writes stallWatch times.
type stallGuardLogs struct {
	raft.LogStore
	w *stallWatch
}

func (g stallGuardLogs) StoreLog(l *raft.Log) error {
	defer g.w.watch("storing an entry")()
	return g.LogStore.StoreLog(l)
}

func (g stallGuardLogs) StoreLogs(logs []*raft.Log) error {
	defer g.w.watch("storing entries")()
	return g.LogStore.StoreLogs(logs)
}

func (g stallGuardLogs) DeleteRange(lo, hi uint64) error {
	defer g.w.watch("deleting entries")()
	return g.LogStore.DeleteRange(lo, hi)
}

// IsMonotonic passes the store's raft.MonotonicLogStore on.
func (g stallGuardLogs) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// stallGuardStable is a raft.StableStore (the term and vote) whose writes
// stallWatch times.
type stallGuardStable struct {
	raft.StableStore
	w *stallWatch
}

func (g stallGuardStable) Set(key, val []byte) error {
	defer g.w.watch("storing " + string(key))()
	return g.StableStore.Set(key, val)
}

func (g stallGuardStable) SetUint64(key []byte, val uint64) error {
	defer g.w.watch("storing " + string(key))()
	return g.StableStore.SetUint64(key, val)
}
