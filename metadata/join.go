package metadata

import (
	"context"
	"errors"

	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// joinLoop asks an existing cluster (Config.Join) to add this member as a
// voter, retrying until it is added or ctx ends. The leader then replicates
// its log (or a snapshot) here like to any lagging follower; this member
// takes no part until contacted. AddMember of a member already added as
// asked is a no-op, so a retry after an ambiguous failure, or a restart
// before any entry arrived, is harmless.
func (s *Server) joinLoop(ctx context.Context) {
	log := s.log.With("join", s.cfg.Join)
	mc, err := metaclient.New(s.cfg.Join, metaclient.Options{Logger: s.log})
	if err != nil {
		log.Error("join cluster", "err", err)
		return
	}
	defer mc.Close()
	backoff := newBackoff(s.cfg.HeartbeatTimeout/4, 4*s.cfg.ElectionTimeout)
	for {
		if _, leader := s.raft.LeaderWithID(); leader != "" {
			// Contacted already: someone added this member.
			return
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
		_, err := mc.AddMember(cctx, &pb.AddMemberRequest{Id: s.cfg.ID, RaftAddress: s.raftAddr})
		cancel()
		if err == nil {
			log.Info("asked the cluster to add this member; waiting for the leader", "raft_addr", s.raftAddr)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, metaerr.ErrInvalidArgument) {
			// Retrying cannot help (an address taken by another member):
			// say so loudly and keep trying, in case an operator fixes it.
			log.Error("the cluster refused to add this member", "err", err)
		} else {
			log.Warn("join cluster failed; retrying", "err", err)
		}
		if !backoff.wait(ctx) {
			return
		}
	}
}
