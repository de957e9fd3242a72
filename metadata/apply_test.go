package metadata

import (
	"bytes"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smDump returns every key and value except the applied index (and the
// markers of the directory index and the node counts, which repeat it).
func smDump(t testing.TB, s *State) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, nil, func(k, v []byte) error {
			if !bytes.Equal(k, keyApplied) && !bytes.Equal(k, keyDirIndex) && !bytes.Equal(k, keyNodeUsage) && !bytes.Equal(k, keyBucketUsage) {
				m[string(k)] = string(v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return m
}

func smGetObject(t testing.TB, s *State, bucket, key string) (*pb.Object, error) {
	t.Helper()
	r, err := s.GetObject(&pb.GetObjectRequest{Bucket: bucket, Key: key})
	if err != nil {
		return nil, err
	}
	return r.Object, nil
}

func smParts(t testing.TB, s *State, bucket, key, id string) []*pb.Part {
	t.Helper()
	r, err := s.ListParts(&pb.ListPartsRequest{Bucket: bucket, Key: key, UploadId: id, WithSegments: true})
	if err != nil {
		t.Fatalf("list parts: %v", err)
	}
	return r.Parts
}

func TestApplyCommands(t *testing.T) {
	bucket := smCreateBucket("bk")
	upload := smCreateUpload("bk", "big", "U1")
	threeParts := []*pb.Command{bucket, upload,
		smPutPart("bk", "big", "U1", 1, "e1", smSeg(1)),
		smPutPart("bk", "big", "U1", 2, "e2", smSeg(2), smSeg(3)),
		smPutPart("bk", "big", "U1", 3, "e3", smSeg(4)),
	}
	mpObj := func(segs ...*pb.Segment) *pb.Object { return smObj("bk", "big", "mp-2", segs...) }

	tests := []smCase{
		// ---- cluster
		{name: "bootstrap sets scheme and bumps epoch", cmd: smBootstrap(4, 2), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.DefaultScheme.GetK() != 4 || cm.DefaultScheme.GetM() != 2 || cm.Epoch != 1 {
				t.Errorf("cluster map %v", cm)
			}
			if !proto.Equal(r.Resp, cm) {
				t.Errorf("response %v, state %v", r.Resp, cm)
			}
			if ok, _ := s.Bootstrapped(); !ok {
				t.Error("not bootstrapped")
			}
		}},
		{name: "second bootstrap is a no-op", setup: []*pb.Command{smBootstrap(4, 2)}, cmd: smBootstrap(8, 3), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.DefaultScheme.GetK() != 4 || cm.Epoch != 1 {
				t.Errorf("cluster map %v", cm)
			}
		}},
		{name: "bootstrap k=0", cmd: smBootstrap(0, 2), wantErr: metaerr.ErrInvalidArgument},
		{name: "bootstrap k=17", cmd: smBootstrap(17, 2), wantErr: metaerr.ErrInvalidArgument},
		{name: "bootstrap m=9", cmd: smBootstrap(4, 9), wantErr: metaerr.ErrInvalidArgument},
		{name: "bootstrap without scheme", cmd: &pb.Command{Op: &pb.Command_Bootstrap{Bootstrap: &pb.Bootstrap{}}}, wantErr: metaerr.ErrInvalidArgument},
		{name: "not bootstrapped", cmd: smMember("m1", "a:1"), check: func(t *testing.T, s *State, r Result) {
			if ok, _ := s.Bootstrapped(); ok {
				t.Error("bootstrapped")
			}
			if cm, _ := s.ClusterMap(); cm.DefaultScheme != nil || cm.Epoch != 0 || len(cm.Nodes) != 0 {
				t.Errorf("cluster map %v", cm)
			}
		}},
		{name: "register new node", setup: []*pb.Command{smRegister("b", "h:2", "z2", 5)}, cmd: smRegister("a", "h:1", "z1", 100), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.Epoch != 2 || len(cm.Nodes) != 2 || cm.Nodes[0].Id != "a" || cm.Nodes[1].Id != "b" {
				t.Fatalf("cluster map %v", cm)
			}
			n := cm.Nodes[0]
			if n.State != pb.NodeState_NODE_STATE_UP || n.Address != "h:1" || n.Zone != "z1" || n.Rack != "r" || n.CapacityBytes != 100 || n.LastHeartbeatUnixNano != 0 {
				t.Errorf("node %v", n)
			}
			if !proto.Equal(r.Resp.(*pb.RegisterNodeResponse).ClusterMap, cm) {
				t.Errorf("response %v, state %v", r.Resp, cm)
			}
		}},
		{name: "re-register unchanged keeps epoch", setup: []*pb.Command{smRegister("a", "h:1", "z1", 100)}, cmd: smRegister("a", "h:1", "z1", 100), check: func(t *testing.T, s *State, r Result) {
			if cm, _ := s.ClusterMap(); cm.Epoch != 1 {
				t.Errorf("epoch %d, want 1", cm.Epoch)
			}
		}},
		{name: "re-register with new address bumps epoch, keeps state", setup: []*pb.Command{smRegister("a", "h:1", "z1", 100)}, cmd: smRegister("a", "h:9", "z1", 100), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.Epoch != 2 || cm.Nodes[0].Address != "h:9" || cm.Nodes[0].State != pb.NodeState_NODE_STATE_UP {
				t.Errorf("cluster map %v", cm)
			}
		}},
		{name: "register without id", cmd: smRegister("", "h:1", "z", 1), wantErr: metaerr.ErrInvalidArgument},
		{name: "register without node", cmd: &pb.Command{Op: &pb.Command_RegisterNode{RegisterNode: &pb.RegisterNodeRequest{}}}, wantErr: metaerr.ErrInvalidArgument},
		{name: "node usage", setup: []*pb.Command{smRegister("a", "h:1", "z1", 100)}, cmd: smUsage("a", 200, 50), check: func(t *testing.T, s *State, r Result) {
			cm, _ := s.ClusterMap()
			if cm.Epoch != 1 || cm.Nodes[0].CapacityBytes != 200 || cm.Nodes[0].UsedBytes != 50 {
				t.Errorf("cluster map %v", cm)
			}
			if !proto.Equal(r.Resp, cm.Nodes[0]) {
				t.Errorf("response %v", r.Resp)
			}
		}},
		{name: "usage of unknown node", cmd: smUsage("a", 1, 1), wantErr: metaerr.ErrNoSuchNode},
		{name: "member address", setup: []*pb.Command{smMember("m1", "a:1"), smMember("m2", "b:1")}, cmd: smMember("m1", "a:2"), check: func(t *testing.T, s *State, r Result) {
			got, _ := s.MemberAddresses()
			if len(got) != 2 || got["m1"] != "a:2" || got["m2"] != "b:1" {
				t.Errorf("members %v", got)
			}
		}},
		{name: "member without id", cmd: smMember("", "a:1"), wantErr: metaerr.ErrInvalidArgument},
		{name: "empty command", cmd: &pb.Command{}, wantErr: metaerr.ErrInvalidArgument},
		{name: "nil command", cmd: nil, wantErr: metaerr.ErrInvalidArgument},

		// ---- buckets
		{name: "create bucket", cmd: smCreateBucket("b1"), check: func(t *testing.T, s *State, r Result) {
			got, err := s.GetBucket(&pb.GetBucketRequest{Name: "b1"})
			if err != nil || got.Bucket.Name != "b1" || got.Bucket.Region != "r1" || got.Bucket.CreatedUnixNano != 1000 {
				t.Errorf("bucket %v, %v", got, err)
			}
			if !proto.Equal(r.Resp.(*pb.CreateBucketResponse).Bucket, got.Bucket) {
				t.Errorf("response %v", r.Resp)
			}
		}},
		{name: "create existing bucket", setup: []*pb.Command{smCreateBucket("b1")}, cmd: smCreateBucket("b1"), wantErr: metaerr.ErrBucketAlreadyOwnedByYou},
		{name: "create bucket without name", cmd: smCreateBucket(""), wantErr: metaerr.ErrInvalidArgument},
		{name: "create bucket with NUL", cmd: smCreateBucket("a\x00b"), wantErr: metaerr.ErrInvalidArgument},
		{name: "delete bucket", setup: []*pb.Command{smCreateBucket("b1")}, cmd: smDeleteBucket("b1"), check: func(t *testing.T, s *State, r Result) {
			if _, err := s.GetBucket(&pb.GetBucketRequest{Name: "b1"}); !smIsCond(err, metaerr.ErrNoSuchBucket) {
				t.Errorf("get deleted bucket: %v", err)
			}
		}},
		{name: "delete missing bucket", cmd: smDeleteBucket("b1"), wantErr: metaerr.ErrNoSuchBucket},
		{name: "delete non-empty bucket", setup: []*pb.Command{bucket, smPut("bk", "k", "e")}, cmd: smDeleteBucket("bk"), wantErr: metaerr.ErrBucketNotEmpty},
		{name: "delete emptied bucket", setup: []*pb.Command{bucket, smPut("bk", "k", "e"), smDelete("bk", "k", nil)}, cmd: smDeleteBucket("bk")},
		{name: "delete bucket aborts uploads", setup: append(threeParts, smCreateUpload("bk", "other", "U2"), smPutPart("bk", "other", "U2", 1, "x", smSeg(9)),
			smCreateBucket("bk2"), smCreateUpload("bk2", "big", "U1"), smPutPart("bk2", "big", "U1", 1, "y", smSeg(7))),
			cmd: smDeleteBucket("bk"), check: func(t *testing.T, s *State, r Result) {
				if got := smGCSegments(t, s); !bytes.Equal(got, []byte{1, 2, 3, 4, 9}) {
					t.Errorf("gc segments %v", got)
				}
				// bk2's upload (same key and id) is untouched.
				if n := smCount(t, s, prefixUpload); n != 1 {
					t.Errorf("%d uploads left, want 1", n)
				}
				if n := smCount(t, s, prefixPart); n != 1 {
					t.Errorf("%d parts left, want 1", n)
				}
			}},

		// ---- objects
		{name: "commit object", setup: []*pb.Command{bucket}, cmd: smPut("bk", "k", "e1", smSeg(1)), check: func(t *testing.T, s *State, r Result) {
			got, err := smGetObject(t, s, "bk", "k")
			if err != nil || got.ModifiedUnixNano != 2000 || got.Etag != "e1" || len(got.Segments) != 1 {
				t.Fatalf("object %v, %v", got, err)
			}
			if !proto.Equal(r.Resp.(*pb.CommitObjectResponse).Object, got) {
				t.Errorf("response %v, stored %v", r.Resp, got)
			}
			if len(smGC(t, s)) != 0 {
				t.Error("gc entries for a new key")
			}
		}},
		{name: "commit to missing bucket", cmd: smPut("bk", "k", "e1"), wantErr: metaerr.ErrNoSuchBucket},
		{name: "commit empty key", setup: []*pb.Command{bucket}, cmd: smPut("bk", "", "e1"), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit too long key", setup: []*pb.Command{bucket}, cmd: smPut("bk", string(make([]byte, 1025)), "e1"), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit without object", setup: []*pb.Command{bucket}, cmd: smCommit(nil, nil), wantErr: metaerr.ErrInvalidArgument},
		{name: "commit replaces and queues old segments", setup: []*pb.Command{bucket, smPut("bk", "k", "e1", smSeg(1), smSeg(2))}, cmd: smPut("bk", "k", "e2", smSeg(3)), check: func(t *testing.T, s *State, r Result) {
			gc := smGC(t, s)
			if len(gc) != 1 || gc[0].VersionId != "v-k-e1" || gc[0].Bucket != "bk" || gc[0].Key != "k" || gc[0].QueuedUnixNano != 3000 || len(gc[0].Segments) != 2 {
				t.Errorf("gc %v", gc)
			}
			if got, _ := smGetObject(t, s, "bk", "k"); got.Etag != "e2" {
				t.Errorf("object %v", got)
			}
		}},
		{name: "replacing an inline object queues nothing", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smPut("bk", "k", "e2"), check: func(t *testing.T, s *State, r Result) {
			if gc := smGC(t, s); len(gc) != 0 {
				t.Errorf("gc %v", gc)
			}
		}},
		{name: "must_not_exist on existing key", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{MustNotExist: true}), wantErr: metaerr.ErrPreconditionFailed},
		{name: "must_not_exist on new key", setup: []*pb.Command{bucket}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{MustNotExist: true})},
		{name: "if_match matches", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{IfMatchEtag: "e1"})},
		{name: "if_match quoted", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{IfMatchEtag: `"e1"`})},
		{name: "if_match star", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{IfMatchEtag: "*"})},
		{name: "if_match differs", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{IfMatchEtag: "e0"}), wantErr: metaerr.ErrPreconditionFailed},
		{name: "if_match on missing key", setup: []*pb.Command{bucket}, cmd: smCommit(smObj("bk", "k", "e2"), &pb.Condition{IfMatchEtag: "e1"}), wantErr: metaerr.ErrNoSuchKey},
		{name: "delete object", setup: []*pb.Command{bucket, smPut("bk", "k", "e1", smSeg(5))}, cmd: smDelete("bk", "k", nil), check: func(t *testing.T, s *State, r Result) {
			if !r.Resp.(*pb.DeleteObjectResponse).Deleted {
				t.Error("deleted=false")
			}
			if _, err := smGetObject(t, s, "bk", "k"); !smIsCond(err, metaerr.ErrNoSuchKey) {
				t.Errorf("get deleted: %v", err)
			}
			if got := smGCSegments(t, s); !bytes.Equal(got, []byte{5}) {
				t.Errorf("gc %v", got)
			}
		}},
		{name: "delete missing object", setup: []*pb.Command{bucket}, cmd: smDelete("bk", "k", nil), check: func(t *testing.T, s *State, r Result) {
			if r.Resp.(*pb.DeleteObjectResponse).Deleted {
				t.Error("deleted=true")
			}
		}},
		{name: "delete in missing bucket", cmd: smDelete("bk", "k", nil), wantErr: metaerr.ErrNoSuchBucket},
		{name: "delete if_match differs", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smDelete("bk", "k", &pb.Condition{IfMatchEtag: "e2"}), wantErr: metaerr.ErrPreconditionFailed},
		{name: "delete if_match matches", setup: []*pb.Command{bucket, smPut("bk", "k", "e1")}, cmd: smDelete("bk", "k", &pb.Condition{IfMatchEtag: "e1"}), check: func(t *testing.T, s *State, r Result) {
			if !r.Resp.(*pb.DeleteObjectResponse).Deleted {
				t.Error("deleted=false")
			}
		}},
		{name: "delete if_match missing key", setup: []*pb.Command{bucket}, cmd: smDelete("bk", "k", &pb.Condition{IfMatchEtag: "e1"}), wantErr: metaerr.ErrNoSuchKey},

		// ---- multipart
		{name: "create upload", setup: []*pb.Command{bucket}, cmd: upload, check: func(t *testing.T, s *State, r Result) {
			got, err := s.GetMultipart(&pb.GetMultipartRequest{Bucket: "bk", Key: "big", UploadId: "U1"})
			if err != nil || got.Upload.InitiatedUnixNano != 2000 || got.Upload.ContentType != "x/y" {
				t.Fatalf("upload %v, %v", got, err)
			}
			if !proto.Equal(r.Resp.(*pb.CreateMultipartResponse).Upload, got.Upload) {
				t.Errorf("response %v", r.Resp)
			}
		}},
		{name: "create upload in missing bucket", cmd: upload, wantErr: metaerr.ErrNoSuchBucket},
		{name: "create upload without id", setup: []*pb.Command{bucket}, cmd: smCreateUpload("bk", "k", ""), wantErr: metaerr.ErrInvalidArgument},
		{name: "create upload without key", setup: []*pb.Command{bucket}, cmd: smCreateUpload("bk", "", "U"), wantErr: metaerr.ErrInvalidArgument},
		{name: "create upload with id in use", setup: []*pb.Command{bucket, upload}, cmd: upload, wantErr: metaerr.ErrInvalidArgument},
		{name: "put part", setup: []*pb.Command{bucket, upload}, cmd: smPutPart("bk", "big", "U1", 7, "e", smSeg(1)), check: func(t *testing.T, s *State, r Result) {
			ps := smParts(t, s, "bk", "big", "U1")
			if len(ps) != 1 || ps[0].Number != 7 || ps[0].ModifiedUnixNano != 3000 || len(ps[0].Segments) != 1 {
				t.Errorf("parts %v", ps)
			}
		}},
		{name: "put part of unknown upload", setup: []*pb.Command{bucket}, cmd: smPutPart("bk", "big", "U1", 1, "e"), wantErr: metaerr.ErrNoSuchUpload},
		{name: "put part under another key", setup: []*pb.Command{bucket, upload}, cmd: smPutPart("bk", "small", "U1", 1, "e"), wantErr: metaerr.ErrNoSuchUpload},
		{name: "put part 0", setup: []*pb.Command{bucket, upload}, cmd: smPutPart("bk", "big", "U1", 0, "e"), wantErr: metaerr.ErrInvalidArgument},
		{name: "put part 10001", setup: []*pb.Command{bucket, upload}, cmd: smPutPart("bk", "big", "U1", 10001, "e"), wantErr: metaerr.ErrInvalidArgument},
		{name: "replace part queues old segments", setup: threeParts, cmd: smPutPart("bk", "big", "U1", 2, "e2b", smSeg(8)), check: func(t *testing.T, s *State, r Result) {
			gc := smGC(t, s)
			if len(gc) != 1 || gc[0].UploadId != "U1" || gc[0].PartNumber != 2 || len(gc[0].Segments) != 2 {
				t.Errorf("gc %v", gc)
			}
			if ps := smParts(t, s, "bk", "big", "U1"); ps[1].Etag != "e2b" {
				t.Errorf("part 2 %v", ps[1])
			}
		}},
		{name: "complete upload", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(1), smSeg(4)), nil, smCP(1, "e1"), smCP(3, `"e3"`)), check: func(t *testing.T, s *State, r Result) {
			got, err := smGetObject(t, s, "bk", "big")
			if err != nil || got.Etag != "mp-2" || got.ModifiedUnixNano != 6000 || len(got.Segments) != 2 {
				t.Fatalf("object %v, %v", got, err)
			}
			if !proto.Equal(r.Resp.(*pb.CompleteMultipartResponse).Object, got) {
				t.Errorf("response %v", r.Resp)
			}
			if _, err := s.GetMultipart(&pb.GetMultipartRequest{Bucket: "bk", Key: "big", UploadId: "U1"}); !smIsCond(err, metaerr.ErrNoSuchUpload) {
				t.Errorf("upload after complete: %v", err)
			}
			if n := smCount(t, s, prefixPart); n != 0 {
				t.Errorf("%d parts left", n)
			}
			// Part 2 was not listed: its segments are garbage.
			if got := smGCSegments(t, s); !bytes.Equal(got, []byte{2, 3}) {
				t.Errorf("gc %v", got)
			}
		}},
		{name: "complete replaces existing version", setup: append([]*pb.Command{bucket, smPut("bk", "big", "old", smSeg(20))}, threeParts[1:]...),
			cmd: smComplete("U1", mpObj(smSeg(1), smSeg(2), smSeg(3), smSeg(4)), nil, smCP(1, "e1"), smCP(2, "e2"), smCP(3, "e3")), check: func(t *testing.T, s *State, r Result) {
				if got := smGCSegments(t, s); !bytes.Equal(got, []byte{20}) {
					t.Errorf("gc %v", got)
				}
			}},
		{name: "complete unknown upload", setup: []*pb.Command{bucket}, cmd: smComplete("U1", mpObj(), nil, smCP(1, "e1")), wantErr: metaerr.ErrNoSuchUpload},
		{name: "complete without object", setup: threeParts, cmd: smComplete("U1", nil, nil, smCP(1, "e1")), wantErr: metaerr.ErrNoSuchUpload},
		{name: "complete with missing part", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(1)), nil, smCP(1, "e1"), smCP(5, "e5")), wantErr: metaerr.ErrInvalidPart},
		{name: "complete with wrong etag", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(1)), nil, smCP(1, "e9")), wantErr: metaerr.ErrInvalidPart},
		{name: "complete with parts out of order", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(4), smSeg(1)), nil, smCP(3, "e3"), smCP(1, "e1")), wantErr: metaerr.ErrInvalidPartOrder},
		{name: "complete with part twice", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(1), smSeg(1)), nil, smCP(1, "e1"), smCP(1, "e1")), wantErr: metaerr.ErrInvalidPartOrder},
		{name: "complete with no parts", setup: threeParts, cmd: smComplete("U1", mpObj(), nil), wantErr: metaerr.ErrInvalidArgument},
		{name: "complete with segments not the parts'", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(9)), nil, smCP(1, "e1")), wantErr: metaerr.ErrInvalidPart},
		{name: "complete with segments missing", setup: threeParts, cmd: smComplete("U1", mpObj(smSeg(2)), nil, smCP(2, "e2")), wantErr: metaerr.ErrInvalidPart},
		{name: "complete must_not_exist on existing", setup: append([]*pb.Command{bucket, smPut("bk", "big", "old")}, threeParts[1:]...),
			cmd: smComplete("U1", mpObj(smSeg(1)), &pb.Condition{MustNotExist: true}, smCP(1, "e1")), wantErr: metaerr.ErrPreconditionFailed},
		{name: "complete if_match differs", setup: append([]*pb.Command{bucket, smPut("bk", "big", "old")}, threeParts[1:]...),
			cmd: smComplete("U1", mpObj(smSeg(1)), &pb.Condition{IfMatchEtag: "new"}, smCP(1, "e1")), wantErr: metaerr.ErrPreconditionFailed},
		{name: "abort upload", setup: threeParts, cmd: smAbort("bk", "big", "U1"), check: func(t *testing.T, s *State, r Result) {
			if _, err := s.GetMultipart(&pb.GetMultipartRequest{Bucket: "bk", Key: "big", UploadId: "U1"}); !smIsCond(err, metaerr.ErrNoSuchUpload) {
				t.Errorf("upload after abort: %v", err)
			}
			if n := smCount(t, s, prefixPart); n != 0 {
				t.Errorf("%d parts left", n)
			}
			if got := smGCSegments(t, s); !bytes.Equal(got, []byte{1, 2, 3, 4}) {
				t.Errorf("gc %v", got)
			}
		}},
		{name: "abort unknown upload", setup: []*pb.Command{bucket}, cmd: smAbort("bk", "big", "U1"), wantErr: metaerr.ErrNoSuchUpload},
	}
	smRunCases(t, tests)
}

