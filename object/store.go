// Package object is Cairn's object layer: it turns a stream of bytes into
// erasure-coded segments on blob nodes plus one metadata commit, and reads
// any byte range back from whichever chunks are healthy. The S3 gateway is
// its user; it speaks S3, this package speaks segments.
//
// A Put reads the body once, stripe by stripe: memory per request is a few
// stripes (chunk.Codec.Encode double-buffers one), whatever the object size.
// Each segment (SegmentSize of data, 64 MiB by default) gets its own
// placement and is streamed to its k+m blob nodes in parallel; the segment
// is accepted when at least WriteQuorum chunks were acknowledged (each blob
// node fsyncs before acknowledging), and the object becomes visible only
// when its metadata commit succeeds. Objects up to InlineMax bytes skip the
// blob nodes and live in the metadata record itself, replicated by Raft:
// k+m tiny fsynced chunk files would cost far more than the data.
package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/cairnstore/cairn/chunk"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// BlobClient is what the object layer needs of the blob nodes' HTTP API
// (blob.Client implements it).
type BlobClient interface {
	// Put stores a chunk on the node at addr, returning only once the node
	// has made it durable. size is the chunk's length, or -1 if unknown.
	Put(ctx context.Context, addr string, id chunk.ID, body io.Reader, size int64) error
	// GetStripes streams the framed blocks of stripes [from, to).
	GetStripes(ctx context.Context, addr string, id chunk.ID, from, to int) (io.ReadCloser, error)
	// Delete removes a chunk; deleting a missing chunk is not an error.
	Delete(ctx context.Context, addr string, id chunk.ID) error
}

// Metadata is the part of the metadata service the object layer calls
// (metaclient.Client implements it).
type Metadata interface {
	GetClusterMap(ctx context.Context, in *pb.GetClusterMapRequest, opts ...grpc.CallOption) (*pb.GetClusterMapResponse, error)
	GetBucket(ctx context.Context, in *pb.GetBucketRequest, opts ...grpc.CallOption) (*pb.GetBucketResponse, error)
	GetObject(ctx context.Context, in *pb.GetObjectRequest, opts ...grpc.CallOption) (*pb.GetObjectResponse, error)
	CommitObject(ctx context.Context, in *pb.CommitObjectRequest, opts ...grpc.CallOption) (*pb.CommitObjectResponse, error)
	PutPart(ctx context.Context, in *pb.PutPartRequest, opts ...grpc.CallOption) (*pb.PutPartResponse, error)
	ReportChunks(ctx context.Context, in *pb.ReportChunksRequest, opts ...grpc.CallOption) (*pb.ReportChunksResponse, error)
}

// Defaults for Config fields left zero.
const (
	DefaultSegmentSize = 64 << 20
	DefaultInlineMax   = 4 << 10
	DefaultMapMaxAge   = 2 * time.Second
	DefaultReadBudget  = 2 * time.Second
	DefaultWriteBudget = 10 * time.Second
)

// Config configures a Store.
type Config struct {
	Meta  Metadata
	Blobs BlobClient
	// SegmentSize is the most object data one segment holds.
	SegmentSize int64
	// WriteQuorum is how many of a segment's k+m chunks must be durably
	// written for a Put to succeed; 0 means k+1 (k when m is 0).
	WriteQuorum int
	// InlineMax is the largest object stored inline in its metadata record;
	// -1 disables inlining.
	InlineMax int
	// MapMaxAge bounds how stale the cached cluster map may be before a
	// write refreshes it.
	MapMaxAge time.Duration
	// ReadBudget is how long opening a chunk, or any one read from it, may
	// stall before the read gives up on that chunk and reconstructs its
	// blocks from parity instead (a slow or hung node costs a GET at most
	// this much extra latency while parity can stand in; with none left
	// the read waits ten budgets for the chunk). -1 disables the budget.
	ReadBudget time.Duration
	// WriteBudget is how long a chunk upload may take no more of the
	// segment's bytes, or, once it has them all, wait for the node's
	// answer, before the write gives up on that chunk and completes the
	// segment with the others, as with a node down (if they are at least
	// the write quorum; the missing chunk is repaired later); the next
	// segments are then placed around the node for a while. It is longer
	// than ReadBudget: giving up on a write leaves work for repair.
	// -1 disables the budget.
	WriteBudget time.Duration
	// Reporter names this layer in bad-chunk reports ("gateway", a host).
	Reporter string
	Logger   *slog.Logger
	// Registry receives the layer's metrics; nil means none are exported.
	Registry prometheus.Registerer
}

// Store is the object layer. It is safe for concurrent use.
type Store struct {
	meta        Metadata
	blobs       BlobClient
	segSize     int64
	quorum      int
	inline      int
	log         *slog.Logger
	clusters    *clusterMapCache
	metrics     *metrics
	readBudget  time.Duration
	writeBudget time.Duration
	writeStalls stalledNodes // nodes whose uploads stalled lately
	readStalls  stalledNodes // nodes whose chunk reads stalled lately
	reporter    string
	readBufs    *chunk.BlockPool // block buffers of GETs, reused across requests
	reading     atomic.Int64     // GETs of erasure-coded objects in flight

	codecsMu sync.Mutex
	codecs   map[chunk.Params]*chunk.Codec
}

