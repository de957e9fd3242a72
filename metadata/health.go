package metadata

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Health figures. The leader passes over every referenced segment
// (ScanSegments, in pages of scanPage) and counts them by how many of their
// chunks are not healthy (missing, or on a DOWN or DECOMMISSIONED node).
// The figures of a finished pass are published at once (never a half
// pass); a pass starts HealthScanInterval after the previous one ended.
//
// Cost model: a pass reads each segment record once, O(segments) reads
// and CPU on the leader, paced to at most HealthScanRate segments per
// second (default 50,000/s; Badger prefix scans run at ~1M keys/s, so a
// pass takes at most ~5% of one core's scan throughput), with memory
// O(scanPage + maxLostListed). 10 million segments take ~200 s per pass
// at the default rate; the figures are then at most one interval plus one
// pass old (HealthStatus says when they were computed). The repair
// queue's length, rate and in-flight counts are live, not from the pass.

// maxLostListed bounds the lost segments a pass remembers by name (the
// count is exact).
const maxLostListed = 1000

// healthFigures are the results of one pass.
type healthFigures struct {
	computed    time.Time
	total       int64
	byMissing   []int64
	degraded    int64
	lost        int64
	bytesAtRisk int64
	// rebuildBytes is the chunk data repairs must write to bring every
	// repairable segment back to full redundancy.
	rebuildBytes int64
	lostList     []*pb.LostSegment
}

func (h *healer) healthLoop(ctx context.Context) {
	for {
		if _, err := h.healthPass(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("health pass", "err", err)
		}
		if !sleepCtx(ctx, h.cfg.HealthScanInterval) {
			return
		}
	}
}

