package s3bench

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value, p50", durations(7), 50, 7 * time.Millisecond},
		{"one value, p99", durations(7), 99, 7 * time.Millisecond},
		{"two values, p50 is the lower", durations(1, 9), 50, 1 * time.Millisecond},
		{"two values, p51 is the upper", durations(1, 9), 51, 9 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p90", hundred, 90, 90 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..100 tiny p is the minimum", hundred, 0.001, 1 * time.Millisecond},
		{"ten values p99 is the maximum", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 1000), 99, 1000 * time.Millisecond},
		{"ten values p90 is the ninth", durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 1000), 90, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	a, b := recorder{}, recorder{}
	// Worker a: 1..50 ms puts of 1 MiB; worker b: 51..100 ms puts and two
	// failures; b also lists.
	for i := 1; i <= 50; i++ {
		a.ok(OpPut, time.Duration(i)*time.Millisecond, 1<<20, 0)
		b.ok(OpPut, time.Duration(i+50)*time.Millisecond, 1<<20, 0)
	}
	b.fail(OpPut, errors.New("first failure"))
	b.fail(OpPut, errors.New("second failure"))
	b.ok(OpList, 3*time.Millisecond, 0, 1000)
	got := summarize([]recorder{a, b}, 10*time.Second, []Op{OpGet, OpPut, OpList})
	if len(got) != 2 || got[0].Op != OpPut || got[1].Op != OpList {
		t.Fatalf("summarize ops = %+v, want put then list (get never seen)", got)
	}
	put := got[0]
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"count", float64(put.Count), 100},
		{"errors", float64(put.Errors), 2},
		{"bytes", float64(put.Bytes), 100 << 20},
		{"MiB/s", put.MiBPerSec, 10},
		{"ops/s", put.OpsPerSec, 10},
		{"p50", put.P50Ms, 50},
		{"p90", put.P90Ms, 90},
		{"p99", put.P99Ms, 99},
		{"max", put.MaxMs, 100},
		{"mean", put.MeanMs, 50.5},
		{"list items/s", got[1].ItemsPerSec, 100},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if put.FirstError != "first failure" {
		t.Errorf("FirstError = %q", put.FirstError)
	}
}

func TestMixPickRatios(t *testing.T) {
	const n = 200_000
	for _, m := range []Mix{DefaultMix, {Get: 1, Put: 1}, {Delete: 3, Stat: 1}} {
		r := rand.New(rand.NewPCG(42, 7))
		counts := map[Op]int{}
		for range n {
			counts[m.Pick(r)]++
		}
		tot := float64(m.total())
		for op, w := range map[Op]int{OpGet: m.Get, OpPut: m.Put, OpStat: m.Stat, OpDelete: m.Delete} {
			got, want := float64(counts[op])/n, float64(w)/tot
			// Binomial sd at n=200k is ≤0.0012: 0.005 is >4 sd.
			if math.Abs(got-want) > 0.005 {
				t.Errorf("mix %+v: %s drawn %.4f of the time, want %.4f", m, op, got, want)
			}
		}
	}
}

func TestMixPickDeterministic(t *testing.T) {
	draw := func(seed uint64) string {
		r := rand.New(rand.NewPCG(seed, 1))
		var b strings.Builder
		for range 64 {
			b.WriteString(string(DefaultMix.Pick(r)[0]))
		}
		return b.String()
	}
	if a, b := draw(1), draw(1); a != b {
		t.Errorf("same seed, different draws:\n%s\n%s", a, b)
	}
	if a, b := draw(1), draw(2); a == b {
		t.Errorf("seeds 1 and 2 draw the same sequence %s", a)
	}
}

func TestMixValidate(t *testing.T) {
	for _, tc := range []struct {
		m  Mix
		ok bool
	}{
		{DefaultMix, true},
		{Mix{Put: 1}, true},
		{Mix{}, false},
		{Mix{Get: -1, Put: 2}, false},
	} {
		if err := tc.m.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.m, err, tc.ok)
		}
	}
}
