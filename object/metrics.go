package object

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	putBytes         prometheus.Counter
	getBytes         prometheus.Counter
	degradedSegments prometheus.Counter
	badShards        prometheus.Counter
	readStalls       prometheus.Counter
	writeStalls      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		putBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_object_put_bytes_total", Help: "Object bytes stored (committed puts and parts).",
		}),
		getBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_object_get_bytes_total", Help: "Object bytes read.",
		}),
		degradedSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_object_degraded_segment_writes_total", Help: "Segments written with fewer than k+m chunks.",
		}),
		badShards: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_object_bad_chunk_reads_total", Help: "Chunks found missing, unreachable or corrupt while reading.",
		}),
	}
	stalls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_object_chunk_stalls_total",
		Help: "Chunk reads and uploads given up for stalling past their budget (--read-budget, --write-budget), by op.",
	}, []string{"op"})
	m.readStalls, m.writeStalls = stalls.WithLabelValues("read"), stalls.WithLabelValues("write")
	if reg != nil {
		reg.MustRegister(m.putBytes, m.getBytes, m.degradedSegments, m.badShards, stalls)
	}
	return m
}
