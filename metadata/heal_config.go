package metadata

import (
	"errors"
	"flag"
	"time"
)

// HealConfig tunes the leader's self-healing loops: liveness (liveness.go),
// repair (repair.go), garbage collection (gc.go) and the health figures
// (health.go).
type HealConfig struct {
	// A blob node that has not heartbeated for NodeSuspectAfter is suspect
	// (still read from, no new chunks); after NodeDownAfter it is down and
	// its chunks are rebuilt elsewhere. A new leader counts silence from
	// the start of its term.
	NodeSuspectAfter time.Duration
	NodeDownAfter    time.Duration

	// RepairScanInterval is how often the leader rebuilds its repair queue
	// from the replicated state (it also does so when a node goes down or
	// chunks are reported bad).
	RepairScanInterval time.Duration
	// RepairTaskTimeout: a task not reported within it expires and its work
	// is planned again (with backoff).
	RepairTaskTimeout time.Duration
	// RepairBackoff is the first pause before a failed or expired repair of
	// a segment is tried again; it doubles per attempt up to 64 times it.
	RepairBackoff time.Duration
	// At most RepairPerNode repairs and moves write to any one node at once,
	// and RepairMaxInflight in total.
	RepairPerNode     int
	RepairMaxInflight int
	// RepairBytesPerSecond caps the bytes repairs read from peers (each
	// rebuilt shard reads about one segment's worth); 0 means no cap.
	RepairBytesPerSecond int64
	// RepairQueueMax bounds the segments the leader holds queued in memory
	// (the most urgent ones); the rest wait for a later scan.
	RepairQueueMax int

	// GCInterval is how often GC entries are turned into delete tasks and
	// finished ones acknowledged.
	GCInterval time.Duration
	// GCGrace is how long released segments are kept before their chunks
	// are deleted, so a GET that resolved the old version just before an
	// overwrite or delete can finish reading it. 0: no grace (tests).
	GCGrace time.Duration

	// HealthScanInterval is the pause between full passes over all
	// segments that compute the health figures; HealthScanRate caps the
	// segments read per second during a pass (0: no cap).
	HealthScanInterval time.Duration
	HealthScanRate     int

	// UploadExpiry: a multipart upload initiated longer ago than this is
	// aborted and its parts' chunks collected (expire.go); 0 never does.
	UploadExpiry time.Duration
	// ExpiryScan is the pause between passes aborting expired uploads and
	// carrying out the buckets' lifecycle rules.
	ExpiryScan time.Duration
}

// DefaultHealConfig returns the defaults for production.
func DefaultHealConfig() HealConfig {
	return HealConfig{
		NodeSuspectAfter:     10 * time.Second,
		NodeDownAfter:        5 * time.Minute,
		RepairScanInterval:   30 * time.Second,
		RepairTaskTimeout:    2 * time.Minute,
		RepairBackoff:        5 * time.Second,
		RepairPerNode:        4,
		RepairMaxInflight:    64,
		RepairBytesPerSecond: 256 << 20,
		RepairQueueMax:       100_000,
		GCInterval:           10 * time.Second,
		GCGrace:              10 * time.Minute,
		HealthScanInterval:   time.Minute,
		HealthScanRate:       50_000,
		UploadExpiry:         7 * 24 * time.Hour,
		ExpiryScan:           time.Hour,
	}
}

func (c *HealConfig) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.NodeSuspectAfter, "node-suspect-after", c.NodeSuspectAfter, "a blob node silent this long is suspect (no new chunks)")
	fs.DurationVar(&c.NodeDownAfter, "node-down-after", c.NodeDownAfter, "a blob node silent this long is down and its chunks are rebuilt elsewhere")
	fs.DurationVar(&c.RepairScanInterval, "repair-scan-interval", c.RepairScanInterval, "how often the repair queue is rebuilt from the metadata state")
	fs.DurationVar(&c.RepairTaskTimeout, "repair-task-timeout", c.RepairTaskTimeout, "a repair, move or delete task not reported within this is planned again")
	fs.DurationVar(&c.RepairBackoff, "repair-backoff", c.RepairBackoff, "first pause before retrying a failed repair (doubles per attempt, up to 64x)")
	fs.IntVar(&c.RepairPerNode, "repair-per-node", c.RepairPerNode, "most concurrent repairs and moves writing to one blob node")
	fs.IntVar(&c.RepairMaxInflight, "repair-max-inflight", c.RepairMaxInflight, "most concurrent repairs and moves in the cluster")
	fs.Int64Var(&c.RepairBytesPerSecond, "repair-bytes-per-second", c.RepairBytesPerSecond, "bandwidth budget of repairs, bytes read from peers per second (0: unlimited)")
	fs.IntVar(&c.RepairQueueMax, "repair-queue-max", c.RepairQueueMax, "most segments held in the leader's repair queue at once (the most urgent)")
	fs.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "how often garbage chunks are handed to blob nodes for deletion")
	fs.DurationVar(&c.GCGrace, "gc-grace", c.GCGrace, "how long chunks of overwritten or deleted objects are kept before deletion (lets reads in flight finish)")
	fs.DurationVar(&c.HealthScanInterval, "health-scan-interval", c.HealthScanInterval, "pause between passes computing the health figures")
	fs.IntVar(&c.HealthScanRate, "health-scan-rate", c.HealthScanRate, "most segments read per second by the health pass (0: unlimited)")
	fs.DurationVar(&c.UploadExpiry, "upload-expiry", c.UploadExpiry, "abort multipart uploads initiated longer ago than this and free their parts (0: never)")
	fs.DurationVar(&c.ExpiryScan, "expiry-scan-interval", c.ExpiryScan, "pause between passes that abort expired multipart uploads and carry out bucket lifecycle rules")
}

func (c *HealConfig) validate() error {
	var errs []error
	if c.NodeSuspectAfter <= 0 || c.NodeDownAfter < c.NodeSuspectAfter {
		errs = append(errs, errors.New("--node-suspect-after must be positive and --node-down-after at least as long"))
	}
	if c.RepairScanInterval <= 0 || c.RepairTaskTimeout <= 0 || c.RepairBackoff <= 0 || c.GCInterval <= 0 || c.HealthScanInterval <= 0 || c.GCGrace < 0 {
		errs = append(errs, errors.New("--repair-scan-interval, --repair-task-timeout, --repair-backoff, --gc-interval and --health-scan-interval must be positive"))
	}
	if c.RepairPerNode < 1 || c.RepairMaxInflight < 1 || c.RepairQueueMax < 1 {
		errs = append(errs, errors.New("--repair-per-node, --repair-max-inflight and --repair-queue-max must be at least 1"))
	}
	if c.UploadExpiry < 0 || c.ExpiryScan <= 0 {
		errs = append(errs, errors.New("--upload-expiry must not be negative and --expiry-scan-interval must be positive"))
	}
	if c.RepairBytesPerSecond < 0 || c.HealthScanRate < 0 {
		errs = append(errs, errors.New("--repair-bytes-per-second and --health-scan-rate must not be negative"))
	}
	return errors.Join(errs...)
}
