package metadata

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smEntries wraps commands as entries first, first+1, ….
func smEntries(first uint64, cmds ...*pb.Command) []Entry {
	es := make([]Entry, len(cmds))
	for i, c := range cmds {
		idx := first + uint64(i)
		if c != nil && c.ProposedUnixNano == 0 {
			c.ProposedUnixNano = int64(idx) * 1000
		}
		es[i] = Entry{Index: idx, Cmd: c}
	}
	return es
}

func TestApplyBatchIsolatesRefusedEntries(t *testing.T) {
	s := smOpen(t)
	cmds := []*pb.Command{
		smCreateBucket("bk"),
		smPut("bk", "k1", "e1", smSeg(1)),
		smCommit(smObj("bk", "k1", "e2"), &pb.Condition{MustNotExist: true}), // sees k1 from this batch
		smDeleteBucket("bk"),    // not empty: k1 from this batch
		smPut("bk", "k2", "e1"), // unaffected by the refusals
		smCommit(smObj("bk", "k1", "e3", smSeg(3)), &pb.Condition{IfMatchEtag: "e1"}),
		smPut("nobucket", "k", "e"),
		smCreateBucket("bk"),
		smDelete("bk", "k2", nil),
	}
	want := []error{nil, nil, metaerr.ErrPreconditionFailed, metaerr.ErrBucketNotEmpty, nil, nil, metaerr.ErrNoSuchBucket, metaerr.ErrBucketAlreadyOwnedByYou, nil}
	rs := s.ApplyBatch(smEntries(1, cmds...))
	if len(rs) != len(cmds) {
		t.Fatalf("%d results for %d entries", len(rs), len(cmds))
	}
	for i, r := range rs {
		if !smIsCond(r.Err, want[i]) || r.Skipped {
			t.Errorf("entry %d (%s): err %v skipped %v, want %v", i+1, smOpName(cmds[i]), r.Err, r.Skipped, want[i])
		}
		if (r.Resp == nil) == (want[i] == nil) {
			t.Errorf("entry %d: response %v with err %v", i+1, r.Resp, r.Err)
		}
	}
	if got := s.AppliedIndex(); got != uint64(len(cmds)) {
		t.Errorf("applied index %d, want %d", got, len(cmds))
	}
	k1, err := smGetObject(t, s, "bk", "k1")
	if err != nil || k1.Etag != "e3" || k1.ModifiedUnixNano != 6000 {
		t.Errorf("k1 = %v, %v", k1, err)
	}
	if _, err := smGetObject(t, s, "bk", "k2"); !smIsCond(err, metaerr.ErrNoSuchKey) {
		t.Errorf("k2: %v", err)
	}
	if got := smGCSegments(t, s); string(got) != "\x01" {
		t.Errorf("gc %v", got)
	}
}

func TestApplyBatchSkipsReplayedEntries(t *testing.T) {
	dir := t.TempDir()
	s := smOpenDir(t, dir, smSmallBadger)
	var first []*pb.Command
	for i := 1; i <= 5; i++ {
		first = append(first, smCreateBucket(fmt.Sprintf("b%d", i)))
	}
	for i, r := range s.ApplyBatch(smEntries(1, first...)) {
		if r.Err != nil || r.Skipped {
			t.Fatalf("entry %d: %+v", i+1, r)
		}
	}
	// Replay 3..7 with different commands at 3..5: those must be skipped.
	var second []*pb.Command
	for i := 3; i <= 7; i++ {
		second = append(second, smCreateBucket(fmt.Sprintf("x%d", i)))
	}
	rs := s.ApplyBatch(smEntries(3, second...))
	for i, r := range rs {
		idx := i + 3
		if wantSkip := idx <= 5; r.Skipped != wantSkip || r.Err != nil || (r.Resp == nil) != wantSkip {
			t.Errorf("index %d: %+v, want skipped=%v", idx, r, wantSkip)
		}
	}
	if s.AppliedIndex() != 7 {
		t.Errorf("applied index %d, want 7", s.AppliedIndex())
	}
	want := []string{"b1", "b2", "b3", "b4", "b5", "x6", "x7"}
	smCheckBuckets(t, s, want)

	// After a restart the applied index comes back from Badger.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := smOpenDir(t, dir, smSmallBadger)
	if s2.AppliedIndex() != 7 {
		t.Errorf("applied index after reopen %d, want 7", s2.AppliedIndex())
	}
	for _, r := range s2.ApplyBatch(smEntries(1, append(first, second...)[:7]...)) {
		if !r.Skipped {
			t.Errorf("replay after reopen applied %+v", r)
		}
	}
	smCheckBuckets(t, s2, want)
}

