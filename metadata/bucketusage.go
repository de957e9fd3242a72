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
// objects' sizes, before erasure coding), the bytes of the parts of its
// multipart uploads in progress, and its noncurrent versions (kept by
// versioning, versioning.go) and their bytes, one entry per bucket:
//
//	bu/<bucket>  →  varint objects, varint bytes[, varint upload bytes
//	                [, varint versions, varint version bytes]]
//
// (the later varints only when they are not 0). It is derived data, a
// function of the o/, p/ and v/ keyspaces alone, kept the way the node counts are
// (nodeusage.go): the commands that create, replace or delete an object's
// current version or a part change it through the stage (countBucket),
// and the transaction writes each touched bucket's entry once, at its
// end, so a batch of commits to one bucket costs one read and one write.
// An entry exists exactly when its bucket holds an object or a part that
// is not empty.
//
// A part counts in upload bytes from its PutPart (a part replacing one of
// the same number counts the difference) until its upload ends: a
// CompleteMultipart takes every part of the upload out of them (the
// listed parts' bytes are the object's now, the others are deleted), as
// an AbortMultipart, an expiry's abort (expire.go) or a DeleteBucket does.
//
// m/bucketusage holds the counts' version and the applied index they are
// current at; every applied batch rewrites it with m/applied. A state
// without it or with another version (written or restored by an earlier
// version: version 1 counted no parts, version 2 no versions) gets its
// counts rebuilt from o/, p/ and v/ when it is opened or restored, before it serves
// (ensureBucketUsage). A member of an earlier version that opens or
// restores a state of this one rebuilds them the same way, so a rolling
// upgrade or downgrade never reads the other's entries.
//
// Quotas (checkQuota) limit these counts. From feature level 6, once the
// state records every metad member at it, max_bytes bounds objects' bytes
// and upload bytes together (and the bytes of noncurrent versions, which
// only buckets with versioning, feature level 7, have); before, only
// objects' bytes, as members of earlier levels count them.

var (
	prefixBucketUsage = []byte("bu/")
	keyBucketUsage    = []byte("m/bucketusage")
)

// bucketUsageVersion changes whenever the counts' keys or meaning do
// (2: upload bytes; 3: noncurrent versions).
const bucketUsageVersion = 3

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