// New returns a Store over the given metadata service and blob client.
func New(cfg Config) (*Store, error) {
	if cfg.Meta == nil || cfg.Blobs == nil {
		return nil, errors.New("object store: Meta and Blobs are required")
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.SegmentSize < 1 {
		return nil, fmt.Errorf("object store: segment size %d must be positive", cfg.SegmentSize)
	}
	if cfg.InlineMax == 0 {
		cfg.InlineMax = DefaultInlineMax
	}
	if cfg.WriteQuorum < 0 {
		return nil, fmt.Errorf("object store: write quorum %d must not be negative", cfg.WriteQuorum)
	}
	if cfg.MapMaxAge == 0 {
		cfg.MapMaxAge = DefaultMapMaxAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadBudget == 0 {
		cfg.ReadBudget = DefaultReadBudget
	}
	if cfg.WriteBudget == 0 {
		cfg.WriteBudget = DefaultWriteBudget
	}
	if cfg.Reporter == "" {
		cfg.Reporter = "object-layer"
	}
	return &Store{
		readBudget:  cfg.ReadBudget,
		writeBudget: cfg.WriteBudget,
		writeStalls: stalledNodes{hold: stallHold},
		readStalls:  stalledNodes{hold: stallHold},
		reporter:    cfg.Reporter,
		meta:        cfg.Meta,
		blobs:       cfg.Blobs,
		segSize:     cfg.SegmentSize,
		quorum:      cfg.WriteQuorum,
		inline:      cfg.InlineMax,
		log:         cfg.Logger.With("component", "object"),
		clusters:    newClusterMapCache(cfg.Meta, cfg.MapMaxAge),
		metrics:     newMetrics(cfg.Registry),
		codecs:      make(map[chunk.Params]*chunk.Codec),
		readBufs:    chunk.NewBlockPool(),
	}, nil
}

// codec returns the (shared, cached) codec for p.
func (s *Store) codec(p chunk.Params) (*chunk.Codec, error) {
	s.codecsMu.Lock()
	defer s.codecsMu.Unlock()
	if c, ok := s.codecs[p]; ok {
		return c, nil
	}
	c, err := chunk.NewCodec(p)
	if err != nil {
		return nil, err
	}
	s.codecs[p] = c
	return c, nil
}

// writeQuorum is how many chunks of a segment of the given scheme must be
// acknowledged.
func (s *Store) writeQuorum(sc chunk.Scheme) int {
	q := s.quorum
	if q == 0 {
		q = sc.K + 1
	}
	return min(max(q, sc.K), sc.Shards())
}

// Head returns the metadata of an object's current version (a
// linearizable read).
func (s *Store) Head(ctx context.Context, bucket, key string) (*pb.Object, error) {
	return s.HeadVersion(ctx, bucket, key, HeadOptions{})
}

// HeadOptions choose the version HeadVersion reads.
type HeadOptions struct {
	// VersionID is an S3 version id ("null": the key's null version);
	// "": the current object.
	VersionID string
	// IncludeDeleteMarker, without VersionID: when the key's latest
	// version is a delete marker, answer the marker (Object.delete_marker)
	// instead of metaerr.ErrNoSuchKey.
	IncludeDeleteMarker bool
}

// HeadVersion returns the metadata of the version of an object opts
// names (a linearizable read); Open reads its data like any object's. A
// version id naming a delete marker answers the marker (it has no data);
// one naming no version is metaerr.ErrNoSuchVersion.
func (s *Store) HeadVersion(ctx context.Context, bucket, key string, opts HeadOptions) (*pb.Object, error) {
	resp, err := s.meta.GetObject(ctx, &pb.GetObjectRequest{Bucket: bucket, Key: key, VersionId: opts.VersionID, IncludeDeleteMarker: opts.IncludeDeleteMarker})
	if err != nil {
		if opts.VersionID != "" {
			return nil, fmt.Errorf("get object %s/%s version %q: %w", bucket, key, opts.VersionID, err)
		}
		return nil, fmt.Errorf("get object %s/%s: %w", bucket, key, err)
	}
	o := resp.GetObject()
	if opts.VersionID != "" && VersionID(o) != opts.VersionID {
		// A metad from before versioning ignores version_id and answers
		// the current object, which is not the version asked for.
		return nil, metaerr.Detailed(metaerr.ErrNoSuchVersion, "%s/%s version %q", bucket, key, opts.VersionID)
	}
	return o, nil
}

// VersionID is o's S3 version id: its version_id when it was written with
// versioning enabled (Object.versioned), else "null" (the rule of
// metadata.S3VersionID, which this package does not import).
func VersionID(o *pb.Object) string {
	if o.GetVersioned() {
		return o.GetVersionId()
	}
	return "null"
}
