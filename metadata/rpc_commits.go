package metadata

import (
	"context"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// MaxCommitsPerCall bounds CommitObjects: a call's commits are proposed at
// once, and a bound keeps one client from queueing without limit ahead of
// the others.
const MaxCommitsPerCall = 1024

// CommitObjects proposes each commit exactly as CommitObject would, all at
// once, so the proposer puts them into as few Raft entries as it can and
// the client pays one RPC for many commits.
func (a *api) CommitObjects(ctx context.Context, req *pb.CommitObjectsRequest) (*pb.CommitObjectsResponse, error) {
	commits := req.GetCommits()
	if len(commits) == 0 || len(commits) > MaxCommitsPerCall {
		return nil, status.Errorf(codes.InvalidArgument, "CommitObjects takes 1 to %d commits, got %d", MaxCommitsPerCall, len(commits))
	}
	// Refuse the whole call up front, so a client may send it again to
	// the leader knowing none of it was proposed here.
	if a.s.raft.State() != raft.Leader {
		return nil, toStatus(a.s.notLeader())
	}
	cmds := make([]*pb.Command, len(commits))
	brief := make([]bool, len(commits))
	for i, c := range commits {
		brief[i] = takeBrief(c)
		cmds[i] = &pb.Command{Op: &pb.Command_CommitObject{CommitObject: c}}
	}
	resps, errs := a.s.proposeMany(ctx, cmds)
	results := make([]*pb.CommitObjectResult, len(commits))
	for i := range commits {
		results[i] = commitResult(resps[i], errs[i], brief[i])
	}
	return &pb.CommitObjectsResponse{Results: results}, nil
}

// commitResult is one commit's answer as CommitObject would give it.
func commitResult(resp proto.Message, err error, brief bool) *pb.CommitObjectResult {
	if err == nil {
		if r, ok := resp.(*pb.CommitObjectResponse); ok {
			if brief {
				return &pb.CommitObjectResult{ModifiedUnixNano: r.GetObject().GetModifiedUnixNano(), VersionId: r.GetVersionId()}
			}
			return &pb.CommitObjectResult{Object: r.GetObject(), VersionId: r.GetVersionId()}
		}
		err = status.Errorf(codes.Internal, "state machine answered %T", resp)
	}
	return &pb.CommitObjectResult{Error: pb.NewItemStatus(toStatus(err))}
}
