package metadata

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// api is the metadata gRPC service. Every mutation is one Command through
// Raft; every read is linearizable (readindex.go). Only the leader serves;
// other members answer NotLeader with the leader's address.
type api struct {
	pb.UnimplementedMetadataServer
	s *Server
}

var _ pb.MetadataServer = (*api)(nil)

// toStatus converts errors for the wire: metadata conditions keep their
// reason (metaerr), context errors keep their code.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if _, ok := status.FromError(err); !ok {
			return status.FromContextError(err).Err()
		}
	}
	return metaerr.ToStatus(err)
}

// mutate commits cmd and returns the state machine's response as T.
func mutate[T proto.Message](ctx context.Context, s *Server, cmd *pb.Command) (T, error) {
	var zero T
	resp, err := s.propose(ctx, cmd)
	if err != nil {
		return zero, toStatus(err)
	}
	t, ok := resp.(T)
	if !ok {
		return zero, status.Errorf(codes.Internal, "state machine answered %T", resp)
	}
	return t, nil
}

// query answers a read from State once it is linearizable.
func query[Req, Resp any](ctx context.Context, s *Server, req Req, read func(Req) (Resp, error)) (Resp, error) {
	var zero Resp
	if err := s.linearize(ctx); err != nil {
		return zero, toStatus(err)
	}
	resp, err := read(req)
	if err != nil {
		return zero, toStatus(err)
	}
	return resp, nil
}

func (a *api) CreateBucket(ctx context.Context, req *pb.CreateBucketRequest) (*pb.CreateBucketResponse, error) {
	if req.GetOwnerKey() != "" {
		if err := a.s.requireFeature(ctx, 2, "CreateBucket for an access key"); err != nil {
			return nil, toStatus(err)
		}
	}
	if req.GetObjectLockEnabled() {
		if err := a.s.requireFeature(ctx, objectLockLevel, "CreateBucket with object lock"); err != nil {
			return nil, toStatus(err)
		}
	}
	return mutate[*pb.CreateBucketResponse](ctx, a.s, &pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: req}})
}

func (a *api) DeleteBucket(ctx context.Context, req *pb.DeleteBucketRequest) (*pb.DeleteBucketResponse, error) {
	return mutate[*pb.DeleteBucketResponse](ctx, a.s, &pb.Command{Op: &pb.Command_DeleteBucket{DeleteBucket: req}})
}

func (a *api) SetBucketPolicy(ctx context.Context, req *pb.SetBucketPolicyRequest) (*pb.SetBucketPolicyResponse, error) {
	if err := a.s.requireFeature(ctx, 1, "SetBucketPolicy"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketPolicyResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketPolicy{SetBucketPolicy: req}})
}

func (a *api) SetBucketLifecycle(ctx context.Context, req *pb.SetBucketLifecycleRequest) (*pb.SetBucketLifecycleResponse, error) {
	if err := a.s.requireFeature(ctx, 1, "SetBucketLifecycle"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketLifecycleResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketLifecycle{SetBucketLifecycle: req}})
}

func (a *api) SetObjectTags(ctx context.Context, req *pb.SetObjectTagsRequest) (*pb.SetObjectTagsResponse, error) {
	level := uint32(1)
	if req.GetVersionId() != "" {
		level = versioningLevel // a member below it would tag the current object
	}
	if err := a.s.requireFeature(ctx, level, "SetObjectTags"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetObjectTagsResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetObjectTags{SetObjectTags: req}})
}

func (a *api) SetBucketTags(ctx context.Context, req *pb.SetBucketTagsRequest) (*pb.SetBucketTagsResponse, error) {
	if err := a.s.requireFeature(ctx, 1, "SetBucketTags"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketTagsResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketTags{SetBucketTags: req}})
}

func (a *api) SetBucketCors(ctx context.Context, req *pb.SetBucketCorsRequest) (*pb.SetBucketCorsResponse, error) {
	if err := a.s.requireFeature(ctx, 3, "SetBucketCors"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketCorsResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketCors{SetBucketCors: req}})
}

func (a *api) SetBucketQuota(ctx context.Context, req *pb.SetBucketQuotaRequest) (*pb.SetBucketQuotaResponse, error) {
	if err := a.s.requireFeature(ctx, 4, "SetBucketQuota"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketQuotaResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketQuota{SetBucketQuota: req}})
}

