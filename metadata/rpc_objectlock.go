package metadata

import (
	"context"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// The object lock commands (objectlock.go), refused until every member
// applies them.

func (a *api) SetBucketObjectLock(ctx context.Context, req *pb.SetBucketObjectLockRequest) (*pb.SetBucketObjectLockResponse, error) {
	if err := a.s.requireFeature(ctx, objectLockLevel, "SetBucketObjectLock"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketObjectLockResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketObjectLock{SetBucketObjectLock: req}})
}

func (a *api) SetObjectRetention(ctx context.Context, req *pb.SetObjectRetentionRequest) (*pb.SetObjectRetentionResponse, error) {
	if err := a.s.requireFeature(ctx, objectLockLevel, "SetObjectRetention"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetObjectRetentionResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetObjectRetention{SetObjectRetention: req}})
}

func (a *api) SetObjectLegalHold(ctx context.Context, req *pb.SetObjectLegalHoldRequest) (*pb.SetObjectLegalHoldResponse, error) {
	if err := a.s.requireFeature(ctx, objectLockLevel, "SetObjectLegalHold"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetObjectLegalHoldResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetObjectLegalHold{SetObjectLegalHold: req}})
}
