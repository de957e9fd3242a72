package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

func (a *admin) rebalanceCmd() *cobra.Command {
	cmd := a.adminCmd(&cobra.Command{
		Use:   "rebalance",
		Short: "Plan, start, watch and stop moving chunks from fuller to emptier blob nodes",
	})
	cmd.AddCommand(a.rebalancePlanCmd(), a.rebalanceStartCmd(), a.rebalanceStatusCmd(), a.rebalanceStopCmd())
	return cmd
}

type utilView struct {
	ID            string  `json:"id"`
	CapacityBytes int64   `json:"capacity_bytes"`
	UsedBytes     int64   `json:"used_bytes"`
	Utilization   float64 `json:"utilization"`
}

type moveView struct {
	SegmentID string `json:"segment_id"`
	Shard     uint32 `json:"shard"`
	From      string `json:"from"`
	To        string `json:"to"`
	Bytes     int64  `json:"bytes"`
}

type planView struct {
	Threshold  float64    `json:"threshold"`
	MovesTotal int64      `json:"moves_total"`
	BytesTotal int64      `json:"bytes_total"`
	Moves      []moveView `json:"moves"`
	Before     []utilView `json:"before"`
	After      []utilView `json:"after"`
}

func toUtil(us []*pb.NodeUtilization) []utilView {
	out := []utilView{}
	for _, u := range us {
		out = append(out, utilView{ID: u.GetId(), CapacityBytes: u.GetCapacityBytes(), UsedBytes: u.GetUsedBytes(), Utilization: u.GetUtilization()})
	}
	return out
}

func (a *admin) rebalancePlanCmd() *cobra.Command {
	var threshold float64
	var maxMoves int32
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the moves a rebalance would make and each node's use before and after",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
			resp, err := call(ctx, a, "RebalancePlan", func(ctx context.Context) (*pb.RebalancePlanResponse, error) {
				return cl.RebalancePlan(ctx, &pb.RebalancePlanRequest{Threshold: threshold, MaxMoves: maxMoves})
			})
			if err != nil {
				return err
			}
			v := planView{Threshold: threshold, MovesTotal: resp.GetMovesTotal(), BytesTotal: resp.GetBytesTotal(), Moves: []moveView{},
				Before: toUtil(resp.GetBefore()), After: toUtil(resp.GetAfter())}
			for _, m := range resp.GetMoves() {
				v.Moves = append(v.Moves, moveView{SegmentID: hex.EncodeToString(m.GetSegmentId()), Shard: m.GetShard(), From: m.GetFromNode(), To: m.GetToNode(), Bytes: m.GetBytes()})
			}
			return a.emit(v, func(w io.Writer) error { return renderPlan(w, &v) })
		}),
	}
	cmd.Flags().Float64Var(&threshold, "threshold", 5, "percentage points around the mean use a node may be off by")
	cmd.Flags().Int32Var(&maxMoves, "max-moves", 20, "most moves to list (totals cover all)")
	return cmd
}

func renderPlan(w io.Writer, v *planView) error {
	if v.MovesTotal == 0 {
		if _, err := fmt.Fprintf(w, "balanced: every node is within %g points of the mean use; nothing to move\n", v.Threshold); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintf(w, "plan: %d moves, %s (threshold %g points)\n\n", v.MovesTotal, clitable.Bytes(v.BytesTotal), v.Threshold); err != nil {
		return err
	}
	after := map[string]utilView{}
	for _, u := range v.After {
		after[u.ID] = u
	}
	if len(v.Before) > 0 {
		t := clitable.New("NODE", "CAPACITY", "USED BEFORE", "USE% BEFORE", "USED AFTER", "USE% AFTER")
		for _, b := range v.Before {
			af := after[b.ID]
			t.Row(b.ID, clitable.Bytes(b.CapacityBytes), clitable.Bytes(b.UsedBytes), clitable.Percent(b.UsedBytes, b.CapacityBytes),
				clitable.Bytes(af.UsedBytes), clitable.Percent(af.UsedBytes, af.CapacityBytes))
		}
		if err := t.Render(w); err != nil {
			return err
		}
	}
	if len(v.Moves) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\nfirst %d of %d moves:\n", len(v.Moves), v.MovesTotal); err != nil {
		return err
	}
	t := clitable.New("SEGMENT", "SHARD", "FROM", "TO", "SIZE")
	for _, m := range v.Moves {
		t.Row(m.SegmentID, fmt.Sprint(m.Shard), m.From, m.To, clitable.Bytes(m.Bytes))
	}
	return t.Render(w)
}

func (a *admin) rebalanceStartCmd() *cobra.Command {
	var threshold float64
	var rate string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start rebalancing at a bandwidth limit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bps, err := clitable.ParseBytes(rate)
			if err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
			if bps <= 0 {
				return errors.New("--rate must be positive, e.g. 50MiB/s")
			}
			if threshold <= 0 || threshold >= 100 {
				return errors.New("--threshold must be between 0 and 100 percentage points")
			}
			return a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
				resp, err := call(ctx, a, "RebalanceStart", func(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
					return cl.RebalanceStart(ctx, &pb.RebalanceStartRequest{Threshold: threshold, RateBytesPerSecond: bps, DryRun: dryRun})
				})
				if err != nil {
					return err
				}
				v := toRebalanceView(resp)
				return a.emit(v, func(w io.Writer) error {
					switch {
					case dryRun:
						_, err = fmt.Fprintf(w, "dry run: would move %s in %d moves at up to %s\n", clitable.Bytes(v.BytesTotal), v.MovesTotal, clitable.Rate(float64(bps)))
					case !v.Running:
						_, err = fmt.Fprintf(w, "nothing to move: the cluster is balanced within %g points\n", threshold)
					default:
						_, err = fmt.Fprintf(w, "rebalance started: %s in %d moves at up to %s (`cairn rebalance status --watch` follows it)\n",
							clitable.Bytes(v.BytesTotal), v.MovesTotal, clitable.Rate(float64(v.RateBytesPerSecond)))
					}
					return err
				})
			})(cmd, nil)
		},
	}
	cmd.Flags().Float64Var(&threshold, "threshold", 5, "percentage points around the mean use a node may be off by")
	cmd.Flags().StringVar(&rate, "rate", "50MiB/s", "bandwidth limit for all moves together (e.g. 50MiB/s, 1GiB/s)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would move; start nothing")
	return cmd
}

