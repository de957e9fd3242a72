package metadata

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeFuture is a raft.Future answered when the test says so.
type fakeFuture struct {
	done chan struct{}
	err  error
}

func (f *fakeFuture) Error() error { <-f.done; return f.err }

// fakeVerify hands out futures and records them in order.
type fakeVerify struct {
	mu      sync.Mutex
	futures []*fakeFuture
	started chan struct{}
}

func newFakeVerify() *fakeVerify { return &fakeVerify{started: make(chan struct{}, 100)} }

func (v *fakeVerify) verify() raft.Future {
	f := &fakeFuture{done: make(chan struct{})}
	v.mu.Lock()
	v.futures = append(v.futures, f)
	v.mu.Unlock()
	v.started <- struct{}{}
	return f
}

func (v *fakeVerify) finish(t *testing.T, i int, err error) {
	t.Helper()
	v.mu.Lock()
	f := v.futures[i]
	v.mu.Unlock()
	f.err = err
	close(f.done)
}

func (v *fakeVerify) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.futures)
}

func TestVerifierBatchesAndNeverReusesAStartedRound(t *testing.T) {
	fv := newFakeVerify()
	var rounds atomic.Int32
	v := &verifier{verify: fv.verify, shutdown: make(chan struct{}), rounds: func() { rounds.Add(1) }}
	ctx := context.Background()

	// Read A starts round 0.
	resA := make(chan error, 1)
	go func() { resA <- v.wait(ctx) }()
	<-fv.started

	// Reads B..F arrive while round 0 is in flight: they must not be
	// answered by it (it started before they arrived).
	const late = 5
	resLate := make(chan error, late)
	var arrived sync.WaitGroup
	for range late {
		arrived.Add(1)
		go func() {
			arrived.Done()
			resLate <- v.wait(ctx)
		}()
	}
	arrived.Wait()
	// Give the late reads a moment to register; whether they have or not,
	// none may be answered by round 0.
	waitFor(t, 5*time.Second, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.next != nil
	}, "late reads to queue for the next round")

	fv.finish(t, 0, nil)
	if err := <-resA; err != nil {
		t.Fatalf("read A: %v", err)
	}
	// Round 1 starts for the late reads; until it ends none is answered.
	<-fv.started
	select {
	case err := <-resLate:
		t.Fatalf("a late read was answered (%v) by the round that started before it", err)
	case <-time.After(20 * time.Millisecond):
	}
	lost := errors.New("leadership lost")
	fv.finish(t, 1, lost)
	for range late {
		// All late reads that joined round 1 get its answer; one that
		// registered only after round 1 started would be in round 2.
		select {
		case err := <-resLate:
			if !errors.Is(err, lost) {
				// Joined round 2: finish it.
				t.Fatalf("late read: %v", err)
			}
		case <-fv.started:
			fv.finish(t, fv.count()-1, lost)
			if err := <-resLate; !errors.Is(err, lost) {
				t.Fatalf("late read: %v", err)
			}
		}
	}
	if n := rounds.Load(); n < 2 || n > 3 {
		t.Fatalf("%d rounds for 6 reads in two waves, want 2 (3 if a read missed round 1)", n)
	}
}

func TestVerifierHonoursContextAndShutdown(t *testing.T) {
	fv := newFakeVerify()
	shutdown := make(chan struct{})
	v := &verifier{verify: fv.verify, shutdown: shutdown}

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- v.wait(ctx) }()
	<-fv.started
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}

	// A round whose future Raft never answers ends at shutdown.
	res2 := make(chan error, 1)
	go func() { res2 <- v.wait(context.Background()) }()
	close(shutdown)
	if err := <-res2; !errors.Is(err, raft.ErrRaftShutdown) {
		t.Fatalf("read during shutdown: %v", err)
	}
}