// healthPass computes and publishes the figures.
func (h *healer) healthPass(ctx context.Context) (*healthFigures, error) {
	cm, err := h.st.ClusterMap()
	if err != nil {
		return nil, err
	}
	v := newClusterView(cm)
	f := &healthFigures{}
	var after []byte
	for {
		start := time.Now()
		infos, next, err := h.st.ScanSegments(after, scanPage)
		if err != nil {
			return nil, fmt.Errorf("scan segments: %w", err)
		}
		for _, in := range infos {
			f.add(v, in)
		}
		if next == nil {
			break
		}
		after = next
		if h.cfg.HealthScanRate > 0 {
			pace := time.Duration(float64(len(infos)) / float64(h.cfg.HealthScanRate) * float64(time.Second))
			if !sleepCtx(ctx, pace-time.Since(start)) {
				return nil, ctx.Err()
			}
		} else if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	f.computed = h.now()
	h.figures.Store(f)
	return f, nil
}

// add counts one segment.
func (f *healthFigures) add(v *clusterView, in SegmentInfo) {
	seg := in.Segment
	healthy, bad := v.segmentHealth(seg)
	missing := len(bad)
	for len(f.byMissing) <= missing {
		f.byMissing = append(f.byMissing, 0)
	}
	f.total++
	f.byMissing[missing]++
	if missing == 0 {
		return
	}
	f.degraded++
	f.bytesAtRisk += seg.GetSize()
	k := int(seg.GetScheme().GetK())
	if healthy >= k {
		f.rebuildBytes += int64(missing) * shardBytes(seg)
		return
	}
	f.lost++
	if len(f.lostList) < maxLostListed {
		f.lostList = append(f.lostList, &pb.LostSegment{
			Bucket: in.Owner.Bucket, Key: in.Owner.Key, VersionId: in.Owner.VersionID,
			UploadId: in.Owner.UploadID, PartNumber: in.Owner.PartNumber,
			SegmentId: seg.GetId(), Healthy: int32(healthy), Needed: int32(k),
		})
	}
}

// repairStats are the live repair figures.
type repairStats struct {
	queue, inFlight int64
	rate, eta       float64
}

func (h *healer) repairStats() repairStats {
	repairs, moves, _ := h.tasks.counts()
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := repairStats{queue: int64(h.queue.len()), inFlight: int64(repairs + moves), rate: h.meter.rate(now)}
	var remaining int64
	if f := h.figures.Load(); f != nil {
		remaining = max(f.rebuildBytes-h.meter.since(f.computed), 0)
	} else {
		for _, it := range h.queue.order {
			remaining += it.rebuildBytes()
		}
	}
	switch {
	case remaining == 0 && st.queue == 0:
		st.eta = 0
	case st.rate > 0:
		st.eta = float64(remaining) / st.rate
	default:
		st.eta = -1 // unknown: nothing repaired yet in the window
	}
	return st
}

// healthStatus answers HealthStatus; it runs a pass first if none has
// finished in this term.
func (h *healer) healthStatus(ctx context.Context, maxLost int) (*pb.HealthStatusResponse, error) {
	f := h.figures.Load()
	if f == nil {
		var err error
		if f, err = h.healthPass(ctx); err != nil {
			return nil, err
		}
	}
	rs := h.repairStats()
	resp := &pb.HealthStatusResponse{
		SegmentsTotal:        f.total,
		SegmentsByMissing:    f.byMissing,
		SegmentsDegraded:     f.degraded,
		SegmentsLost:         f.lost,
		BytesAtRisk:          f.bytesAtRisk,
		RepairQueue:          rs.queue,
		RepairsInFlight:      rs.inFlight,
		RepairsDone:          h.m.repairsDone.Load(),
		RepairsFailed:        h.m.repairsFailed.Load(),
		RepairBytesPerSecond: rs.rate,
		EtaSeconds:           rs.eta,
		GcBacklog:            h.gcBacklog.Load(),
		ComputedUnixNano:     f.computed.UnixNano(),
	}
	if maxLost <= 0 {
		maxLost = 100
	}
	resp.Lost = f.lostList[:min(maxLost, len(f.lostList))]
	return resp, nil
}

// healMetrics are the self-healing metrics of one member. Counters count
// what this member did while leading; the gauges appear only while it
// leads and has figures (a follower's would be stale).
type healMetrics struct {
	repairBytes prometheus.Counter
	tasks       *prometheus.CounterVec
	gcAcked     prometheus.Counter
	// uploadsExpired counts multipart uploads aborted for their age,
	// objectsExpired objects deleted by lifecycle rules, versionsExpired
	// noncurrent versions and delete markers they deleted for good.
	uploadsExpired, objectsExpired, versionsExpired prometheus.Counter
	current                                         func() *healer
	// repairsDone and repairsFailed (failed or expired) count repair
	// tasks for HealthStatus.
	repairsDone, repairsFailed atomic.Int64

	degraded, lost, byMissing, queue, inFlight, eta, atRisk, gcBacklog *prometheus.Desc
}

func newHealMetrics(current func() *healer) *healMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &healMetrics{
		repairBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_repair_bytes_total",
			Help: "Chunk bytes rebuilt by repairs and committed (on this member while it led).",
		}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_heal_tasks_total",
			Help: "Repair, move and delete tasks by outcome (done, failed, expired), on this member while it led.",
		}, []string{"kind", "result"}),
		gcAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_gc_entries_acked_total",
			Help: "GC entries whose chunks were all deleted and that were acknowledged.",
		}),
		uploadsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_multipart_uploads_expired_total",
			Help: "Multipart uploads aborted because they were older than --upload-expiry or a lifecycle rule allows (on this member while it led).",
		}),
		objectsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lifecycle_objects_expired_total",
			Help: "Objects deleted by their bucket's lifecycle rules (on this member while it led).",
		}),
		versionsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_lifecycle_versions_expired_total",
			Help: "Noncurrent versions and expired delete markers deleted for good by their bucket's lifecycle rules (on this member while it led).",
		}),
		current:   current,
		degraded:  d("cairn_segments_degraded", "Segments with fewer than k+m healthy chunks (leader, last health pass)."),
		lost:      d("cairn_segments_lost", "Segments with fewer than k healthy chunks (leader, last health pass)."),
		byMissing: d("cairn_segments_by_missing", "Segments by number of chunks not healthy (leader, last health pass).", "missing"),
		queue:     d("cairn_repair_queue", "Segments waiting for repair (leader)."),
		inFlight:  d("cairn_repairs_in_flight", "Repair and move tasks handed out and not yet reported (leader)."),
		eta:       d("cairn_repair_eta_seconds", "Estimated seconds to full redundancy at the observed repair rate; -1 when unknown (leader)."),
		atRisk:    d("cairn_bytes_at_risk", "Object bytes in degraded segments (leader, last health pass)."),
		gcBacklog: d("cairn_gc_backlog", "GC entries whose chunks are still to be deleted (leader)."),
	}
}

func (m *healMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.repairBytes, m.tasks, m.gcAcked, m.uploadsExpired, m.objectsExpired, m.versionsExpired, healGauges{m}}
}

// healGauges is the collector of the leader-only gauges.
type healGauges struct{ m *healMetrics }

func (g healGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.m.degraded, g.m.lost, g.m.byMissing, g.m.queue, g.m.inFlight, g.m.eta, g.m.atRisk, g.m.gcBacklog} {
		ch <- d
	}
}

func (g healGauges) Collect(ch chan<- prometheus.Metric) {
	h := g.m.current()
	if h == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	rs := h.repairStats()
	gauge(g.m.queue, float64(rs.queue))
	gauge(g.m.inFlight, float64(rs.inFlight))
	gauge(g.m.eta, rs.eta)
	gauge(g.m.gcBacklog, float64(h.gcBacklog.Load()))
	f := h.figures.Load()
	if f == nil {
		return
	}
	gauge(g.m.degraded, float64(f.degraded))
	gauge(g.m.lost, float64(f.lost))
	gauge(g.m.atRisk, float64(f.bytesAtRisk))
	for i, n := range f.byMissing {
		gauge(g.m.byMissing, float64(n), strconv.Itoa(i))
	}
}
