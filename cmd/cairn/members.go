package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cairnstore/cairn/internal/clitable"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

func (a *admin) metadCmd() *cobra.Command {
	var nonvoter bool
	add := &cobra.Command{
		Use:   "add ID RAFT-ADDR",
		Short: "Add a metad member (started with an empty data dir) to the Raft configuration",
		Long: `Adds a member to the metadata service's Raft group. Start the new metad
first with an empty --data-dir and no --initial-cluster (or use
metad --join, which calls this itself); the leader then brings it up to
date.`,
		Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
			id, addr := args[0], args[1]
			if _, err := call(ctx, a, "AddMember", func(ctx context.Context) (*pb.AddMemberResponse, error) {
				return cl.AddMember(ctx, &pb.AddMemberRequest{Id: id, RaftAddress: addr, Nonvoter: nonvoter})
			}); err != nil {
				return err
			}
			kind := "voter"
			if nonvoter {
				kind = "nonvoter"
			}
			return a.emit(map[string]any{"added": id, "raft_address": addr, "voter": !nonvoter}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "added %s (raft %s) as a %s; it catches up from the leader (`cairn metad members`)\n", id, addr, kind)
				return err
			})
		}),
	}
	add.Flags().BoolVar(&nonvoter, "nonvoter", false, "add as a non-voter (replicates, does not count toward quorum)")

	cmd := a.adminCmd(&cobra.Command{
		Use:   "metad",
		Short: "List and change the metad members (Raft membership)",
	})
	cmd.AddCommand(
		&cobra.Command{
			Use:   "members",
			Short: "List metad members, the leader and the term",
			Args:  cobra.NoArgs,
			RunE:  a.withClient(a.members),
		},
		add,
		&cobra.Command{
			Use:   "remove ID",
			Short: "Remove a metad member from the Raft configuration (stop its process afterwards)",
			Args:  cobra.ExactArgs(1),
			RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
				if _, err := call(ctx, a, "RemoveMember", func(ctx context.Context) (*pb.RemoveMemberResponse, error) {
					return cl.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: args[0]})
				}); err != nil {
					return err
				}
				return a.emit(map[string]any{"removed": args[0]}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "removed %s; stop its metad process now\n", args[0])
					return err
				})
			}),
		},
		&cobra.Command{
			Use:   "transfer-leader [ID]",
			Short: "Hand Raft leadership to member ID (or to any up-to-date voter)",
			Args:  cobra.MaximumNArgs(1),
			RunE: a.withClient(func(ctx context.Context, cl *metaclient.Client, args []string) error {
				target := ""
				if len(args) == 1 {
					target = args[0]
				}
				resp, err := call(ctx, a, "TransferLeader", func(ctx context.Context) (*pb.TransferLeaderResponse, error) {
					return cl.TransferLeader(ctx, &pb.TransferLeaderRequest{Id: target})
				})
				if err != nil {
					return err
				}
				return a.emit(map[string]any{"leader_id": resp.GetLeaderId()}, func(w io.Writer) error {
					var err error
					if resp.GetLeaderId() == "" {
						_, err = fmt.Fprintln(w, "leadership transferred; the new leader is not known yet (`cairn metad members`)")
					} else {
						_, err = fmt.Fprintf(w, "leader is now %s\n", resp.GetLeaderId())
					}
					return err
				})
			}),
		},
	)
	return cmd
}

func (a *admin) members(ctx context.Context, cl *metaclient.Client, _ []string) error {
	resp, err := call(ctx, a, "ClusterStatus", func(ctx context.Context) (*pb.ClusterStatusResponse, error) {
		return cl.ClusterStatus(ctx, &pb.ClusterStatusRequest{})
	})
	if err != nil {
		return err
	}
	v := toMetadView(resp)
	return a.emit(v, func(w io.Writer) error {
		leader := v.LeaderID
		if leader == "" {
			leader = "NONE (election under way, or no quorum)"
		}
		if _, err := fmt.Fprintf(w, "leader %s, term %d, commit index %d, applied %d\n\n", leader, v.Term, v.CommitIndex, v.AppliedIndex); err != nil {
			return err
		}
		t := clitable.New("ID", "ROLE", "RAFT ADDRESS", "GRPC ADDRESS")
		for _, m := range v.Members {
			role := "follower"
			switch {
			case m.Leader:
				role = "leader"
			case !m.Voter:
				role = "nonvoter"
			}
			grpc := m.GRPCAddress
			if grpc == "" {
				grpc = "(not yet known)"
			}
			t.Row(m.ID, role, m.RaftAddress, grpc)
		}
		return t.Render(w)
	})
}
