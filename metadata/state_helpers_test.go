package metadata

// Test helpers of the state machine tests. Names start with "sm" so they do
// not collide with the Raft side's test helpers in this package.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smSmallBadger keeps a test's Badger small: tests open many.
func smSmallBadger(o *badger.Options) {
	o.MemTableSize = 4 << 20
	o.BlockCacheSize = 4 << 20
	o.ValueLogFileSize = 16 << 20
	o.NumCompactors = 2
	o.ValueThreshold = 64 << 10
}

// smOpen opens a State in a fresh temporary directory, closed at cleanup.
func smOpen(t testing.TB) *State {
	t.Helper()
	return smOpenDir(t, t.TempDir(), smSmallBadger)
}

func smOpenDir(t testing.TB, dir string, tune func(*badger.Options)) *State {
	t.Helper()
	s, err := openState(dir, nil, tune)
	if err != nil {
		t.Fatalf("open state: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close state: %v", err)
		}
	})
	return s
}

// smHarness applies commands one by one at increasing indices, with
// proposed time = index × 1000.
type smHarness struct {
	t    testing.TB
	s    *State
	next uint64
}

func smNew(t testing.TB) *smHarness {
	s := smOpen(t)
	return &smHarness{t: t, s: s, next: s.AppliedIndex() + 1}
}

// entry wraps a command as the next entry.
func (h *smHarness) entry(cmd *pb.Command) Entry {
	e := Entry{Index: h.next, Cmd: cmd}
	if cmd != nil && cmd.ProposedUnixNano == 0 {
		cmd.ProposedUnixNano = int64(h.next) * 1000
	}
	h.next++
	return e
}

// do applies one command and returns its result.
func (h *smHarness) do(cmd *pb.Command) Result {
	h.t.Helper()
	rs := h.s.ApplyBatch([]Entry{h.entry(cmd)})
	if len(rs) != 1 {
		h.t.Fatalf("ApplyBatch returned %d results for 1 entry", len(rs))
	}
	return rs[0]
}

// must applies commands that must all succeed.
func (h *smHarness) must(cmds ...*pb.Command) {
	h.t.Helper()
	for _, c := range cmds {
		if r := h.do(c); r.Err != nil {
			h.t.Fatalf("apply %v: %v", smOpName(c), r.Err)
		}
	}
}

func smOpName(c *pb.Command) string { return fmt.Sprintf("%T", c.GetOp()) }

// smIsCond checks that err is a metadata condition matching want (nil want:
// no error).
func smIsCond(err, want error) bool {
	if want == nil {
		return err == nil
	}
	var me *metaerr.Error
	return errors.As(err, &me) && errors.Is(err, want)
}

func smSeg(id byte) *pb.Segment {
	return &pb.Segment{Id: []byte{id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, id}, Size: 10, Nodes: []string{"n1", "n2"}}
}

// smSegN is a segment with an id made from n (distinct from every smSeg
// id), for tests that need more than 256 fresh ids.
func smSegN(n uint32, nodes ...string) *pb.Segment {
	id := binary.BigEndian.AppendUint32([]byte{0xAB, 0xCD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, n)
	if nodes == nil {
		nodes = []string{"n1", "n2"}
	}
	return &pb.Segment{Id: id, Size: 10, Nodes: nodes}
}

func smCreateBucket(name string) *pb.Command {
	return &pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: &pb.CreateBucketRequest{Name: name, Region: "r1"}}}
}

func smDeleteBucket(name string) *pb.Command {
	return &pb.Command{Op: &pb.Command_DeleteBucket{DeleteBucket: &pb.DeleteBucketRequest{Name: name}}}
}

func smObj(bucket, key, etag string, segs ...*pb.Segment) *pb.Object {
	return &pb.Object{
		Bucket: bucket, Key: key, VersionId: "v-" + key + "-" + etag, Etag: etag, Size: int64(10 * len(segs)),
		ContentType: "text/plain", UserMetadata: map[string]string{"a": "1", "b": "2"},
		Segments: segs, Parts: []*pb.PartInfo{{Number: 1, Size: 1}},
	}
}

