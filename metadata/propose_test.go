package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// smGroup makes the commands entries of one Raft entry at index.
func smGroup(index uint64, cmds ...*pb.Command) []Entry {
	es := make([]Entry, len(cmds))
	for i, c := range cmds {
		if c.ProposedUnixNano == 0 {
			c.ProposedUnixNano = int64(index) * 1000 // the same for all: gc/ keys must still differ
		}
		es[i] = Entry{Index: index, Cmd: c}
	}
	return es
}

func TestApplyBatchCommandsOfOneEntry(t *testing.T) {
	dir := t.TempDir()
	s := smOpenDir(t, dir, smSmallBadger)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smPut("bk", "k1", "e0", smSegN(1))))

	cmds := []*pb.Command{
		smPut("bk", "k1", "e1", smSegN(2)), // replaces e0: queues its segment
		smCommit(smObj("bk", "k2", "e1"), &pb.Condition{MustNotExist: true}),
		smCommit(smObj("bk", "k2", "e2"), &pb.Condition{MustNotExist: true}), // sees k2 from this entry
		smPut("bk", "k1", "e2", smSegN(3)),                                   // replaces e1: queues again, same time and index
		smPut("nobucket", "k", "e"),
	}
	want := []error{nil, nil, metaerr.ErrPreconditionFailed, nil, metaerr.ErrNoSuchBucket}
	es := append(smGroup(3, cmds...), smEntries(4, smPut("bk", "k3", "e1"))...)
	rs := s.ApplyBatch(es)
	for i, r := range rs[:len(cmds)] {
		if !smIsCond(r.Err, want[i]) || r.Skipped {
			t.Errorf("command %d: err %v skipped %v, want %v", i, r.Err, r.Skipped, want[i])
		}
	}
	if r := rs[len(cmds)]; r.Err != nil || r.Skipped {
		t.Errorf("entry after the group: %+v", r)
	}
	if got := s.AppliedIndex(); got != 4 {
		t.Errorf("applied index %d, want 4", got)
	}
	if gc := smGC(t, s); len(gc) != 2 {
		t.Errorf("%d gc entries, want 2 (one per replaced version)", len(gc))
	}
	if o, err := smGetObject(t, s, "bk", "k1"); err != nil || o.Etag != "e2" {
		t.Errorf("k1 = %v, %v", o, err)
	}
	if o, err := smGetObject(t, s, "bk", "k2"); err != nil || o.Etag != "e1" {
		t.Errorf("k2 = %v, %v", o, err)
	}

	// Replay after a restart: the whole group is skipped.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := smOpenDir(t, dir, smSmallBadger)
	for i, r := range s2.ApplyBatch(es) {
		if !r.Skipped {
			t.Errorf("replayed command %d not skipped: %+v", i, r)
		}
	}
}

func TestApplyBatchNeverSplitsOneEntry(t *testing.T) {
	s := smOpenDir(t, t.TempDir(), smTinyBadger)
	s.ApplyBatch(smEntries(1, smCreateBucket("bk"), smCreateUpload("bk", "k", "U")))

	// Groups of 100 parts: 40 of them exceed one transaction and are
	// split between groups, each applied whole.
	var es []Entry
	for g := range 40 {
		var cmds []*pb.Command
		for i := 1; i <= 100; i++ {
			n := int32(g*100 + i)
			cmds = append(cmds, smPutPart("bk", "k", "U", n, "e", smSegN(uint32(n))))
		}
		es = append(es, smGroup(uint64(3+g), cmds...)...)
	}
	for i, r := range s.ApplyBatch(es) {
		if r.Err != nil || r.Skipped {
			t.Fatalf("command %d: %+v", i, r)
		}
	}
	if n := smCount(t, s, prefixPart); n != 4000 {
		t.Errorf("%d parts, want 4000", n)
	}

	// One entry of 3,000 parts is too big for any transaction: all its
	// commands are refused, the entries around it apply.
	var big []*pb.Command
	for i := 1; i <= 3000; i++ {
		big = append(big, smPutPart("bk", "k", "U", int32(i), "f", smSegN(uint32(100000+i))))
	}
	es = slicesConcat(smEntries(43, smCreateBucket("before")), smGroup(44, big...), smEntries(45, smCreateBucket("after")))
	rs := s.ApplyBatch(es)
	if rs[0].Err != nil || rs[len(rs)-1].Err != nil {
		t.Errorf("entries around the oversized one: %v, %v", rs[0].Err, rs[len(rs)-1].Err)
	}
	for i, r := range rs[1 : len(rs)-1] {
		if !smIsCond(r.Err, metaerr.ErrInvalidArgument) {
			t.Fatalf("command %d of the oversized entry: %v, want InvalidArgument", i, r.Err)
		}
	}
	if s.AppliedIndex() != 45 {
		t.Errorf("applied index %d, want 45", s.AppliedIndex())
	}
	if n := smCount(t, s, prefixPart); n != 4000 {
		t.Errorf("%d parts after the refused entry, want 4000", n)
	}
}

