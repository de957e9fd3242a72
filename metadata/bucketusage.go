package metadata

import (
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Bucket usage: how many objects each bucket holds and their bytes (the
// objects' sizes, before erasure coding), one entry per bucket:
//
//	bu/<bucket>  →  varint objects, varint bytes
//
// It is derived data, a function of the o/ keyspace alone, kept the way
// the node counts are (nodeusage.go): the commands that create, replace or
// delete an object's current version change it through the stage
// (countBucket), and the transaction writes each touched bucket's entry
// once, at its end, so a batch of commits to one bucket costs one read
// and one write. An entry exists exactly when its bucket holds an object.
// Multipart uploads in progress are not counted; their parts are.
//
// m/bucketusage holds the counts' version and the applied index they are
// current at; every applied batch rewrites it with m/applied. A state
// without it (written or restored by an earlier version) gets its counts
// rebuilt from o/ when it is opened or restored, before it serves
// (ensureBucketUsage).

var (
	prefixBucketUsage = []byte("bu/")
	keyBucketUsage    = []byte("m/bucketusage")
)

// bucketUsageVersion changes whenever the counts' keys or meaning do.
const bucketUsageVersion = 1

func bucketUsageKey(bucket string) []byte { return join(prefixBucketUsage, bucket) }

// bucketUsageMarker is m/bucketusage's value when the counts are current
// at applied.
func bucketUsageMarker(applied uint64) []byte {
	return appendU64(appendU64(make([]byte, 0, 16), bucketUsageVersion), applied)
}

// setBucketUsageApplied records, in the transaction that stores
// m/applied, that the counts are current at applied.
func setBucketUsageApplied(txn *badger.Txn, applied uint64) error {
	if err := txn.Set(keyBucketUsage, bucketUsageMarker(applied)); err != nil {
		return fmt.Errorf("store bucket usage marker: %w", err)
	}
	return nil
}

// countBucket changes bucket's counts by objects and bytes, for the
// command being applied.
func (st *stage) countBucket(bucket string, objects, bytes int64) {
	if objects == 0 && bytes == 0 {
		return
	}
	if st.bucketUsage == nil {
		st.bucketUsage = make(map[string]chunkCount, 2)
	}
	u := st.bucketUsage[bucket]
	u.chunks += objects
	u.bytes += bytes
	st.bucketUsage[bucket] = u
}

// bucketUsageTxn reads one bucket's counts within txn; nil for none.
func bucketUsageTxn(txn *badger.Txn, bucket string) (*pb.BucketUsage, error) {
	u, err := readUsage(txn, bucketUsageKey(bucket))
	if err != nil {
		return nil, fmt.Errorf("bucket usage of %q: %w", bucket, err)
	}
	if u == (chunkCount{}) {
		return nil, nil // an empty bucket, as its record says without counts
	}
	return &pb.BucketUsage{Objects: u.chunks, Bytes: u.bytes}, nil
}

// ensureBucketUsage rebuilds the bucket counts unless they are current at
// the applied index. It must not run concurrently with ApplyBatch.
func (s *State) ensureBucketUsage() error {
	current, err := s.holds(keyBucketUsage, bucketUsageMarker(s.applied.Load()))
	if err != nil {
		return fmt.Errorf("read bucket usage marker: %w", err)
	}
	if current {
		return nil
	}
	return s.rebuildBucketUsage()
}

// rebuildBucketUsage drops the bucket counts, counts again from o/, and
// writes the counts with the marker in one transaction: a crash before it
// leaves a state that rebuilds on the next open.
func (s *State) rebuildBucketUsage() error {
	start := time.Now()
	dropped, err := s.dropPrefix(prefixBucketUsage)
	if err != nil {
		return fmt.Errorf("rebuild bucket usage: %w", err)
	}
	counts := map[string]chunkCount{}
	objects := 0
	err = s.db.View(func(txn *badger.Txn) error {
		o := &pb.Object{}
		return scanTxn(txn, prefixObject, func(k, v []byte) error {
			o.Reset()
			if err := grpcbuf.UnmarshalUnchecked(v, o); err != nil {
				return fmt.Errorf("object %q: %w", k, err)
			}
			// o/<bucket> 00 <key>: bucket names hold no 00.
			bucket, _, ok := strings.Cut(string(k[len(prefixObject):]), "\x00")
			if !ok {
				return fmt.Errorf("object key %q has no bucket", k)
			}
			u := counts[bucket]
			u.chunks++
			u.bytes += o.GetSize()
			counts[bucket] = u
			objects++
			return nil
		})
	})
	if err == nil {
		err = s.storeCounts(counts, bucketUsageKey, setBucketUsageApplied)
	}
	if err != nil {
		return fmt.Errorf("rebuild bucket usage: %w", err)
	}
	s.logger.Info("counted objects per bucket", "objects", objects, "buckets", len(counts),
		"old_counts_dropped", dropped, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// bucketUsageCollector exports each bucket's counts from the leader only,
// so that a sum over every member's metrics counts each bucket once.
type bucketUsageCollector struct {
	s              *Server
	objects, bytes *prometheus.Desc
}

func newBucketUsageCollector(s *Server) *bucketUsageCollector {
	return &bucketUsageCollector{
		s: s,
		objects: prometheus.NewDesc("cairn_bucket_objects", "Objects in the bucket (current versions), as the metad leader has applied them.",
			[]string{"bucket"}, nil),
		bytes: prometheus.NewDesc("cairn_bucket_bytes", "Bytes of the bucket's objects before erasure coding, as the metad leader has applied them.",
			[]string{"bucket"}, nil),
	}
}

func (c *bucketUsageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.objects
	ch <- c.bytes
}

func (c *bucketUsageCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.raft.State() != raft.Leader {
		return
	}
	resp, err := c.s.state.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil {
		c.s.log.Warn("bucket usage metrics: read buckets", "err", err)
		return
	}
	for _, b := range resp.GetBuckets() {
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.GaugeValue, float64(b.GetUsage().GetObjects()), b.GetName())
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(b.GetUsage().GetBytes()), b.GetName())
	}
}

// checkQuota answers ErrQuotaExceeded when bucket, with the changes staged
// so far (the transaction's and the command's), holds more than its quota
// allows.
func (a *applier) checkQuota(bucket string) error {
	q, err := a.st.bucketQuota(bucket)
	if err != nil || q == nil {
		return err
	}
	u, err := readUsage(a.st.txn, bucketUsageKey(bucket))
	if err != nil {
		return fmt.Errorf("bucket usage of %q: %w", bucket, err)
	}
	for _, d := range []chunkCount{a.st.txnBucketUsage[bucket], a.st.bucketUsage[bucket]} {
		u.chunks += d.chunks
		u.bytes += d.bytes
	}
	switch {
	case q.GetMaxBytes() > 0 && u.bytes > q.GetMaxBytes():
		return metaerr.Detailed(metaerr.ErrQuotaExceeded, "bucket %q would hold %d bytes; its quota is %d", bucket, u.bytes, q.GetMaxBytes())
	case q.GetMaxObjects() > 0 && u.chunks > q.GetMaxObjects():
		return metaerr.Detailed(metaerr.ErrQuotaExceeded, "bucket %q would hold %d objects; its quota is %d", bucket, u.chunks, q.GetMaxObjects())
	}
	return nil
}

// bucketQuota is bucket's quota as the transaction has it (nil: none),
// decoded once per transaction: most commits are to buckets without one,
// and decoding the bucket record for each would cost every commit.
func (st *stage) bucketQuota(bucket string) (*pb.BucketQuota, error) {
	if q, ok := st.quotas[bucket]; ok {
		return q, nil
	}
	b := &pb.Bucket{}
	if _, err := st.get(bucketKey(bucket), b); err != nil {
		return nil, err
	}
	q := b.GetQuota()
	if q.GetMaxBytes() <= 0 && q.GetMaxObjects() <= 0 {
		q = nil
	}
	if st.quotas == nil {
		st.quotas = make(map[string]*pb.BucketQuota, 1)
	}
	st.quotas[bucket] = q
	return q, nil
}

// setBucketQuota replaces a bucket's quota (none, or all 0, removes it).
func (a *applier) setBucketQuota(req *pb.SetBucketQuotaRequest) (proto.Message, error) {
	q := req.GetQuota()
	if q.GetMaxBytes() < 0 || q.GetMaxObjects() < 0 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket quota: limits must be ≥ 0 (0: none)")
	}
	if q.GetMaxBytes() == 0 && q.GetMaxObjects() == 0 {
		q = nil
	}
	b, err := a.updateBucket(req.GetName(), func(b *pb.Bucket) { b.Quota = q })
	if err != nil {
		return nil, err
	}
	return &pb.SetBucketQuotaResponse{Bucket: b}, nil
}
