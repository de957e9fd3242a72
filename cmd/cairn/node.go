package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

func (a *admin) nodeCmd() *cobra.Command {
	cmd := a.adminCmd(&cobra.Command{
		Use:   "node",
		Short: "List, inspect, drain and decommission blob nodes",
	})
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List blob nodes: zone, rack, address, state, capacity, use, chunks, last heartbeat",
			Args:  cobra.NoArgs,
			RunE:  a.withClient(a.nodeList),
		},
		&cobra.Command{
			Use:   "show ID",
			Short: "Show one blob node",
			Args:  cobra.ExactArgs(1),
			RunE:  a.withClient(a.nodeShow),
		},
		a.drainCmd(true),
		a.drainCmd(false),
		a.decommissionCmd(),
	)
	return cmd
}

func (a *admin) nodes(ctx context.Context, cl *metaclient.Client) ([]nodeView, error) {
	resp, err := call(ctx, a, "GetClusterMap", func(ctx context.Context) (*pb.GetClusterMapResponse, error) {
		return cl.GetClusterMap(ctx, &pb.GetClusterMapRequest{})
	})
	if err != nil {
		return nil, err
	}
	out := []nodeView{}
	for _, n := range resp.GetClusterMap().GetNodes() {
		out = append(out, toNodeView(n))
	}
	slices.SortFunc(out, func(x, y nodeView) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

func (a *admin) heartbeat(n nodeView) string {
	if n.LastHeartbeat == nil {
		return "never"
	}
	return clitable.Ago(a.now(), *n.LastHeartbeat)
}

func (a *admin) nodeList(ctx context.Context, cl *metaclient.Client, _ []string) error {
	nodes, err := a.nodes(ctx, cl)
	if err != nil {
		return err
	}
	return a.emit(nodes, func(w io.Writer) error {
		if len(nodes) == 0 {
			_, err := fmt.Fprintln(w, "no blob nodes registered")
			return err
		}
		t := clitable.New("ID", "ZONE", "RACK", "ADDRESS", "STATE", "CAPACITY", "USED", "USE%", "CHUNKS", "HEARTBEAT")
		for _, n := range nodes {
			t.Row(n.ID, n.Zone, n.Rack, n.Address, n.State, clitable.Bytes(n.CapacityBytes), clitable.Bytes(n.UsedBytes),
				clitable.Percent(n.UsedBytes, n.CapacityBytes), fmt.Sprint(n.ChunkCount), a.heartbeat(n))
		}
		return t.Render(w)
	})
}

func noSuchNode(id string) error {
	return fmt.Errorf("no blob node %q (`cairn node list` shows the nodes)", id)
}

func (a *admin) nodeShow(ctx context.Context, cl *metaclient.Client, args []string) error {
	nodes, err := a.nodes(ctx, cl)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n nodeView) bool { return n.ID == args[0] })
	if i < 0 {
		return noSuchNode(args[0])
	}
	n := nodes[i]
	return a.emit(n, func(w io.Writer) error {
		t := clitable.New()
		t.Row("id", n.ID)
		t.Row("state", n.State)
		t.Row("address", n.Address)
		t.Row("zone", n.Zone)
		t.Row("rack", n.Rack)
		t.Row("capacity", clitable.Bytes(n.CapacityBytes))
		t.Row("used", fmt.Sprintf("%s (%s)", clitable.Bytes(n.UsedBytes), clitable.Percent(n.UsedBytes, n.CapacityBytes)))
		t.Row("chunks", fmt.Sprint(n.ChunkCount))
		t.Row("heartbeat", a.heartbeat(n))
		return t.Render(w)
	})
}

type drainView struct {
	Node            nodeView `json:"node"`
	DryRun          bool     `json:"dry_run"`
	ChunksRemaining int64    `json:"chunks_remaining"`
	BytesRemaining  int64    `json:"bytes_remaining"`
}

