package s3bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Proc names a process whose CPU time and memory a run samples.
type Proc struct {
	Name string
	PID  int
}

// ParseProcs parses "name=pid,name=pid".
func ParseProcs(s string) ([]Proc, error) {
	var out []Proc
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, pid, ok := strings.Cut(item, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("process %q: want NAME=PID", item)
		}
		out = append(out, Proc{Name: name, PID: n})
	}
	return out, nil
}

// ProcStats is what one process used during a run (Linux /proc).
type ProcStats struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// CPUSeconds is user+system time spent during the run; CPUPercent is
	// that over the run's elapsed time (100 = one core busy).
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct"`
	// PeakRSSMiB is VmHWM at the end of the run. When PeakReset is true it
	// was reset (clear_refs) at the start, so it is this run's peak;
	// otherwise it is the peak since the process started.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	PeakReset  bool    `json:"peak_reset"`
	// MaxRSSMiB is the largest VmRSS seen by the once-a-second sampler.
	MaxRSSMiB float64 `json:"max_sampled_rss_mib"`
	Error     string  `json:"error,omitempty"`
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// procDir is where Linux exposes processes.
const procDir = "/proc"

// cpuTicks returns utime+stime of pid.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procDir, pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s/%d/stat: no command name", procDir, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state(3) ... utime(14) stime(15) → indexes 11 and 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse %s/%d/stat: %d fields", procDir, pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse %s/%d/stat: utime %q stime %q", procDir, pid, f[11], f[12])
	}
	return u + s, nil
}

// memKiB returns the VmRSS and VmHWM of pid in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/status", procDir, pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %s of %d: %w", key, pid, err)
		}
		if key == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	return rss, hwm, nil
}

// watcher samples processes during a run.
type watcher struct {
	procs   []Proc
	start   time.Time
	ticks0  []int64
	errs    []error
	reset   []bool
	mu      sync.Mutex
	maxRSS  []int64
	stop    context.CancelFunc
	stopped chan struct{}
}

// watch resets each process's peak RSS (writing 5 to clear_refs, which
// needs the same user or root), reads its CPU time, and samples its RSS
// once a second until finish.
func watch(procs []Proc) *watcher {
	w := &watcher{
		procs:   procs,
		start:   time.Now(),
		ticks0:  make([]int64, len(procs)),
		errs:    make([]error, len(procs)),
		reset:   make([]bool, len(procs)),
		maxRSS:  make([]int64, len(procs)),
		stopped: make(chan struct{}),
	}
	for i, p := range procs {
		w.reset[i] = os.WriteFile(fmt.Sprintf("%s/%d/clear_refs", procDir, p.PID), []byte("5"), 0) == nil
		w.ticks0[i], w.errs[i] = cpuTicks(p.PID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() {
		defer close(w.stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watcher) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.procs {
		if rss, _, err := memKiB(p.PID); err == nil {
			w.maxRSS[i] = max(w.maxRSS[i], rss)
		}
	}
}

// finish stops sampling and returns each process's figures.
func (w *watcher) finish() []ProcStats {
	w.stop()
	<-w.stopped
	w.sample()
	elapsed := time.Since(w.start).Seconds()
	out := make([]ProcStats, len(w.procs))
	for i, p := range w.procs {
		st := ProcStats{Name: p.Name, PID: p.PID, PeakReset: w.reset[i], MaxRSSMiB: float64(w.maxRSS[i]) / 1024}
		t1, err := cpuTicks(p.PID)
		if err == nil {
			err = w.errs[i]
		}
		_, hwm, merr := memKiB(p.PID)
		if err == nil {
			err = merr
		}
		if err != nil {
			st.Error = err.Error()
		} else {
			st.CPUSeconds = float64(t1-w.ticks0[i]) / clockTick
			st.CPUPercent = round2(100 * st.CPUSeconds / elapsed)
			st.PeakRSSMiB = round2(float64(hwm) / 1024)
		}
		st.MaxRSSMiB = round2(st.MaxRSSMiB)
		out[i] = st
	}
	return out
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// LoadAvg returns the 1, 5 and 15 minute load averages (zeros if
// /proc/loadavg cannot be read).
func LoadAvg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile(procDir + "/loadavg")
	if err != nil {
		return out
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}
