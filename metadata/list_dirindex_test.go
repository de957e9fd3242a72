package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smWantDirIndex recomputes the directory index from the o/ keys by brute
// force (the set of every directory of every key, unlike the rebuild's
// stack), as ld/ key → value.
func smWantDirIndex(t testing.TB, s *State) map[string]string {
	t.Helper()
	type dir struct{ bucket, path string }
	counts := map[dir]*dirCounts{}
	at := func(d dir) *dirCounts {
		if counts[d] == nil {
			counts[d] = &dirCounts{}
		}
		return counts[d]
	}
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixObject, func(k, _ []byte) error {
			bucket, key, ok := bytes.Cut(k[len(prefixObject):], []byte{0})
			if !ok {
				return fmt.Errorf("object key %q without bucket end", k)
			}
			at(dir{string(bucket), ""})
			for i, c := range key {
				if c == '/' {
					at(dir{string(bucket), string(key[:i+1])})
				}
			}
			at(dir{string(bucket), string(key[:bytes.LastIndexByte(key, '/')+1])}).direct++
			return nil
		})
	})
	if err != nil {
		t.Fatalf("scan objects: %v", err)
	}
	for d := range counts {
		if d.path != "" {
			parent := d.path[:strings.LastIndexByte(d.path[:len(d.path)-1], '/')+1]
			counts[dir{d.bucket, parent}].children++
		}
	}
	want := map[string]string{}
	for d, c := range counts {
		want[string(appendDirKey(dirBase(d.bucket), strings.Count(d.path, "/"), d.path))] = string(c.appendTo(nil))
	}
	return want
}

