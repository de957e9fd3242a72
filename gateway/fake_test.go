package gateway_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/gateway"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// fake is an in-memory metadata service and object layer, for testing the
// gateway's HTTP behaviour without a cluster. Segments hold their bytes in
// a map; Complete checks what metad checks.
type fake struct {
	mu       sync.Mutex
	buckets  map[string]*pb.Bucket
	objects  map[string]map[string]*pb.Object
	uploads  map[string]*pb.MultipartUpload // by upload id
	parts    map[string]map[int32]*pb.Part
	segments map[string][]byte
}

var (
	_ gateway.Metadata = (*fake)(nil)
	_ gateway.Objects  = (*fake)(nil)
)

func newFake() *fake {
	return &fake{
		buckets:  map[string]*pb.Bucket{},
		objects:  map[string]map[string]*pb.Object{},
		uploads:  map[string]*pb.MultipartUpload{},
		parts:    map[string]map[int32]*pb.Part{},
		segments: map[string][]byte{},
	}
}

func (f *fake) CreateBucket(_ context.Context, in *pb.CreateBucketRequest, _ ...grpc.CallOption) (*pb.CreateBucketResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[in.Name]; ok {
		return nil, metaerr.ErrBucketAlreadyOwnedByYou
	}
	b := &pb.Bucket{Name: in.Name, Region: in.Region, CreatedUnixNano: time.Now().UnixNano()}
	f.buckets[in.Name] = b
	f.objects[in.Name] = map[string]*pb.Object{}
	return &pb.CreateBucketResponse{Bucket: b}, nil
}

// GetAccessKey: the fake has only the root key (access keys are tested
// against the in-process cluster).
func (f *fake) GetAccessKey(context.Context, *pb.GetAccessKeyRequest, ...grpc.CallOption) (*pb.GetAccessKeyResponse, error) {
	return nil, metaerr.ErrNoSuchAccessKey
}

func (f *fake) DeleteBucket(_ context.Context, in *pb.DeleteBucketRequest, _ ...grpc.CallOption) (*pb.DeleteBucketResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[in.Name]; !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	if len(f.objects[in.Name]) > 0 {
		return nil, metaerr.ErrBucketNotEmpty
	}
	for _, u := range f.uploads {
		if u.Bucket == in.Name {
			return nil, metaerr.ErrBucketNotEmpty
		}
	}
	delete(f.buckets, in.Name)
	delete(f.objects, in.Name)
	return &pb.DeleteBucketResponse{}, nil
}

func (f *fake) GetBucket(_ context.Context, in *pb.GetBucketRequest, _ ...grpc.CallOption) (*pb.GetBucketResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[in.Name]
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	return &pb.GetBucketResponse{Bucket: b}, nil
}

// updateBucket replaces a bucket's record with a changed copy.
func (f *fake) updateBucket(name string, change func(*pb.Bucket)) (*pb.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[name]
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	nb := proto.CloneOf(b)
	change(nb)
	f.buckets[name] = nb
	return nb, nil
}

func (f *fake) SetBucketCors(_ context.Context, in *pb.SetBucketCorsRequest, _ ...grpc.CallOption) (*pb.SetBucketCorsResponse, error) {
	b, err := f.updateBucket(in.Name, func(b *pb.Bucket) { b.Cors = in.Cors })
	if err != nil {
		return nil, err
	}
	return &pb.SetBucketCorsResponse{Bucket: b}, nil
}

func (f *fake) SetBucketEncryption(_ context.Context, in *pb.SetBucketEncryptionRequest, _ ...grpc.CallOption) (*pb.SetBucketEncryptionResponse, error) {
	b, err := f.updateBucket(in.Name, func(b *pb.Bucket) { b.DefaultEncryption = in.DefaultEncryption })
	return &pb.SetBucketEncryptionResponse{Bucket: b}, err
}

