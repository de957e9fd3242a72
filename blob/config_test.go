package blob

import (
	"flag"
	"io"
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
		cfg.Capacity != 10<<30 || cfg.HeartbeatInterval != 3*time.Second {
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
	for _, name := range []string{"id", "data-dir", "addr", "advertise-addr", "zone", "rack", "capacity", "heartbeat-interval", "shutdown-timeout"} {
		if !strings.Contains(help.String(), "-"+name) {
			t.Errorf("--help lacks --%s", name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{ID: "b1", DataDir: "/d", Addr: "127.0.0.1:0"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no id":          func(c *Config) { c.ID = "" },
		"id with slash":  func(c *Config) { c.ID = "a/b" },
		"id with space":  func(c *Config) { c.ID = "a b" },
		"no data dir":    func(c *Config) { c.DataDir = "" },
		"addr no port":   func(c *Config) { c.Addr = "localhost" },
		"bad advertise":  func(c *Config) { c.AdvertiseAddr = "x" },
		"negative cap":   func(c *Config) { c.Capacity = -1 },
		"negative beats": func(c *Config) { c.HeartbeatInterval = -time.Second },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