// smCheckDirIndex fails unless the ld/ entries are exactly what the o/
// keys make and the marker says they are current.
func smCheckDirIndex(t testing.TB, s *State) {
	t.Helper()
	got := map[string]string{}
	var marker []byte
	err := s.view(func(txn *badger.Txn) error {
		if err := scanTxn(txn, prefixDirIndex, func(k, v []byte) error {
			got[string(k)] = string(v)
			return nil
		}); err != nil {
			return err
		}
		return scanTxn(txn, keyDirIndex, func(k, v []byte) error {
			marker = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read directory index: %v", err)
	}
	want := smWantDirIndex(t, s)
	for k, v := range want {
		if got[k] != v {
			c, _ := decodeDirCounts([]byte(got[k]))
			w, _ := decodeDirCounts([]byte(v))
			t.Fatalf("directory index entry %q: %+v, want %+v", k, c, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("directory index entry %q (%x) for no object", k, got[k])
		}
	}
	if !bytes.Equal(marker, dirIndexMarker(s.AppliedIndex())) {
		t.Fatalf("directory index marker %x, want %x", marker, dirIndexMarker(s.AppliedIndex()))
	}
}

// smListBothWays lists req page by page (following next_start_after) from
// the directory index and by walking o/, and fails unless every page is
// the same. It returns the number of pages.
func smListBothWays(t testing.TB, s *State, req *pb.ListObjectsRequest, desc string) int {
	t.Helper()
	req = proto.CloneOf(req)
	for page := 1; ; page++ {
		if page > 100_000 {
			t.Fatalf("%s: pagination does not end", desc)
		}
		a, errA := s.listObjects(req, true)
		b, errB := s.listObjects(req, false)
		if (errA == nil) != (errB == nil) || !proto.Equal(a, b) {
			t.Fatalf("%s: page %d (start_after %q):\nindexed %v (%v)\n   scan %v (%v)", desc, page, req.StartAfter, a, errA, b, errB)
		}
		if errA != nil || !a.IsTruncated {
			return page
		}
		req.StartAfter = a.NextStartAfter
	}
}

// smDirKeyPieces make nested keys with short names so that directories
// share names, hold one or many keys, and sort around each other ("a",
// "a/", "a-", "a0", "a/b/").
var smDirKeyPieces = []string{"a", "b", "a/", "b/", "c/", "/", "-", "0", "é/", "日", "~"}

func smDirKey(rng *rand.Rand) string {
	var b strings.Builder
	for range 1 + rng.IntN(5) {
		b.WriteString(smDirKeyPieces[rng.IntN(len(smDirKeyPieces))])
	}
	return b.String()
}

// smListQuery is a random "/" listing of bk: prefixes ending and not
// ending in "/", start_after keys, common prefixes and other strings.
func smListQuery(rng *rand.Rand, keys []string) *pb.ListObjectsRequest {
	req := &pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", MaxKeys: []int32{1, 2, 3, 7, 0}[rng.IntN(5)]}
	pick := func() string {
		if len(keys) == 0 || rng.IntN(4) == 0 {
			return smDirKey(rng)
		}
		k := keys[rng.IntN(len(keys))]
		switch rng.IntN(3) {
		case 0:
			return k
		case 1:
			if i := strings.LastIndexByte(k, '/'); i >= 0 {
				return k[:i+1]
			}
			return k
		default:
			return k[:rng.IntN(len(k)+1)]
		}
	}
	if rng.IntN(3) > 0 {
		req.Prefix = pick()
	}
	if rng.IntN(3) > 0 {
		req.StartAfter = pick()
	}
	return req
}

// TestDirIndexRandomCommands applies random creates, overwrites (plain and
// conditional, some refused), deletes and multipart completes of nested
// keys, several to a batch, and checks after each batch that the
// directory index is exactly what the objects make and that "/" listings
// from it agree page by page with walking o/.
func TestDirIndexRandomCommands(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	h := smNew(t)
	h.must(smCreateBucket("bk"), smCreateBucket("bk2"))
	seg := uint32(0)
	nextSeg := func() *pb.Segment { seg++; return smSegN(seg) }
	live := map[string]bool{}
	uploads := 0
	for step := range 300 {
		var cmds []*pb.Command
		for range 1 + rng.IntN(8) {
			bucket := "bk"
			if rng.IntN(10) == 0 {
				bucket = "bk2"
			}
			k := smDirKey(rng)
			if rng.IntN(2) == 0 && len(live) > 0 {
				ks := slices.Sorted(func(yield func(string) bool) {
					for k := range live {
						if !yield(k) {
							return
						}
					}
				})
				k = ks[rng.IntN(len(ks))]
			}
			switch rng.IntN(8) {
			case 0, 1, 2:
				cmds = append(cmds, smPut(bucket, k, "e", nextSeg()))
			case 3:
				cond := &pb.Condition{MustNotExist: rng.IntN(2) == 0}
				if !cond.MustNotExist {
					cond.IfMatchEtag = "*"
				}
				cmds = append(cmds, smCommit(smObj(bucket, k, "c", nextSeg()), cond))
			case 4, 5:
				cmds = append(cmds, smDelete(bucket, k, nil))
			case 6:
				cmds = append(cmds, smDelete(bucket, k, &pb.Condition{IfMatchEtag: "nope"})) // refused when k exists
			case 7:
				uploads++
				id := fmt.Sprint("U", uploads)
				s1 := nextSeg()
				cmds = append(cmds, smCreateUpload(bucket, k, id), smPutPart(bucket, k, id, 1, "p1", s1),
					smComplete(id, smObj(bucket, k, "mp", s1), nil, smCP(1, "p1")))
			}
		}
		for _, r := range h.s.ApplyBatch(smEntries(h.next, cmds...)) {
			var cond *metaerr.Error
			if r.Err != nil && !errors.As(r.Err, &cond) {
				t.Fatalf("step %d: state failed: %v", step, r.Err)
			}
		}
		h.next += uint64(len(cmds))
		smCheckDirIndex(t, h.s)

		resp, err := h.s.listObjects(&pb.ListObjectsRequest{Bucket: "bk", MaxKeys: 1000}, false)
		if err != nil {
			t.Fatal(err)
		}
		clear(live)
		for _, o := range resp.Objects {
			live[o.Key] = true
		}
		keys := slices.Collect(func(yield func(string) bool) {
			for _, o := range resp.Objects {
				if !yield(o.Key) {
					return
				}
			}
		})
		for q := range 4 {
			req := smListQuery(rng, keys)
			smListBothWays(t, h.s, req, fmt.Sprintf("step %d query %d: %v", step, q, req))
		}
	}
	if len(live) == 0 {
		t.Fatal("no objects left at the end: the test exercised little")
	}
}

// TestDirIndexSplitBatches: a batch too big for one transaction is
// applied in parts, and an entry too big for any is refused with only the
// applied index written; the index and its marker follow both.
func TestDirIndexSplitBatches(t *testing.T) {
	s := smOpenDir(t, t.TempDir(), smTinyBadger)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateUpload("bk", "up/k", "U")))
	var cmds []*pb.Command
	for i := range 2500 {
		cmds = append(cmds, smPut("bk", fmt.Sprintf("d%d/e%d/k%d", i%40, i%7, i), "e", smSegN(uint32(i))))
	}
	for i := range 300 {
		cmds = append(cmds, smDelete("bk", fmt.Sprintf("d%d/e%d/k%d", i%40, i%7, i), nil))
	}
	cmds[1200] = smCommit(smObj("bk", "d1/e1/k1", "x", smSegN(90000)), &pb.Condition{MustNotExist: true}) // refused
	s.ApplyBatch(smEntries(3, cmds...))
	smCheckDirIndex(t, s)

	var parts []*pb.Command
	for n := 1; n <= 2000; n++ {
		parts = append(parts, smPutPart("bk", "up/k", "U", int32(n), "e", smSegN(uint32(100000+n))))
	}
	s.ApplyBatch(smEntries(s.AppliedIndex()+1, parts...))
	rs := s.ApplyBatch(smEntries(s.AppliedIndex()+1, smAbort("bk", "up/k", "U")))
	if !smIsCond(rs[0].Err, metaerr.ErrInvalidArgument) {
		t.Fatalf("oversized abort: %v, want it refused", rs[0].Err)
	}
	smCheckDirIndex(t, s)
	smListBothWays(t, s, &pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "d1", MaxKeys: 3}, "after splits")
}

// TestDirIndexListsFromIndex checks by counting iterator steps that a page
// of subdirectories costs about one step each however many keys they
// hold, and that small subdirectories between direct objects are passed
// with Nexts.
func TestDirIndexListsFromIndex(t *testing.T) {
	s := smOpen(t)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk")))
	var keys []string
	for d := range 200 {
		for i := range 50 {
			keys = append(keys, fmt.Sprintf("big/d%03d/%02d", d, i))
		}
		keys = append(keys, fmt.Sprintf("mixed/d%03d/x", d), fmt.Sprintf("mixed/d%03d/y", d), fmt.Sprintf("mixed/f%03d", d))
	}
	smInsertObjects(t, s, "bk", keys)
	smCheckDirIndex(t, s)
	tests := []struct {
		req                 *pb.ListObjectsRequest
		prefixes, objects   int
		maxIndexed, minScan int64
	}{
		// No object directly in big/: o/ is not read at all.
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "big/"}, 200, 0, 205, 400},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "big/d1"}, 100, 0, 105, 200},
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "big/", StartAfter: "big/d050/07"}, 150, 0, 160, 300},
		// mixed/: each two-key subdirectory passed with two Nexts.
		{&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "mixed/"}, 200, 200, 205 + 200 + 400, 0},
	}
	for _, tt := range tests {
		before := s.listSteps.Load()
		r, err := s.ListObjects(tt.req)
		if err != nil {
			t.Fatal(err)
		}
		indexed := s.listSteps.Load() - before
		if len(r.CommonPrefixes) != tt.prefixes || len(r.Objects) != tt.objects {
			t.Errorf("%v: %d prefixes and %d objects, want %d and %d", tt.req, len(r.CommonPrefixes), len(r.Objects), tt.prefixes, tt.objects)
		}
		before = s.listSteps.Load()
		if _, err := s.listObjects(tt.req, false); err != nil {
			t.Fatal(err)
		}
		scan := s.listSteps.Load() - before
		if indexed > tt.maxIndexed || scan < tt.minScan {
			t.Errorf("%v: %d steps from the index (want ≤ %d), %d walking o/ (want ≥ %d)", tt.req, indexed, tt.maxIndexed, scan, tt.minScan)
		}
		smListBothWays(t, s, tt.req, fmt.Sprint(tt.req))
	}
}

