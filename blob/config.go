package blob

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a blob node (Server).
type Config struct {
	// ID names the node in the cluster map; stable across restarts.
	ID string
	// DataDir holds the chunks (see Store).
	DataDir string
	// Addr is the HOST:PORT the HTTP API listens on; port 0 picks one.
	Addr string
	// LocalSocket is the Unix socket the HTTP API also listens on, for
	// clients on this host (see localsock.go): "" derives an abstract
	// name from the TCP listener's address on Linux ("@cairn-blobd/" and
	// the address) and serves none elsewhere; "@name" is an abstract
	// socket of that name (Linux only); LocalSocketOff serves TCP only.
	LocalSocket string
	// PeerLocalSockets lets the node's own client (repairs and moves
	// reading from peers) reach peers on this host over their Unix
	// sockets (ClientConfig.LocalSockets). Off in the zero Config, so
	// tests that cut nodes off with TCP proxies keep cutting them; the
	// blobd flag defaults to on.
	PeerLocalSockets bool
	// AdvertiseAddr is the HOST:PORT registered with metad, for when
	// Addr is not what others should dial; empty means the listener's
	// address (with the host name when Addr has no host).
	AdvertiseAddr string
	// Zone and Rack are the node's failure domains.
	Zone, Rack string
	// Capacity in bytes; 0 means the size of the data directory's
	// filesystem.
	Capacity int64
	// HeartbeatInterval is how often usage is reported to metad, and how
	// often the data disk is probed (diskwatch.go).
	HeartbeatInterval time.Duration
	// DiskStallTimeout is how long a probe of the data disk may take before
	// the node withholds its heartbeats and fails /healthz (diskwatch.go);
	// 0 means DefaultDiskStallTimeout, negative never.
	DiskStallTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for requests in flight
	// once its context ends.
	ShutdownTimeout time.Duration

	// TaskConcurrency bounds the tasks from metad (repairs, moves,
	// deletes) run at once; 0 means DefaultTaskConcurrency.
	TaskConcurrency int
	// TaskTimeout bounds each task; 0 means DefaultTaskTimeout.
	TaskTimeout time.Duration
	// ScrubRate is the scrubber's read rate in bytes per second; 0 means
	// DefaultScrubRate, ScrubOff (any negative value) disables scrubbing.
	ScrubRate int64
	// ScrubInterval is the pause between full scrub passes; 0 means
	// DefaultScrubInterval.
	ScrubInterval time.Duration
	// OrphanGrace is how old an unreferenced chunk must be before orphan
	// reconciliation deletes it; 0 means DefaultOrphanGrace.
	OrphanGrace time.Duration
	// ReconcileInterval is the time between orphan reconciliation passes;
	// 0 means DefaultReconcileInterval, ReconcileOff (any negative value)
	// disables reconciliation.
	ReconcileInterval time.Duration

	// Logger; nil discards.
	Logger *slog.Logger
	// Registry gets the node's metrics and is served at /metrics; nil
	// means a fresh one.
	Registry *prometheus.Registry
	// Registrar registers the node and takes its heartbeats; nil means
	// the node only serves.
	Registrar Registrar
	// WrapStorage, when set, wraps the store the API serves: the seam
	// where tests put a store with programmed faults.
	WrapStorage func(Storage) Storage
}

// Defaults of Config.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultDiskStallTimeout  = 30 * time.Second
)

// Values of Config.ScrubRate and Config.ReconcileInterval that turn the
// scrubber and orphan reconciliation off (the flags take 0 for it).
const (
	ScrubOff     = -1
	ReconcileOff = -1
)

