package metadata

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestRaftRelevel(t *testing.T) {
	const election = "heartbeat timeout reached, starting election"
	const decode = "failed to decode incoming command"
	tests := []struct {
		level hclog.Level
		msg   string
		args  []any
		want  hclog.Level
	}{
		{hclog.Warn, election, []any{"last-leader-addr", raft.ServerAddress(""), "last-leader-id", raft.ServerID("")}, hclog.Info},
		{hclog.Warn, election, []any{"last-leader-addr", raft.ServerAddress("127.0.0.1:7000"), "last-leader-id", raft.ServerID("m1")}, hclog.Warn},
		{hclog.Warn, election, nil, hclog.Warn},
		{hclog.Error, decode, []any{"error", raft.ErrTransportShutdown}, hclog.Debug},
		{hclog.Error, decode, []any{"error", fmt.Errorf("read: %w", raft.ErrTransportShutdown)}, hclog.Debug},
		{hclog.Error, decode, []any{"error", errors.New("unknown rpc type 9")}, hclog.Error},
		{hclog.Error, "failed to flush response", []any{"error", raft.ErrTransportShutdown}, hclog.Error},
	}
	for _, tc := range tests {
		if got := raftRelevel(tc.level, tc.msg, tc.args); got != tc.want {
			t.Errorf("raftRelevel(%v, %q, %v) = %v, want %v", tc.level, tc.msg, tc.args, got, tc.want)
		}
	}
}
