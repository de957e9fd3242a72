package metadata

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// How members learn each other's gRPC addresses: Raft knows only Raft
// addresses, but a follower must tell clients where the leader serves
// gRPC. Each address is a replicated SetMemberAddress command. A new leader
// commits its own (leaderWork); a member that does not lead and finds its
// address missing or stale in its copy of the state sends it to the leader
// with the AnnounceMember RPC (announceLoop), and the leader commits it.
//
// The same record carries the member's feature level: which commands its
// binary applies. A command an older member would not apply must not be
// committed while that member is in the Raft configuration, or the members'
// states would part ways (requireFeature).

// FeatureLevel is the newest set of commands this binary applies:
//
//	0  everything before level 1 (a member that predates the field)
//	1  SetBucketPolicy, SetBucketLifecycle, SetObjectTags, SetBucketTags,
//	   and DeleteObject's condition on a version id (lifecycle expiry)
//	2  CreateAccessKey, UpdateAccessKey, DeleteAccessKey, CreateBucket's
//	   owner key, and DeleteBucket dropping the bucket's grants
//	3  SetBucketCors
//	4  SetBucketQuota, and commits refused for a bucket's quota
//	5  SetBucketEncryption
//	6  quotas count the bytes of uploads' parts: a PutPart that would take
//	   its bucket over max_bytes is refused, and a completion grows
//	   nothing. No new command: the state machine applies these rules
//	   once the state records every member at 6, the earlier ones before
//	   (bucketusage.go, checkQuota)
//	7  SetBucketVersioning, DeleteObject and SetObjectTags of a version
//	   id (versioning.go)
//	8  DeleteObject's if_noncurrent_version_id (lifecycle expiry of
//	   versions), which a member below would ignore and so delete a
//	   version that became current; object lock: CreateBucket with
//	   object_lock_enabled, SetBucketObjectLock, SetObjectRetention,
//	   SetObjectLegalHold, and the locks every delete of a version and
//	   SetBucketVersioning respect (objectlock.go)
//	9  access keys that expire: CreateAccessKey and UpdateAccessKey
//	   carrying expires_unix_nano, which a member below would drop
const FeatureLevel uint32 = 9

// requireFeature answers ErrUpgradeRequired unless every member of the
// Raft configuration has announced at least level. The levels come from
// the replicated state. A member with no record yet has not announced
// since it joined or the cluster started (it does within a heartbeat
// timeout): that is Unavailable, which clients retry.
func (s *Server) requireFeature(ctx context.Context, level uint32, what string) error {
	f := s.raft.GetConfiguration()
	if err := awaitFuture(ctx, s.shutdown, f); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	levels, err := s.state.MemberFeatureLevels()
	if err != nil {
		return err
	}
	for _, srv := range f.Configuration().Servers {
		have, ok := levels[string(srv.ID)]
		if !ok {
			return status.Errorf(codes.Unavailable, "%s: metad member %s has not announced its feature level yet; try again", what, srv.ID)
		}
		if have < level {
			return metaerr.Detailed(metaerr.ErrUpgradeRequired, "%s needs every metad member at feature level %d; %s is at %d: upgrade it first", what, level, srv.ID, have)
		}
	}
	return nil
}

// announceLoop makes sure the replicated state has this member's current
// gRPC address, checking every heartbeat timeout.
func (s *Server) announceLoop(ctx context.Context) {
	var (
		conn     *grpc.ClientConn
		connAddr string
	)
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	tick := time.NewTicker(s.cfg.HeartbeatTimeout)
	defer tick.Stop()
	// The state only changes by applying entries, so once it was seen to
	// hold this member's address there is nothing to check again until
	// the applied index moves (the Badger scan twice a second was ~7% of
	// an idle follower's CPU profile).
	var (
		okAt   uint64
		okSeen bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s.raft.State() == raft.Leader {
			continue
		}
		_, leaderID := s.raft.LeaderWithID()
		if leaderID == "" {
			continue
		}
		applied := s.state.AppliedIndex()
		if okSeen && applied == okAt {
			continue
		}
		members, err := s.state.members()
		if err != nil {
			s.log.Warn("read members", "err", err)
			continue
		}
		if me := members[s.cfg.ID]; me.GetGrpcAddress() == s.grpcAdvertise && me.GetFeatureLevel() == FeatureLevel {
			okAt, okSeen = applied, true
			continue
		}
		okSeen = false
		leaderAddr := members[string(leaderID)].GetGrpcAddress()
		if leaderAddr == "" {
			continue
		}
		if conn == nil || connAddr != leaderAddr {
			if conn != nil {
				_ = conn.Close()
			}
			conn, err = grpc.NewClient(leaderAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				s.log.Warn("grpc client for leader", "addr", leaderAddr, "err", err)
				conn = nil
				continue
			}
			connAddr = leaderAddr
		}
		cctx, cancel := context.WithTimeout(ctx, 5*s.cfg.HeartbeatTimeout)
		_, err = pb.NewMetadataClient(conn).AnnounceMember(cctx, &pb.SetMemberAddress{Id: s.cfg.ID, GrpcAddress: s.grpcAdvertise, FeatureLevel: FeatureLevel})
		cancel()
		if err != nil {
			s.log.Debug("announce grpc address to leader", "leader", leaderAddr, "err", metaerr.FromStatus(err))
		}
	}
}

// announced is the leader's side of AnnounceMember.
func (s *Server) announced(ctx context.Context, req *pb.SetMemberAddress) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	if req.GetGrpcAddress() == "" {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "member %q announced an empty address", req.GetId())
	}
	f := s.raft.GetConfiguration()
	if err := awaitFuture(ctx, s.shutdown, f); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	known := false
	for _, srv := range f.Configuration().Servers {
		known = known || string(srv.ID) == req.GetId()
	}
	if !known {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "%q is not a member of the raft configuration", req.GetId())
	}
	return s.ensureMemberAddress(ctx, req.GetId(), req.GetGrpcAddress(), req.GetFeatureLevel())
}

// clusterStatus answers from this member's own view, on any member, so an
// operator can ask a member that has lost the leader what it sees.
func (s *Server) clusterStatus(ctx context.Context) (*pb.ClusterStatusResponse, error) {
	f := s.raft.GetConfiguration()
	if err := awaitFuture(ctx, s.shutdown, f); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	addrs, err := s.state.MemberAddresses()
	if err != nil {
		return nil, err
	}
	levels, err := s.state.MemberFeatureLevels()
	if err != nil {
		return nil, err
	}
	_, leaderID := s.raft.LeaderWithID()
	resp := &pb.ClusterStatusResponse{
		LeaderId:     string(leaderID),
		Term:         s.raft.CurrentTerm(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.state.AppliedIndex(),
	}
	for _, srv := range f.Configuration().Servers {
		resp.Members = append(resp.Members, &pb.MetadMember{
			Id:          string(srv.ID),
			RaftAddress: string(srv.Address),
			GrpcAddress: addrs[string(srv.ID)],
			Leader:      srv.ID == leaderID,
			Voter:       srv.Suffrage == raft.Voter,
			// As the state records it: what commands the cluster may
			// use waits on every member's (requireFeature).
			FeatureLevel: levels[string(srv.ID)],
		})
	}
	return resp, nil
}