func slicesConcat(ss ...[]Entry) []Entry {
	var out []Entry
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

func marshalAll(t *testing.T, cmds ...*pb.Command) [][]byte {
	t.Helper()
	var out [][]byte
	for _, c := range cmds {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestFSMBatchEntry(t *testing.T) {
	f := newTestFSM(t)
	batch := encodeBatch(marshalAll(t, bucketCmd("a"), bucketCmd("a"), bucketCmd("b")))
	logs := []*raft.Log{
		cmdLog(t, 1, bucketCmd("c")),
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: batch},
		cmdLog(t, 3, bucketCmd("b")),
	}
	out := f.ApplyBatch(logs)
	if r, ok := out[0].(Result); !ok || r.Err != nil {
		t.Fatalf("response 0 = %#v", out[0])
	}
	rs, ok := out[1].([]Result)
	if !ok || len(rs) != 3 {
		t.Fatalf("batch response = %#v, want 3 results", out[1])
	}
	if rs[0].Err != nil || !smIsCond(rs[1].Err, metaerr.ErrBucketAlreadyOwnedByYou) || rs[2].Err != nil {
		t.Fatalf("batch results %+v", rs)
	}
	if r := out[2].(Result); !smIsCond(r.Err, metaerr.ErrBucketAlreadyOwnedByYou) {
		t.Fatalf("entry after the batch: %+v", r)
	}
	if got := f.state.AppliedIndex(); got != 3 {
		t.Fatalf("applied index %d, want 3", got)
	}
}

func TestFSMPanicsOnUndecodableBatch(t *testing.T) {
	good := encodeBatch(marshalAll(t, bucketCmd("a")))
	tests := []struct {
		name string
		data []byte
	}{
		{"newer batch version", append([]byte{batchMagic, batchVersion + 1}, good[2:]...)},
		{"length past the end", []byte{batchMagic, batchVersion, 0x7f, 0x0a}},
		{"empty", []byte{batchMagic, batchVersion}},
		{"command without operation", append([]byte{batchMagic, batchVersion}, 0x02, 0x08, 0x01)},
		{"garbage command", []byte{batchMagic, batchVersion, 0x02, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFSM(t)
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, "refusing to skip it") {
					t.Fatalf("panic %v", r)
				}
				if f.state.AppliedIndex() != 0 {
					t.Fatal("state advanced past an undecodable entry")
				}
			}()
			f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: tt.data}})
		})
	}
}

