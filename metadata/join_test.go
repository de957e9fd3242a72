package metadata

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestJoinFlag(t *testing.T) {
	tests := []struct {
		args     []string
		wantJoin []string
		wantErr  string
	}{
		{args: []string{"--join", "10.0.0.1:7200, 10.0.0.2:7200,"}, wantJoin: []string{"10.0.0.1:7200", "10.0.0.2:7200"}},
		{args: []string{"--join", "10.0.0.1:7200", "--initial-cluster", "m1=127.0.0.1:7100"}, wantJoin: []string{"10.0.0.1:7200"}, wantErr: "exclude each other"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		fs := flag.NewFlagSet("metad", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		args := append([]string{"--id", "m1", "--data-dir", t.TempDir(), "--raft-addr", "127.0.0.1:7100", "--grpc-addr", "127.0.0.1:7200"}, tt.args...)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("parse %q: %v", args, err)
		}
		if !slices.Equal(c.Join, tt.wantJoin) {
			t.Errorf("%q: Join = %q, want %q", tt.args, c.Join, tt.wantJoin)
		}
		err := c.Validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: Validate = %v, want error containing %q", tt.args, err, tt.wantErr)
		}
	}
}
