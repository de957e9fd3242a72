package metadata

import (
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// nodeChunkKey is the key the previous version wrote per chunk:
// nc/<esc node id> 00 01 <segment id><shard, one byte>.
func nodeChunkKey(node string, id []byte, shard int) []byte {
	return append(append(append(appendEscaped(append([]byte(nil), prefixNodeChunk...), node), keyTerminator...), id...), byte(shard))
}

// smLegacyNodeIndex turns s into what a metad of the previous version
// wrote: a key per chunk (nc/) instead of counts, and no marker.
func smLegacyNodeIndex(t *testing.T, s *State) int {
	t.Helper()
	if _, err := s.dropPrefix(prefixNodeUsage, keyNodeUsage); err != nil {
		t.Fatal(err)
	}
	infos := smAllSegments(t, s)
	n := 0
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, in := range infos {
			for shard, node := range in.Segment.Nodes {
				if node == "" {
					continue
				}
				if err := txn.Set(nodeChunkKey(node, in.Segment.Id, shard), appendU64(nil, uint64(chunkBytes(in.Segment)))); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNodeUsageRebuiltAtOpen: a state written by the previous version (nc/
// keys, no counts), or run by it after this one (counts behind the applied
// index), gets its counts from seg/ and loses its nc/ keys when opened; a
// current one is left alone.
func TestNodeUsageRebuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir, nil, smSmallBadger)
	if err != nil {
		t.Fatal(err)
	}
	h := &smHarness{t: t, s: s, next: s.AppliedIndex() + 1}
	w := &smWorkload{t: t, s: s, rng: rand.New(rand.NewPCG(3, 3)), nodes: []string{"n1", "n2", "n3", "n4"}}
	for _, n := range w.nodes {
		h.must(smRegister(n, "h:"+n, "z", 1<<30))
	}
	h.must(smCreateBucket("b0"), smCreateBucket("b1"))
	for range 300 {
		h.do(w.next())
	}
	smCheckIndexes(t, s, "before")
	if smCount(t, s, prefixNodeUsage) == 0 {
		t.Fatal("the workload left no chunk counted")
	}
	reopen := func() {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = openState(dir, nil, smSmallBadger); err != nil {
			t.Fatal(err)
		}
		h.s, w.s = s, s
	}

	// Written by the previous version.
	if n := smLegacyNodeIndex(t, s); n == 0 {
		t.Fatal("no nc/ keys written")
	}
	reopen()
	smCheckIndexes(t, s, "after opening a state of the previous version")
	if n := smCount(t, s, prefixNodeChunk); n != 0 {
		t.Fatalf("%d nc/ keys left", n)
	}

	// Run by the previous version after this one: it applied a commit
	// (seg/, nc/ and m/applied written, counts not).
	seg := &pb.Segment{Id: smSeg(251).Id, Scheme: &pb.Scheme{K: 2, M: 1}, BlockSize: 1024, Size: 5000, Nodes: []string{"n1", "n2", "n3"}}
	err = s.db.Update(func(txn *badger.Txn) error {
		owner := objectKey("b1", "legacy")
		v, err := segRef{owner: owner, versionID: "v", seg: seg}.encode()
		if err != nil {
			return err
		}
		if err := txn.Set(segmentKey(seg.Id), v); err != nil {
			return err
		}
		for shard, n := range seg.Nodes {
			if err := txn.Set(nodeChunkKey(n, seg.Id, shard), appendU64(nil, uint64(chunkBytes(seg)))); err != nil {
				return err
			}
		}
		return txn.Set(keyApplied, appendU64(nil, s.AppliedIndex()+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := s.NodeUsage("n1")
	if err != nil {
		t.Fatal(err)
	}
	reopen()
	if after, _, err := s.NodeUsage("n1"); err != nil || after != before+1 {
		t.Fatalf("n1 counts %d chunks (%v) after the previous version's commit, want %d", after, err, before+1)
	}
	if n := smCount(t, s, prefixNodeChunk); n != 0 {
		t.Fatalf("%d nc/ keys left", n)
	}

	// Current: opening again rebuilds nothing (a count planted while the
	// marker is current stays).
	err = s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(nodeUsageKey("planted"), chunkCount{chunks: 7, bytes: 70}.appendTo(nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	reopen()
	if c, b, err := s.NodeUsage("planted"); c != 7 || b != 70 || err != nil {
		t.Fatalf("planted count %d, %d, %v after reopening a current state", c, b, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