func (f *fake) SetBucketPolicy(_ context.Context, in *pb.SetBucketPolicyRequest, _ ...grpc.CallOption) (*pb.SetBucketPolicyResponse, error) {
	b, err := f.updateBucket(in.Name, func(b *pb.Bucket) { b.Policy = in.Policy })
	return &pb.SetBucketPolicyResponse{Bucket: b}, err
}

func (f *fake) SetBucketLifecycle(_ context.Context, in *pb.SetBucketLifecycleRequest, _ ...grpc.CallOption) (*pb.SetBucketLifecycleResponse, error) {
	b, err := f.updateBucket(in.Name, func(b *pb.Bucket) { b.Lifecycle = in.Lifecycle })
	return &pb.SetBucketLifecycleResponse{Bucket: b}, err
}

func (f *fake) SetObjectTags(_ context.Context, in *pb.SetObjectTagsRequest, _ ...grpc.CallOption) (*pb.SetObjectTagsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[in.Bucket]; !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	o, ok := f.objects[in.Bucket][in.Key]
	if in.VersionId != "" && (!ok || in.VersionId != "null") {
		return nil, metaerr.ErrNoSuchVersion
	}
	if !ok {
		return nil, metaerr.ErrNoSuchKey
	}
	no := proto.CloneOf(o)
	no.Tags = in.Tags
	f.objects[in.Bucket][in.Key] = no
	return &pb.SetObjectTagsResponse{}, nil // the fake's buckets are never versioned: no S3 version id
}

func (f *fake) SetBucketTags(_ context.Context, in *pb.SetBucketTagsRequest, _ ...grpc.CallOption) (*pb.SetBucketTagsResponse, error) {
	b, err := f.updateBucket(in.Name, func(b *pb.Bucket) { b.Tags = in.Tags })
	return &pb.SetBucketTagsResponse{Bucket: b}, err
}

func (f *fake) ListBuckets(context.Context, *pb.ListBucketsRequest, ...grpc.CallOption) (*pb.ListBucketsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &pb.ListBucketsResponse{}
	for _, b := range f.buckets {
		resp.Buckets = append(resp.Buckets, b)
	}
	sort.Slice(resp.Buckets, func(i, j int) bool { return resp.Buckets[i].Name < resp.Buckets[j].Name })
	return resp, nil
}

func checkCond(cur *pb.Object, c *pb.Condition) error {
	if c == nil {
		return nil
	}
	if c.MustNotExist && cur != nil {
		return metaerr.ErrPreconditionFailed
	}
	if c.IfMatchEtag != "" && cur == nil {
		return metaerr.ErrNoSuchKey
	}
	if c.IfMatchEtag != "" && cur.Etag != c.IfMatchEtag {
		return metaerr.ErrPreconditionFailed
	}
	return nil
}

func (f *fake) DeleteObject(_ context.Context, in *pb.DeleteObjectRequest, _ ...grpc.CallOption) (*pb.DeleteObjectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[in.Bucket]
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	cur := objs[in.Key]
	if in.VersionId != "" && in.VersionId != "null" {
		return &pb.DeleteObjectResponse{}, nil // the fake's objects are null versions
	}
	if err := checkCond(cur, in.Condition); err != nil {
		return nil, err
	}
	delete(objs, in.Key)
	resp := &pb.DeleteObjectResponse{Deleted: cur != nil}
	if cur != nil {
		resp.VersionId = in.VersionId
	}
	return resp, nil
}

// SetBucketVersioning: the fake keeps no versions, like a metad from
// before versioning (versioning is tested against the in-process
// cluster).
func (f *fake) SetBucketVersioning(context.Context, *pb.SetBucketVersioningRequest, ...grpc.CallOption) (*pb.SetBucketVersioningResponse, error) {
	return nil, metaerr.ErrUpgradeRequired
}

