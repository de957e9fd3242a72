package watchdog

import (
	"sync/atomic"
	"testing"
	"time"
)

// A wait that lasts the budget is given up, once; time with no wait under
// way (the stream's user idle between reads) never counts.
func TestWatchdog(t *testing.T) {
	// Long enough that a pause of the test goroutine between an Arm and
	// its Disarm (a loaded CI machine) does not count as a stall.
	const budget = 200 * time.Millisecond
	var fired atomic.Int32
	gaveUp := make(chan struct{}, 1)
	w := New(budget, func() {
		fired.Add(1)
		gaveUp <- struct{}{}
	})
	// Short waits separated by idle time far longer than the budget.
	for range 2 {
		w.Arm()
		w.Disarm()
		time.Sleep(2 * budget) // idle: nothing waits, nothing to await
	}
	if w.Fired() {
		t.Fatal("gave up with no wait under way")
	}
	w.Arm()
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("a wait past the budget was not given up")
	}
	if !w.Fired() {
		t.Fatal("Fired is false after giving up")
	}
	w.Stop()
	if n := fired.Load(); n != 1 {
		t.Fatalf("gave up %d times, want 1", n)
	}
}

// Stop ends the watch for good: a wait begun after it is never given up.
func TestWatchdogStop(t *testing.T) {
	const budget = 20 * time.Millisecond
	w := New(budget, func() { t.Error("gave up after Stop") })
	w.Arm() // starts the timer
	w.Disarm()
	w.Stop()
	w.Arm()
	time.Sleep(5 * budget) // the stopped timer's chance to misfire
	w.Disarm()
	if w.Fired() {
		t.Error("Fired after Stop")
	}
}
