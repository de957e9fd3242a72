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

func (a *admin) repairCmd() *cobra.Command {
	var maxLost int32
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the repair queue, rate, ETA and lost segments by object",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
			resp, err := call(ctx, a, "HealthStatus", func(ctx context.Context) (*pb.HealthStatusResponse, error) {
				return cl.HealthStatus(ctx, &pb.HealthStatusRequest{MaxLost: maxLost})
			})
			if err != nil {
				return err
			}
			v := toHealthView(resp)
			return a.emit(v, func(w io.Writer) error { return a.renderRepair(w, v) })
		}),
	}
	status.Flags().Int32Var(&maxLost, "max-lost", 100, "most lost segments to list")
	cmd := a.adminCmd(&cobra.Command{
		Use:   "repair",
		Short: "Follow self-healing: what is degraded, being repaired, or lost",
	})
	cmd.AddCommand(status)
	return cmd
}

// lostObject is the lost segments of one object version or multipart part.
type lostObject struct {
	name            string
	segments        int
	healthy, needed int32
}

func groupLost(lost []lostView) []lostObject {
	var out []lostObject
	index := map[string]int{}
	for _, l := range lost {
		name := l.Bucket + "/" + l.Key
		if l.UploadID != "" {
			name += fmt.Sprintf(" (upload %s part %d)", l.UploadID, l.PartNumber)
		} else if l.VersionID != "" {
			name += " (version " + l.VersionID + ")"
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, lostObject{name: name, healthy: l.Healthy, needed: l.Needed})
		}
		o := &out[i]
		o.segments++
		o.healthy = min(o.healthy, l.Healthy)
	}
	return out
}

func (a *admin) renderRepair(w io.Writer, h *healthView) error {
	t := clitable.New()
	t.Row("segments", redundancyLine(h))
	t.Row("at risk", fmt.Sprintf("%s in %d degraded segments", clitable.Bytes(h.BytesAtRisk), h.SegmentsDegraded))
	t.Row("queue", fmt.Sprintf("%d waiting, %d in flight", h.RepairQueue, h.RepairsInFlight))
	t.Row("rate", fmt.Sprintf("%s, ETA %s", clitable.Rate(h.RepairBytesPerSecond), clitable.Seconds(h.ETASeconds)))
	t.Row("repairs", fmt.Sprintf("%d done, %d failed", h.RepairsDone, h.RepairsFailed))
	t.Row("gc backlog", fmt.Sprintf("%d", h.GCBacklog))
	if h.ComputedAt != nil {
		t.Row("computed", clitable.Ago(a.now(), *h.ComputedAt))
	}
	if err := t.Render(w); err != nil {
		return err
	}
	if h.SegmentsLost == 0 {
		return nil
	}
	objs := groupLost(h.Lost)
	var b strings.Builder
	fmt.Fprintf(&b, "\nLOST: %d segments (fewer than k healthy chunks; restore these objects from elsewhere)", h.SegmentsLost)
	if int64(len(h.Lost)) < h.SegmentsLost {
		fmt.Fprintf(&b, "; listing %d (--max-lost)", len(h.Lost))
	}
	fmt.Fprintln(&b)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	lt := clitable.New("OBJECT", "SEGMENTS", "HEALTHY CHUNKS")
	for _, o := range objs {
		lt.Row(o.name, fmt.Sprint(o.segments), fmt.Sprintf("%d of %d needed", o.healthy, o.needed))
	}
	return lt.Render(w)
}
