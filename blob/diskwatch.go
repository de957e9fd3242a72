package blob

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A node whose data disk stops answering (a write or fsync that never
// returns) still heartbeats: usage is counted in memory. metad would keep
// it UP forever, and nothing would repair its chunks, unreadable as they
// are; the gateways only route around it, 30 s at a time. So the node
// probes its disk (Storage.CheckWritable: a small file written, synced and
// removed) every heartbeat interval, and while a probe has been under way
// for Config.DiskStallTimeout it withholds its heartbeats and fails
// /healthz: metad marks it SUSPECT, then DOWN, and repairs its chunks
// elsewhere. Once the disk answers again the heartbeats resume and metad
// takes the node back, as after any outage.

// diskWatch runs the probes and says whether the disk stalls.
type diskWatch struct {
	probe   func(context.Context) error
	timeout time.Duration
	// since is when the probe under way started (UnixNano), 0 when none is.
	since atomic.Int64
}

// run starts a probe every interval, unless one is still under way, until
// ctx ends.
func (d *diskWatch) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if d.since.CompareAndSwap(0, time.Now().UnixNano()) {
			go func() {
				// The probe's error is /healthz's business; only its
				// duration counts here.
				_ = d.probe(ctx)
				d.since.Store(0)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check returns an error while the probe under way has taken timeout.
func (d *diskWatch) check() error {
	start := d.since.Load()
	if start == 0 {
		return nil
	}
	waited := time.Since(time.Unix(0, start))
	if waited < d.timeout {
		return nil
	}
	return fmt.Errorf("disk stalled: a write and sync of the data directory has not returned for %v", waited.Round(time.Second))
}

// registerDiskMetrics registers whether the disk stalls and the heartbeats
// withheld for it.
func (s *Server) registerDiskMetrics(reg prometheus.Registerer) {
	var labels prometheus.Labels
	if s.cfg.ID != "" {
		labels = prometheus.Labels{"node": s.cfg.ID}
	}
	s.heartbeatsWithheld = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "cairn", Subsystem: "blob", Name: "heartbeats_withheld_total",
		Help: "Heartbeats not sent to metad because the data disk stalled.", ConstLabels: labels,
	})
	stalled := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "cairn", Subsystem: "blob", Name: "disk_stalled",
		Help: "1 while a probe of the data disk has taken --disk-stall-timeout.", ConstLabels: labels,
	}, func() float64 {
		if s.disk != nil && s.disk.check() != nil {
			return 1
		}
		return 0
	})
	reg.MustRegister(s.heartbeatsWithheld, stalled)
}
