package blob

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of orphan reconciliation.
const (
	// DefaultOrphanGrace is how old an unreferenced chunk must be before
	// it is deleted: far longer than any upload takes to be committed.
	DefaultOrphanGrace = time.Hour
	// DefaultReconcileInterval is the time between reconciliation passes.
	DefaultReconcileInterval = time.Hour
)

// ReconcileConfig configures a Reconciler.
type ReconcileConfig struct {
	// Node is this node's id (a metrics label).
	Node string
	// Checker says which chunks metadata references. Required.
	Checker ChunkChecker
	// Grace: only chunks last modified longer ago than this are checked
	// (default DefaultOrphanGrace).
	Grace time.Duration
	// Interval between passes (default DefaultReconcileInterval).
	Interval time.Duration
	// Batch is the ids per CheckChunks call (default and most
	// MaxCheckBatch).
	Batch int
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry gets the metrics; nil means none are exported.
	Registry prometheus.Registerer

	clock clock // nil: the real one
}

// orphanStore is what reconciliation needs of a store. DeleteIfUnchanged
// removes a chunk only if its modification time is still the one listed, so
// a chunk stored again after it was checked (a repair) is never lost.
type orphanStore interface {
	List(ctx context.Context, after string, limit int) ([]Info, bool, error)
	DeleteIfUnchanged(ctx context.Context, id chunk.ID, modTime time.Time) (bool, error)
}

var _ orphanStore = (*Store)(nil)

// Reconciler deletes orphans: chunks on this node that no metadata
// references, older than a grace period. They are left behind by gateways
// that died before committing, by writes that lost a race, and on nodes
// that come back after their chunks were rebuilt elsewhere. It deletes only
// what metad positively says is unreferenced: any doubt (an error, an
// answer of the wrong length) stops the pass with nothing more deleted.
type Reconciler struct {
	st  orphanStore
	cfg ReconcileConfig
	log *slog.Logger
	clk clock
	m   *reconcileMetrics
}

// ReconcileStats is what one pass did.
type ReconcileStats struct {
	// Checked counts chunks old enough to be asked about.
	Checked int
	// Deleted counts orphans deleted.
	Deleted int
}

// NewReconciler returns a reconciler of st.
func NewReconciler(st orphanStore, cfg ReconcileConfig) *Reconciler {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultOrphanGrace
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReconcileInterval
	}
	if cfg.Batch <= 0 || cfg.Batch > MaxCheckBatch {
		cfg.Batch = MaxCheckBatch
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := cfg.clock
	if clk == nil {
		clk = realClock{}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Reconciler{st: st, cfg: cfg, log: log.With("component", "reconcile"), clk: clk, m: newReconcileMetrics(reg, cfg.Node)}
}

// Run reconciles every Interval until ctx ends. The first pass comes after
// a random part of the interval, so nodes restarted together do not ask
// metad all at once.
func (r *Reconciler) Run(ctx context.Context) {
	wait := r.cfg.Interval/4 + rand.N(r.cfg.Interval/4+1)
	for {
		if r.clk.Sleep(ctx, wait) != nil {
			return
		}
		st, err := r.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("reconciliation stopped; nothing more deleted this pass", "checked", st.Checked, "deleted", st.Deleted, "err", err)
		} else if st.Deleted > 0 {
			r.log.Info("reconciliation done", "checked", st.Checked, "deleted", st.Deleted)
		}
		wait = r.cfg.Interval
	}
}

// Pass lists the store's chunks older than the grace period, asks metad
// about them in batches, and deletes those it says are unreferenced.
func (r *Reconciler) Pass(ctx context.Context) (ReconcileStats, error) {
	var stats ReconcileStats
	cutoff := r.clk.Now().Add(-r.cfg.Grace)
	var batch []Info
	after := ""
	for {
		page, more, err := r.st.List(ctx, after, MaxCheckBatch)
		if err != nil {
			r.m.errors.Inc()
			return stats, fmt.Errorf("reconcile: %w", err)
		}
		for _, info := range page {
			after = info.ID.String()
			if !info.ModTime.Before(cutoff) {
				continue
			}
			batch = append(batch, info)
			if len(batch) == r.cfg.Batch {
				if err := r.check(ctx, batch, &stats); err != nil {
					return stats, err
				}
				batch = batch[:0]
			}
		}
		if !more {
			break
		}
	}
	if len(batch) > 0 {
		if err := r.check(ctx, batch, &stats); err != nil {
			return stats, err
		}
	}
	r.m.lastPass.Set(float64(r.clk.Now().UnixNano()) / 1e9)
	return stats, nil
}

// check asks about one batch and deletes its orphans.
func (r *Reconciler) check(ctx context.Context, batch []Info, stats *ReconcileStats) error {
	ids := make([]chunk.ID, len(batch))
	for i, in := range batch {
		ids[i] = in.ID
	}
	referenced, err := r.cfg.Checker.CheckChunks(ctx, ids)
	if err == nil && len(referenced) != len(ids) {
		err = fmt.Errorf("asked about %d chunks, got %d answers", len(ids), len(referenced))
	}
	if err != nil {
		r.m.errors.Inc()
		return fmt.Errorf("reconcile: check chunks: %w", err)
	}
	stats.Checked += len(ids)
	for i, in := range batch {
		if referenced[i] {
			continue
		}
		deleted, err := r.st.DeleteIfUnchanged(ctx, in.ID, in.ModTime)
		if err != nil {
			r.m.errors.Inc()
			return fmt.Errorf("reconcile: %w", err)
		}
		if deleted {
			stats.Deleted++
			r.m.deleted.Inc()
			r.log.Info("deleted orphan chunk", "chunk", in.ID, "size", in.Size, "modified", in.ModTime)
		}
	}
	return nil
}

type reconcileMetrics struct {
	deleted  prometheus.Counter
	errors   prometheus.Counter
	lastPass prometheus.Gauge
}

func newReconcileMetrics(reg prometheus.Registerer, node string) *reconcileMetrics {
	labels := nodeLabels(node)
	m := &reconcileMetrics{
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Name: "orphans_deleted_total",
			Help: "Unreferenced chunks older than the grace period deleted by reconciliation.", ConstLabels: labels,
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "reconcile", Name: "errors_total",
			Help: "Reconciliation passes stopped by an error (nothing more deleted).", ConstLabels: labels,
		}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cairn", Subsystem: "reconcile", Name: "last_pass_timestamp_seconds",
			Help: "When the last complete reconciliation pass ended (Unix seconds).", ConstLabels: labels,
		}),
	}
	reg.MustRegister(m.deleted, m.errors, m.lastPass)
	return m
}
