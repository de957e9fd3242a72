package blob

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one blob HTTP API instance, on the registry it was given.
type metrics struct {
	requests *prometheus.CounterVec   // op, code
	latency  *prometheus.HistogramVec // op
	errors   *prometheus.CounterVec   // op: server-side failures (5xx)
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st Storage, node string) *metrics {
	var labels prometheus.Labels
	if node != "" {
		// Several nodes may share one registry (cairn dev); the node label
		// keeps their series apart.
		labels = prometheus.Labels{"node": node}
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "requests_total",
			Help: "HTTP requests to the blob API by operation and status code.", ConstLabels: labels,
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "request_duration_seconds",
			Help:    "Time to serve a blob API request, body included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), ConstLabels: labels,
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "errors_total",
			Help: "Blob API requests that failed on the server side (5xx).", ConstLabels: labels,
		}, []string{"op"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "written_bytes_total",
			Help: "Chunk bytes stored by PUTs.", ConstLabels: labels,
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "read_bytes_total",
			Help: "Chunk bytes sent by GETs.", ConstLabels: labels,
		}),
	}
	gauge := func(name, help string, f func(Usage) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "blob", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return float64(f(st.Usage())) })
	}
	reg.MustRegister(m.requests, m.latency, m.errors, m.bytesIn, m.bytesOut,
		gauge("capacity_bytes", "Capacity of the node.", func(u Usage) int64 { return u.Capacity }),
		gauge("used_bytes", "Bytes of stored chunks.", func(u Usage) int64 { return u.Used }),
		gauge("chunks", "Number of stored chunks.", func(u Usage) int64 { return u.Chunks }),
	)
	return m
}

// instrument wraps a handler with the request, latency and error metrics of
// one operation.
func (m *metrics) instrument(op string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		m.requests.WithLabelValues(op, strconv.Itoa(rec.status)).Inc()
		m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
		if rec.status >= 500 {
			m.errors.WithLabelValues(op).Inc()
		}
		if op == "get" {
			m.bytesOut.Add(float64(rec.written))
		}
	}
}

// recorder notes the status and body bytes of a response. It keeps
// ReadFrom, so copying a chunk file to the connection can use sendfile.
type recorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.written += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// connCounter counts the connections a node accepts by transport ("tcp"
// or "unix"): it shows whether same-host clients use the local socket.
func connCounter(reg prometheus.Registerer, node string) *prometheus.CounterVec {
	var labels prometheus.Labels
	if node != "" {
		labels = prometheus.Labels{"node": node}
	}
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cairn", Subsystem: "blob", Name: "connections_total",
		Help: "Connections accepted by the blob API, by transport (tcp, unix).", ConstLabels: labels,
	}, []string{"transport"})
	reg.MustRegister(c)
	return c
}