func (a *api) SetBucketEncryption(ctx context.Context, req *pb.SetBucketEncryptionRequest) (*pb.SetBucketEncryptionResponse, error) {
	if err := a.s.requireFeature(ctx, 5, "SetBucketEncryption"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketEncryptionResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketEncryption{SetBucketEncryption: req}})
}

func (a *api) SetBucketVersioning(ctx context.Context, req *pb.SetBucketVersioningRequest) (*pb.SetBucketVersioningResponse, error) {
	if err := a.s.requireFeature(ctx, versioningLevel, "SetBucketVersioning"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.SetBucketVersioningResponse](ctx, a.s, &pb.Command{Op: &pb.Command_SetBucketVersioning{SetBucketVersioning: req}})
}

func (a *api) CreateAccessKey(ctx context.Context, req *pb.CreateAccessKeyRequest) (*pb.CreateAccessKeyResponse, error) {
	level := uint32(2)
	if req.GetExpiresUnixNano() != 0 {
		level = 9 // an older member would store the key without its expiry
	}
	if err := a.s.requireFeature(ctx, level, "CreateAccessKey"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.CreateAccessKeyResponse](ctx, a.s, &pb.Command{Op: &pb.Command_CreateAccessKey{CreateAccessKey: req}})
}

func (a *api) UpdateAccessKey(ctx context.Context, req *pb.UpdateAccessKeyRequest) (*pb.UpdateAccessKeyResponse, error) {
	level := uint32(2)
	if req.ExpiresUnixNano != nil {
		level = 9 // an older member would leave the expiry as it was
	}
	if err := a.s.requireFeature(ctx, level, "UpdateAccessKey"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.UpdateAccessKeyResponse](ctx, a.s, &pb.Command{Op: &pb.Command_UpdateAccessKey{UpdateAccessKey: req}})
}

func (a *api) DeleteAccessKey(ctx context.Context, req *pb.DeleteAccessKeyRequest) (*pb.DeleteAccessKeyResponse, error) {
	if err := a.s.requireFeature(ctx, 2, "DeleteAccessKey"); err != nil {
		return nil, toStatus(err)
	}
	return mutate[*pb.DeleteAccessKeyResponse](ctx, a.s, &pb.Command{Op: &pb.Command_DeleteAccessKey{DeleteAccessKey: req}})
}

func (a *api) GetAccessKey(ctx context.Context, req *pb.GetAccessKeyRequest) (*pb.GetAccessKeyResponse, error) {
	return query(ctx, a.s, req, a.s.state.GetAccessKey)
}

func (a *api) ListAccessKeys(ctx context.Context, req *pb.ListAccessKeysRequest) (*pb.ListAccessKeysResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListAccessKeys)
}

func (a *api) GetBucket(ctx context.Context, req *pb.GetBucketRequest) (*pb.GetBucketResponse, error) {
	return query(ctx, a.s, req, a.s.state.GetBucket)
}

func (a *api) ListBuckets(ctx context.Context, req *pb.ListBucketsRequest) (*pb.ListBucketsResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListBuckets)
}

func (a *api) CommitObject(ctx context.Context, req *pb.CommitObjectRequest) (*pb.CommitObjectResponse, error) {
	brief := takeBrief(req)
	resp, err := mutate[*pb.CommitObjectResponse](ctx, a.s, &pb.Command{Op: &pb.Command_CommitObject{CommitObject: req}})
	if err != nil || !brief {
		return resp, err
	}
	return &pb.CommitObjectResponse{ModifiedUnixNano: resp.GetObject().GetModifiedUnixNano(), VersionId: resp.GetVersionId()}, nil
}

// takeBrief clears a commit's brief flag, an answer option, so that it
// never reaches the log, and reports whether it was set.
func takeBrief(req *pb.CommitObjectRequest) bool {
	brief := req.GetBrief()
	req.Brief = false
	return brief
}

func (a *api) GetObject(ctx context.Context, req *pb.GetObjectRequest) (*pb.GetObjectResponse, error) {
	return query(ctx, a.s, req, a.s.state.GetObject)
}

func (a *api) DeleteObject(ctx context.Context, req *pb.DeleteObjectRequest) (*pb.DeleteObjectResponse, error) {
	if req.GetVersionId() != "" {
		// A member below it would delete the current object instead.
		if err := a.s.requireFeature(ctx, versioningLevel, "DeleteObject of a version"); err != nil {
			return nil, toStatus(err)
		}
	}
	if req.GetIfNoncurrentVersionId() != "" {
		// A member below it would ignore the condition.
		if err := a.s.requireFeature(ctx, versionExpiryLevel, "DeleteObject if a version is noncurrent"); err != nil {
			return nil, toStatus(err)
		}
	}
	return mutate[*pb.DeleteObjectResponse](ctx, a.s, &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: req}})
}

