package metadata

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// smRichState builds a state with every kind of record.
func smRichState(t *testing.T) *State {
	t.Helper()
	s := smOpen(t)
	cmds := []*pb.Command{smBootstrap(4, 2), smRegister("n1", "h:1", "z1", 10), smRegister("n2", "h:2", "z2", 20),
		smMember("m1", "g:1"), smMember("m2", "g:2"), smCreateBucket("b0"), smCreateBucket("b1"), smCreateBucket("b2")}
	cmds = append(cmds, smRandomCommands(rand.New(rand.NewPCG(3, 4)), 800)...)
	s.ApplyBatch(smEntries(1, cmds...))
	if s.AppliedIndex() != uint64(len(cmds)) {
		t.Fatalf("applied %d of %d", s.AppliedIndex(), len(cmds))
	}
	return s
}

// smAnswers collects the answers to every query about a state, as text.
func smAnswers(t *testing.T, s *State) []string {
	t.Helper()
	var out []string
	add := func(what string, m proto.Message, err error) {
		out = append(out, fmt.Sprintf("%s: %v %v", what, m, err))
	}
	bs, err := s.ListBuckets(&pb.ListBucketsRequest{})
	add("buckets", bs, err)
	for _, b := range []string{"b0", "b1", "b2", "b3"} {
		r1, err := s.GetBucket(&pb.GetBucketRequest{Name: b})
		add("bucket "+b, r1, err)
		for _, d := range []string{"", "/"} {
			r2, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: b, Delimiter: d})
			add("objects "+b+d, r2, err)
			r3, err := s.ListMultipartUploads(&pb.ListMultipartUploadsRequest{Bucket: b, Delimiter: d})
			add("uploads "+b+d, r3, err)
		}
		for _, k := range []string{"a", "a/b", "c\x00d", "é", "zÿ"} {
			r4, err := s.GetObject(&pb.GetObjectRequest{Bucket: b, Key: k})
			add("object "+b+k, r4, err)
			for _, id := range []string{"u0", "u1"} {
				r5, err := s.ListParts(&pb.ListPartsRequest{Bucket: b, Key: k, UploadId: id, WithSegments: true})
				add("parts "+b+k+id, r5, err)
				r6, err := s.GetMultipart(&pb.GetMultipartRequest{Bucket: b, Key: k, UploadId: id})
				add("upload "+b+k+id, r6, err)
			}
		}
	}
	cm, err := s.ClusterMap()
	add("cluster map", cm, err)
	infos, next, err := s.ScanSegments(nil, 0)
	out = append(out, fmt.Sprintf("segments: %v %x %v", infos, next, err))
	infos, next, err = s.SegmentsWithMissing(nil, 0)
	out = append(out, fmt.Sprintf("missing: %v %x %v", infos, next, err))
	for _, n := range []string{"n1", "n2", "n3"} {
		infos, next, err = s.SegmentsOnNode(n, nil, 0)
		out = append(out, fmt.Sprintf("on %s: %v %x %v", n, infos, next, err))
		c, b, err := s.NodeUsage(n)
		out = append(out, fmt.Sprintf("usage %s: %d %d %v", n, c, b, err))
		node, err := s.Node(n)
		add("node "+n, node, err)
	}
	gc, err := s.GCEntries(nil, 0)
	out = append(out, fmt.Sprintf("gc: %v %v", gc, err))
	backlog, err := s.GCBacklog()
	out = append(out, fmt.Sprintf("gc backlog: %d %v", backlog, err))
	rb, err := s.Rebalance()
	add("rebalance", rb, err)
	ms, err := s.MemberAddresses()
	out = append(out, fmt.Sprintf("members: %v %v", ms, err))
	boot, err := s.Bootstrapped()
	out = append(out, fmt.Sprintf("bootstrapped: %v %v", boot, err))
	out = append(out, fmt.Sprintf("applied: %d", s.AppliedIndex()))
	return out
}

