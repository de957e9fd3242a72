package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// statusView is `cairn status --json`. A section is null when this metad
// does not serve its RPC (Unimplemented).
type statusView struct {
	Metad     *metadView     `json:"metad"`
	Nodes     *nodesSummary  `json:"nodes"`
	Segments  *healthView    `json:"segments"`
	Rebalance *rebalanceView `json:"rebalance"`
}

func (a *admin) statusCmd() *cobra.Command {
	return a.adminCmd(&cobra.Command{
		Use:   "status",
		Short: "Show the cluster at a glance: metad, blob nodes, capacity, redundancy, repair and rebalance",
		Args:  cobra.NoArgs,
		RunE:  a.withClient(a.status),
	})
}

// optional runs a call whose section shows "n/a" when the RPC is
// Unimplemented; other errors fail the command.
func optional[T any](ctx context.Context, a *admin, rpc string, fn func(context.Context) (T, error)) (T, bool, error) {
	v, err := call(ctx, a, rpc, fn)
	if isUnimplemented(err) {
		return v, false, nil
	}
	return v, err == nil, err
}

func (a *admin) status(ctx context.Context, cl *metaclient.Client, _ []string) error {
	var v statusView
	cs, ok, err := optional(ctx, a, "ClusterStatus", func(ctx context.Context) (*pb.ClusterStatusResponse, error) {
		return cl.ClusterStatus(ctx, &pb.ClusterStatusRequest{})
	})
	if err != nil {
		return err
	}
	if ok {
		v.Metad = toMetadView(cs)
	}
	cm, ok, err := optional(ctx, a, "GetClusterMap", func(ctx context.Context) (*pb.GetClusterMapResponse, error) {
		return cl.GetClusterMap(ctx, &pb.GetClusterMapRequest{})
	})
	if err != nil {
		return err
	}
	if ok {
		v.Nodes = toNodesSummary(cm.GetClusterMap())
	}
	hs, ok, err := optional(ctx, a, "HealthStatus", func(ctx context.Context) (*pb.HealthStatusResponse, error) {
		return cl.HealthStatus(ctx, &pb.HealthStatusRequest{})
	})
	if err != nil {
		return err
	}
	if ok {
		v.Segments = toHealthView(hs)
	}
	rs, ok, err := optional(ctx, a, "RebalanceStatus", func(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
		return cl.RebalanceStatus(ctx, &pb.RebalanceStatusRequest{})
	})
	if err != nil {
		return err
	}
	if ok {
		v.Rebalance = toRebalanceView(rs)
	}
	return a.emit(v, func(w io.Writer) error { return renderStatus(w, &v) })
}

const na = "n/a"

func renderStatus(w io.Writer, v *statusView) error {
	t := clitable.New()
	if m := v.Metad; m != nil {
		leader := m.LeaderID
		if leader == "" {
			leader = "NONE"
		}
		voters := 0
		var names []string
		for _, mm := range m.Members {
			name := mm.ID
			if mm.Voter {
				voters++
			} else {
				name += " (nonvoter)"
			}
			if mm.Leader {
				name += " (leader)"
			}
			names = append(names, name)
		}
		t.Row("metad", fmt.Sprintf("leader %s, term %d, %d members (%d voters), applied %d of %d", leader, m.Term, len(m.Members), voters, m.AppliedIndex, m.CommitIndex))
		t.Row("members", strings.Join(names, ", "))
	} else {
		t.Row("metad", na)
	}
	if n := v.Nodes; n != nil {
		var parts []string
		for _, st := range stateOrder {
			if c := n.ByState[st]; c > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", c, st))
			}
		}
		nodes := fmt.Sprintf("%d", n.Total)
		if len(parts) > 0 {
			nodes += ": " + strings.Join(parts, ", ")
		}
		t.Row("blob nodes", fmt.Sprintf("%s (map epoch %d)", nodes, n.Epoch))
		t.Row("capacity", fmt.Sprintf("%s used of %s raw (%s)", clitable.Bytes(n.UsedBytes), clitable.Bytes(n.CapacityBytes), clitable.Percent(n.UsedBytes, n.CapacityBytes)))
	} else {
		t.Row("blob nodes", na)
		t.Row("capacity", na)
	}
	if h := v.Segments; h != nil {
		t.Row("segments", redundancyLine(h))
		t.Row("repair", repairLine(h))
	} else {
		t.Row("segments", na)
		t.Row("repair", na)
	}
	if r := v.Rebalance; r != nil {
		t.Row("rebalance", rebalanceLine(r))
	} else {
		t.Row("rebalance", na)
	}
	return t.Render(w)
}

// redundancyLine: "1234: 1230 full, 3 at -1, 1 at -2, 0 lost".
func redundancyLine(h *healthView) string {
	parts := []string{}
	for i, c := range h.SegmentsByMissing {
		switch {
		case i == 0:
			parts = append(parts, fmt.Sprintf("%d full", c))
		case c > 0:
			parts = append(parts, fmt.Sprintf("%d at -%d", c, i))
		}
	}
	if len(h.SegmentsByMissing) == 0 {
		parts = append(parts, fmt.Sprintf("%d full", h.SegmentsTotal-h.SegmentsDegraded))
	}
	parts = append(parts, fmt.Sprintf("%d lost", h.SegmentsLost))
	line := fmt.Sprintf("%d: %s", h.SegmentsTotal, strings.Join(parts, ", "))
	if h.SegmentsLost > 0 {
		line += " (see `cairn repair status`)"
	}
	return line
}

func repairLine(h *healthView) string {
	if h.RepairQueue == 0 && h.RepairsInFlight == 0 {
		return "idle"
	}
	return fmt.Sprintf("queue %d, %d in flight, %s, ETA %s", h.RepairQueue, h.RepairsInFlight, clitable.Rate(h.RepairBytesPerSecond), clitable.Seconds(h.ETASeconds))
}

func rebalanceLine(r *rebalanceView) string {
	if !r.Running {
		if r.Outcome != "" {
			return fmt.Sprintf("idle (last run: %s, %s of %s moved)", r.Outcome, clitable.Bytes(r.BytesMoved), clitable.Bytes(r.BytesTotal))
		}
		return "idle"
	}
	return fmt.Sprintf("running: %s of %s moved (%s), %s, ETA %s", clitable.Bytes(r.BytesMoved), clitable.Bytes(r.BytesTotal),
		clitable.Percent(r.BytesMoved, r.BytesTotal), clitable.Rate(r.BytesPerSecond), clitable.Seconds(r.ETASeconds))
}
