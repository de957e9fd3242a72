package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// writers put objects continuously under fresh keys until stopped. Each key
// gets one body, attempted until acknowledged (the SDK's own retries are
// off, so every failed attempt is seen and counted); the ledger records
// every attempt and every acknowledgement.
type writers struct {
	led    *ledger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	acks, fails atomic.Int64

	mu     sync.Mutex
	acksAt []ackEvent
	errs   map[string]int // failure messages, normalised, with counts
}

type ackEvent struct {
	started, at time.Time
	size        int
}

// startWriters starts n writers putting objects of the given sizes (writer
// w's i-th key has size sizes[(w+i)%len(sizes)]) under prefix/w<w>/.
func startWriters(t *testing.T, cl *cluster, led *ledger, bucket, prefix string, n int, sizes []int) *writers {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	w := &writers{led: led, cancel: cancel, errs: make(map[string]int)}
	client := cl.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	for id := range n {
		w.wg.Go(func() { w.run(ctx, client, bucket, prefix, id, sizes) })
	}
	t.Cleanup(w.stop) // a failed test must not leave them running
	return w
}

func (w *writers) run(ctx context.Context, c *s3.Client, bucket, prefix string, id int, sizes []int) {
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%s/w%d/%06d", prefix, id, seq)
		size := sizes[(id+seq)%len(sizes)]
		body := makeBody(key, 0, size)
		backoff := 20 * time.Millisecond
		for ctx.Err() == nil {
			started := time.Now()
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := putObject(actx, c, w.led, bucket, key, body)
			cancel()
			if err == nil {
				w.acks.Add(1)
				w.mu.Lock()
				w.acksAt = append(w.acksAt, ackEvent{started: started, at: time.Now(), size: size})
				w.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return // stopped mid-attempt: the attempt stays unacknowledged
			}
			w.fails.Add(1)
			w.noteErr(err)
			// Pace the retries of a failing cluster.
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
	}
}

// volatile matches the parts of an error message that differ between
// otherwise equal failures: request ids, hex ids, ports, durations.
var volatile = regexp.MustCompile(`RequestID: [^,]*|HostID: [^,]*|[0-9a-f]{16,}(\.\d+)?|127\.0\.0\.1:\d+|\d+(\.\d+)?(ms|s|µs)\b`)

// noteErr counts a failure by its message with the key and numbers
// stripped, so the report groups like failures.
func (w *writers) noteErr(err error) {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		msg = msg[i+3:]
	}
	msg = volatile.ReplaceAllString(msg, "…")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs[msg]++
}

// stop stops the writers and waits for them.
func (w *writers) stop() {
	w.cancel()
	w.wg.Wait()
}

// waitAcks waits until n more writes than now have been acknowledged.
func (w *writers) waitAcks(t *testing.T, cl *cluster, n int64, timeout time.Duration, what string) {
	t.Helper()
	target := w.acks.Load() + n
	cl.waitFor(timeout, fmt.Sprintf("%d more acknowledged writes %s", n, what), func() error {
		if got := w.acks.Load(); got < target {
			return fmt.Errorf("%d of %d acknowledged, %d failed attempts", got, target, w.fails.Load())
		}
		return nil
	})
}

// waitFails waits until n more attempts than now have failed.
func (w *writers) waitFails(t *testing.T, cl *cluster, n int64, timeout time.Duration, what string) {
	t.Helper()
	target := w.fails.Load() + n
	cl.waitFor(timeout, fmt.Sprintf("%d more failed writes %s", n, what), func() error {
		if got := w.fails.Load(); got < target {
			return fmt.Errorf("%d of %d failed attempts", got, target)
		}
		return nil
	})
}