// RegisterFlags defines the flags of the Config fields that are set from
// the command line.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ID, "id", c.ID, "node id in the cluster map, stable across restarts (required)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory holding the chunks (required)")
	fs.StringVar(&c.Addr, "addr", orDefault(c.Addr, "127.0.0.1:7400"), "HOST:PORT the blob HTTP API listens on")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", c.AdvertiseAddr, "HOST:PORT registered with metad (default: the listen address)")
	fs.StringVar(&c.LocalSocket, "local-socket", c.LocalSocket, "Unix socket the blob API also listens on for clients on this host: "+
		"@NAME for an abstract socket (Linux), "+LocalSocketOff+" for none; empty: @cairn-blobd/<listen address> on Linux, none elsewhere")
	fs.BoolVar(&c.PeerLocalSockets, "peer-local-sockets", true, "read from peers on this host (repairs, moves) over their local sockets")
	fs.StringVar(&c.Zone, "zone", c.Zone, "failure zone of this node")
	fs.StringVar(&c.Rack, "rack", c.Rack, "rack of this node within its zone")
	fs.Var(&sizeFlag{&c.Capacity}, "capacity", "capacity in `BYTES`, plain or with a unit: 500M, 10G, 2T (binary: G = 2^30); 0 = size of the filesystem")
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often to report usage to metad (and probe the data disk)")
	if c.DiskStallTimeout == 0 {
		c.DiskStallTimeout = DefaultDiskStallTimeout
	}
	fs.DurationVar(&c.DiskStallTimeout, "disk-stall-timeout", c.DiskStallTimeout, "withhold heartbeats (so metad marks the node down and repairs its chunks) while a probe of the data disk has taken this long (negative: never)")
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to wait for requests in flight when stopping")

	if c.TaskConcurrency == 0 {
		c.TaskConcurrency = DefaultTaskConcurrency
	}
	fs.IntVar(&c.TaskConcurrency, "task-concurrency", c.TaskConcurrency, "most tasks from metad (repairs, moves, deletes) run at once")
	if c.TaskTimeout == 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	fs.DurationVar(&c.TaskTimeout, "task-timeout", c.TaskTimeout, "deadline of each task from metad (keep it at most metad's --repair-task-timeout)")
	if c.ScrubRate == 0 {
		c.ScrubRate = DefaultScrubRate
	}
	fs.Var(&offSizeFlag{&c.ScrubRate}, "scrub-rate", "scrubber read rate in `BYTES` per second (units as for --capacity, e.g. 50M); 0 disables scrubbing")
	if c.ScrubInterval == 0 {
		c.ScrubInterval = DefaultScrubInterval
	}
	fs.DurationVar(&c.ScrubInterval, "scrub-interval", c.ScrubInterval, "pause between the end of a full scrub pass and the start of the next")
	if c.OrphanGrace == 0 {
		c.OrphanGrace = DefaultOrphanGrace
	}
	fs.DurationVar(&c.OrphanGrace, "orphan-grace", c.OrphanGrace, "age an unreferenced chunk must reach before orphan reconciliation deletes it")
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	fs.Var(&offDurationFlag{&c.ReconcileInterval}, "reconcile-interval", "time between orphan reconciliation passes; 0 disables reconciliation")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c *Config) setDefaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.DiskStallTimeout == 0 {
		c.DiskStallTimeout = DefaultDiskStallTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TaskConcurrency == 0 {
		c.TaskConcurrency = DefaultTaskConcurrency
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = DefaultScrubRate
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = DefaultScrubInterval
	}
	if c.OrphanGrace == 0 {
		c.OrphanGrace = DefaultOrphanGrace
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("--id is required"))
	} else if strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == '/' || r > '~' }) {
		errs = append(errs, fmt.Errorf("--id %q: use printable ASCII without spaces or slashes", c.ID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: want HOST:PORT: %w", c.Addr, err))
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("--advertise-addr %q: want HOST:PORT: %w", c.AdvertiseAddr, err))
		}
	}
	if err := validLocalSocket(c.LocalSocket); err != nil {
		errs = append(errs, fmt.Errorf("--local-socket %q: %w", c.LocalSocket, err))
	}
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("--capacity %d: must not be negative", c.Capacity))
	}
	if c.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("--heartbeat-interval %v: must be positive", c.HeartbeatInterval))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: must not be negative", c.ShutdownTimeout))
	}
	if c.DiskStallTimeout > 0 && c.DiskStallTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--disk-stall-timeout %v: must be at least 100ms (or negative: never)", c.DiskStallTimeout))
	}
	if c.TaskConcurrency < 0 {
		errs = append(errs, fmt.Errorf("--task-concurrency %d: must not be negative", c.TaskConcurrency))
	}
	if c.TaskTimeout < 0 {
		errs = append(errs, fmt.Errorf("--task-timeout %v: must not be negative", c.TaskTimeout))
	}
	if c.ScrubInterval < 0 {
		errs = append(errs, fmt.Errorf("--scrub-interval %v: must not be negative", c.ScrubInterval))
	}
	if c.OrphanGrace < 0 {
		errs = append(errs, fmt.Errorf("--orphan-grace %v: must not be negative", c.OrphanGrace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("blob config: %w", err)
	}
	return nil
}

// sizeFlag is a flag.Value of a byte count with an optional unit.
type sizeFlag struct{ p *int64 }

func (f *sizeFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatInt(*f.p, 10)
}

func (f *sizeFlag) Set(s string) error {
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// offSizeFlag is a sizeFlag where 0 means off (stored as ScrubOff).
type offSizeFlag struct{ p *int64 }

func (f *offSizeFlag) String() string {
	if f.p == nil || *f.p < 0 {
		return "0"
	}
	return strconv.FormatInt(*f.p, 10)
}

func (f *offSizeFlag) Set(s string) error {
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	if v == 0 {
		v = ScrubOff
	}
	*f.p = v
	return nil
}

// offDurationFlag is a duration flag where 0 means off (stored as
// ReconcileOff).
type offDurationFlag struct{ p *time.Duration }

func (f *offDurationFlag) String() string {
	if f.p == nil || *f.p < 0 {
		return "0s"
	}
	return f.p.String()
}

func (f *offDurationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %v: must not be negative", v)
	}
	if v == 0 {
		v = ReconcileOff
	}
	*f.p = v
	return nil
}

// ParseSize parses a byte count: a plain number of bytes, or a number
// (decimals allowed) with a unit K, M, G, T, P (also KiB, MiB, ...), all
// powers of 1024, or KB, MB, GB, TB, PB, powers of 1000.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult := int64(1)
	switch u := strings.ToUpper(unit); u {
	case "", "B":
	case "K", "KI", "KIB":
		mult = 1 << 10
	case "M", "MI", "MIB":
		mult = 1 << 20
	case "G", "GI", "GIB":
		mult = 1 << 30
	case "T", "TI", "TIB":
		mult = 1 << 40
	case "P", "PI", "PIB":
		mult = 1 << 50
	case "KB":
		mult = 1e3
	case "MB":
		mult = 1e6
	case "GB":
		mult = 1e9
	case "TB":
		mult = 1e12
	case "PB":
		mult = 1e15
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	if !strings.Contains(num, ".") {
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > math.MaxInt64/mult {
			return 0, fmt.Errorf("size %q: out of range", s)
		}
		return v * mult, nil
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	b := v * float64(mult)
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(b), nil
}

func validLocalSocket(name string) error {
	switch {
	case name == "" || name == LocalSocketOff:
		return nil
	case !strings.HasPrefix(name, "@") || len(name) < 2:
		return fmt.Errorf("want @NAME (an abstract socket) or %s", LocalSocketOff)
	case len(name) > maxAbstractName:
		return fmt.Errorf("%d bytes, at most %d", len(name), maxAbstractName)
	case runtime.GOOS != "linux":
		return errors.New("abstract sockets need Linux")
	}
	return nil
}
