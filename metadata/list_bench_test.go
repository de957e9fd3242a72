package metadata

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// BenchmarkListObjectsDelimiter lists the top level of a bucket whose keys
// sit in 10 directories: the page (10 common prefixes) should cost about
// the same with 10 keys as with 100,000.
func BenchmarkListObjectsDelimiter(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := smOpenDir(b, b.TempDir(), nil)
			s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
			keys := benchDirKeys(n)
			smInsertObjects(b, s, "bk", keys)
			req := &pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/"}
			b.ReportAllocs()
			before := s.listSteps.Load()
			for b.Loop() {
				r, err := s.ListObjects(req)
				if err != nil || len(r.CommonPrefixes) != 10 {
					b.Fatalf("%v, %v", r, err)
				}
			}
			b.ReportMetric(float64(s.listSteps.Load()-before)/float64(b.N), "steps/op")
		})
	}
}

// BenchmarkListObjectsPage lists a page of 1,000 keys inside a directory.
func BenchmarkListObjectsPage(b *testing.B) {
	s := smOpenDir(b, b.TempDir(), nil)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	keys := benchDirKeys(100_000)
	smInsertObjects(b, s, "bk", keys)
	req := &pb.ListObjectsRequest{Bucket: "bk", Prefix: "dir3/", Delimiter: "/", StartAfter: "dir3/file0050003"}
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.ListObjects(req)
		if err != nil || len(r.Objects) != 1000 {
			b.Fatalf("%d objects, %v", len(r.Objects), err)
		}
	}
}

// BenchmarkApplyBatchCommit applies batches of CommitObject commands (new
// keys, one 6-way segment each) with Badger's default options; one op is
// one batch.
func BenchmarkApplyBatchCommit(b *testing.B) {
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := smOpenDir(b, b.TempDir(), func(o *badger.Options) {})
			s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
			next := uint64(2)
			nodes := []string{"node-01", "node-02", "node-03", "node-04", "node-05", "node-06"}
			b.ReportAllocs()
			for b.Loop() {
				cmds := make([]*pb.Command, size)
				for i := range cmds {
					// Segment ids are fresh for every write, as the gateway makes them.
					id := binary.BigEndian.AppendUint64(make([]byte, 8, 16), next+uint64(i))
					seg := &pb.Segment{Id: id, Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 262144, Size: 1 << 20, Nodes: nodes}
					o := &pb.Object{Bucket: "bk", Key: fmt.Sprintf("photos/2026/img%09d.jpg", next+uint64(i)), VersionId: "0123456789abcdef0123456789abcdef",
						Size: 1 << 20, Etag: "d41d8cd98f00b204e9800998ecf8427e", ContentType: "image/jpeg", Segments: []*pb.Segment{seg}}
					cmds[i] = smCommit(o, nil)
				}
				for _, r := range s.ApplyBatch(smEntries(next, cmds...)) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
				next += uint64(size)
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkListObjectVersionsPage lists a page of 1,000 versions from a
// bucket of 100,000 keys with 3 versions each (current objects in o/, two
// noncurrent versions each in v/, written directly), from the middle.
func BenchmarkListObjectVersionsPage(b *testing.B) {
	s := smOpenDir(b, b.TempDir(), nil)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	keys := benchDirKeys(100_000)
	smInsertObjects(b, s, "bk", keys)
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i, k := range keys {
		for v := range 2 {
			o := &pb.Object{Bucket: "bk", Key: k, VersionId: fmt.Sprintf("%030x%02d", i, v), Versioned: true, Etag: "e", Size: 10,
				NoncurrentSinceUnixNano: 1, Segments: []*pb.Segment{smSeg(1)}}
			val, err := proto.Marshal(o)
			if err != nil {
				b.Fatal(err)
			}
			if err := wb.Set(versionKey("bk", k, uint64(10+v), 0, o.VersionId), val); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	req := &pb.ListObjectVersionsRequest{Bucket: "bk", KeyMarker: "dir3/file0050003"}
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.ListObjectVersions(req)
		if err != nil || len(r.Versions) != 1000 {
			b.Fatalf("%d versions, %v", len(r.GetVersions()), err)
		}
	}
}

// benchDirKeys is n keys spread over 10 directories, in insertion order
// dir0/file0000000, dir1/file0000001, ...
func benchDirKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("dir%d/file%07d", i%10, i)
	}
	return keys
}
