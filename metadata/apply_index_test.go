package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smIndexes reads every key and value under the index prefixes.
func smIndexes(t testing.TB, s *State) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := s.view(func(txn *badger.Txn) error {
		for _, p := range [][]byte{prefixSegment, prefixNodeChunk, prefixNodeUsage, prefixMissing, prefixBucketUsage} {
			err := scanTxn(txn, p, func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read indexes: %v", err)
	}
	return m
}

// smWantIndexes recomputes the indexes and counts (nodes', and buckets'
// objects, bytes, upload bytes and noncurrent versions) from the object,
// version and part records alone,
// and checks that no segment id is referenced twice.
func smWantIndexes(t testing.TB, s *State) map[string]string {
	t.Helper()
	want := map[string]string{}
	counts := map[string]chunkCount{}
	buckets := map[string]chunkCount{}
	add := func(owner []byte, version string, segs []*pb.Segment) error {
		for i, seg := range segs {
			k := string(segmentKey(seg.Id))
			if _, dup := want[k]; dup {
				return fmt.Errorf("segment %x referenced twice (again by %q)", seg.Id, owner)
			}
			v, err := segRef{owner: owner, pos: i, versionID: version, seg: seg}.encode()
			if err != nil {
				return err
			}
			want[k] = string(v)
			missing := false
			for _, n := range seg.Nodes {
				if n == "" {
					missing = true
					continue
				}
				u := counts[n]
				u.chunks++
				u.bytes += chunkBytes(seg)
				counts[n] = u
			}
			if missing {
				want[string(missingKey(seg.Id))] = ""
			}
		}
		return nil
	}
	err := s.view(func(txn *badger.Txn) error {
		err := scanTxn(txn, prefixObject, func(k, v []byte) error {
			o := &pb.Object{}
			if err := proto.Unmarshal(v, o); err != nil {
				return err
			}
			u := buckets[o.Bucket]
			u.chunks++
			u.bytes += o.Size
			buckets[o.Bucket] = u
			return add(bytes.Clone(k), o.VersionId, o.Segments)
		})
		if err != nil {
			return err
		}
		err = scanTxn(txn, prefixVersion, func(k, v []byte) error {
			o := &pb.Object{}
			if err := proto.Unmarshal(v, o); err != nil {
				return err
			}
			u := buckets[o.Bucket]
			u.versions++
			u.versionBytes += o.Size
			buckets[o.Bucket] = u
			return add(bytes.Clone(k), o.VersionId, o.Segments)
		})
		if err != nil {
			return err
		}
		return scanTxn(txn, prefixPart, func(k, v []byte) error {
			p := &pb.Part{}
			if err := proto.Unmarshal(v, p); err != nil {
				return err
			}
			// p/<bucket> 00 ...: the part's bytes are its bucket's
			// upload bytes.
			b := string(k[len(prefixPart):bytes.IndexByte(k, 0)])
			u := buckets[b]
			u.uploads += p.Size
			buckets[b] = u
			return add(bytes.Clone(k), "", p.Segments)
		})
	})
	if err != nil {
		t.Fatalf("recompute indexes: %v", err)
	}
	for n, u := range counts {
		want[string(nodeUsageKey(n))] = string(u.appendTo(nil))
	}
	for b, u := range buckets {
		if u != (chunkCount{}) { // only empty parts: no entry
			want[string(bucketUsageKey(b))] = string(u.appendTo(nil))
		}
	}
	return want
}

// smCheckGuards: the gcc/ guards are exactly the chunks of the queued
// chunk-level GC entries, each naming its entry.
func smCheckGuards(t testing.TB, s *State) {
	t.Helper()
	guards := map[string]string{}
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixChunkGC, func(k, v []byte) error {
			guards[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	items, err := s.GCEntries(nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if binary.BigEndian.Uint32(it.Key[gcKeyLen-4:])&chunkGCSeq == 0 {
			continue
		}
		for _, seg := range it.Entry.Segments {
			for shard, n := range seg.Nodes {
				if n == "" {
					continue
				}
				if g := guards[string(chunkGCKey(seg.Id, shard, n))]; g != string(it.Key) {
					t.Fatalf("chunk gc entry %x deletes %x.%d on %q without its guard (guard %x)", it.Key, seg.Id, shard, n, g)
				}
				seen++
			}
		}
	}
	if seen != len(guards) {
		t.Fatalf("%d guards, %d guarded chunks in gc entries", len(guards), seen)
	}
}

func smCheckIndexes(t testing.TB, s *State, step string) {
	t.Helper()
	got, want := smIndexes(t, s), smWantIndexes(t, s)
	if !smMapsEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: key %q: index has %x, want %x", step, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: stray index key %q", step, k)
			}
		}
		t.FailNow()
	}
	smCheckGuards(t, s)
}