func (a *admin) drainCmd(drain bool) *cobra.Command {
	var dryRun bool
	use, short := "drain ID", "Drain a blob node: it gets no new chunks and its chunks move away (reversible with undrain)"
	if !drain {
		use, short = "undrain ID", "Stop draining a blob node: it takes new chunks again; moved chunks stay moved"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			id := args[0]
			resp, err := call(ctx, a, "SetNodeDrain", func(ctx context.Context) (*pb.SetNodeDrainResponse, error) {
				return cl.SetNodeDrain(ctx, &pb.SetNodeDrainRequest{Id: id, Drain: drain, DryRun: dryRun})
			})
			if err != nil {
				return nodeErr(id, err)
			}
			v := drainView{Node: toNodeView(resp.GetNode()), DryRun: dryRun, ChunksRemaining: resp.GetChunksRemaining(), BytesRemaining: resp.GetBytesRemaining()}
			return a.emit(v, func(w io.Writer) error {
				left := fmt.Sprintf("%d chunks (%s)", v.ChunksRemaining, clitable.Bytes(v.BytesRemaining))
				var err error
				switch {
				case dryRun && drain:
					_, err = fmt.Fprintf(w, "dry run: draining %s would move %s off it\n", id, left)
				case dryRun:
					_, err = fmt.Fprintf(w, "dry run: %s would take new chunks again; %s on it\n", id, left)
				case drain:
					_, err = fmt.Fprintf(w, "%s is %s: %s still to move (`cairn node show %s` follows it)\n", id, v.Node.State, left, id)
				default:
					_, err = fmt.Fprintf(w, "%s is %s: it takes new chunks again; %s on it\n", id, v.Node.State, left)
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would happen; change nothing")
	return cmd
}

// nodeErr turns a NotFound about a node into the usual hint.
func nodeErr(id string, err error) error {
	if errors.Is(err, metaerr.ErrNoSuchNode) {
		return noSuchNode(id)
	}
	return err
}

type decommissionView struct {
	Node            nodeView `json:"node"`
	StatusOnly      bool     `json:"status_only"`
	DryRun          bool     `json:"dry_run"`
	Blockers        []string `json:"blockers"`
	ChunksRemaining int64    `json:"chunks_remaining"`
	BytesRemaining  int64    `json:"bytes_remaining"`
	Decommissioned  bool     `json:"decommissioned"`
	// Skipped: moves off the node that failed and that the leader's drain
	// does not try now (the first of SkippedCount).
	Skipped      []skippedMoveView `json:"skipped,omitempty"`
	SkippedCount int64             `json:"skipped_count,omitempty"`
}

func (a *admin) decommissionCmd() *cobra.Command {
	var statusOnly, dryRun bool
	cmd := &cobra.Command{
		Use:   "decommission ID",
		Short: "Remove a blob node for good once its data has moved; refuses, saying why, while that would lose data or break failure domains",
		Args:  cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			id := args[0]
			resp, err := call(ctx, a, "Decommission", func(ctx context.Context) (*pb.DecommissionResponse, error) {
				return cl.Decommission(ctx, &pb.DecommissionRequest{Id: id, StatusOnly: statusOnly, DryRun: dryRun})
			})
			if err != nil {
				return nodeErr(id, err)
			}
			v := decommissionView{
				Node: toNodeView(resp.GetNode()), StatusOnly: statusOnly, DryRun: dryRun, Blockers: resp.GetBlockers(),
				ChunksRemaining: resp.GetChunksRemaining(), BytesRemaining: resp.GetBytesRemaining(), Decommissioned: resp.GetDecommissioned(),
				Skipped: toSkippedMoveViews(resp.GetSkipped()), SkippedCount: resp.GetSkippedCount(),
			}
			if v.Blockers == nil {
				v.Blockers = []string{}
			}
			if err := a.emit(v, func(w io.Writer) error { return renderDecommission(w, id, &v, a.now()) }); err != nil {
				return err
			}
			if len(v.Blockers) > 0 && !statusOnly {
				return fmt.Errorf("%s cannot be decommissioned yet: %d blocker(s); drain it first (`cairn node drain %s`) and check `cairn node decommission --status %s`", id, len(v.Blockers), id, id)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&statusOnly, "status", false, "only list what still blocks decommissioning")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check whether it could be decommissioned now; change nothing")
	return cmd
}

func renderDecommission(w io.Writer, id string, v *decommissionView, now time.Time) error {
	left := fmt.Sprintf("%d chunks (%s) still on it", v.ChunksRemaining, clitable.Bytes(v.BytesRemaining))
	var b strings.Builder
	switch {
	case v.Decommissioned:
		fmt.Fprintf(&b, "%s is decommissioned\n", id)
	case len(v.Blockers) == 0 && (v.StatusOnly || v.DryRun):
		fmt.Fprintf(&b, "%s: nothing blocks decommissioning; %s\n", id, left)
	case len(v.Blockers) == 0:
		fmt.Fprintf(&b, "%s: decommissioning; %s\n", id, left)
	default:
		fmt.Fprintf(&b, "%s: %d blocker(s); %s\n", id, len(v.Blockers), left)
		for _, bl := range v.Blockers {
			fmt.Fprintf(&b, "  - %s\n", bl)
		}
	}
	if v.SkippedCount > 0 {
		fmt.Fprintf(&b, "skipped: %d moves off it failed and are not tried now (the leader's drain backs them off, and gives one up after its 5th failure until the node is drained again)\n", v.SkippedCount)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return renderSkippedMoves(w, v.Skipped, v.SkippedCount, now)
}
