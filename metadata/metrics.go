package metadata

import (
	"sync"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// serverMetrics are one member's metrics, registered on the registry its
// Config names, so members sharing a process keep their own.
type serverMetrics struct {
	apply prometheus.Histogram
	rpcs  *prometheus.CounterVec
	// rpcCounters caches rpcs' counters by rpcLabel: WithLabelValues
	// hashes and looks up both labels on every call (~1.5% of a 3-member
	// cluster's CPU per CommitObject).
	rpcCounters   sync.Map
	reads         prometheus.Counter
	verifications prometheus.Counter
	usageCommits  prometheus.Counter
	heal          *healMetrics

	collectors []prometheus.Collector
}

func newServerMetrics(s *Server) *serverMetrics {
	m := &serverMetrics{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_metad_apply_seconds",
			Help:    "Time from proposing a command on the leader to its result from the state machine.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_metad_rpcs_total",
			Help: "Metadata API calls served, by method and gRPC status code.",
		}, []string{"method", "code"}),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_metad_linearizable_reads_total",
			Help: "Reads that asked for a leadership confirmation.",
		}),
		verifications: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_metad_leader_verifications_total",
			Help: "Leadership confirmations (quorum heartbeat rounds) run for reads; reads/verifications is the batching factor.",
		}),
		usageCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_metad_node_usage_commits_total",
			Help: "Heartbeats whose usage change was large enough to commit.",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.collectors = []prometheus.Collector{
		m.apply, m.rpcs, m.reads, m.verifications, m.usageCommits,
		gauge("cairn_metad_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shut down.",
			func() float64 { return float64(s.raft.State()) }),
		gauge("cairn_metad_raft_leader", "1 if this member is the Raft leader.",
			func() float64 {
				if s.raft.State() == raft.Leader {
					return 1
				}
				return 0
			}),
		gauge("cairn_metad_raft_term", "Current Raft term.",
			func() float64 { return float64(s.raft.CurrentTerm()) }),
		gauge("cairn_metad_raft_commit_index", "Raft commit index known to this member.",
			func() float64 { return float64(s.raft.CommitIndex()) }),
		gauge("cairn_metad_raft_last_index", "Last index in this member's Raft log.",
			func() float64 { return float64(s.raft.LastIndex()) }),
		gauge("cairn_metad_applied_index", "Index of the last command applied to the metadata state.",
			func() float64 { return float64(s.state.AppliedIndex()) }),
	}
	m.collectors = append(m.collectors, newBucketUsageCollector(s))
	m.heal = newHealMetrics(func() *healer { return s.heal.Load() })
	m.collectors = append(m.collectors, m.heal.collectors()...)
	return m
}

func (m *serverMetrics) register(reg prometheus.Registerer) error {
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *serverMetrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}

type rpcLabel struct {
	method string
	code   codes.Code
}

// rpcCounter is rpcs' counter for one method and status code.
func (m *serverMetrics) rpcCounter(method string, code codes.Code) prometheus.Counter {
	l := rpcLabel{method, code}
	if c, ok := m.rpcCounters.Load(l); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.rpcCounters.LoadOrStore(l, m.rpcs.WithLabelValues(method, code.String()))
	return c.(prometheus.Counter)
}