func smCheckBuckets(t *testing.T, s *State, want []string) {
	t.Helper()
	resp, err := s.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range resp.Buckets {
		got = append(got, b.Name)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buckets %v, want %v", got, want)
	}
}

// tinyBadger makes Badger's transaction limit small: about 1,600 writes.
func smTinyBadger(o *badger.Options) {
	smSmallBadger(o)
	o.MemTableSize = 1 << 20
	o.ValueThreshold = 16 << 10
}

func TestApplyBatchSplitsTooBigTransactions(t *testing.T) {
	s := smOpenDir(t, t.TempDir(), smTinyBadger)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateUpload("bk", "k", "U")))

	// 3,000 parts in one batch exceed one transaction; with a refused entry
	// in the middle.
	var cmds []*pb.Command
	for i := 1; i <= 3000; i++ {
		cmds = append(cmds, smPutPart("bk", "k", "U", int32(i), "e", smSegN(uint32(i))))
	}
	cmds[1500] = smPutPart("bk", "k", "nope", 1, "e")
	rs := s.ApplyBatch(smEntries(3, cmds...))
	for i, r := range rs {
		if want := error(nil); i == 1500 {
			if !smIsCond(r.Err, metaerr.ErrNoSuchUpload) {
				t.Errorf("entry %d: %v, want NoSuchUpload", i, r.Err)
			}
		} else if r.Err != want {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
	}
	if s.AppliedIndex() != 3002 {
		t.Errorf("applied index %d, want 3002", s.AppliedIndex())
	}
	if n := smCount(t, s, prefixPart); n != 2999 {
		t.Errorf("%d parts, want 2999", n)
	}

	// Aborting deletes 2,999 parts and queues 2,999 GC records: too big for
	// any transaction. It is refused deterministically; the entries around
	// it still apply.
	rs = s.ApplyBatch(smEntries(3003, smAbort("bk", "k", "U"), smCreateBucket("after")))
	if !smIsCond(rs[0].Err, metaerr.ErrInvalidArgument) {
		t.Errorf("oversized abort: %v", rs[0].Err)
	}
	if rs[1].Err != nil {
		t.Errorf("entry after oversized one: %v", rs[1].Err)
	}
	if s.AppliedIndex() != 3004 {
		t.Errorf("applied index %d, want 3004", s.AppliedIndex())
	}
	if n := smCount(t, s, prefixPart); n != 2999 {
		t.Errorf("%d parts after refused abort, want 2999", n)
	}
	if n := smCount(t, s, prefixGC); n != 0 {
		t.Errorf("%d gc records after refused abort", n)
	}
}

// TestApplyIsDeterministic applies the same random command stream to two
// states, one entry per batch and in large batches: they must end up with
// identical bytes.
func TestApplyIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cmds := smRandomCommands(rng, 600)
	a, b := smOpen(t), smOpen(t)
	for i, c := range cmds {
		a.ApplyBatch(smEntries(uint64(i+1), proto.CloneOf(c)))
	}
	for i := 0; i < len(cmds); i += 97 {
		end := min(i+97, len(cmds))
		var batch []*pb.Command
		for _, c := range cmds[i:end] {
			batch = append(batch, proto.CloneOf(c))
		}
		b.ApplyBatch(smEntries(uint64(i+1), batch...))
	}
	da, db := smDump(t, a), smDump(t, b)
	if len(da) < 50 {
		t.Fatalf("only %d keys: the command stream does too little", len(da))
	}
	if !smMapsEqual(da, db) {
		t.Errorf("states differ: %d vs %d keys", len(da), len(db))
	}
	if a.AppliedIndex() != uint64(len(cmds)) || b.AppliedIndex() != uint64(len(cmds)) {
		t.Errorf("applied %d and %d, want %d", a.AppliedIndex(), b.AppliedIndex(), len(cmds))
	}
}

