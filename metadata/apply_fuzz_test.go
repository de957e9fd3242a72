package metadata

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smJoinCommands encodes commands as fuzz input: uvarint length + bytes.
// Commands that cannot be marshalled are left out.
func smJoinCommands(cmds ...*pb.Command) []byte {
	var out []byte
	for _, c := range cmds {
		b, err := proto.Marshal(c)
		if err != nil {
			continue // not UTF-8: cannot be a committed command
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out
}

// FuzzApplyBatch applies batches of commands decoded from fuzz bytes to one
// long-lived state: apply must never panic, and must refuse bad commands
// with a metadata condition, never fail as if the state were broken.
func FuzzApplyBatch(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	cmds := smRandomCommands(rng, 60)
	for i := 0; i < len(cmds); i += 6 {
		f.Add(smJoinCommands(cmds[i : i+6]...))
	}
	f.Add(smJoinCommands(smCreateBucket("bk"), smCreateUpload("bk", "k", "U"), smPutPart("bk", "k", "U", 1, "e", smSeg(1)),
		smComplete("U", smObj("bk", "k", "m", smSeg(1)), &pb.Condition{MustNotExist: true}, smCP(1, "e"))))
	f.Add(smJoinCommands(smBootstrap(4, 2), smRegister("n", "a", "z", 1), smUsage("n", 2, 1), smMember("m", "x"), smDeleteBucket("bk")))
	f.Add(smJoinCommands(smRegister("n1", "a", "z", 1), smRegister("n3", "a", "z", 1), smMark(smRef(1, 1, "n2")), smMove(1, 1, "", "n3", "repair"),
		smMove(1, 0, "n1", "n2", "rebalance"), smSetState("n1", pb.NodeState_NODE_STATE_DOWN), smAck(gcKey(1, 2, 3)), smSetRebalance(&pb.SetRebalance{Running: true})))
	f.Add([]byte{0})
	f.Add([]byte{3, 0xff, 0xff, 0xff})

	s := smOpen(f)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateUpload("bk", "k", "U"), smPutPart("bk", "k", "U", 1, "e", smSeg(1))))
	next := s.AppliedIndex() + 1

	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []Entry
		for len(data) > 0 && len(entries) < 32 {
			n, used := binary.Uvarint(data)
			if used <= 0 || n > uint64(len(data)-used) {
				break
			}
			cmd := &pb.Command{}
			if err := proto.Unmarshal(data[used:used+int(n)], cmd); err != nil {
				cmd = nil // the Raft side never commits undecodable entries; nil must still be safe
			}
			data = data[used+int(n):]
			entries = append(entries, Entry{Index: next, Cmd: cmd})
			next++
		}
		// Replayed entries are skipped, not applied twice.
		if len(entries) > 1 && next%5 == 0 {
			entries = append(entries[:1], entries...)
		}
		rs := s.ApplyBatch(entries)
		if len(rs) != len(entries) {
			t.Fatalf("%d results for %d entries", len(rs), len(entries))
		}
		for i, r := range rs {
			var cond *metaerr.Error
			if r.Err != nil && !errors.As(r.Err, &cond) {
				t.Fatalf("entry %d (%v): state failure: %v", i, entries[i].Cmd, r.Err)
			}
		}
		if len(entries) > 0 && s.AppliedIndex() != entries[len(entries)-1].Index {
			t.Fatalf("applied index %d, want %d", s.AppliedIndex(), entries[len(entries)-1].Index)
		}
		// Queries over whatever the commands made must work too.
		// (A command may have deleted the bucket: NoSuchBucket is an answer.)
		if _, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", MaxKeys: 50}); err != nil && !smIsCond(err, metaerr.ErrNoSuchBucket) {
			t.Fatal(err)
		}
		if _, err := s.ListMultipartUploads(&pb.ListMultipartUploadsRequest{Bucket: "bk", Delimiter: "/"}); err != nil && !smIsCond(err, metaerr.ErrNoSuchBucket) {
			t.Fatal(err)
		}
		if _, err := s.ClusterMap(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ScanSegments(nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SegmentsWithMissing(nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SegmentsOnNode("n1", nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GCEntries(nil, 0); err != nil {
			t.Fatal(err)
		}
	})
}
