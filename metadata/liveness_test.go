package metadata

import (
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

func TestLivenessNext(t *testing.T) {
	c := HealConfig{NodeSuspectAfter: 10 * time.Second, NodeDownAfter: time.Minute}
	const (
		up       = pb.NodeState_NODE_STATE_UP
		suspect  = pb.NodeState_NODE_STATE_SUSPECT
		down     = pb.NodeState_NODE_STATE_DOWN
		draining = pb.NodeState_NODE_STATE_DRAINING
		decomm   = pb.NodeState_NODE_STATE_DECOMMISSIONED
	)
	for _, tc := range []struct {
		name   string
		cur    pb.NodeState
		heard  bool
		silent time.Duration
		want   pb.NodeState
	}{
		{"up, recent", up, true, time.Second, up},
		{"up, just under suspect", up, true, 10*time.Second - 1, up},
		{"up, silent", up, true, 10 * time.Second, suspect},
		{"up, never heard, long silent: suspect first", up, false, 2 * time.Minute, suspect},
		{"up, never heard, term young", up, false, time.Second, up},
		{"suspect, still silent", suspect, true, 30 * time.Second, suspect},
		{"suspect, timed out", suspect, true, time.Minute, down},
		{"suspect, never heard, timed out", suspect, false, time.Minute, down},
		{"suspect, heard again", suspect, true, time.Second, up},
		{"suspect, not heard this term, term young", suspect, false, time.Second, suspect},
		{"down, still silent", down, true, time.Hour, down},
		{"down, heard again", down, true, time.Second, up},
		{"down, new leader heard nothing yet", down, false, time.Second, down},
		{"draining is left alone", draining, true, time.Hour, draining},
		{"decommissioned is left alone", decomm, true, time.Second, decomm},
	} {
		if got := livenessNext(tc.cur, tc.heard, tc.silent, c); got != tc.want {
			t.Errorf("%s: livenessNext(%v, heard=%v, %v) = %v, want %v", tc.name, tc.cur, tc.heard, tc.silent, got, tc.want)
		}
	}
}