// smRandomCommands makes a stream of commands over a few buckets, keys and
// uploads, many of which are refused.
func smRandomCommands(rng *rand.Rand, n int) []*pb.Command {
	buckets := []string{"b0", "b1"}
	keys := []string{"a", "a/b", "c\x00d", "é", "zÿ", "z\xff"} // the last is not UTF-8: refused
	ids := []string{"u0", "u1"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	var cmds []*pb.Command
	for i := range n {
		var c *pb.Command
		bk, k, id := pick(buckets), pick(keys), pick(ids)
		seg := smSeg(byte(i))
		if i%4 == 0 {
			seg.Nodes[1] = "" // written degraded
		}
		switch rng.IntN(17) {
		case 0:
			c = smCreateBucket(bk)
		case 1:
			c = smDeleteBucket(bk)
		case 2, 3:
			c = smPut(bk, k, fmt.Sprint("e", rng.IntN(3)), seg)
		case 4:
			c = smCommit(smObj(bk, k, "e9", seg), &pb.Condition{MustNotExist: rng.IntN(2) == 0, IfMatchEtag: fmt.Sprint("e", rng.IntN(3))})
		case 5:
			c = smDelete(bk, k, nil)
		case 6:
			c = smCreateUpload(bk, k, id)
		case 7, 8:
			n, e := 1+rng.IntN(3), rng.IntN(2)
			c = smPutPart(bk, k, id, int32(n), fmt.Sprint("p", e), smSeg(byte(10*n+e)))
		case 9:
			c = smComplete(id, smObj(bk, k, "mp", smSeg(10)), nil, smCP(1, "p0"))
		case 10:
			c = smAbort(bk, k, id)
		case 11:
			c = smRegister(pick(append(ids, "n1", "n2", "n3")), pick(keys), "z", int64(rng.IntN(2)))
		case 12:
			c = smSetState(pick([]string{"n1", "n2", "n3", "u0"}), pb.NodeState(rng.IntN(6)))
		case 13:
			c = smMark(smRef(byte(rng.IntN(i+1)), uint32(rng.IntN(2)), pick([]string{"n1", "n2"})))
		case 14:
			c = smMove(byte(rng.IntN(i+1)), uint32(rng.IntN(2)), pick([]string{"", "n1", "n2"}), pick([]string{"n1", "n2", "n3"}), pick([]string{"repair", "rebalance"}))
		case 15:
			c = smAck(gcKey(int64(rng.IntN(i+1))*7, uint64(rng.IntN(i+1)), uint32(rng.IntN(2))), gcKey(int64(rng.IntN(i+1))*7, uint64(rng.IntN(i+1)), chunkGCSeq))
		case 16:
			c = smSetRebalance(&pb.SetRebalance{Running: rng.IntN(2) == 0, Threshold: 5, BytesTotal: int64(i)})
		}
		c.ProposedUnixNano = int64(i) * 7
		cmds = append(cmds, c)
	}
	return cmds
}

// TestStageIsAllOrNothing: a command's writes reach the transaction only
// through flush, and its own point reads see them before that.
func TestStageIsAllOrNothing(t *testing.T) {
	s := smOpen(t)
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(bucketKey("old"), []byte{}); err != nil {
		t.Fatal(err)
	}
	st := &stage{txn: txn}
	if err := st.put(bucketKey("new"), &pb.Bucket{Name: "new"}); err != nil {
		t.Fatal(err)
	}
	st.del(bucketKey("old"))
	if found, err := st.get(bucketKey("new"), &pb.Bucket{}); !found || err != nil {
		t.Errorf("staged put not visible: %v %v", found, err)
	}
	if found, err := st.get(bucketKey("old"), &pb.Bucket{}); found || err != nil {
		t.Errorf("staged delete not visible: %v %v", found, err)
	}
	// Not flushed: the transaction has none of it (a refused command).
	if _, err := txn.Get(bucketKey("new")); err != badger.ErrKeyNotFound {
		t.Errorf("unflushed put reached the transaction: %v", err)
	}
	if _, err := txn.Get(bucketKey("old")); err != nil {
		t.Errorf("unflushed delete reached the transaction: %v", err)
	}
	if err := st.put(bucketKey("bad"), &pb.Bucket{Name: "\xff"}); !smIsCond(err, metaerr.ErrInvalidArgument) {
		t.Errorf("put of invalid UTF-8: %v", err)
	}
	if err := st.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Get(bucketKey("new")); err != nil {
		t.Errorf("flushed put missing: %v", err)
	}
	if _, err := txn.Get(bucketKey("old")); err != badger.ErrKeyNotFound {
		t.Errorf("flushed delete missing: %v", err)
	}
}

// TestApplyBatchSeesEarlierEntries: scans inside a batch see what earlier
// entries of the same batch wrote and deleted.
func TestApplyBatchSeesEarlierEntries(t *testing.T) {
	s := smOpen(t)
	rs := s.ApplyBatch(smEntries(1,
		smCreateBucket("bk"), smPut("bk", "k", "e"), smCreateUpload("bk", "k", "U"), smPutPart("bk", "k", "U", 1, "e", smSeg(1)),
		smDelete("bk", "k", nil), smDeleteBucket("bk"), // empty again: the delete is seen; the upload is aborted
		smCreateBucket("bk"), smDeleteBucket("bk")))
	for i, r := range rs {
		if r.Err != nil {
			t.Errorf("entry %d: %v", i+1, r.Err)
		}
	}
	if n := smCount(t, s, prefixUpload) + smCount(t, s, prefixPart) + smCount(t, s, prefixBucket); n != 0 {
		t.Errorf("%d upload, part and bucket records left", n)
	}
	if got := smGCSegments(t, s); string(got) != "\x01" {
		t.Errorf("gc %v", got)
	}
}

// TestApplyBatchBucketGoneMidBatch checks that a bucket deleted (or
// created) by a command is seen as such by the later commands of the same
// batch: requireBucket remembers the buckets a transaction holds.
func TestApplyBatchBucketGoneMidBatch(t *testing.T) {
	s := smOpen(t)
	if rs := s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateBucket("other"))); rs[0].Err != nil || rs[1].Err != nil {
		t.Fatalf("create buckets: %+v", rs)
	}
	cmds := []*pb.Command{
		smPut("bk", "k1", "e1"), // bk found in the transaction
		smPut("other", "k1", "e1"),
		smDelete("bk", "k1", nil),
		smDeleteBucket("bk"),
		smPut("bk", "k2", "e1"), // bk gone in this batch
		smPut("other", "k2", "e1"),
		smCreateBucket("bk"),
		smPut("bk", "k3", "e1"), // bk back
		smDeleteBucket("bk"),    // not empty: refused, bk stays
		smPut("bk", "k4", "e1"),
	}
	want := []error{nil, nil, nil, nil, metaerr.ErrNoSuchBucket, nil, nil, nil, metaerr.ErrBucketNotEmpty, nil}
	rs := s.ApplyBatch(smEntries(3, cmds...))
	for i, r := range rs {
		if !smIsCond(r.Err, want[i]) || r.Skipped {
			t.Errorf("command %d (%s): err %v skipped %v, want %v", i+1, smOpName(cmds[i]), r.Err, r.Skipped, want[i])
		}
	}
	for _, k := range []string{"k3", "k4"} {
		if _, err := smGetObject(t, s, "bk", k); err != nil {
			t.Errorf("bk/%s: %v", k, err)
		}
	}
}