// countBucket changes bucket's counts by d, for the command being
// applied.
func (st *stage) countBucket(bucket string, d chunkCount) {
	if d == (chunkCount{}) {
		return
	}
	if st.bucketUsage == nil {
		st.bucketUsage = make(map[string]chunkCount, 2)
	}
	u := st.bucketUsage[bucket]
	u.add(d)
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
	return &pb.BucketUsage{Objects: u.chunks, Bytes: u.bytes, UploadBytes: u.uploads,
		NoncurrentVersions: u.versions, NoncurrentBytes: u.versionBytes}, nil
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

// rebuildBucketUsage drops the bucket counts, counts again from o/ and
// p/, and writes the counts with the marker in one transaction: a crash
// before it leaves a state that rebuilds on the next open.
func (s *State) rebuildBucketUsage() error {
	start := time.Now()
	dropped, err := s.dropPrefix(prefixBucketUsage)
	if err != nil {
		return fmt.Errorf("rebuild bucket usage: %w", err)
	}
	counts := map[string]chunkCount{}
	objects, parts, versions := 0, 0, 0
	// o/<bucket> 00 <key> and p/<bucket> 00 ...: bucket names hold no 00.
	bucketOf := func(k, prefix []byte) (string, error) {
		bucket, _, ok := strings.Cut(string(k[len(prefix):]), "\x00")
		if !ok {
			return "", fmt.Errorf("key %q has no bucket", k)
		}
		return bucket, nil
	}
	o := &pb.Object{}
	err = s.db.View(func(txn *badger.Txn) error {
		err := scanTxn(txn, prefixObject, func(k, v []byte) error {
			o.Reset()
			if err := grpcbuf.UnmarshalUnchecked(v, o); err != nil {
				return fmt.Errorf("object %q: %w", k, err)
			}
			bucket, err := bucketOf(k, prefixObject)
			if err != nil {
				return err
			}
			u := counts[bucket]
			u.add(chunkCount{chunks: 1, bytes: o.GetSize()})
			counts[bucket] = u
			objects++
			return nil
		})
		if err != nil {
			return err
		}
		p := &pb.Part{}
		err = scanTxn(txn, prefixPart, func(k, v []byte) error {
			p.Reset()
			if err := grpcbuf.UnmarshalUnchecked(v, p); err != nil {
				return fmt.Errorf("part %q: %w", k, err)
			}
			bucket, err := bucketOf(k, prefixPart)
			if err != nil {
				return err
			}
			u := counts[bucket]
			u.add(chunkCount{uploads: p.GetSize()})
			counts[bucket] = u
			parts++
			return nil
		})
		if err != nil {
			return err
		}
		return scanTxn(txn, prefixVersion, func(k, v []byte) error {
			o.Reset()
			if err := grpcbuf.UnmarshalUnchecked(v, o); err != nil {
				return fmt.Errorf("version %q: %w", k, err)
			}
			bucket, err := bucketOf(k, prefixVersion)
			if err != nil {
				return err
			}
			u := counts[bucket]
			u.add(noncurrentCount(o, +1))
			counts[bucket] = u
			versions++
			return nil
		})
	})
	if err == nil {
		err = s.storeCounts(counts, bucketUsageKey, setBucketUsageApplied)
	}
	if err != nil {
		return fmt.Errorf("rebuild bucket usage: %w", err)
	}
	s.logger.Info("counted objects and uploads' parts per bucket", "objects", objects, "parts", parts, "noncurrent_versions", versions, "buckets", len(counts),
		"old_counts_dropped", dropped, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// bucketUsageCollector exports each bucket's counts from the leader only,
// so that a sum over every member's metrics counts each bucket once.
type bucketUsageCollector struct {
	s                           *Server
	objects, bytes, uploadBytes *prometheus.Desc
}

func newBucketUsageCollector(s *Server) *bucketUsageCollector {
	return &bucketUsageCollector{
		s: s,
		objects: prometheus.NewDesc("cairn_bucket_objects", "Objects in the bucket (current versions), as the metad leader has applied them.",
			[]string{"bucket"}, nil),
		bytes: prometheus.NewDesc("cairn_bucket_bytes", "Bytes of the bucket's objects before erasure coding, as the metad leader has applied them.",
			[]string{"bucket"}, nil),
		uploadBytes: prometheus.NewDesc("cairn_bucket_upload_bytes", "Bytes of the parts of the bucket's multipart uploads in progress, before erasure coding, as the metad leader has applied them.",
			[]string{"bucket"}, nil),
	}
}

func (c *bucketUsageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.objects
	ch <- c.bytes
	ch <- c.uploadBytes
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
		ch <- prometheus.MustNewConstMetric(c.uploadBytes, prometheus.GaugeValue, float64(b.GetUsage().GetUploadBytes()), b.GetName())
	}
}

// quotaUploadsLevel is the feature level (members.go) from which a quota
// counts upload bytes: a member of an earlier level counts none and never
// refuses a part, so the state machine keeps the earlier rule until the
// state records every member at this level, or the members' states would
// part ways.
const quotaUploadsLevel = 6

// checkQuota answers ErrQuotaExceeded when bucket, with the changes staged
// so far (the transaction's and the command's, the command's change d
// included), holds more than its quota allows, for a change that grows
// what the quota limits; a change that grows nothing always passes.
//
// From level 6 (quotaUploadsLevel) the bytes limit bounds objects' bytes
// and upload bytes together, checked when d grows their sum (an upload's
// completion moves bytes from one to the other and grows nothing), and
// the objects limit when d adds an object. Before, as members of earlier
// levels apply it: upload bytes count nothing, and a change adding an
// object or objects' bytes is checked against both limits.
func (a *applier) checkQuota(bucket string, d chunkCount) error {
	if d.chunks <= 0 && d.bytes <= 0 && d.uploads <= 0 && d.versionBytes <= 0 {
		return nil // grows nothing under either rule (deletes, aborts)
	}
	q, err := a.st.bucketQuota(bucket)
	if err != nil || q == nil {
		return err
	}
	level, err := a.st.membersLevel()
	if err != nil {
		return err
	}
	var growsObjects, growsBytes bool
	if level >= quotaUploadsLevel {
		growsObjects, growsBytes = d.chunks > 0, d.bytes+d.uploads+d.versionBytes > 0
	} else {
		growsObjects = d.chunks > 0 || d.bytes > 0
		growsBytes = growsObjects
	}
	if !growsObjects && !growsBytes {
		return nil
	}
	u, err := readUsage(a.st.txn, bucketUsageKey(bucket))
	if err != nil {
		return fmt.Errorf("bucket usage of %q: %w", bucket, err)
	}
	u.add(a.st.txnBucketUsage[bucket])
	u.add(a.st.bucketUsage[bucket])
	if level < quotaUploadsLevel {
		u.uploads = 0
	}
	switch {
	case growsBytes && q.GetMaxBytes() > 0 && u.bytes+u.uploads+u.versionBytes > q.GetMaxBytes():
		return metaerr.Detailed(metaerr.ErrQuotaExceeded, "bucket %q would hold %d bytes (%d in objects, %d in uploads' parts, %d in noncurrent versions); its quota is %d",
			bucket, u.bytes+u.uploads+u.versionBytes, u.bytes, u.uploads, u.versionBytes, q.GetMaxBytes())
	case growsObjects && q.GetMaxObjects() > 0 && u.chunks > q.GetMaxObjects():
		return metaerr.Detailed(metaerr.ErrQuotaExceeded, "bucket %q would hold %d objects; its quota is %d", bucket, u.chunks, q.GetMaxObjects())
	}
	return nil
}

// membersLevel is the lowest feature level the state records for a metad
// member (0 without any record), read once per transaction: a flush that
// writes a member record forgets it. It reads the transaction, not the
// stage, after the command may have staged writes: no command that checks
// a quota stages a member record.
//
// The records are the members' own announcements (SetMemberAddress), so
// every member reads the same level at the same entry. A member removed
// from the Raft configuration keeps its record: one removed before it
// reached a level holds the cluster's level below it.
func (st *stage) membersLevel() (uint32, error) {
	if st.levelRead {
		return st.level, nil
	}
	level, seen := uint32(0), false
	m := &pb.MetadMember{}
	err := scanTxn(st.txn, prefixMember, func(k, v []byte) error {
		m.Reset()
		if err := grpcbuf.UnmarshalUnchecked(v, m); err != nil {
			return fmt.Errorf("read %q: %w", k, err)
		}
		if !seen || m.GetFeatureLevel() < level {
			level = m.GetFeatureLevel()
		}
		seen = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read members' feature levels: %w", err)
	}
	st.level, st.levelRead = level, true
	return level, nil
}

// bucketQuota is bucket's quota as the transaction has it (nil: none).
func (st *stage) bucketQuota(bucket string) (*pb.BucketQuota, error) {
	b, err := st.bucketSettings(bucket)
	return b.quota, err
}

// bucketSettings are what commands to a bucket's objects read of its
// record.
type bucketSettings struct {
	quota      *pb.BucketQuota // nil: none
	versioning pb.VersioningStatus
	lock       *pb.ObjectLockConfiguration
}

// bucketSettings reads bucket's settings as the transaction has them,
// decoded once per transaction: most commits are to buckets without a
// quota or versioning, and decoding the bucket record for each would cost
// every commit.
func (st *stage) bucketSettings(bucket string) (bucketSettings, error) {
	if b, ok := st.settings[bucket]; ok {
		return b, nil
	}
	b := &pb.Bucket{}
	if _, err := st.get(bucketKey(bucket), b); err != nil {
		return bucketSettings{}, err
	}
	q := b.GetQuota()
	if q.GetMaxBytes() <= 0 && q.GetMaxObjects() <= 0 {
		q = nil
	}
	if st.settings == nil {
		st.settings = make(map[string]bucketSettings, 1)
	}
	set := bucketSettings{quota: q, versioning: b.GetVersioning(), lock: b.GetObjectLock()}
	st.settings[bucket] = set
	return set, nil
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