func (a *admin) rebalanceStatusCmd() *cobra.Command {
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show rebalance progress: bytes moved of total, rate, ETA (--watch to follow it)",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
			get := func() (*rebalanceView, error) {
				resp, err := call(ctx, a, "RebalanceStatus", func(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
					return cl.RebalanceStatus(ctx, &pb.RebalanceStatusRequest{})
				})
				if err != nil {
					return nil, err
				}
				return toRebalanceView(resp), nil
			}
			if !watch {
				v, err := get()
				if err != nil {
					return err
				}
				return a.emit(v, func(w io.Writer) error { return renderRebalance(w, v, a.now()) })
			}
			return a.watchRebalance(ctx, get, interval)
		}),
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw until the rebalance ends or Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "redraw interval with --watch")
	return cmd
}

func renderRebalance(w io.Writer, v *rebalanceView, now time.Time) error {
	t := clitable.New()
	state := "idle"
	if v.Running {
		state = fmt.Sprintf("running (threshold %g points, limit %s)", v.Threshold, clitable.Rate(float64(v.RateBytesPerSecond)))
	} else if v.Outcome != "" {
		state = "idle (last run: " + v.Outcome + ")"
	}
	t.Row("rebalance", state)
	if v.Running || v.Outcome != "" {
		t.Row("progress", progressLine(v))
	}
	if v.Running {
		t.Row("rate", fmt.Sprintf("%s, ETA %s", clitable.Rate(v.BytesPerSecond), clitable.Seconds(v.ETASeconds)))
	}
	if v.SkippedCount > 0 {
		t.Row("skipped", fmt.Sprintf("%d moves failed and are not tried now (the leader's balancer backs them off, and gives one up for the run after its 5th failure)", v.SkippedCount))
	}
	if err := t.Render(w); err != nil {
		return err
	}
	return renderSkippedMoves(w, v.Skipped, v.SkippedCount, now)
}

// renderSkippedMoves lists the moves a balancer run or a drain skips
// because they failed (nothing when there are none).
func renderSkippedMoves(w io.Writer, skipped []skippedMoveView, count int64, now time.Time) error {
	if len(skipped) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\nfirst %d of %d skipped moves:\n", len(skipped), count); err != nil {
		return err
	}
	st := clitable.New("SEGMENT", "SHARD", "FROM", "TO", "FAILURES", "RETRY", "LAST ERROR")
	for _, m := range skipped {
		retry := "given up"
		if m.RetryAt != nil {
			retry = "in " + clitable.Duration(m.RetryAt.Sub(now))
		}
		seg, shard, from := m.SegmentID, fmt.Sprint(m.Shard), m.From
		if seg == "" {
			seg, shard, from = "any", "-", "-" // every move to the node
		}
		st.Row(seg, shard, from, m.To, fmt.Sprint(m.Failures), retry, m.Reason)
	}
	return st.Render(w)
}

func progressLine(v *rebalanceView) string {
	return fmt.Sprintf("%s  %s of %s, %d of %d moves", clitable.Bar(v.BytesMoved, v.BytesTotal, 30),
		clitable.Bytes(v.BytesMoved), clitable.Bytes(v.BytesTotal), v.MovesDone, v.MovesTotal)
}

// watchRebalance redraws one progress line every interval until the
// rebalance is not running or ctx ends (Ctrl-C, which is not an error).
// On a terminal the line is redrawn in place; otherwise (or with --json,
// one JSON object per line) each redraw is a new line.
func (a *admin) watchRebalance(ctx context.Context, get func() (*rebalanceView, error), interval time.Duration) error {
	if interval <= 0 {
		return errors.New("--interval must be positive")
	}
	tty := isTerminal(a.stdout) && !a.json
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		v, err := get()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if a.json {
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", b)
		} else {
			line := progressLine(v)
			if v.Running {
				line += fmt.Sprintf(", %s, ETA %s", clitable.Rate(v.BytesPerSecond), clitable.Seconds(v.ETASeconds))
			}
			if tty {
				fmt.Fprintf(a.stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(a.stdout, line)
			}
		}
		if !v.Running {
			if !a.json {
				if tty {
					fmt.Fprintln(a.stdout)
				}
				outcome := v.Outcome
				if outcome == "" {
					outcome = "not running"
				}
				fmt.Fprintf(a.stdout, "rebalance %s\n", outcome)
			}
			return nil
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	if tty {
		fmt.Fprintln(a.stdout)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *admin) rebalanceStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop rebalancing now (moves in flight finish or are abandoned; nothing is half-committed)",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, _ []string) error {
			resp, err := call(ctx, a, "RebalanceStop", func(ctx context.Context) (*pb.RebalanceStatusResponse, error) {
				return cl.RebalanceStop(ctx, &pb.RebalanceStopRequest{})
			})
			if err != nil {
				return err
			}
			v := toRebalanceView(resp)
			return a.emit(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "rebalance stopped: %s of %s moved, %d of %d moves\n", clitable.Bytes(v.BytesMoved), clitable.Bytes(v.BytesTotal), v.MovesDone, v.MovesTotal)
				return err
			})
		}),
	}
}