// TestApplyOwnedCommandsMatchCopies: the FSM hands ApplyBatch commands it
// decoded itself, which the state machine may store in place (Entry.owned);
// any other caller's commands must come back untouched. Both must write the
// same bytes. The stream includes commands that stage more keys and bytes
// than one of the stage's chunks holds (an object of 400 segments: ~2,800
// keys, an o/ value of ~40 KB) and a batch of many such commands, so staged
// keys and values live in several chunks of one transaction.
func TestApplyOwnedCommandsMatchCopies(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Raft carries only commands that encode (smRandomCommands makes some
	// with keys that are not UTF-8).
	cmds := slices.DeleteFunc(smRandomCommands(rng, 400), func(c *pb.Command) bool {
		_, err := proto.Marshal(c)
		return err != nil
	})
	nodes := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	var big []*pb.Command
	for i := range 6 {
		var segs []*pb.Segment
		for j := range 400 {
			segs = append(segs, smSegN(uint32(1000*i+j), nodes...))
		}
		c := smPut("b0", fmt.Sprintf("big/%d", i%4), "big", segs...)
		if i == 5 {
			// Refused: big/1 exists.
			c.GetCommitObject().Condition = &pb.Condition{MustNotExist: true}
		}
		c.ProposedUnixNano = int64(9000 + i)
		big = append(big, c)
	}
	// Make the bucket exist for the big commands, and put them in the middle.
	mid := len(cmds) / 2
	cmds = slices.Concat(cmds[:mid], []*pb.Command{smCreateBucket("b0")}, big, cmds[mid:])
	pristine := make([]*pb.Command, len(cmds))
	for i, c := range cmds {
		pristine[i] = proto.CloneOf(c)
	}

	// a: through the FSM, ~20 commands per batch entry, as the proposer
	// groups them.
	a := smOpenDir(t, t.TempDir(), nil)
	f := newFSM(a)
	var resA []Result
	index := uint64(0)
	for i := 0; i < len(cmds); i += 20 {
		var enc [][]byte
		for _, c := range cmds[i:min(i+20, len(cmds))] {
			b, err := proto.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			enc = append(enc, b)
		}
		index++
		out := f.ApplyBatch([]*raft.Log{{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeBatch(enc)}})
		resA = append(resA, out[0].([]Result)...)
	}
	// b: the same commands straight into State.ApplyBatch, same grouping.
	b := smOpenDir(t, t.TempDir(), nil)
	var resB []Result
	index = 0
	for i := 0; i < len(cmds); i += 20 {
		index++
		var es []Entry
		for _, c := range cmds[i:min(i+20, len(cmds))] {
			es = append(es, Entry{Index: index, Cmd: c})
		}
		resB = append(resB, b.ApplyBatch(es)...)
	}
	for i, c := range cmds {
		if !proto.Equal(c, pristine[i]) {
			t.Fatalf("command %d (%s) changed by State.ApplyBatch:\n got %v\nwant %v", i, smOpName(c), c, pristine[i])
		}
		ra, rb := resA[i], resB[i]
		if !proto.Equal(ra.Resp, rb.Resp) || fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
			t.Fatalf("command %d (%s): result %v / %v through the FSM, %v / %v without", i, smOpName(c), ra.Resp, ra.Err, rb.Resp, rb.Err)
		}
	}
	da, db := smDump(t, a), smDump(t, b)
	if !smMapsEqual(da, db) {
		t.Fatalf("states differ: %d vs %d keys", len(da), len(db))
	}
	smCheckIndexes(t, a, "fsm")
	for i := range 4 {
		r, err := a.GetObject(&pb.GetObjectRequest{Bucket: "b0", Key: fmt.Sprintf("big/%d", i)})
		if err != nil {
			t.Fatalf("big/%d: %v", i, err)
		}
		// big/0 was overwritten; big/1 keeps its first version (the
		// second was refused).
		want := int64(9000 + i)
		if i == 0 {
			want = 9004
		}
		if o := r.GetObject(); len(o.GetSegments()) != 400 || o.GetModifiedUnixNano() != want {
			t.Fatalf("big/%d: %d segments, modified %d", i, len(o.GetSegments()), o.GetModifiedUnixNano())
		}
	}
}

