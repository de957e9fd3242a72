package gateway

import (
	"context"
	"io"

	"google.golang.org/grpc"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// The gateway's view of the metadata service, in the small pieces its
// handlers use; metaclient.Client implements them all.

// BucketMeta is what the bucket operations need.
type BucketMeta interface {
	CreateBucket(ctx context.Context, in *pb.CreateBucketRequest, opts ...grpc.CallOption) (*pb.CreateBucketResponse, error)
	DeleteBucket(ctx context.Context, in *pb.DeleteBucketRequest, opts ...grpc.CallOption) (*pb.DeleteBucketResponse, error)
	GetBucket(ctx context.Context, in *pb.GetBucketRequest, opts ...grpc.CallOption) (*pb.GetBucketResponse, error)
	ListBuckets(ctx context.Context, in *pb.ListBucketsRequest, opts ...grpc.CallOption) (*pb.ListBucketsResponse, error)
	SetBucketPolicy(ctx context.Context, in *pb.SetBucketPolicyRequest, opts ...grpc.CallOption) (*pb.SetBucketPolicyResponse, error)
	SetBucketLifecycle(ctx context.Context, in *pb.SetBucketLifecycleRequest, opts ...grpc.CallOption) (*pb.SetBucketLifecycleResponse, error)
	SetBucketTags(ctx context.Context, in *pb.SetBucketTagsRequest, opts ...grpc.CallOption) (*pb.SetBucketTagsResponse, error)
	SetBucketCors(ctx context.Context, in *pb.SetBucketCorsRequest, opts ...grpc.CallOption) (*pb.SetBucketCorsResponse, error)
	SetBucketEncryption(ctx context.Context, in *pb.SetBucketEncryptionRequest, opts ...grpc.CallOption) (*pb.SetBucketEncryptionResponse, error)
	SetBucketVersioning(ctx context.Context, in *pb.SetBucketVersioningRequest, opts ...grpc.CallOption) (*pb.SetBucketVersioningResponse, error)
	SetBucketObjectLock(ctx context.Context, in *pb.SetBucketObjectLockRequest, opts ...grpc.CallOption) (*pb.SetBucketObjectLockResponse, error)
}

// ObjectMeta is what listing and deleting objects and their versions,
// and setting their tags and locks, need.
type ObjectMeta interface {
	DeleteObject(ctx context.Context, in *pb.DeleteObjectRequest, opts ...grpc.CallOption) (*pb.DeleteObjectResponse, error)
	SetObjectTags(ctx context.Context, in *pb.SetObjectTagsRequest, opts ...grpc.CallOption) (*pb.SetObjectTagsResponse, error)
	SetObjectRetention(ctx context.Context, in *pb.SetObjectRetentionRequest, opts ...grpc.CallOption) (*pb.SetObjectRetentionResponse, error)
	SetObjectLegalHold(ctx context.Context, in *pb.SetObjectLegalHoldRequest, opts ...grpc.CallOption) (*pb.SetObjectLegalHoldResponse, error)
	ListObjects(ctx context.Context, in *pb.ListObjectsRequest, opts ...grpc.CallOption) (*pb.ListObjectsResponse, error)
	ListObjectVersions(ctx context.Context, in *pb.ListObjectVersionsRequest, opts ...grpc.CallOption) (*pb.ListObjectVersionsResponse, error)
}

// MultipartMeta is what the multipart operations need (parts themselves
// are written through Objects.PutPart).
type MultipartMeta interface {
	CreateMultipart(ctx context.Context, in *pb.CreateMultipartRequest, opts ...grpc.CallOption) (*pb.CreateMultipartResponse, error)
	GetMultipart(ctx context.Context, in *pb.GetMultipartRequest, opts ...grpc.CallOption) (*pb.GetMultipartResponse, error)
	ListParts(ctx context.Context, in *pb.ListPartsRequest, opts ...grpc.CallOption) (*pb.ListPartsResponse, error)
	CompleteMultipart(ctx context.Context, in *pb.CompleteMultipartRequest, opts ...grpc.CallOption) (*pb.CompleteMultipartResponse, error)
	AbortMultipart(ctx context.Context, in *pb.AbortMultipartRequest, opts ...grpc.CallOption) (*pb.AbortMultipartResponse, error)
	ListMultipartUploads(ctx context.Context, in *pb.ListMultipartUploadsRequest, opts ...grpc.CallOption) (*pb.ListMultipartUploadsResponse, error)
}

// ClusterMeta is what the health check needs.
type ClusterMeta interface {
	GetClusterMap(ctx context.Context, in *pb.GetClusterMapRequest, opts ...grpc.CallOption) (*pb.GetClusterMapResponse, error)
}

// AccessKeyMeta is what authenticating and authorizing access keys needs.
type AccessKeyMeta interface {
	GetAccessKey(ctx context.Context, in *pb.GetAccessKeyRequest, opts ...grpc.CallOption) (*pb.GetAccessKeyResponse, error)
}

// Metadata is every metadata call the gateway makes.
type Metadata interface {
	BucketMeta
	ObjectMeta
	MultipartMeta
	ClusterMeta
	AccessKeyMeta
}

// Objects is the object layer as the gateway uses it (*object.Store).
type Objects interface {
	Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts object.PutOptions) (*pb.Object, error)
	PutPart(ctx context.Context, bucket, key, uploadID string, number int32, body io.Reader, size int64, opts object.PartOptions) (*pb.Part, error)
	Head(ctx context.Context, bucket, key string) (*pb.Object, error)
	HeadVersion(ctx context.Context, bucket, key string, opts object.HeadOptions) (*pb.Object, error)
	Open(ctx context.Context, o *pb.Object, off, n int64) (io.ReadCloser, error)
}

var (
	_ Objects  = (*object.Store)(nil)
	_ Metadata = (pb.MetadataClient)(nil)
)
