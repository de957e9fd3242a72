package metadata

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/cairnstore/cairn/internal/hclogslog"
)

// raftRelevel lowers two hashicorp/raft messages that are routine where
// raft cannot tell: every start of a member that has not heard from a
// leader yet "reached the heartbeat timeout" (WARN), and every stop cuts
// inbound connections that then "failed to decode" with the transport's
// own shutdown error (ERROR). The same messages after a leader was known,
// or with another error, keep raft's level.
func raftRelevel(level hclog.Level, msg string, args []any) hclog.Level {
	switch msg {
	case "heartbeat timeout reached, starting election":
		if v, ok := hclogslog.Arg(args, "last-leader-addr"); ok && fmt.Sprint(v) == "" {
			return hclog.Info
		}
	case "failed to decode incoming command":
		if v, ok := hclogslog.Arg(args, "error"); ok {
			if err, ok := v.(error); ok && errors.Is(err, raft.ErrTransportShutdown) {
				return hclog.Debug
			}
		}
	}
	return level
}
