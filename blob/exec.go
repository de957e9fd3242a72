package blob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of ExecutorConfig (and of the matching Config fields). The
// timeout matches metad's default --repair-task-timeout: past it metad
// plans the work again, so finishing later is wasted.
const (
	DefaultTaskConcurrency = 4
	DefaultTaskTimeout     = 2 * time.Minute
)

// Reporting a result is retried this often, each attempt bounded, before
// the executor gives up (metad hands the task out again, and it runs again).
const (
	reportAttempts = 3
	reportTimeout  = 10 * time.Second
	reportBackoff  = 200 * time.Millisecond
)

// ExecutorConfig configures an Executor.
type ExecutorConfig struct {
	// Node is this node's id, for logs and metrics.
	Node string
	// Store is where chunks are stored and deleted.
	Store Storage
	// Client reads chunks from peers.
	Client *Client
	// Reporter takes the results; nil drops them (tests).
	Reporter TaskReporter
	// Concurrency bounds the tasks running at once (default
	// DefaultTaskConcurrency). Tasks handed out beyond it are dropped:
	// metad hands them out again with a later heartbeat.
	Concurrency int
	// Timeout bounds each task (default DefaultTaskTimeout).
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry gets the executor's metrics; nil means none are exported.
	Registry prometheus.Registerer
}

// Executor runs the tasks metad hands a blob node: repairs, moves and
// deletes, with bounded concurrency and a deadline each, and reports their
// results. A task already queued or running is not started again when metad
// re-issues it.
type Executor struct {
	cfg ExecutorConfig
	log *slog.Logger
	m   *execMetrics

	mu     sync.Mutex
	active map[string]bool // queued or running, by task id
	queue  chan Task

	codecs sync.Map // chunk.Params -> *chunk.Codec
}

// NewExecutor returns an executor; Run runs what Submit queues.
func NewExecutor(cfg ExecutorConfig) *Executor {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultTaskConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTaskTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Executor{
		cfg:    cfg,
		log:    log.With("component", "tasks"),
		m:      newExecMetrics(reg, cfg.Node),
		active: make(map[string]bool),
		// Never more than Concurrency tasks are active, so Submit never
		// blocks on a full queue.
		queue: make(chan Task, cfg.Concurrency),
	}
}

// Submit queues the tasks that are not already queued or running, as far as
// the concurrency bound allows, and returns how many it took. It never
// blocks.
func (e *Executor) Submit(tasks []Task) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range tasks {
		switch {
		case e.active[t.ID]:
			e.m.skipped.WithLabelValues("running").Inc()
		case len(e.active) >= e.cfg.Concurrency:
			e.m.skipped.WithLabelValues("busy").Inc()
		default:
			e.active[t.ID] = true
			e.queue <- t
			n++
		}
	}
	return n
}

// Running is how many tasks are queued or running.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.active)
}

// Run starts the queued tasks until ctx ends; then it cancels the tasks
// still running and waits for them. Results of tasks cut short by ctx are
// not reported: metad hands them out again.
func (e *Executor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			e.drain()
			return
		case t := <-e.queue:
			wg.Go(func() { e.runTask(ctx, t) })
		}
	}
}

// drain forgets the tasks queued but not started.
func (e *Executor) drain() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		select {
		case t := <-e.queue:
			delete(e.active, t.ID)
		default:
			return
		}
	}
}

func (e *Executor) runTask(ctx context.Context, t Task) {
	defer func() {
		e.mu.Lock()
		delete(e.active, t.ID)
		e.mu.Unlock()
	}()
	e.m.running.Inc()
	defer e.m.running.Dec()
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	res := e.Execute(tctx, t)
	cancel()
	log := e.log.With("task", t.ID, "kind", t.Kind, "took", time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		log.Info("task interrupted by shutdown; metad will hand it out again")
		return
	}
	outcome := "ok"
	if !res.OK {
		outcome = "failed"
		log.Warn("task failed", "err", res.Error, "bad_sources", res.BadSources)
	} else {
		log.Info("task done", "shards", res.ShardsDone)
	}
	e.m.tasks.WithLabelValues(t.Kind.String(), outcome).Inc()
	if e.cfg.Reporter != nil {
		if err := e.report(ctx, res); err != nil && ctx.Err() == nil {
			log.Warn("report task result; metad will hand the task out again", "err", err)
		}
	}
}

// report sends a result, retrying a few times.
func (e *Executor) report(ctx context.Context, res TaskResult) error {
	var err error
	for attempt := range reportAttempts {
		if attempt > 0 && !sleepCtx(ctx, reportBackoff<<attempt) {
			return ctx.Err()
		}
		rctx, cancel := context.WithTimeout(ctx, reportTimeout)
		err = e.cfg.Reporter.ReportTask(rctx, res)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// Execute runs one task now, in the calling goroutine, and returns its
// result without reporting it.
func (e *Executor) Execute(ctx context.Context, t Task) TaskResult {
	var res TaskResult
	switch t.Kind {
	case TaskRepair:
		res = e.repair(ctx, t.Repair)
	case TaskMove:
		res = e.move(ctx, t.Move)
	case TaskDelete:
		res = e.deleteChunks(ctx, t.Delete)
	default:
		res = failed(fmt.Errorf("task %s cannot be run: %s", t.ID, orDefault(t.Invalid, "unknown kind")))
	}
	res.TaskID = t.ID
	return res
}

func failed(err error) TaskResult { return TaskResult{Error: err.Error()} }

// codec returns the (cached) codec of p.
func (e *Executor) codec(p chunk.Params) (*chunk.Codec, error) {
	if c, ok := e.codecs.Load(p); ok {
		return c.(*chunk.Codec), nil
	}
	c, err := chunk.NewCodec(p)
	if err != nil {
		return nil, err
	}
	v, _ := e.codecs.LoadOrStore(p, c)
	return v.(*chunk.Codec), nil
}

// deleteChunks deletes each chunk; a missing one is fine.
func (e *Executor) deleteChunks(ctx context.Context, t DeleteTask) TaskResult {
	var errs []error
	for _, id := range t.Chunks {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if err := e.cfg.Store.Delete(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failed(err)
	}
	return TaskResult{OK: true}
}

// execMetrics are the executor's metrics.
type execMetrics struct {
	tasks   *prometheus.CounterVec // kind, result
	skipped *prometheus.CounterVec // reason
	running prometheus.Gauge
	bytes   *prometheus.CounterVec // kind
}

func newExecMetrics(reg prometheus.Registerer, node string) *execMetrics {
	labels := nodeLabels(node)
	m := &execMetrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "tasks_total",
			Help: "Tasks from metad run to the end, by kind and result.", ConstLabels: labels,
		}, []string{"kind", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "tasks_skipped_total",
			Help:        "Tasks handed out but not started: already running, or the concurrency bound was reached.",
			ConstLabels: labels,
		}, []string{"reason"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "tasks_running",
			Help: "Tasks running now.", ConstLabels: labels,
		}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "blob", Name: "task_written_bytes_total",
			Help: "Chunk bytes stored by repairs and moves.", ConstLabels: labels,
		}, []string{"kind"}),
	}
	reg.MustRegister(m.tasks, m.skipped, m.running, m.bytes)
	return m
}

// nodeLabels labels a node's metrics, so several nodes can share a registry
// (cairn dev).
func nodeLabels(node string) prometheus.Labels {
	if node == "" {
		return nil
	}
	return prometheus.Labels{"node": node}
}