func (a *api) ListObjects(ctx context.Context, req *pb.ListObjectsRequest) (*pb.ListObjectsResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListObjects)
}

func (a *api) ListObjectVersions(ctx context.Context, req *pb.ListObjectVersionsRequest) (*pb.ListObjectVersionsResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListObjectVersions)
}

func (a *api) CreateMultipart(ctx context.Context, req *pb.CreateMultipartRequest) (*pb.CreateMultipartResponse, error) {
	return mutate[*pb.CreateMultipartResponse](ctx, a.s, &pb.Command{Op: &pb.Command_CreateMultipart{CreateMultipart: req}})
}

func (a *api) GetMultipart(ctx context.Context, req *pb.GetMultipartRequest) (*pb.GetMultipartResponse, error) {
	return query(ctx, a.s, req, a.s.state.GetMultipart)
}

func (a *api) PutPart(ctx context.Context, req *pb.PutPartRequest) (*pb.PutPartResponse, error) {
	return mutate[*pb.PutPartResponse](ctx, a.s, &pb.Command{Op: &pb.Command_PutPart{PutPart: req}})
}

func (a *api) ListParts(ctx context.Context, req *pb.ListPartsRequest) (*pb.ListPartsResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListParts)
}

func (a *api) CompleteMultipart(ctx context.Context, req *pb.CompleteMultipartRequest) (*pb.CompleteMultipartResponse, error) {
	return mutate[*pb.CompleteMultipartResponse](ctx, a.s, &pb.Command{Op: &pb.Command_CompleteMultipart{CompleteMultipart: req}})
}

func (a *api) AbortMultipart(ctx context.Context, req *pb.AbortMultipartRequest) (*pb.AbortMultipartResponse, error) {
	return mutate[*pb.AbortMultipartResponse](ctx, a.s, &pb.Command{Op: &pb.Command_AbortMultipart{AbortMultipart: req}})
}

func (a *api) ListMultipartUploads(ctx context.Context, req *pb.ListMultipartUploadsRequest) (*pb.ListMultipartUploadsResponse, error) {
	return query(ctx, a.s, req, a.s.state.ListMultipartUploads)
}

func (a *api) RegisterNode(ctx context.Context, req *pb.RegisterNodeRequest) (*pb.RegisterNodeResponse, error) {
	resp, err := mutate[*pb.RegisterNodeResponse](ctx, a.s, &pb.Command{Op: &pb.Command_RegisterNode{RegisterNode: req}})
	if err != nil {
		return nil, err
	}
	// Registering counts as the node's first heartbeat.
	n := req.GetNode()
	a.s.hb.record(&pb.HeartbeatRequest{Id: n.GetId(), CapacityBytes: n.GetCapacityBytes(), UsedBytes: n.GetUsedBytes(), ChunkCount: n.GetChunkCount()})
	a.s.hb.overlay(resp.GetClusterMap())
	return resp, nil
}

func (a *api) Heartbeat(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	resp, err := a.s.heartbeat(ctx, req)
	return resp, toStatus(err)
}

func (a *api) GetClusterMap(ctx context.Context, req *pb.GetClusterMapRequest) (*pb.GetClusterMapResponse, error) {
	return query(ctx, a.s, req, func(*pb.GetClusterMapRequest) (*pb.GetClusterMapResponse, error) {
		cm, err := a.s.state.ClusterMap()
		if err != nil {
			return nil, err
		}
		a.s.hb.overlay(cm)
		return &pb.GetClusterMapResponse{ClusterMap: cm}, nil
	})
}

func (a *api) ClusterStatus(ctx context.Context, req *pb.ClusterStatusRequest) (*pb.ClusterStatusResponse, error) {
	resp, err := a.s.clusterStatus(ctx)
	return resp, toStatus(err)
}

func (a *api) AnnounceMember(ctx context.Context, req *pb.SetMemberAddress) (*pb.AnnounceMemberResponse, error) {
	if err := a.s.announced(ctx, req); err != nil {
		return nil, toStatus(err)
	}
	return &pb.AnnounceMemberResponse{}, nil
}

// countRPC counts calls by method and status code.
func (s *Server) countRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	s.metrics.rpcCounter(info.FullMethod, status.Code(err)).Inc()
	return resp, err
}
