package blob

import (
	"context"
	"io"
	"sync"
	"time"
)

// clock is time as the scrubber and reconciliation see it: the real one, or
// a fake in tests, so that rates are checked without timing anything.
type clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if !sleepCtx(ctx, d) {
		return ctx.Err()
	}
	return nil
}

// tokenBucket limits a flow to rate bytes per second, with bursts of up to
// burst bytes. A taker may run into debt and then sleeps it off, so a large
// read costs its full time and the long-run rate holds exactly.
type tokenBucket struct {
	rate  float64 // bytes per second
	burst int
	clk   clock

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newTokenBucket returns a full bucket for rate bytes per second (> 0). The
// burst is an eighth of a second's worth, at least 64 KiB and at most
// 8 MiB: small enough that the disk sees a steady flow, large enough that a
// read is not cut into tiny sleeps.
func newTokenBucket(rate int64, clk clock) *tokenBucket {
	burst := int(min(max(rate/8, 64<<10), 8<<20))
	return &tokenBucket{rate: float64(rate), burst: burst, clk: clk, tokens: float64(burst), last: clk.Now()}
}

// wait takes n tokens, sleeping as long as the rate requires.
func (b *tokenBucket) wait(ctx context.Context, n int) error {
	for n > 0 {
		c := min(n, b.burst)
		b.mu.Lock()
		now := b.clk.Now()
		if el := now.Sub(b.last).Seconds(); el > 0 {
			b.tokens = min(float64(b.burst), b.tokens+el*b.rate)
		}
		b.last = now
		b.tokens -= float64(c)
		var d time.Duration
		if b.tokens < 0 {
			d = time.Duration(-b.tokens / b.rate * float64(time.Second))
		}
		b.mu.Unlock()
		if d > 0 {
			if err := b.clk.Sleep(ctx, d); err != nil {
				return err
			}
		}
		n -= c
	}
	return nil
}

// throttledReader reads through a token bucket (nil: unlimited) and counts
// what it read.
type throttledReader struct {
	ctx    context.Context
	r      io.Reader
	bucket *tokenBucket
	n      int64
	onRead func(n int)
}

func (t *throttledReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.n += int64(n)
		if t.onRead != nil {
			t.onRead(n)
		}
		if t.bucket != nil {
			if werr := t.bucket.wait(t.ctx, n); werr != nil {
				return n, werr
			}
		}
	}
	return n, err
}
