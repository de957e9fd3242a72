package metadata

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// BenchmarkFSMApplyCommit is one member's share of
// BenchmarkProposeCommitObject3Nodes without Raft: batch entries of 17
// CommitObject commands (what 64 callers make of the proposer, ~17 per
// entry) through fsm.ApplyBatch into a state with metad's default store
// sizing. cpu-µs/commit is the process's CPU time, so it counts Badger's
// write goroutine, memtable flushes and compactions, which run beside
// ApplyBatch; run enough commits (-benchtime 60000x) for memtables to
// fill and flush. keys=new commits a new key each time; the others
// overwrite 1,000 keys, in a bucket without versioning (the old version's
// segments go to GC) or with (it moves to v/, its segments re-indexed).
func BenchmarkFSMApplyCommit(b *testing.B) {
	for _, c := range []struct {
		name      string
		keys      int
		versioned bool
	}{{"keys=new", 0, false}, {"overwrites", 1000, false}, {"overwrites/versioned", 1000, true}} {
		b.Run(c.name, func(b *testing.B) { benchFSMApplyCommit(b, c.keys, c.versioned) })
	}
}

func benchFSMApplyCommit(b *testing.B, keys int, versioned bool) {
	const perEntry = 17
	cfg := DefaultStoreConfig()
	s, err := openState(b.TempDir(), nil, cfg.apply)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	f := newFSM(s)
	mk := func(c *pb.Command) []byte {
		data, err := proto.Marshal(c)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: mk(&pb.Command{Op: &pb.Command_CreateBucket{
		CreateBucket: &pb.CreateBucketRequest{Name: "bench"}}})}})
	next := uint64(2)
	if versioned {
		f.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: mk(&pb.Command{Op: &pb.Command_SetBucketVersioning{
			SetBucketVersioning: &pb.SetBucketVersioningRequest{Name: "bench", Status: pb.VersioningStatus_VERSIONING_STATUS_ENABLED}}})}})
		next = 3
	}
	nodes := []string{"blob1", "blob2", "blob3", "blob4", "blob5", "blob6"}
	// Entries are built ahead, as Raft hands them over already encoded.
	logs := make([]*raft.Log, 0, b.N/perEntry+1)
	for i := 0; i < b.N; i += perEntry {
		var cmds [][]byte
		for j := i; j < min(i+perEntry, b.N); j++ {
			seg := &pb.Segment{Id: binary.BigEndian.AppendUint64(make([]byte, 8, 16), uint64(j)), Scheme: &pb.Scheme{K: 4, M: 2},
				BlockSize: 1 << 18, Size: 1 << 20, Nodes: nodes}
			key := j
			if keys > 0 {
				key = j % keys
			}
			o := &pb.Object{Bucket: "bench", Key: fmt.Sprintf("obj/%08d", key), VersionId: fmt.Sprintf("%032x", j),
				Size: 1 << 20, Etag: "0123456789abcdef0123456789abcdef", ContentType: "application/octet-stream",
				Segments: []*pb.Segment{seg}}
			cmds = append(cmds, mk(&pb.Command{ProposedUnixNano: int64(j), Op: &pb.Command_CommitObject{
				CommitObject: &pb.CommitObjectRequest{Object: o}}}))
		}
		logs = append(logs, &raft.Log{Index: next + uint64(len(logs)), Type: raft.LogCommand, Data: encodeBatch(cmds)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for _, l := range logs {
		// hashicorp/raft hands the FSM what committed meanwhile; one
		// entry at a time is its usual case at 64 callers.
		for _, r := range f.ApplyBatch([]*raft.Log{l})[0].([]Result) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
}

// BenchmarkSegmentsOnNodes is the cost of finding a node's segments without
// an index by node: one full pass of SegmentsOnNodes over a state of
// CAIRN_BENCH_SEGMENTS (default 200,000) 4+2 segments placed on 6 of 60
// nodes, so the node asked for holds a tenth of them. ns/segment is per
// segment in the state (read, not found).
func BenchmarkSegmentsOnNodes(b *testing.B) {
	total := benchEnvInt(b, "CAIRN_BENCH_SEGMENTS", 200_000)
	s, err := openState(b.TempDir(), nil, DefaultStoreConfig().apply)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	index := uint64(1)
	apply := func(cmds ...*pb.Command) {
		es := make([]Entry, len(cmds))
		for i, c := range cmds {
			es[i] = Entry{Index: index, Cmd: c}
		}
		index++
		for _, r := range s.ApplyBatch(es) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	apply(&pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: &pb.CreateBucketRequest{Name: "bench"}}})
	for i := 0; i < total; i += 256 {
		var cmds []*pb.Command
		for j := i; j < min(i+256, total); j++ {
			nodes := make([]string, 6)
			for k := range nodes {
				nodes[k] = fmt.Sprintf("blob%02d", (j+k*10)%60)
			}
			id := binary.BigEndian.AppendUint64(make([]byte, 8, 16), uint64(j)*0x9E3779B97F4A7C15)
			seg := &pb.Segment{Id: id, Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 1 << 18, Size: 1 << 20, Nodes: nodes}
			cmds = append(cmds, &pb.Command{ProposedUnixNano: int64(j), Op: &pb.Command_CommitObject{CommitObject: &pb.CommitObjectRequest{
				Object: &pb.Object{Bucket: "bench", Key: fmt.Sprintf("obj/%08d", j), VersionId: fmt.Sprintf("%032x", j),
					Size: 1 << 20, Etag: "0123456789abcdef0123456789abcdef", Segments: []*pb.Segment{seg}}}}})
		}
		apply(cmds...)
	}
	b.ResetTimer()
	found := 0
	for range b.N {
		found = 0
		var after []byte
		for {
			infos, next, err := s.SegmentsOnNodes([]string{"blob07"}, after, 256)
			if err != nil {
				b.Fatal(err)
			}
			found += len(infos)
			if next == nil {
				break
			}
			after = next
		}
	}
	b.StopTimer()
	if found != total/10 {
		b.Fatalf("found %d segments on blob07, want %d", found, total/10)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(total), "ns/segment")
}
