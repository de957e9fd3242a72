package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Raft membership through the API (`cairn metad add | remove |
// transfer-leader`, `metad --join`). Only the leader changes the Raft
// configuration; other members answer NotLeader like every mutation.
//
// A configuration change is one Raft log entry, like a Command, but it is
// applied by Raft itself, not by the state machine: the member set lives in
// Raft's configuration and only members' gRPC addresses are replicated
// state (members.go).

func (a *api) AddMember(ctx context.Context, req *pb.AddMemberRequest) (*pb.AddMemberResponse, error) {
	if err := a.s.addMember(ctx, req); err != nil {
		return nil, toStatus(err)
	}
	return &pb.AddMemberResponse{}, nil
}

func (a *api) RemoveMember(ctx context.Context, req *pb.RemoveMemberRequest) (*pb.RemoveMemberResponse, error) {
	if err := a.s.removeMember(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RemoveMemberResponse{}, nil
}

func (a *api) TransferLeader(ctx context.Context, req *pb.TransferLeaderRequest) (*pb.TransferLeaderResponse, error) {
	id, err := a.s.transferLeader(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.TransferLeaderResponse{LeaderId: id}, nil
}

// configuration reads the latest Raft configuration (committed or not).
func (s *Server) configuration(ctx context.Context) (raft.Configuration, error) {
	f := s.raft.GetConfiguration()
	if err := awaitFuture(ctx, s.shutdown, f); err != nil {
		return raft.Configuration{}, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration(), nil
}

// changeTimeout is how long a configuration change may wait to be
// appended: Raft takes one change at a time, after the previous one commits.
func (s *Server) changeTimeout(ctx context.Context) time.Duration {
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return max(timeout, time.Millisecond)
}

// configError maps the outcome of a Raft configuration change or
// leadership transfer for the wire, as propose does for commands.
func (s *Server) configError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return s.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return status.Errorf(codes.Unavailable, "%s: not accepted in time (another membership change is committing); try again", what)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return status.Errorf(codes.Unavailable, "%s: outcome unknown: %v", what, err)
	}
}

func (s *Server) addMember(ctx context.Context, req *pb.AddMemberRequest) error {
	id, addr := req.GetId(), req.GetRaftAddress()
	if id == "" || addr == "" {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "add member: need an id and a raft address")
	}
	if err := concreteHostPort(addr); err != nil {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "add member %s: raft address: %v", id, err)
	}
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	conf, err := s.configuration(ctx)
	if err != nil {
		return err
	}
	for _, srv := range conf.Servers {
		if string(srv.Address) == addr && string(srv.ID) != id {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "add member %s: raft address %s belongs to member %s", id, addr, srv.ID)
		}
		if string(srv.ID) == id && string(srv.Address) == addr && (srv.Suffrage == raft.Voter) == !req.GetNonvoter() {
			return nil // already there as asked: a repeated request
		}
	}
	var f raft.IndexFuture
	if req.GetNonvoter() {
		f = s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.changeTimeout(ctx))
	} else {
		// A voter that has to catch up first: hashicorp/raft replicates
		// to it at once; with a healthy majority a slow newcomer does not
		// stall commits.
		f = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.changeTimeout(ctx))
	}
	if err := s.configError("add member "+id, awaitFuture(ctx, s.shutdown, f)); err != nil {
		return err
	}
	s.log.Info("added metad member", "id", id, "raft_addr", addr, "voter", !req.GetNonvoter(), "index", f.Index())
	return nil
}

func (s *Server) removeMember(ctx context.Context, id string) error {
	if id == "" {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "remove member: need an id")
	}
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	conf, err := s.configuration(ctx)
	if err != nil {
		return err
	}
	found, voters, isVoter := false, 0, false
	for _, srv := range conf.Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
		if string(srv.ID) == id {
			found, isVoter = true, srv.Suffrage == raft.Voter
		}
	}
	if !found {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "remove member: %q is not a member", id)
	}
	if isVoter && voters == 1 {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "remove member: %q is the only voter", id)
	}
	// Removing the leader itself works: it commits the change, then steps
	// down and the others elect a leader among themselves.
	f := s.raft.RemoveServer(raft.ServerID(id), 0, s.changeTimeout(ctx))
	if err := s.configError("remove member "+id, awaitFuture(ctx, s.shutdown, f)); err != nil {
		return err
	}
	s.log.Info("removed metad member", "id", id, "index", f.Index())
	return nil
}

// transferLeader hands leadership to member id (any up-to-date voter when
// id is "") and returns the new leader's id once this member has heard
// from it ("" if it has not within an election timeout: the transfer still
// happened).
func (s *Server) transferLeader(ctx context.Context, id string) (string, error) {
	if s.raft.State() != raft.Leader {
		return "", s.notLeader()
	}
	if id == s.cfg.ID {
		return id, nil
	}
	var target raft.Server
	if id != "" {
		conf, err := s.configuration(ctx)
		if err != nil {
			return "", err
		}
		for _, srv := range conf.Servers {
			if string(srv.ID) == id {
				target = srv
			}
		}
		if target.ID == "" {
			return "", metaerr.Detailed(metaerr.ErrInvalidArgument, "transfer leadership: %q is not a member", id)
		}
		if target.Suffrage != raft.Voter {
			return "", metaerr.Detailed(metaerr.ErrInvalidArgument, "transfer leadership: %q is not a voter", id)
		}
	}

	// Watch for the new leader before the transfer starts, so the
	// observation cannot be missed.
	obs := make(chan raft.Observation, 4)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		return ok && lo.LeaderID != "" && string(lo.LeaderID) != s.cfg.ID
	})
	s.raft.RegisterObserver(observer)
	defer s.raft.DeregisterObserver(observer)

	var f raft.Future
	if id == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		f = s.raft.LeadershipTransferToServer(target.ID, target.Address)
	}
	if err := s.configError("transfer leadership", awaitFuture(ctx, s.shutdown, f)); err != nil {
		return "", err
	}
	wait := time.NewTimer(2 * s.cfg.ElectionTimeout)
	defer wait.Stop()
	for {
		if _, leader := s.raft.LeaderWithID(); leader != "" && string(leader) != s.cfg.ID {
			s.log.Info("transferred leadership", "to", leader)
			return string(leader), nil
		}
		select {
		case <-obs:
		case <-wait.C:
			_, leader := s.raft.LeaderWithID()
			return string(leader), nil
		case <-ctx.Done():
			return "", ctx.Err()
		case <-s.shutdown:
			return "", raft.ErrRaftShutdown
		}
	}
}
