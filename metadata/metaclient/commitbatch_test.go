package metaclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// batchMember is a metad stand-in for CommitObjects: it records the keys
// of every call and answers each commit as answer says (nil: committed).
// While hold is non-nil, calls wait for it to close.
type batchMember struct {
	metadatapb.UnimplementedMetadataServer
	addr string

	mu     sync.Mutex
	calls  [][]string // keys of each call, in order
	hold   chan struct{}
	answer func(call int, key string) error
}

func (m *batchMember) CommitObjects(_ context.Context, req *metadatapb.CommitObjectsRequest) (*metadatapb.CommitObjectsResponse, error) {
	var keys []string
	for _, c := range req.GetCommits() {
		keys = append(keys, c.GetObject().GetKey())
	}
	m.mu.Lock()
	m.calls = append(m.calls, keys)
	call, hold, answer := len(m.calls), m.hold, m.answer
	m.mu.Unlock()
	if hold != nil {
		<-hold
	}
	resp := &metadatapb.CommitObjectsResponse{}
	for _, c := range req.GetCommits() {
		r := &metadatapb.CommitObjectResult{Object: c.GetObject()}
		if answer != nil {
			if err := answer(call, c.GetObject().GetKey()); err != nil {
				r = &metadatapb.CommitObjectResult{Error: metadatapb.NewItemStatus(metaerr.ToStatus(err))}
			}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

func (m *batchMember) callKeys() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func startBatchMember(t *testing.T, answer func(call int, key string) error) *batchMember {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &batchMember{addr: ln.Addr().String(), answer: answer}
	srv := grpc.NewServer()
	metadatapb.RegisterMetadataServer(srv, m)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return m
}

func newBatchClient(t *testing.T, calls int, addrs ...string) *Client {
	t.Helper()
	c, err := New(addrs, Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, ConnectTimeout: time.Second, CommitCalls: calls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func commitReq(key string) *metadatapb.CommitObjectRequest {
	return &metadatapb.CommitObjectRequest{Object: &metadatapb.Object{Bucket: "b", Key: key}}
}

// waitQueued waits until n commits wait in c's queue.
func waitQueued(t *testing.T, c *Client, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.commits.mu.Lock()
		queued := 0
		for _, qc := range c.commits.queue {
			if qc.state == commitQueued {
				queued++
			}
		}
		c.commits.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d commits queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitCalls waits until m has received n calls.
func waitCalls(t *testing.T, m *batchMember, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(m.callKeys()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls, want %d", len(m.callKeys()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// heldCall is a member whose calls wait until release, and a client with
// one call slot whose first commit ("first") is held there: what the
// client commits next queues.
type heldCall struct {
	m     *batchMember
	c     *Client
	ctx   context.Context
	hold  chan struct{}
	first <-chan error // the first commit's error, once released
}

func startHeld(t *testing.T) *heldCall {
	t.Helper()
	h := &heldCall{m: startBatchMember(t, nil), hold: make(chan struct{}), ctx: ctxT(t, 30*time.Second)}
	h.m.hold = h.hold
	h.c = newBatchClient(t, 1, h.m.addr)
	first := make(chan error, 1)
	go func() {
		_, err := h.c.CommitObject(h.ctx, commitReq("first"))
		first <- err
	}()
	waitCalls(t, h.m, 1)
	h.first = first
	return h
}

// release lets the held call go; later calls are answered at once.
func (h *heldCall) release() {
	h.m.mu.Lock()
	h.m.hold = nil
	h.m.mu.Unlock()
	close(h.hold)
}

// commitAll commits keys concurrently and returns each one's error.
func commitAll(ctx context.Context, c *Client, keys []string) map[string]error {
	var mu sync.Mutex
	errs := make(map[string]error)
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Go(func() {
			resp, err := c.CommitObject(ctx, commitReq(k))
			if err == nil && resp.GetObject().GetKey() != k {
				err = fmt.Errorf("answered with object %q", resp.GetObject().GetKey())
			}
			mu.Lock()
			errs[k] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return errs
}

func TestCommitsQueuedWhileCallInFlightShareNextCall(t *testing.T) {
	h := startHeld(t)
	m, c, ctx := h.m, h.c, h.ctx
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	done := make(chan map[string]error, 1)
	go func() { done <- commitAll(ctx, c, keys) }()
	waitQueued(t, c, len(keys))
	h.release()

	if err := <-h.first; err != nil {
		t.Fatalf("first commit: %v", err)
	}
	for k, err := range <-done {
		if err != nil {
			t.Errorf("commit %s: %v", k, err)
		}
	}
	calls := m.callKeys()
	if len(calls) != 2 {
		t.Fatalf("%d calls %v, want 2: the first, then the 20 queued together", len(calls), calls)
	}
	got := slices.Sorted(slices.Values(calls[1]))
	if !slices.Equal(got, keys) {
		t.Fatalf("second call carried %v, want %v", got, keys)
	}
}

func TestCommitErrorsStayWithTheirCommit(t *testing.T) {
	leader := "127.0.0.1:1" // never dialled: the NotLeader below is per commit
	var movedOnce sync.Once
	m := startBatchMember(t, func(_ int, key string) error {
		moved := false
		if key == "moved" {
			movedOnce.Do(func() { moved = true })
		}
		switch {
		case key == "cond":
			return metaerr.Detailed(metaerr.ErrPreconditionFailed, "b/cond exists")
		case key == "nobucket":
			return metaerr.Detailed(metaerr.ErrNoSuchBucket, "b")
		case moved:
			// Leadership moved mid-call: this commit was not proposed.
			return &metaerr.NotLeaderError{LeaderAddr: leader}
		}
		return nil
	})
	hold := make(chan struct{})
	m.hold = hold
	c := newBatchClient(t, 1, m.addr)
	ctx := ctxT(t, 30*time.Second)

	keys := []string{"cond", "nobucket", "moved", "ok1", "ok2"}
	done := make(chan map[string]error, 1)
	go func() { done <- commitAll(ctx, c, keys) }()
	// All five in one call: the first takes the slot, the rest queue
	// behind it; hold the first call until they have.
	waitCalls(t, m, 1)
	waitQueued(t, c, len(keys)-1)
	m.mu.Lock()
	m.hold = nil
	m.mu.Unlock()
	close(hold)

	errs := <-done
	if !errors.Is(errs["cond"], metaerr.ErrPreconditionFailed) {
		t.Errorf("cond: %v, want PreconditionFailed", errs["cond"])
	}
	if !errors.Is(errs["nobucket"], metaerr.ErrNoSuchBucket) {
		t.Errorf("nobucket: %v, want NoSuchBucket", errs["nobucket"])
	}
	for _, k := range []string{"moved", "ok1", "ok2"} {
		if errs[k] != nil {
			t.Errorf("%s: %v", k, errs[k])
		}
	}
	// "moved" was sent again, alone; nothing else was.
	var moved int
	for _, call := range m.callKeys() {
		for _, k := range call {
			if k == "moved" {
				moved++
			} else if n := countKey(m.callKeys(), k); n != 1 {
				t.Errorf("%s sent %d times", k, n)
			}
		}
	}
	if moved != 2 {
		t.Errorf("moved sent %d times, want 2", moved)
	}
}

func countKey(calls [][]string, key string) int {
	n := 0
	for _, call := range calls {
		for _, k := range call {
			if k == key {
				n++
			}
		}
	}
	return n
}

func TestFailedCallFailsEveryCommitInIt(t *testing.T) {
	// An ambiguous failure of the call (Unavailable without NotLeader) is
	// every commit's: none may be sent again, as with CommitObject.
	h := startHeld(t)
	m, c, ctx := h.m, h.c, h.ctx
	done := make(chan map[string]error, 1)
	go func() { done <- commitAll(ctx, c, []string{"a", "b", "c"}) }()
	waitQueued(t, c, 3)
	// The connection is lost once the first call is answered: the second
	// call fails outright.
	c.commits.mu.Lock()
	c.commits.client = failingClient{c.commits.client}
	c.commits.mu.Unlock()
	h.release()
	if err := <-h.first; err != nil {
		t.Fatalf("first: %v", err)
	}
	for k, err := range <-done {
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable", k, err)
		}
	}
	if n := len(m.callKeys()); n != 1 {
		t.Fatalf("%d calls reached the member, want 1 (no retry of an ambiguous failure)", n)
	}
}

// failingClient fails every CommitObjects call as a connection lost after
// sending would.
type failingClient struct{ metadatapb.MetadataClient }

func (failingClient) CommitObjects(context.Context, *metadatapb.CommitObjectsRequest, ...grpc.CallOption) (*metadatapb.CommitObjectsResponse, error) {
	return nil, status.Error(codes.Unavailable, "connection lost")
}

func TestQueuedCommitWhoseCallerLeftIsNotSent(t *testing.T) {
	h := startHeld(t)
	m, c, ctx := h.m, h.c, h.ctx
	gone, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() {
		_, err := c.CommitObject(gone, commitReq("gone"))
		left <- err
	}()
	waitQueued(t, c, 1)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned commit: %v, want Canceled", err)
	}
	h.release()
	if err := <-h.first; err != nil {
		t.Fatalf("first: %v", err)
	}
	// A later commit still goes, and the abandoned one never did.
	if _, err := c.CommitObject(ctx, commitReq("later")); err != nil {
		t.Fatalf("later: %v", err)
	}
	if n := countKey(m.callKeys(), "gone"); n != 0 {
		t.Fatalf("abandoned commit sent %d times", n)
	}
}

func TestOldMemberWithoutCommitObjects(t *testing.T) {
	// A metad from before CommitObjects answers Unimplemented: the client
	// commits one by one from then on.
	m := startFake(t, ok)
	c := newBatchClient(t, 2, m.addr)
	ctx := ctxT(t, 30*time.Second)
	var keys []string
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	for k, err := range commitAll(ctx, c, keys) {
		// fakeMember answers with its own address as the key.
		if err != nil && err.Error() != fmt.Sprintf("answered with object %q", m.addr) {
			t.Errorf("%s: %v", k, err)
		}
	}
	if n := m.calls.Load(); n != int32(len(keys)) {
		t.Fatalf("%d CommitObject calls, want %d", n, len(keys))
	}
	if !c.commits.unbatched.Load() {
		t.Fatal("client still batching after Unimplemented")
	}
}

func TestBatchContext(t *testing.T) {
	near, cancelNear := context.WithTimeout(context.Background(), time.Hour)
	defer cancelNear()
	far, cancelFar := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancelFar()
	batch := []*queuedCommit{{ctx: near}, {ctx: far}}
	ctx, cancel := batchContext(batch)
	defer cancel()
	farDL, _ := far.Deadline()
	if dl, ok := ctx.Deadline(); !ok || !dl.Equal(farDL) {
		t.Fatalf("deadline %v %v, want the latest caller's %v", dl, ok, farDL)
	}
	cancelNear()
	select {
	case <-ctx.Done():
		t.Fatal("call ended while a caller still waits")
	default:
	}
	cancelFar()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("call did not end once every caller had left")
	}

	// A caller without a deadline: the call has none either.
	ctx2, cancel2 := batchContext([]*queuedCommit{{ctx: context.Background()}, {ctx: far}})
	defer cancel2()
	if _, ok := ctx2.Deadline(); ok {
		t.Fatal("deadline set although a caller has none")
	}
}

// steppedClient is a CommitObjects stand-in whose calls each wait for
// their own release: it reports every call on calls.
type steppedClient struct {
	metadatapb.MetadataClient
	calls chan steppedCall
}

type steppedCall struct {
	keys    []string
	release chan struct{}
}

func (s steppedClient) CommitObjects(ctx context.Context, req *metadatapb.CommitObjectsRequest, _ ...grpc.CallOption) (*metadatapb.CommitObjectsResponse, error) {
	call := steppedCall{release: make(chan struct{})}
	resp := &metadatapb.CommitObjectsResponse{}
	for _, c := range req.GetCommits() {
		call.keys = append(call.keys, c.GetObject().GetKey())
		resp.Results = append(resp.Results, &metadatapb.CommitObjectResult{Object: c.GetObject()})
	}
	s.calls <- call
	select {
	case <-call.release:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next waits for the next call to start.
func (s steppedClient) next(ctx context.Context, t *testing.T) steppedCall {
	t.Helper()
	select {
	case call := <-s.calls:
		return call
	case <-ctx.Done():
		t.Fatal("no call started")
		return steppedCall{}
	}
}

// TestLaterCallsWaitForAFairShare: with two calls allowed, a second call
// starts only once the queue holds the mean size of the last two calls,
// and the last call in flight takes whatever is queued when it returns.
func TestLaterCallsWaitForAFairShare(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	client := steppedClient{calls: make(chan steppedCall, 16)}
	b := newCommitBatcher(client, 2)
	c := &Client{commits: b}
	next := func() steppedCall { return client.next(ctx, t) }
	queued := func(want int) {
		t.Helper()
		waitQueued(t, c, want)
		b.mu.Lock()
		calls := b.calls
		b.mu.Unlock()
		if calls != 1 && calls != 2 {
			t.Fatalf("%d calls in flight", calls)
		}
	}
	errs := make(chan error, 64)
	commit := func(keys ...string) {
		for _, k := range keys {
			go func() {
				_, err := c.CommitObject(ctx, commitReq(k))
				errs <- err
			}()
		}
	}
	keys := func(prefix string, n int) []string {
		var ks []string
		for i := range n {
			ks = append(ks, fmt.Sprintf("%s%02d", prefix, i))
		}
		return ks
	}

	// An idle client sends at once, and a second commit, with nothing
	// sent before, goes in a second call.
	commit("a")
	a := next()
	commit("b")
	bc := next()
	// Both slots busy: ten commits queue, then go together when a's call
	// returns.
	commit(keys("c", 10)...)
	queued(10)
	close(a.release)
	cc := next()
	if len(cc.keys) != 10 {
		t.Fatalf("third call carried %d commits, want the 10 queued", len(cc.keys))
	}
	close(bc.release)
	// One call of 10 in flight, the last two calls 1 and 10: another call
	// waits for 5 commits. The decision is made as each commit queues, so
	// four queued and no call started means none will for them.
	commit(keys("d", 4)...)
	queued(4)
	select {
	case call := <-client.calls:
		t.Fatalf("a call of %d started with 4 queued and 10 in flight", len(call.keys))
	default:
	}
	commit("e")
	dc := next()
	if len(dc.keys) != 5 {
		t.Fatalf("fourth call carried %d commits, want 5", len(dc.keys))
	}
	// Three more queue behind two calls in flight; when both return, the
	// last one takes them though they are fewer than a share.
	commit(keys("f", 3)...)
	queued(3)
	close(cc.release)
	close(dc.release)
	fc := next()
	if len(fc.keys) != 3 {
		t.Fatalf("last call carried %d commits, want the 3 queued", len(fc.keys))
	}
	close(fc.release)
	for range 2 + 10 + 5 + 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestNextCallGathersTheCallersItAnswered: when the last call in flight
// returns and its callers commit again at once, the next call waits for
// as many as the last carried, instead of leaving with the first of them
// and splitting the callers into two groups that take turns; a commit
// that has no company waits at most the gather's limit.
func TestNextCallGathersTheCallersItAnswered(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	client := steppedClient{calls: make(chan steppedCall, 16)}
	b := newCommitBatcher(client, 1)
	// No limit the callers could miss on a loaded machine.
	b.gatherLimit = func(time.Duration) time.Duration { return time.Hour }
	c := &Client{commits: b}
	next := func() steppedCall { return client.next(ctx, t) }
	commit := func(k string) error {
		_, err := c.CommitObject(ctx, commitReq(k))
		return err
	}

	firstErr := make(chan error, 1)
	go func() { firstErr <- commit("first") }()
	first := next()
	// Eight callers that commit twice, one after the other.
	const callers = 8
	errs := make(chan error, 2*callers)
	for w := range callers {
		go func() {
			for round := range 2 {
				errs <- commit(fmt.Sprintf("w%d-%d", w, round))
			}
		}()
	}
	waitQueued(t, c, callers)
	close(first.release)
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	// A call of 1 is a share of 1: the eight queued go at once.
	round0 := next()
	if len(round0.keys) != callers {
		t.Fatalf("second call carried %v, want the %d queued", round0.keys, callers)
	}
	close(round0.release)
	round1 := next()
	if len(round1.keys) != callers {
		t.Fatalf("third call carried %v, want all %d callers' second commits", round1.keys, callers)
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	// Nobody else commits: a lone commit goes once the limit has passed.
	b.mu.Lock()
	b.gatherLimit = func(time.Duration) time.Duration { return time.Millisecond }
	b.mu.Unlock()
	close(round1.release)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	loneErr := make(chan error, 1)
	go func() { loneErr <- commit("lone") }()
	lone := next()
	if len(lone.keys) != 1 {
		t.Fatalf("lone call carried %v", lone.keys)
	}
	close(lone.release)
	if err := <-loneErr; err != nil {
		t.Fatal(err)
	}
}

// TestCommitsGoAroundAStuckCall: a member that leaves a call unanswered
// (frozen) holds only the commits in that call. Once it has waited
// CommitStuckAfter, the commits queued behind it go to the next member,
// and so do the client's later calls; with no CommitStuckAfter they wait.
func TestCommitsGoAroundAStuckCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
	}{
		{"around", 200 * time.Millisecond},
		{"no stuck-after", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frozen, good := startBatchMember(t, nil), startBatchMember(t, nil)
			hold := make(chan struct{})
			frozen.mu.Lock()
			frozen.hold = hold
			frozen.mu.Unlock()
			t.Cleanup(func() { close(hold) }) // before the members stop
			c, err := New([]string{frozen.addr, good.addr}, Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				ConnectTimeout: time.Second, CommitCalls: 1, CommitStuckAfter: tc.after})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			first := make(chan error, 1)
			go func() {
				_, err := c.CommitObject(ctxT(t, 30*time.Second), commitReq("first"))
				first <- err
			}()
			waitCalls(t, frozen, 1)

			if tc.after < 0 {
				_, err := c.CommitObject(ctxT(t, time.Second), commitReq("second"))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("second commit: %v; want it held behind the stuck call until its deadline", err)
				}
				if n := len(good.callKeys()); n != 0 {
					t.Fatalf("the other member got %d calls", n)
				}
				return
			}
			errs := commitAll(ctxT(t, 10*time.Second), c, []string{"second"})
			errs2 := commitAll(ctxT(t, 10*time.Second), c, []string{"third", "fourth"})
			for k, err := range errs {
				errs2[k] = err
			}
			for k, err := range errs2 {
				if err != nil {
					t.Fatalf("commit %s behind a stuck call: %v", k, err)
				}
			}
			var sent []string
			for _, call := range good.callKeys() {
				sent = append(sent, call...)
			}
			if got := slices.Sorted(slices.Values(sent)); !slices.Equal(got, []string{"fourth", "second", "third"}) {
				t.Fatalf("the other member got %v", got)
			}
			if c.Leader() != good.addr {
				t.Fatalf("the client goes to %s, want %s", c.Leader(), good.addr)
			}
			if n := len(frozen.callKeys()); n != 1 {
				t.Fatalf("the frozen member got %d calls, want only the stuck one", n)
			}
			select {
			case err := <-first:
				t.Fatalf("the stuck commit returned (%v) while its call was unanswered", err)
			default:
			}
		})
	}
}
