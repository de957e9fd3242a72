package metadata

import (
	"flag"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseECScheme(t *testing.T) {
	tests := []struct {
		in      string
		want    ECScheme
		wantErr bool
	}{
		{"4+2", ECScheme{4, 2}, false},
		{" 10 + 4 ", ECScheme{10, 4}, false},
		{"1+0", ECScheme{1, 0}, false},
		{"16+8", ECScheme{16, 8}, false},
		{"0+2", ECScheme{}, true},
		{"17+2", ECScheme{}, true},
		{"4+9", ECScheme{}, true},
		{"4", ECScheme{}, true},
		{"a+b", ECScheme{}, true},
		{"", ECScheme{}, true},
	}
	for _, tt := range tests {
		got, err := ParseECScheme(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseECScheme(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseInitialCluster(t *testing.T) {
	tests := []struct {
		in      string
		want    []Peer
		wantErr bool
	}{
		{"m1=10.0.0.1:7000", []Peer{{"m1", "10.0.0.1:7000"}}, false},
		{"m1=a:1, m2=b:2,", []Peer{{"m1", "a:1"}, {"m2", "b:2"}}, false},
		{"", nil, false},
		{"m1", nil, true},
		{"=a:1", nil, true},
		{"m1=", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseInitialCluster(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseInitialCluster(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.ID, c.DataDir, c.RaftAddr, c.GRPCAddr = "m1", "/tmp/x", "10.0.0.1:7000", ":7100"
		c.InitialCluster = []Peer{{"m1", "10.0.0.1:7000"}, {"m2", "10.0.0.2:7000"}}
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no initial cluster (restart or join)", func(c *Config) { c.InitialCluster = nil }, ""},
		{"missing id", func(c *Config) { c.ID = "" }, "--id is required"},
		{"missing data dir", func(c *Config) { c.DataDir = "" }, "--data-dir is required"},
		{"wildcard raft address", func(c *Config) { c.RaftAddr = "0.0.0.0:7000" }, "wildcard"},
		{"raft address without host", func(c *Config) { c.RaftAddr = ":7000" }, "no host"},
		{"raft address on port 0", func(c *Config) { c.RaftAddr = "10.0.0.1:0" }, "fixed port"},
		{"port 0 is fine with a bound listener", func(c *Config) {
			c.RaftAddr, c.InitialCluster = "", nil
			c.RaftListener = dummyListener{}
		}, ""},
		{"self not in initial cluster", func(c *Config) { c.ID = "m3" }, "does not include this member"},
		{"duplicate member", func(c *Config) { c.InitialCluster = append(c.InitialCluster, Peer{"m2", "10.0.0.3:7000"}) }, "repeats"},
		{"bad scheme", func(c *Config) { c.DefaultScheme = ECScheme{0, 1} }, "--ec"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "lease"},
		{"too many append entries", func(c *Config) { c.MaxAppendEntries = 5000 }, "max-append-entries"},
		{"gather off", func(c *Config) { c.ProposeGather = 0 }, ""},
		{"negative gather", func(c *Config) { c.ProposeGather = -time.Millisecond }, "--propose-gather"},
		{"gather over 100ms", func(c *Config) { c.ProposeGather = time.Second }, "--propose-gather"},
		{"bad raft log level", func(c *Config) { c.RaftLogLevel = "loud" }, "raft log level"},
		{"upload expiry off", func(c *Config) { c.Heal.UploadExpiry = 0 }, ""},
		{"negative upload expiry", func(c *Config) { c.Heal.UploadExpiry = -time.Hour }, "--upload-expiry"},
		{"no expiry scan interval", func(c *Config) { c.Heal.ExpiryScan = 0 }, "--expiry-scan-interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("metad", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--id", "m2", "--data-dir", "/d", "--raft-addr", "h2:7000", "--grpc-addr", ":7100",
		"--http-addr", ":7200", "--initial-cluster", "m1=h1:7000,m2=h2:7000", "--ec", "6+3",
		"--raft-election-timeout", "2s", "--snapshot-threshold", "100", "--upload-expiry", "48h",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "m2" || c.DataDir != "/d" || c.RaftAddr != "h2:7000" || c.GRPCAddr != ":7100" || c.HTTPAddr != ":7200" ||
		len(c.InitialCluster) != 2 || c.DefaultScheme != (ECScheme{6, 3}) || c.ElectionTimeout != 2*time.Second ||
		c.SnapshotThreshold != 100 || c.HeartbeatTimeout != DefaultHeartbeatTimeout || c.Heal.UploadExpiry != 48*time.Hour {
		t.Fatalf("parsed config = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := fs.Parse([]string{"--ec", "4x2"}); err == nil {
		t.Fatal("--ec 4x2 accepted")
	}
}

// dummyListener stands in for a bound listener; Validate only checks that
// there is one.
type dummyListener struct{ net.Listener }
