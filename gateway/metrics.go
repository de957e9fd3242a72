package gateway

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's request metrics, by S3 operation and status.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_gateway_requests_total",
			Help: "S3 requests answered, by operation and HTTP status.",
		}, []string{"op", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_gateway_request_duration_seconds",
			Help:    "Time from request to the end of the response, by operation and HTTP status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"op", "status"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_gateway_received_bytes_total",
			Help: "Request body bytes read, by operation and HTTP status.",
		}, []string{"op", "status"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_gateway_sent_bytes_total",
			Help: "Response body bytes written, by operation and HTTP status.",
		}, []string{"op", "status"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.bytesIn, m.bytesOut} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gateway metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(op string, status int, took time.Duration, in, out int64) {
	s := strconv.Itoa(status)
	m.requests.WithLabelValues(op, s).Inc()
	m.latency.WithLabelValues(op, s).Observe(took.Seconds())
	m.bytesIn.WithLabelValues(op, s).Add(float64(in))
	m.bytesOut.WithLabelValues(op, s).Add(float64(out))
}
