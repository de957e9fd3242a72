// Package watchdog gives up on streams that stall: a chunk read or upload
// between the gateway and a blob node, a client's request body.
package watchdog

import (
	"sync"
	"sync/atomic"
	"time"
)

// Watchdog gives up on a stream whose reads or writes stall longer than
// its budget. The reads (or writes) only note when each wait starts and
// ends (an atomic store each); one timer per stream looks at that once a
// budget, and gives up on a wait that has lasted a whole budget. Resetting
// a timer on every read (~4 per MiB read) took 2.5% of the gateway's CPU at
// GET 64 MiB, most of it on the lock of the timer heap.
type Watchdog struct {
	budget time.Duration
	giveUp func()    // ends what waits; runs on the timer's goroutine
	base   time.Time // monotonic origin of since
	// since is when the wait under way started, in nanoseconds after base,
	// plus 1; 0 while nothing waits.
	since atomic.Int64
	fired atomic.Bool

	mu      sync.Mutex // guards timer against check
	timer   *time.Timer
	stopped bool
}

// New returns a Watchdog that calls giveUp (once, from its own goroutine)
// when a wait lasts budget.
func New(budget time.Duration, giveUp func()) *Watchdog {
	return &Watchdog{budget: budget, giveUp: giveUp, base: time.Now()}
}

// Budget is how long a wait may last.
func (w *Watchdog) Budget() time.Duration { return w.budget }

// Fired says whether the watchdog gave up.
func (w *Watchdog) Fired() bool { return w.fired.Load() }

// Arm marks the start of a wait.
func (w *Watchdog) Arm() {
	w.since.Store(int64(time.Since(w.base)) + 1)
	if w.timer == nil { // only the waiting goroutine sets it
		w.mu.Lock()
		if !w.stopped {
			w.timer = time.AfterFunc(w.budget, w.check)
		}
		w.mu.Unlock()
	}
}

// Disarm marks the end of a wait.
func (w *Watchdog) Disarm() { w.since.Store(0) }

// check runs on the timer: it gives up if the wait under way has
// lasted the budget, else looks again when it would have.
func (w *Watchdog) check() {
	next := w.budget
	if start := w.since.Load(); start != 0 {
		waited := time.Since(w.base) - time.Duration(start-1)
		if waited >= w.budget {
			w.fired.Store(true)
			w.giveUp()
			return
		}
		next = w.budget - waited
	}
	w.mu.Lock()
	if !w.stopped {
		w.timer.Reset(next)
	}
	w.mu.Unlock()
}

// Stop ends the watch for good.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}