func TestBatchEncodingRoundTrip(t *testing.T) {
	cmds := []*pb.Command{bucketCmd("a"), smPut("a", "k", "e", smSegN(7)), smDelete("a", "k", nil)}
	got, err := decodeBatch(encodeBatch(marshalAll(t, cmds...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cmds) {
		t.Fatalf("%d commands, want %d", len(got), len(cmds))
	}
	for i := range cmds {
		if !proto.Equal(got[i], cmds[i]) {
			t.Errorf("command %d: %v, want %v", i, got[i], cmds[i])
		}
	}
	// No plain command entry looks like a batch.
	for _, c := range cmds {
		if b := marshalAll(t, c)[0]; isBatchEntry(b) {
			t.Errorf("plain command %x taken for a batch", b)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte{batchMagic, batchVersion, 0x02, 0x08, 0x01})
	f.Add(encodeBatch([][]byte{{0x0a, 0x00}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := decodeBatch(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to commands that decode the same.
		var enc [][]byte
		for _, c := range cmds {
			b, err := proto.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			enc = append(enc, b)
		}
		again, err := decodeBatch(encodeBatch(enc))
		if err != nil || len(again) != len(cmds) {
			t.Fatalf("re-encoded batch: %d commands, %v", len(again), err)
		}
	})
}

// TestProposerTakeLimits checks what one entry may take from the queue:
// at most ProposeBatch commands and maxBatchBytes, never nothing, and
// none whose caller has gone.
func TestProposerTakeLimits(t *testing.T) {
	p := &proposer{maxBatch: 3}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	mk := func(ctx context.Context, n int) *proposal {
		return &proposal{ctx: ctx, data: bytes.Repeat([]byte{1}, n), done: make(chan struct{})}
	}
	bg := context.Background()
	big := maxBatchBytes - 10
	p.queue = []*proposal{mk(gone, 1), mk(bg, 1), mk(bg, 1), mk(bg, 1), mk(bg, 1), mk(bg, big), mk(bg, 20), mk(bg, maxBatchBytes+5)}
	first := p.queue[0]
	sizes := func(b []*proposal) []int {
		var n []int
		for _, pr := range b {
			n = append(n, len(pr.data))
		}
		return n
	}
	for i, want := range [][]int{{1, 1, 1}, {1, big}, {20}, {maxBatchBytes + 5}, nil} {
		if got := sizes(p.take()); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("take %d: sizes %v, want %v", i, got, want)
		}
	}
	select {
	case <-first.done:
		if !errors.Is(first.err, context.Canceled) {
			t.Errorf("dropped proposal: %v", first.err)
		}
	default:
		t.Error("a proposal whose caller had gone was neither taken nor answered")
	}
}

// TestConcurrentConditionalCommits races many conditional commits through
// the proposer on a 3-member cluster: whichever commands share an entry,
// exactly one commit per key wins and every other one fails its condition
// alone. Pipelining changes nothing with one entry in flight (the
// default), so it runs with two, as does the plain proposer.
func TestConcurrentConditionalCommits(t *testing.T) {
	for _, tc := range []struct {
		inflight int
		pipeline bool
	}{{DefaultProposeInflight, false}, {2, false}, {2, true}} {
		t.Run(fmt.Sprintf("inflight=%d,pipeline=%v", tc.inflight, tc.pipeline), func(t *testing.T) {
			testConcurrentConditionalCommits(t, func(cfg *Config) {
				cfg.ProposeInflight, cfg.ProposePipeline = tc.inflight, tc.pipeline
			})
		})
	}
}

func testConcurrentConditionalCommits(t *testing.T, tune func(*Config)) {
	c := newTestCluster(t, 3, tune)
	c.waitLeader()
	cl := c.client()
	mustCreateBucket(t, cl, "b")
	const keys, perKey = 8, 8
	var wg sync.WaitGroup
	errs := make([]error, keys*perKey)
	for i := range errs {
		wg.Go(func() {
			o := testObject("b", fmt.Sprintf("k%d", i%keys))
			o.VersionId = fmt.Sprintf("v%d", i)
			_, errs[i] = cl.CommitObject(testCtx(t), &pb.CommitObjectRequest{Object: o, Condition: &pb.Condition{MustNotExist: true}})
		})
	}
	wg.Wait()
	won := make([]int, keys)
	for i, err := range errs {
		switch {
		case err == nil:
			won[i%keys]++
		case errors.Is(err, metaerr.ErrPreconditionFailed):
		default:
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	for k, n := range won {
		if n != 1 {
			t.Errorf("key k%d: %d commits won, want 1", k, n)
		}
		r, err := cl.GetObject(testCtx(t), &pb.GetObjectRequest{Bucket: "b", Key: fmt.Sprintf("k%d", k)})
		if err != nil {
			t.Fatalf("get k%d: %v", k, err)
		}
		var i int
		if _, err := fmt.Sscanf(r.GetObject().GetVersionId(), "v%d", &i); err != nil || errs[i] != nil {
			t.Errorf("k%d holds version %s, which its committer did not see win", k, r.GetObject().GetVersionId())
		}
	}
}

// TestProposerGathersTheCallsItAnswered drives the gather of a proposer
// without Raft: after an entry that carried three calls is answered, the
// next one waits for three calls to arrive (calls queued before the answer
// do not count), for no call after a failed entry or when switched off, at
// most a quarter of the entry's time, and not past a shutdown.
func TestProposerGathersTheCallsItAnswered(t *testing.T) {
	newP := func(limit time.Duration) *proposer {
		p := &proposer{s: &Server{shutdown: make(chan struct{})}, maxBatch: DefaultProposeBatch, slots: make(chan struct{}, 1), gatherLimit: limit}
		p.slots <- struct{}{} // run holds its slot while it gathers
		return p
	}
	bg := context.Background()
	call := func(n int) []*proposal {
		prs := make([]*proposal, n)
		for i := range prs {
			prs[i] = newProposal(bg, []byte{1})
		}
		return prs
	}
	// An entry of three calls (of 2, 1 and 3 commands) took 40 s: the
	// bound is then the limit, an hour, so only arrivals end the wait.
	entry := slices.Concat(call(2), call(1), call(3))
	for _, i := range []int{1, 2, 5} {
		entry[i].ends = true
	}
	p := newP(time.Hour)
	p.enqueue(call(4)...) // queued while the entry was in flight
	p.answeredEntry(entry, time.Now().Add(-40*time.Second), true)
	gathered := make(chan bool, 1)
	go func() { gathered <- p.gather() }()
	waiting := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.gathered != nil
	}
	for !waiting() {
		select {
		case <-gathered:
			t.Fatal("the gather ended before any call arrived")
		default:
			runtime.Gosched()
		}
	}
	p.enqueue(call(5)...)
	p.enqueue(call(1)...)
	if !waiting() {
		t.Fatal("the gather ended after two of the three calls the entry answered")
	}
	p.enqueue(call(1)...)
	select {
	case ok := <-gathered:
		if !ok {
			t.Fatal("gather reported a shutdown")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the gather went on after the three calls arrived")
	}
	if got := len(p.take()); got != 11 {
		t.Errorf("next entry: %d commands, want 11 (4 queued before the answer, 7 gathered)", got)
	}

	// Each of these must end long before the hour a wrong wait would take.
	ends := func(what string, p *proposer) {
		t.Helper()
		done := make(chan bool, 1)
		go func() { done <- p.gather() }()
		select {
		case ok := <-done:
			if !ok {
				t.Fatalf("%s: gather reported a shutdown", what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the gather still waits after 10 s", what)
		}
	}
	// After a failed entry there is nothing to wait for (the bound would
	// be 100 s).
	p = newP(time.Hour)
	p.answeredEntry(entry, time.Now().Add(-400*time.Second), false)
	ends("after a failed entry", p)
	// The bound is a quarter of the entry's time, here 5 ms, not the limit.
	p = newP(time.Hour)
	p.answeredEntry(entry, time.Now().Add(-20*time.Millisecond), true)
	ends("after a 20 ms entry", p)
	// Switched off, the gather never waits, whatever it was told.
	p = newP(0)
	p.answered, p.gatherUntil = 3, time.Now().Add(time.Hour)
	ends("switched off", p)
	// Shutdown ends a gather.
	p = newP(time.Hour)
	p.answeredEntry(entry, time.Now().Add(-40*time.Second), true)
	close(p.s.shutdown)
	if p.gather() {
		t.Error("gather did not report the shutdown")
	}
}
