package object

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// watchdog gives up on a chunk read or write that stalls longer than its
// budget. The reads (or writes) only note when they start and end (an atomic store each); one timer
// per stream looks at that once a budget, and cancels a read that has been
// waiting a whole budget. Resetting a timer on every read (~4 per MiB
// read) took 2.5% of the gateway's CPU at GET 64 MiB, most of it on the
// lock of the timer heap.
type watchdog struct {
	what   string // "read" or "write", for errors
	budget time.Duration
	cancel func()    // gives up: ends what waits
	base   time.Time // monotonic origin of since
	// since is when the wait under way started, in nanoseconds after base,
	// plus 1; 0 while nothing waits.
	since atomic.Int64
	fired atomic.Bool

	mu      sync.Mutex // guards timer against check
	timer   *time.Timer
	stopped bool
}

func newWatchdog(what string, budget time.Duration, cancel func()) *watchdog {
	return &watchdog{what: what, budget: budget, cancel: cancel, base: time.Now()}
}

// arm marks the start of a wait.
func (w *watchdog) arm() {
	w.since.Store(int64(time.Since(w.base)) + 1)
	if w.timer == nil { // only the reading goroutine sets it
		w.mu.Lock()
		if !w.stopped {
			w.timer = time.AfterFunc(w.budget, w.check)
		}
		w.mu.Unlock()
	}
}

// disarm marks the end of a wait.
func (w *watchdog) disarm() { w.since.Store(0) }

// check runs on the timer: it gives up if the wait under way has
// lasted the budget, else looks again when it would have.
func (w *watchdog) check() {
	next := w.budget
	if start := w.since.Load(); start != 0 {
		waited := time.Since(w.base) - time.Duration(start-1)
		if waited >= w.budget {
			w.fired.Store(true)
			w.cancel()
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

// stop ends the watch for good.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}

func (w *watchdog) explain(err error) error {
	if err != nil && w.fired.Load() {
		return fmt.Errorf("%w past the %s budget (%v): %w", chunk.ErrStalled, w.what, w.budget, err)
	}
	return err
}