// TestAsyncCommitBound: a transaction that commitAsync may commit (within
// asyncTxn, as txnSize counts it) never reaches Badger's own limits, which
// Badger checks again at the commit, where a failure could no longer be
// split and retried.
func TestAsyncCommitBound(t *testing.T) {
	for _, valueSize := range []int{0, 8, 300, 4 << 10} {
		t.Run(fmt.Sprintf("values of %d bytes", valueSize), func(t *testing.T) {
			s := smOpenDir(t, t.TempDir(), smTinyBadger)
			txn := s.db.NewTransaction(true)
			defer txn.Discard()
			var size txnSize
			n := 0
			for ; ; n++ {
				key := fmt.Appendf(nil, "o/bucket\x00key-%08d", n)
				val := make([]byte, valueSize)
				next := size
				next.add(key, val)
				if !next.within(s.asyncTxn) {
					break
				}
				if err := txn.Set(key, val); err != nil {
					t.Fatalf("set %d, within the bound: %v", n, err)
				}
				size = next
			}
			// The writes beside the stage's, as applyTxn makes them.
			if err := setApplied(txn, 7); err != nil {
				t.Fatalf("set applied after %d writes: %v", n, err)
			}
			if n < 10 {
				t.Fatalf("bound admits only %d writes", n)
			}
			if err := txn.Commit(); err != nil {
				t.Fatalf("commit of %d writes within the bound: %v", n, err)
			}
		})
	}
}