// smWorkload generates commands that mostly succeed against the state it
// watches: fresh segments (some degraded), overwrites, deletes, multipart
// uploads completed from their current parts as a gateway does, aborts,
// bucket deletions, bad-chunk reports and placement changes (current and
// stale), node state changes and GC acks.
type smWorkload struct {
	t      testing.TB
	s      *State
	rng    *rand.Rand
	nextID uint32
	nodes  []string
}

func (w *smWorkload) seg() *pb.Segment {
	w.nextID++
	perm := w.rng.Perm(len(w.nodes))
	nodes := make([]string, 3)
	for i := range nodes {
		if w.rng.IntN(6) > 0 {
			nodes[i] = w.nodes[perm[i]]
		}
	}
	id := binary.BigEndian.AppendUint32([]byte{0x5E, 0x6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, w.nextID)
	return &pb.Segment{Id: id, Scheme: &pb.Scheme{K: 2, M: 1}, BlockSize: 64, Size: int64(1 + w.rng.IntN(1000)), Nodes: nodes}
}

func (w *smWorkload) segs() []*pb.Segment {
	var out []*pb.Segment
	for range w.rng.IntN(4) {
		out = append(out, w.seg())
	}
	return out
}

// randomSegment picks a referenced segment, nil if none.
func (w *smWorkload) randomSegment() *SegmentInfo {
	infos, _, err := w.s.ScanSegments(nil, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(infos) == 0 {
		return nil
	}
	return &infos[w.rng.IntN(len(infos))]
}

func (w *smWorkload) pick(xs []string) string { return xs[w.rng.IntN(len(xs))] }

func (w *smWorkload) next() *pb.Command {
	bk := w.pick([]string{"b0", "b1"})
	key := w.pick([]string{"k", "a/b", "c\x00d", "é"})
	up := w.pick([]string{"u0", "u1"})
	switch r := w.rng.IntN(27); {
	case r >= 23:
		return w.nextVersioning(bk, key)
	case r < 4:
		return smCommit(&pb.Object{Bucket: bk, Key: key, VersionId: fmt.Sprint("v", w.nextID), Etag: "e", Segments: w.segs()}, nil)
	case r < 5:
		return smDelete(bk, key, nil)
	case r < 6:
		return smCreateUpload(bk, key, up)
	case r < 9:
		return smPutPart(bk, key, up, int32(1+w.rng.IntN(3)), fmt.Sprint("p", w.rng.IntN(2)), w.segs()...)
	case r < 10:
		// Complete with the parts as they are, maybe leaving one out.
		lp, err := w.s.ListParts(&pb.ListPartsRequest{Bucket: bk, Key: key, UploadId: up, WithSegments: true})
		if err != nil || len(lp.Parts) == 0 {
			return smAbort(bk, key, up)
		}
		o := &pb.Object{Bucket: bk, Key: key, VersionId: fmt.Sprint("mp", w.nextID), Etag: "mp"}
		var cps []*pb.CompletePart
		for i, p := range lp.Parts {
			if i > 0 && w.rng.IntN(3) == 0 {
				continue
			}
			cps = append(cps, smCP(p.Number, p.Etag))
			for _, seg := range p.Segments {
				// A stale copy of the placement must not win over the part's.
				c := proto.CloneOf(seg)
				if w.rng.IntN(2) == 0 && len(c.Nodes) > 0 {
					c.Nodes[0] = "stale"
				}
				o.Segments = append(o.Segments, c)
			}
		}
		return smComplete(up, o, nil, cps...)
	case r < 11:
		return smAbort(bk, key, up)
	case r < 15:
		// Empty the bucket one key at a time, then delete it (aborting its
		// uploads), then create it again.
		lo, err := w.s.ListObjects(&pb.ListObjectsRequest{Bucket: bk, MaxKeys: 1})
		switch {
		case err != nil:
			return smCreateBucket(bk)
		case len(lo.Objects) > 0:
			return smDelete(bk, lo.Objects[0].Key, nil)
		}
		// Then its noncurrent versions and delete markers.
		lv, err := w.s.ListObjectVersions(&pb.ListObjectVersionsRequest{Bucket: bk, MaxKeys: 1})
		if err == nil && len(lv.Versions) > 0 {
			return smDeleteVersion(bk, lv.Versions[0].Key, S3VersionID(lv.Versions[0]))
		}
		return smDeleteBucket(bk)
	case r < 18:
		info := w.randomSegment()
		if info == nil {
			return smCreateBucket(bk)
		}
		var chunks []*pb.ChunkRef
		for range 1 + w.rng.IntN(3) {
			shard := w.rng.IntN(len(info.Segment.Nodes) + 1)
			node := w.pick(w.nodes)
			if shard < len(info.Segment.Nodes) && w.rng.IntN(3) > 0 {
				node = info.Segment.Nodes[shard]
			}
			chunks = append(chunks, &pb.ChunkRef{SegmentId: info.Segment.Id, Shard: uint32(shard), NodeId: node})
		}
		return &pb.Command{Op: &pb.Command_MarkChunks{MarkChunks: &pb.MarkChunks{Chunks: chunks, Reason: "corrupt"}}}
	case r < 21:
		info := w.randomSegment()
		if info == nil {
			return smCreateBucket(bk)
		}
		shard := w.rng.IntN(len(info.Segment.Nodes))
		old := info.Segment.Nodes[shard]
		if w.rng.IntN(4) == 0 {
			old = w.pick(append(w.nodes, ""))
		}
		reason := w.pick([]string{"repair", "rebalance"})
		return &pb.Command{Op: &pb.Command_CommitPlacement{CommitPlacement: &pb.CommitPlacement{
			SegmentId: info.Segment.Id, Shard: uint32(shard), OldNode: old, NewNode: w.pick(w.nodes), Reason: reason}}}
	case r < 22:
		items, err := w.s.GCEntries(nil, 0)
		if err != nil {
			w.t.Fatal(err)
		}
		ack := &pb.AckGC{}
		for _, it := range items {
			if w.rng.IntN(2) == 0 {
				ack.Keys = append(ack.Keys, it.Key)
			}
		}
		return &pb.Command{Op: &pb.Command_AckGc{AckGc: ack}}
	default:
		// A commit reusing a referenced id: refused.
		info := w.randomSegment()
		if info == nil {
			return smCreateBucket(bk)
		}
		return smCommit(&pb.Object{Bucket: bk, Key: key, VersionId: "dup", Segments: []*pb.Segment{proto.CloneOf(info.Segment)}}, nil)
	}
}

// nextVersioning is a versioning command: a bucket's versioning set, or
// a version deleted by id (the latest, an older one, or one that does not
// exist).
func (w *smWorkload) nextVersioning(bk, key string) *pb.Command {
	switch w.rng.IntN(4) {
	case 0:
		st := pb.VersioningStatus_VERSIONING_STATUS_ENABLED
		if w.rng.IntN(3) == 0 {
			st = pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED
		}
		return smSetVersioning(bk, st)
	case 1:
		return smDeleteVersion(bk, key, w.pick([]string{"null", "nope"}))
	}
	lv, err := w.s.ListObjectVersions(&pb.ListObjectVersionsRequest{Bucket: bk, Prefix: key})
	if err != nil || len(lv.Versions) == 0 {
		return smDelete(bk, key, nil)
	}
	v := lv.Versions[w.rng.IntN(len(lv.Versions))]
	return smDeleteVersion(bk, v.Key, S3VersionID(v))
}

// TestIndexesMatchRecords applies random workloads, one entry per batch
// and in small batches, and after every step recomputes the segment, node
// and missing indexes from the object and part records.
func TestIndexesMatchRecords(t *testing.T) {
	steps := 1000
	if testing.Short() {
		steps = 300
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			h := smNew(t)
			w := &smWorkload{t: t, s: h.s, rng: rand.New(rand.NewPCG(seed, 99)), nodes: []string{"n1", "n2", "n3", "n4", "n5"}}
			for _, n := range w.nodes {
				h.must(smRegister(n, "h:"+n, "z", 1<<30))
			}
			h.must(smCreateBucket("b0"), smCreateBucket("b1"))
			counts := map[string][2]int{}
			maxVersions := 0
			for i := 0; i < steps; {
				// Batches of 1..4 entries: later entries see earlier ones' writes.
				n := 1 + w.rng.IntN(4)
				var es []Entry
				var names []string
				for range n {
					c := w.next()
					names = append(names, smOpName(c))
					es = append(es, h.entry(c))
				}
				for j, r := range h.s.ApplyBatch(es) {
					var cond *metaerr.Error
					if r.Err != nil && !errors.As(r.Err, &cond) {
						t.Fatalf("step %d: %s: state failure: %v", i+j, names[j], r.Err)
					}
					c := counts[names[j]]
					if r.Err == nil {
						c[0]++
					} else {
						c[1]++
					}
					counts[names[j]] = c
				}
				i += n
				smCheckIndexes(t, h.s, fmt.Sprintf("step %d (%v)", i, names))
				maxVersions = max(maxVersions, smCount(t, h.s, prefixVersion))
			}
			if maxVersions < 5 {
				t.Errorf("at most %d noncurrent versions at a time: versioning barely ran", maxVersions)
			}
			// Every kind of command must have succeeded some of the time.
			for _, op := range []string{"*metadatapb.Command_CommitObject", "*metadatapb.Command_DeleteObject", "*metadatapb.Command_PutPart",
				"*metadatapb.Command_CompleteMultipart", "*metadatapb.Command_AbortMultipart", "*metadatapb.Command_MarkChunks",
				"*metadatapb.Command_CommitPlacement", "*metadatapb.Command_AckGc", "*metadatapb.Command_DeleteBucket",
				"*metadatapb.Command_SetBucketVersioning"} {
				if counts[op][0] == 0 {
					t.Errorf("%s never succeeded (%v)", op, counts)
				}
			}
			t.Logf("ok/refused: %v", counts)
		})
	}
}