// SetBucketObjectLock, SetObjectRetention and SetObjectLegalHold: refused
// as by a metad some member of which predates object lock; the fake's
// CreateBucket ignores object_lock_enabled, as a metad binary from before
// it would (object lock is tested against the in-process cluster).
func (f *fake) SetBucketObjectLock(context.Context, *pb.SetBucketObjectLockRequest, ...grpc.CallOption) (*pb.SetBucketObjectLockResponse, error) {
	return nil, metaerr.ErrUpgradeRequired
}

func (f *fake) SetObjectRetention(context.Context, *pb.SetObjectRetentionRequest, ...grpc.CallOption) (*pb.SetObjectRetentionResponse, error) {
	return nil, metaerr.ErrUpgradeRequired
}

func (f *fake) SetObjectLegalHold(context.Context, *pb.SetObjectLegalHoldRequest, ...grpc.CallOption) (*pb.SetObjectLegalHoldResponse, error) {
	return nil, metaerr.ErrUpgradeRequired
}

// ListObjectVersions: not implemented, as by a metad from before
// versioning, so the fake suite lists versions through the gateway's
// fallback to ListObjects.
func (f *fake) ListObjectVersions(context.Context, *pb.ListObjectVersionsRequest, ...grpc.CallOption) (*pb.ListObjectVersionsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "unknown method ListObjectVersions")
}

func (f *fake) ListObjects(_ context.Context, in *pb.ListObjectsRequest, _ ...grpc.CallOption) (*pb.ListObjectsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[in.Bucket]
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	limit := int(in.MaxKeys)
	if limit == 0 {
		limit = 1000
	}
	resp := &pb.ListObjectsResponse{}
	n, last := 0, ""
	for _, k := range keys {
		if !strings.HasPrefix(k, in.Prefix) || k <= in.StartAfter {
			continue
		}
		if in.Delimiter != "" {
			if i := strings.Index(k[len(in.Prefix):], in.Delimiter); i >= 0 {
				cp := k[:len(in.Prefix)+i+len(in.Delimiter)]
				if cp == last || cp == in.StartAfter || strings.HasPrefix(in.StartAfter, cp) {
					continue
				}
				if n == limit {
					resp.IsTruncated = true
					break
				}
				resp.CommonPrefixes = append(resp.CommonPrefixes, cp)
				last = cp
				n++
				continue
			}
		}
		if n == limit {
			resp.IsTruncated = true
			break
		}
		o := proto.CloneOf(objs[k])
		o.Segments, o.Inline, o.Parts = nil, nil, nil
		resp.Objects = append(resp.Objects, o)
		last = k
		n++
	}
	if resp.IsTruncated {
		resp.NextStartAfter = last
	}
	return resp, nil
}

func (f *fake) CreateMultipart(_ context.Context, in *pb.CreateMultipartRequest, _ ...grpc.CallOption) (*pb.CreateMultipartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[in.Upload.Bucket]; !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	u := proto.CloneOf(in.Upload)
	u.InitiatedUnixNano = time.Now().UnixNano()
	f.uploads[u.UploadId] = u
	f.parts[u.UploadId] = map[int32]*pb.Part{}
	return &pb.CreateMultipartResponse{Upload: u}, nil
}

func (f *fake) upload(bucket, key, id string) (*pb.MultipartUpload, error) {
	u, ok := f.uploads[id]
	if !ok || u.Bucket != bucket || u.Key != key {
		return nil, metaerr.ErrNoSuchUpload
	}
	return u, nil
}

func (f *fake) GetMultipart(_ context.Context, in *pb.GetMultipartRequest, _ ...grpc.CallOption) (*pb.GetMultipartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(in.Bucket, in.Key, in.UploadId)
	if err != nil {
		return nil, err
	}
	return &pb.GetMultipartResponse{Upload: u}, nil
}