// acksSince returns the acknowledgements of attempts started at or after t.
func (w *writers) acksSince(t time.Time) []ackEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ackEvent
	for _, a := range w.acksAt {
		if !a.started.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// blobAcksSince counts the acknowledgements of attempts started at or after
// t whose objects went through the blob nodes (larger than inlineMax).
func (w *writers) blobAcksSince(t time.Time) int {
	n := 0
	for _, a := range w.acksSince(t) {
		if a.size > inlineMax {
			n++
		}
	}
	return n
}

// firstAckAfter is the first acknowledgement that arrived after t.
func (w *writers) firstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, a := range w.acksAt {
		if a.at.After(t) && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	return first, !first.IsZero()
}

// report logs the writers' totals and their failures grouped by message.
func (w *writers) report(cl *cluster) {
	cl.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	cl.logf("writers: %d acknowledged, %d failed attempts", w.acks.Load(), w.fails.Load())
	msgs := make([]string, 0, len(w.errs))
	for m := range w.errs {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return w.errs[msgs[i]] > w.errs[msgs[j]] })
	for i, m := range msgs {
		if i == 8 {
			cl.logf("  ... %d more kinds", len(msgs)-i)
			break
		}
		cl.logf("  %4d× %s", w.errs[m], m)
	}
}

// readers GET objects already acknowledged, at random, while faults
// happen: an acknowledged write must be visible to every later read
// (strong read-after-write), with exactly its bytes.
type readers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	reads, fails atomic.Int64

	mu         sync.Mutex
	violations []string       // wrong bytes, or an acknowledged key not found
	errs       map[string]int // other failures, normalised, with counts
	good       []readSpan     // good reads, at most one per 100 ms of starts
}

// readSpan is when a read started and ended.
type readSpan struct{ start, end time.Time }

// answeredSince is how long after t the first good read that started at or
// after t ended (false: none has yet).
func (r *readers) answeredSince(t time.Time) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best time.Time
	for _, s := range r.good {
		if !s.start.Before(t) && (best.IsZero() || s.end.Before(best)) {
			best = s.end
		}
	}
	return best.Sub(t), !best.IsZero()
}

// startReaders starts n readers of the ledger's acknowledged objects.
func startReaders(t *testing.T, cl *cluster, led *ledger, bucket string, n int) *readers {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	r := &readers{cancel: cancel, errs: make(map[string]int)}
	client := cl.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	for range n {
		r.wg.Go(func() { r.run(ctx, client, led, bucket) })
	}
	t.Cleanup(r.stop)
	return r
}

func (r *readers) run(ctx context.Context, c *s3.Client, led *ledger, bucket string) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		key, want, ok := led.randomAcked()
		if !ok {
			// Nothing acknowledged yet.
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		sum, n, etag, err := readObject(rctx, c, bucket, key, "")
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.reads.Add(1)
		var nsk *types.NoSuchKey
		switch {
		case errors.As(err, &nsk):
			r.violate(fmt.Sprintf("GET %s: NoSuchKey after its PUT was acknowledged", key))
		case err != nil:
			r.fails.Add(1)
			msg := volatile.ReplaceAllString(err.Error(), "…")
			r.mu.Lock()
			r.errs[msg]++
			r.mu.Unlock()
		case sum != want.md5 || n != want.size || etag != want.etag:
			r.violate(fmt.Sprintf("GET %s: %d bytes, MD5 %s, ETag %s; acknowledged %d bytes, MD5 %s, ETag %s", key, n, sum, etag, want.size, want.md5, want.etag))
		default:
			r.answered(start, time.Now())
		}
	}
}

// answered keeps a good read's start and end, at most one per 100 ms of
// starts: enough to tell when reads came back after a fault.
func (r *readers) answered(start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.good); n > 0 && start.Sub(r.good[n-1].start) < 100*time.Millisecond {
		return
	}
	r.good = append(r.good, readSpan{start, end})
}

func (r *readers) violate(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, msg)
}

func (r *readers) stop() {
	r.cancel()
	r.wg.Wait()
}

// check stops the readers, logs their totals and fails the test for every
// violation, and for every failed read unless failures are tolerated.
func (r *readers) check(cl *cluster, tolerateFailures bool) {
	cl.t.Helper()
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	cl.logf("readers: %d reads, %d failed, %d violations", r.reads.Load(), r.fails.Load(), len(r.violations))
	for m, n := range r.errs {
		if tolerateFailures {
			cl.logf("  %4d× %s", n, m)
		} else {
			cl.t.Errorf("readers: %d× %s", n, m)
		}
	}
	if r.reads.Load() == 0 {
		cl.t.Errorf("readers: no read completed")
	}
	for i, v := range r.violations {
		if i == 20 {
			cl.t.Errorf("readers: ... and %d more violations", len(r.violations)-i)
			break
		}
		cl.t.Errorf("readers: %s", v)
	}
}