func TestSnapshotRestore(t *testing.T) {
	src := smRichState(t)
	var snap bytes.Buffer
	if err := src.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	want := smAnswers(t, src)
	for _, p := range [][]byte{prefixGC, prefixObject, prefixUpload, prefixPart, prefixNode, prefixSegment, prefixNodeUsage, prefixMissing, prefixChunkGC, keyRebalance} {
		if n := smCount(t, src, p); n == 0 {
			t.Fatalf("rich state has no %q records", p)
		}
	}

	fresh := smOpen(t)
	// A state with other content: Restore must replace all of it.
	other := smOpen(t)
	other.ApplyBatch(smEntries(1, smCreateBucket("b3"), smCreateBucket("zz"), smBootstrap(2, 1), smMember("m9", "x")))
	other.ApplyBatch(smEntries(5000, smCreateBucket("b2x")))

	for name, dst := range map[string]*State{"fresh": fresh, "other": other} {
		t.Run(name, func(t *testing.T) {
			if err := dst.Restore(bytes.NewReader(snap.Bytes())); err != nil {
				t.Fatal(err)
			}
			got := smAnswers(t, dst)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("after restore\n got %s\nwant %s", got[i], want[i])
				}
			}
			if !smMapsEqual(smDump(t, src), smDump(t, dst)) {
				t.Error("restored keys differ from the source")
			}
			// A restored state goes on applying from the snapshot's index.
			rs := dst.ApplyBatch(smEntries(src.AppliedIndex(), smCreateBucket("skipped"), smCreateBucket("new")))
			if !rs[0].Skipped || rs[1].Err != nil {
				t.Errorf("apply after restore: %+v", rs)
			}
		})
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	src := smRichState(t)
	var snap bytes.Buffer
	if err := src.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	good := snap.Bytes()
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name       string
		data       []byte
		keepsState bool // refused before anything is dropped
	}{
		{"empty", nil, true},
		{"bad magic", flip(0), true},
		{"flipped byte in a record", flip(len(good) / 2), false},
		{"flipped checksum", flip(len(good) - 1), false},
		{"truncated", good[:len(good)-10], false},
		{"no checksum", good[:len(good)-4], false},
		{"huge length", append(bytes.Clone(good[:8]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := smNew(t)
			h.must(smCreateBucket("mine"))
			err := h.s.Restore(bytes.NewReader(tt.data))
			if err == nil {
				t.Fatal("restore accepted a bad snapshot")
			}
			_, getErr := h.s.GetBucket(&pb.GetBucketRequest{Name: "mine"})
			if tt.keepsState && (getErr != nil || h.s.AppliedIndex() != 1) {
				t.Errorf("state lost: %v, applied %d", getErr, h.s.AppliedIndex())
			}
			if !tt.keepsState && h.s.AppliedIndex() != 0 {
				t.Errorf("applied index %d after failed restore, want 0", h.s.AppliedIndex())
			}
		})
	}
}

// TestSnapshotDuringApply takes snapshots while batches are applied: each
// must hold exactly the entries up to its applied index.
func TestSnapshotDuringApply(t *testing.T) {
	s := smOpen(t)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	const batches, perBatch = 150, 7
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := uint64(2)
		for range batches {
			var cmds []*pb.Command
			for range perBatch {
				cmds = append(cmds, smPut("bk", fmt.Sprintf("k%06d", next+uint64(len(cmds))), "e"))
			}
			s.ApplyBatch(smEntries(next, cmds...))
			next += perBatch
		}
	}()
	seen := map[uint64]bool{}
	for s.AppliedIndex() < batches*perBatch+1 && len(seen) < 20 {
		var snap bytes.Buffer
		if err := s.Snapshot(&snap); err != nil {
			t.Fatal(err)
		}
		dst := smOpen(t)
		if err := dst.Restore(&snap); err != nil {
			t.Fatal(err)
		}
		applied := dst.AppliedIndex()
		if objects := smCount(t, dst, prefixObject); uint64(objects) != applied-1 {
			t.Errorf("snapshot at applied index %d holds %d objects, want %d", applied, objects, applied-1)
		}
		if (applied-1)%perBatch != 0 {
			t.Errorf("snapshot at applied index %d: not a batch boundary", applied)
		}
		seen[applied] = true
	}
	wg.Wait()
	t.Logf("%d distinct snapshot points", len(seen))
}