func (f *fake) ListParts(_ context.Context, in *pb.ListPartsRequest, _ ...grpc.CallOption) (*pb.ListPartsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(in.Bucket, in.Key, in.UploadId)
	if err != nil {
		return nil, err
	}
	var nums []int32
	for n := range f.parts[in.UploadId] {
		if n > in.PartNumberMarker {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	limit := int(in.MaxParts)
	if limit == 0 {
		limit = 1000
	}
	resp := &pb.ListPartsResponse{Upload: u}
	for i, n := range nums {
		if i == limit {
			resp.IsTruncated = true
			resp.NextPartNumberMarker = nums[i-1]
			break
		}
		p := proto.CloneOf(f.parts[in.UploadId][n])
		if !in.WithSegments {
			p.Segments = nil
		}
		resp.Parts = append(resp.Parts, p)
	}
	return resp, nil
}

func (f *fake) CompleteMultipart(_ context.Context, in *pb.CompleteMultipartRequest, _ ...grpc.CallOption) (*pb.CompleteMultipartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := in.Object
	if _, err := f.upload(o.Bucket, o.Key, in.UploadId); err != nil {
		return nil, err
	}
	var want [][]byte
	for i, cp := range in.Parts {
		if i > 0 && cp.Number <= in.Parts[i-1].Number {
			return nil, metaerr.ErrInvalidPartOrder
		}
		p := f.parts[in.UploadId][cp.Number]
		if p == nil || p.Etag != cp.Etag {
			return nil, metaerr.ErrInvalidPart
		}
		for _, s := range p.Segments {
			want = append(want, s.Id)
		}
	}
	if len(want) != len(o.Segments) {
		return nil, metaerr.ErrInvalidPart
	}
	for i := range want {
		if !bytes.Equal(want[i], o.Segments[i].Id) {
			return nil, metaerr.ErrInvalidPart
		}
	}
	if err := checkCond(f.objects[o.Bucket][o.Key], in.Condition); err != nil {
		return nil, err
	}
	stored := proto.CloneOf(o)
	stored.ModifiedUnixNano = time.Now().UnixNano()
	f.objects[o.Bucket][o.Key] = stored
	delete(f.uploads, in.UploadId)
	delete(f.parts, in.UploadId)
	return &pb.CompleteMultipartResponse{Object: stored}, nil
}

func (f *fake) AbortMultipart(_ context.Context, in *pb.AbortMultipartRequest, _ ...grpc.CallOption) (*pb.AbortMultipartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.upload(in.Bucket, in.Key, in.UploadId); err != nil {
		return nil, err
	}
	delete(f.uploads, in.UploadId)
	delete(f.parts, in.UploadId)
	return &pb.AbortMultipartResponse{}, nil
}

func (f *fake) ListMultipartUploads(_ context.Context, in *pb.ListMultipartUploadsRequest, _ ...grpc.CallOption) (*pb.ListMultipartUploadsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[in.Bucket]; !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	resp := &pb.ListMultipartUploadsResponse{}
	for _, u := range f.uploads {
		if u.Bucket == in.Bucket && strings.HasPrefix(u.Key, in.Prefix) {
			resp.Uploads = append(resp.Uploads, u)
		}
	}
	sort.Slice(resp.Uploads, func(i, j int) bool {
		a, b := resp.Uploads[i], resp.Uploads[j]
		return a.Key < b.Key || a.Key == b.Key && a.UploadId < b.UploadId
	})
	return resp, nil
}

func (f *fake) GetClusterMap(context.Context, *pb.GetClusterMapRequest, ...grpc.CallOption) (*pb.GetClusterMapResponse, error) {
	nodes := make([]*pb.Node, 6)
	for i := range nodes {
		nodes[i] = &pb.Node{Id: fmt.Sprint(i), State: pb.NodeState_NODE_STATE_UP}
	}
	return &pb.GetClusterMapResponse{ClusterMap: &pb.ClusterMap{Epoch: 1, Nodes: nodes, DefaultScheme: &pb.Scheme{K: 4, M: 2}}}, nil
}

// write reads a body like the object layer: to its declared size.
func (f *fake) write(body io.Reader, size int64) (*pb.Segment, []byte, error) {
	var data []byte
	var err error
	if size >= 0 {
		data = make([]byte, size)
		var n int
		n, err = io.ReadFull(body, data)
		if err == io.ErrUnexpectedEOF || err == io.EOF && size > 0 {
			return nil, nil, fmt.Errorf("read %d of %d: %w", n, size, object.ErrIncompleteBody)
		}
	} else {
		data, err = io.ReadAll(body)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sum := md5.Sum(data)
	f.mu.Lock()
	f.segments[hex.EncodeToString(id)] = data
	f.mu.Unlock()
	return &pb.Segment{Id: id, Size: int64(len(data))}, sum[:], nil
}

func (f *fake) Put(_ context.Context, bucket, key string, body io.Reader, size int64, opts object.PutOptions) (*pb.Object, error) {
	f.mu.Lock()
	_, ok := f.buckets[bucket]
	var cur *pb.Object
	if ok {
		cur = f.objects[bucket][key]
	}
	f.mu.Unlock()
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	if err := checkCond(cur, opts.Condition); err != nil {
		return nil, err
	}
	seg, sum, err := f.segment(body, size)
	if err != nil {
		return nil, err
	}
	o := &pb.Object{
		Bucket: bucket, Key: key, VersionId: "v", Size: seg.Size, Etag: hex.EncodeToString(sum),
		ContentType: opts.ContentType, Headers: opts.Headers, UserMetadata: opts.UserMetadata,
		Segments: []*pb.Segment{seg},
	}
	if opts.BeforeCommit != nil {
		if err := opts.BeforeCommit(o); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[bucket]; !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	if err := checkCond(f.objects[bucket][key], opts.Condition); err != nil {
		return nil, err
	}
	o.ModifiedUnixNano = time.Now().UnixNano()
	f.objects[bucket][key] = o
	return proto.CloneOf(o), nil
}

func (f *fake) segment(body io.Reader, size int64) (*pb.Segment, []byte, error) {
	seg, sum, err := f.write(body, size)
	if err != nil {
		return nil, nil, err
	}
	return seg, sum, nil
}

func (f *fake) PutPart(_ context.Context, bucket, key, uploadID string, number int32, body io.Reader, size int64, opts object.PartOptions) (*pb.Part, error) {
	seg, sum, err := f.write(body, size)
	if err != nil {
		return nil, err
	}
	p := &pb.Part{UploadId: uploadID, Number: number, Size: seg.Size, Etag: hex.EncodeToString(sum), Segments: []*pb.Segment{seg}}
	if opts.BeforeCommit != nil {
		if err := opts.BeforeCommit(p); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.upload(bucket, key, uploadID); err != nil {
		return nil, err
	}
	p.ModifiedUnixNano = time.Now().UnixNano()
	f.parts[uploadID][number] = p
	return proto.CloneOf(p), nil
}

func (f *fake) Head(_ context.Context, bucket, key string) (*pb.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[bucket]
	if !ok {
		return nil, metaerr.ErrNoSuchBucket
	}
	o, ok := objs[key]
	if !ok {
		return nil, metaerr.ErrNoSuchKey
	}
	return proto.CloneOf(o), nil
}

// HeadVersion: every object of the fake is its key's null version.
func (f *fake) HeadVersion(ctx context.Context, bucket, key string, opts object.HeadOptions) (*pb.Object, error) {
	o, err := f.Head(ctx, bucket, key)
	switch {
	case opts.VersionID == "":
		return o, err
	case errors.Is(err, metaerr.ErrNoSuchKey) || (err == nil && opts.VersionID != "null"):
		return nil, metaerr.ErrNoSuchVersion
	}
	return o, err
}

func (f *fake) Open(_ context.Context, o *pb.Object, off, n int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []byte
	for _, s := range o.Segments {
		all = append(all, f.segments[hex.EncodeToString(s.Id)]...)
	}
	if off < 0 || n < 0 || off+n > int64(len(all)) {
		return nil, object.ErrRange
	}
	return io.NopCloser(bytes.NewReader(all[off : off+n])), nil
}