func smCommit(o *pb.Object, cond *pb.Condition) *pb.Command {
	return &pb.Command{Op: &pb.Command_CommitObject{CommitObject: &pb.CommitObjectRequest{Object: o, Condition: cond}}}
}

func smPut(bucket, key, etag string, segs ...*pb.Segment) *pb.Command {
	return smCommit(smObj(bucket, key, etag, segs...), nil)
}

func smDelete(bucket, key string, cond *pb.Condition) *pb.Command {
	return &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: &pb.DeleteObjectRequest{Bucket: bucket, Key: key, Condition: cond}}}
}

func smDeleteVersion(bucket, key, id string) *pb.Command {
	return &pb.Command{Op: &pb.Command_DeleteObject{DeleteObject: &pb.DeleteObjectRequest{Bucket: bucket, Key: key, VersionId: id}}}
}

func smSetVersioning(bucket string, st pb.VersioningStatus) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetBucketVersioning{SetBucketVersioning: &pb.SetBucketVersioningRequest{Name: bucket, Status: st}}}
}

func smCreateUpload(bucket, key, id string) *pb.Command {
	return &pb.Command{Op: &pb.Command_CreateMultipart{CreateMultipart: &pb.CreateMultipartRequest{
		Upload: &pb.MultipartUpload{Bucket: bucket, Key: key, UploadId: id, ContentType: "x/y"}}}}
}

func smPutPart(bucket, key, id string, n int32, etag string, segs ...*pb.Segment) *pb.Command {
	return &pb.Command{Op: &pb.Command_PutPart{PutPart: &pb.PutPartRequest{Bucket: bucket, Key: key,
		Part: &pb.Part{UploadId: id, Number: n, Etag: etag, Size: 10, Segments: segs}}}}
}

func smComplete(id string, o *pb.Object, cond *pb.Condition, parts ...*pb.CompletePart) *pb.Command {
	return &pb.Command{Op: &pb.Command_CompleteMultipart{CompleteMultipart: &pb.CompleteMultipartRequest{
		UploadId: id, Parts: parts, Object: o, Condition: cond}}}
}

func smAbort(bucket, key, id string) *pb.Command {
	return &pb.Command{Op: &pb.Command_AbortMultipart{AbortMultipart: &pb.AbortMultipartRequest{Bucket: bucket, Key: key, UploadId: id}}}
}

func smCP(n int32, etag string) *pb.CompletePart { return &pb.CompletePart{Number: n, Etag: etag} }

func smRegister(id, addr, zone string, capacity int64) *pb.Command {
	return &pb.Command{Op: &pb.Command_RegisterNode{RegisterNode: &pb.RegisterNodeRequest{Node: &pb.Node{
		Id: id, Address: addr, Zone: zone, Rack: "r", CapacityBytes: capacity, LastHeartbeatUnixNano: 99}}}}
}

func smUsage(id string, capacity, used int64) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetNodeUsage{SetNodeUsage: &pb.SetNodeUsage{Id: id, CapacityBytes: capacity, UsedBytes: used}}}
}

func smMember(id, addr string) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetMemberAddress{SetMemberAddress: &pb.SetMemberAddress{Id: id, GrpcAddress: addr}}}
}

func smBootstrap(k, m uint32) *pb.Command {
	return &pb.Command{Op: &pb.Command_Bootstrap{Bootstrap: &pb.Bootstrap{DefaultScheme: &pb.Scheme{K: k, M: m}}}}
}

// smGC returns every GC record, in key order.
func smGC(t testing.TB, s *State) []*pb.GCEntry {
	t.Helper()
	var out []*pb.GCEntry
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixGC, func(k, v []byte) error {
			e := &pb.GCEntry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read gc: %v", err)
	}
	return out
}

// smGCSegments returns the first byte of every queued segment id, in GC
// order.
func smGCSegments(t testing.TB, s *State) []byte {
	var ids []byte
	for _, e := range smGC(t, s) {
		for _, seg := range e.Segments {
			ids = append(ids, seg.Id[0])
		}
	}
	return ids
}

// smKeys returns the number of Badger keys with prefix.
func smCount(t testing.TB, s *State, prefix []byte) int {
	t.Helper()
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefix, func(k, v []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatalf("count %q: %v", prefix, err)
	}
	return n
}
