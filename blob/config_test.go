package blob

import (
	"flag"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"12345", 12345, true},
		{"10G", 10 << 30, true},
		{"10g", 10 << 30, true},
		{"10GiB", 10 << 30, true},
		{"10GB", 10e9, true},
		{"512M", 512 << 20, true},
		{"1.5T", 3 << 39, true},
		{"2 TiB", 2 << 40, true},
		{"100B", 100, true},
		{"8P", 8 << 50, true},
		{"8192P", 0, false},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"1e3", 0, false},
		{"G", 0, false},
		{"", 0, false},
		{"-1G", 0, false},
		{"10X", 0, false},
		{"1..5G", 0, false},
	} {
		got, err := ParseSize(tc.s)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (ok %v)", tc.s, got, err, tc.want, tc.ok)
		}
	}
}

func TestConfigFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("blobd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{"--id=b1", "--data-dir=/d", "--addr=:7401", "--zone=z1", "--rack=r2",
		"--capacity=10G", "--heartbeat-interval=3s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "b1" || cfg.DataDir != "/d" || cfg.Addr != ":7401" || cfg.Zone != "z1" || cfg.Rack != "r2" ||
		cfg.Capacity != 10<<30 || cfg.HeartbeatInterval != 3*time.Second || cfg.LocalSocket != "" || !cfg.PeerLocalSockets {
		t.Fatalf("parsed config %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := fs.Parse([]string{"--capacity=lots"}); err == nil {
		t.Fatal("--capacity=lots accepted")
	}

	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, name := range []string{"id", "data-dir", "addr", "advertise-addr", "zone", "rack", "capacity", "heartbeat-interval", "shutdown-timeout",
		"task-concurrency", "task-timeout", "scrub-rate", "scrub-interval", "orphan-grace", "reconcile-interval",
		"local-socket", "peer-local-sockets"} {
		if !strings.Contains(help.String(), "-"+name) {
			t.Errorf("--help lacks --%s", name)
		}
	}
}

func TestConfigHealingFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want func(c Config) bool
	}{
		{nil, func(c Config) bool {
			return c.TaskConcurrency == DefaultTaskConcurrency && c.TaskTimeout == DefaultTaskTimeout &&
				c.ScrubRate == DefaultScrubRate && c.ScrubInterval == DefaultScrubInterval &&
				c.OrphanGrace == DefaultOrphanGrace && c.ReconcileInterval == DefaultReconcileInterval
		}},
		{[]string{"--task-concurrency=9", "--task-timeout=1m", "--scrub-rate=10M", "--scrub-interval=6h",
			"--orphan-grace=30m", "--reconcile-interval=2h"}, func(c Config) bool {
			return c.TaskConcurrency == 9 && c.TaskTimeout == time.Minute && c.ScrubRate == 10<<20 &&
				c.ScrubInterval == 6*time.Hour && c.OrphanGrace == 30*time.Minute && c.ReconcileInterval == 2*time.Hour
		}},
		{[]string{"--scrub-rate=0", "--reconcile-interval=0"}, func(c Config) bool {
			return c.ScrubRate == ScrubOff && c.ReconcileInterval == ReconcileOff
		}},
	} {
		var cfg Config
		fs := flag.NewFlagSet("blobd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !tc.want(cfg) {
			t.Errorf("%v: parsed %+v", tc.args, cfg)
		}
	}
	for _, bad := range []string{"--scrub-rate=fast", "--reconcile-interval=-1s", "--reconcile-interval=soon"} {
		var cfg Config
		fs := flag.NewFlagSet("blobd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		if err := fs.Parse([]string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// A Config built in code gets the same defaults: scrubbing is on.
	c := Config{}
	c.setDefaults()
	if c.ScrubRate != DefaultScrubRate || c.ReconcileInterval != DefaultReconcileInterval {
		t.Errorf("defaults %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{ID: "b1", DataDir: "/d", Addr: "127.0.0.1:0"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no id":                   func(c *Config) { c.ID = "" },
		"id with slash":           func(c *Config) { c.ID = "a/b" },
		"id with space":           func(c *Config) { c.ID = "a b" },
		"no data dir":             func(c *Config) { c.DataDir = "" },
		"addr no port":            func(c *Config) { c.Addr = "localhost" },
		"bad advertise":           func(c *Config) { c.AdvertiseAddr = "x" },
		"negative cap":            func(c *Config) { c.Capacity = -1 },
		"negative beats":          func(c *Config) { c.HeartbeatInterval = -time.Second },
		"negative tasks":          func(c *Config) { c.TaskConcurrency = -1 },
		"negative task timeout":   func(c *Config) { c.TaskTimeout = -time.Second },
		"negative scrub interval": func(c *Config) { c.ScrubInterval = -time.Second },
		"negative grace":          func(c *Config) { c.OrphanGrace = -time.Second },
		"socket file path":        func(c *Config) { c.LocalSocket = "/run/blobd.sock" },
		"socket without name":     func(c *Config) { c.LocalSocket = "@" },
		"socket name too long":    func(c *Config) { c.LocalSocket = "@" + strings.Repeat("x", 108) },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	for _, socket := range []string{"", LocalSocketOff, "@cairn/b1", "@" + strings.Repeat("x", 107)} {
		c := good
		c.LocalSocket = socket
		if err := c.Validate(); (err == nil) != (socket == "" || socket == LocalSocketOff || runtime.GOOS == "linux") {
			t.Errorf("--local-socket %q: Validate = %v", socket, err)
		}
	}
}
