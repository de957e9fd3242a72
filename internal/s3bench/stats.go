package s3bench

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. Zero for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// OpStats summarises one operation's requests over a run.
type OpStats struct {
	Op     Op    `json:"op"`
	Count  int64 `json:"count"`  // successful requests
	Errors int64 `json:"errors"` // failed requests (not in the latencies)
	Bytes  int64 `json:"bytes"`  // body bytes moved by successful requests
	Items  int64 `json:"items,omitempty"`
	// Rates over the run's elapsed time.
	MiBPerSec   float64 `json:"mib_per_s"`
	OpsPerSec   float64 `json:"objects_per_s"`
	ItemsPerSec float64 `json:"items_per_s,omitempty"`
	// Latencies of successful requests, in milliseconds: time to the last
	// byte of the response body.
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	// FirstError is the first failure's message, if any.
	FirstError string `json:"first_error,omitempty"`
}

// sample is what one worker recorded for one operation.
type sample struct {
	lat    []time.Duration
	bytes  int64
	items  int64
	errors int64
	first  string
}

// recorder holds one worker's samples; merged once the workers stop.
type recorder map[Op]*sample

func (r recorder) get(op Op) *sample {
	s := r[op]
	if s == nil {
		s = &sample{lat: make([]time.Duration, 0, 1024)}
		r[op] = s
	}
	return s
}

func (r recorder) ok(op Op, d time.Duration, bytes, items int64) {
	s := r.get(op)
	s.lat = append(s.lat, d)
	s.bytes += bytes
	s.items += items
}

func (r recorder) fail(op Op, err error) {
	s := r.get(op)
	s.errors++
	if s.first == "" {
		s.first = err.Error()
	}
}

// summarize merges the workers' recorders into per-operation statistics
// over elapsed, in the order of ops (operations never seen are left out).
func summarize(recs []recorder, elapsed time.Duration, ops []Op) []OpStats {
	var out []OpStats
	secs := elapsed.Seconds()
	for _, op := range ops {
		var lat []time.Duration
		st := OpStats{Op: op}
		seen := false
		for _, r := range recs {
			s := r[op]
			if s == nil {
				continue
			}
			seen = true
			lat = append(lat, s.lat...)
			st.Bytes += s.bytes
			st.Items += s.items
			st.Errors += s.errors
			if st.FirstError == "" {
				st.FirstError = s.first
			}
		}
		if !seen {
			continue
		}
		st.Count = int64(len(lat))
		slices.Sort(lat)
		if secs > 0 {
			st.MiBPerSec = float64(st.Bytes) / (1 << 20) / secs
			st.OpsPerSec = float64(st.Count) / secs
			st.ItemsPerSec = float64(st.Items) / secs
		}
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		if len(lat) > 0 {
			st.MeanMs = ms(sum / time.Duration(len(lat)))
			st.MaxMs = ms(lat[len(lat)-1])
		}
		st.P50Ms, st.P90Ms, st.P99Ms = ms(Percentile(lat, 50)), ms(Percentile(lat, 90)), ms(Percentile(lat, 99))
		out = append(out, st)
	}
	return out
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// live counts what the progress line shows, shared by all workers.
type live struct {
	ops, bytes, errors atomic.Int64
}