// TestDirIndexRebuiltAtOpen: a data directory without the index (as a
// metad before it left it) or whose index fell behind (a metad without
// the index applied entries on it) is indexed when opened.
func TestDirIndexRebuiltAtOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := openState(dir, nil, smSmallBadger)
	if err != nil {
		t.Fatal(err)
	}
	cmds := []*pb.Command{smCreateBucket("bk"), smCreateBucket("b2")}
	for i := range 300 {
		cmds = append(cmds, smPut("bk", fmt.Sprintf("p%d/q%d/k%d", i%7, i%3, i), "e", smSegN(uint32(i))))
	}
	cmds = append(cmds, smPut("b2", "top", "e", smSegN(1000)), smDelete("bk", "p0/q0/k0", nil))
	s.ApplyBatch(smEntries(1, cmds...))
	smCheckDirIndex(t, s)
	want := smWantDirIndex(t, s)

	// Without the index: drop it as a version without it never wrote it.
	if _, err := s.dropDirIndex(); err != nil {
		t.Fatal(err)
	}
	if n := smCount(t, s, prefixDirIndex); n != 0 {
		t.Fatalf("%d ld/ entries after drop", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = openState(dir, nil, smSmallBadger)
	if err != nil {
		t.Fatal(err)
	}
	smCheckDirIndex(t, s)
	if got := smCount(t, s, prefixDirIndex); got != len(want) {
		t.Fatalf("%d entries after rebuild, want %d", got, len(want))
	}

	// Behind: an object written and an entry applied without the index's
	// upkeep, as a version without it does.
	err = s.db.Update(func(txn *badger.Txn) error {
		v, _ := proto.Marshal(smObj("bk", "new/dir/k", "e"))
		if err := txn.Set(objectKey("bk", "new/dir/k"), v); err != nil {
			return err
		}
		return txn.Set(keyApplied, appendU64(nil, s.AppliedIndex()+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = smOpenDir(t, dir, smSmallBadger)
	smCheckDirIndex(t, s)
	r, err := s.ListObjects(&pb.ListObjectsRequest{Bucket: "bk", Delimiter: "/", Prefix: "new/"})
	if err != nil || !slices.Equal(r.CommonPrefixes, []string{"new/dir/"}) {
		t.Fatalf("listing new/: %v, %v", r, err)
	}

	// Current: opening again leaves it as it is.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := smOpenDir(t, dir, smSmallBadger)
	smCheckDirIndex(t, s2)
}

// TestDirIndexSnapshotRestore: a snapshot carries the index; one taken by
// a member without it (no ld/ entries, no marker) is indexed on restore.
func TestDirIndexSnapshotRestore(t *testing.T) {
	src := smRichState(t)
	src.ApplyBatch(smEntries(src.AppliedIndex()+1,
		smPut("b0", "x/y/z", "e", smSegN(1)), smPut("b0", "x/w", "e", smSegN(2)), smPut("b1", "q/", "e", smSegN(3))))
	smCheckDirIndex(t, src)
	if smCount(t, src, prefixDirIndex) == 0 {
		t.Fatal("rich state has no directories")
	}
	for _, old := range []bool{false, true} {
		if old {
			if _, err := src.dropDirIndex(); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := src.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
		dst := smOpen(t)
		dst.ApplyBatch(smEntries(1, smCreateBucket("gone"), smPut("gone", "d/k", "e", smSeg(1))))
		if err := dst.Restore(&buf); err != nil {
			t.Fatal(err)
		}
		smCheckDirIndex(t, dst)
		if n := smCount(t, dst, dirBase("gone")); n != 0 {
			t.Fatalf("old snapshot %v: %d entries of a bucket the snapshot does not have", old, n)
		}
		for _, b := range []string{"b0", "b1", "b2"} {
			for _, prefix := range []string{"", "x/", "a/", "q/"} {
				req := &pb.ListObjectsRequest{Bucket: b, Delimiter: "/", Prefix: prefix, MaxKeys: 2}
				smListBothWays(t, dst, req, fmt.Sprintf("old snapshot %v: %v", old, req))
			}
		}
	}
}

// FuzzListDirIndex lists random key sets through the directory index and
// by walking o/ and requires the same pages. One state serves every input
// (opening Badger per input is slow), each input in a bucket of its own
// whose objects and index entries are written straight into Badger.
func FuzzListDirIndex(f *testing.F) {
	f.Add([]byte("a/b/c\x00a/d\x00e\x00a/\x00b"), "a/", "a/b/", uint8(1))
	f.Add([]byte("x\x00x/\x00x//y\x00x/y/z\x00xy/\x00\xff/a"), "x", "x/y", uint8(2))
	f.Add([]byte("d/1\x00d/2\x00d/3/4\x00d0"), "", "d/3/4", uint8(0))
	s := smOpen(f)
	n := 0
	f.Fuzz(func(t *testing.T, keyData []byte, prefix, after string, maxKeys uint8) {
		if len(keyData) > 4096 || len(prefix) > 64 || len(after) > 64 {
			t.Skip()
		}
		n++
		bucket := fmt.Sprint("f", n)
		s.ApplyBatch(smEntries(s.AppliedIndex()+1, smCreateBucket(bucket)))
		set := map[string]bool{}
		for k := range bytes.SplitSeq(keyData, []byte{0}) {
			if len(k) > 0 && len(k) <= maxObjectKey {
				set[string(k)] = true
			}
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range set {
				if !yield(k) {
					return
				}
			}
		})
		wb := s.db.NewWriteBatch()
		defer wb.Cancel()
		b := dirIndexBuilder{emit: wb.Set}
		for _, k := range keys {
			if err := wb.Set(objectKey(bucket, k), []byte{}); err != nil {
				t.Fatal(err)
			}
			if err := b.add([]byte(bucket), []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.finish(); err != nil {
			t.Fatal(err)
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
		req := &pb.ListObjectsRequest{Bucket: bucket, Delimiter: "/", Prefix: prefix, StartAfter: after, MaxKeys: int32(maxKeys % 8)}
		smListBothWays(t, s, req, fmt.Sprint(req))
	})
}