// smCase is one command applied to a fresh state after setup: it must be
// refused with wantErr (leaving the state byte-identical) or succeed and
// pass check.
type smCase struct {
	name    string
	setup   []*pb.Command
	cmd     *pb.Command
	wantErr error
	check   func(t *testing.T, s *State, r Result)
}

func smRunCases(t *testing.T, tests []smCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := smNew(t)
			// Setups share command messages between cases; apply clones.
			for _, c := range tt.setup {
				h.must(proto.CloneOf(c))
			}
			cmd := proto.CloneOf(tt.cmd)
			before := smDump(t, h.s)
			r := h.do(cmd)
			if !smIsCond(r.Err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", r.Err, tt.wantErr)
			}
			if h.s.AppliedIndex() != h.next-1 {
				t.Errorf("applied index %d, want %d", h.s.AppliedIndex(), h.next-1)
			}
			if tt.wantErr != nil {
				if r.Resp != nil {
					t.Errorf("response %v with error", r.Resp)
				}
				if after := smDump(t, h.s); !smMapsEqual(before, after) {
					t.Errorf("refused command changed state:\nbefore %q\nafter  %q", before, after)
				}
				return
			}
			if r.Resp == nil {
				t.Fatal("no response")
			}
			if tt.check != nil {
				tt.check(t, h.s, r)
			}
			smCheckIndexes(t, h.s, "after "+tt.name)
		})
	}
}

func smMapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
