package metaclient

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// fakeMember is a metad stand-in whose answers a test programs.
type fakeMember struct {
	metadatapb.UnimplementedMetadataServer
	addr  string
	calls atomic.Int32
	// answer decides each call's error; nil answers success.
	answer func(n int32) error
	srv    *grpc.Server
}

// errHang, from an answer, makes the member hold the call until the
// caller gives up: a frozen process whose sockets stay open.
var errHang = errors.New("hang")

func (f *fakeMember) GetObject(ctx context.Context, _ *metadatapb.GetObjectRequest) (*metadatapb.GetObjectResponse, error) {
	n := f.calls.Add(1)
	if err := f.answer(n); errors.Is(err, errHang) {
		<-ctx.Done()
		return nil, ctx.Err()
	} else if err != nil {
		return nil, metaerr.ToStatus(err)
	}
	return &metadatapb.GetObjectResponse{Object: &metadatapb.Object{Key: f.addr}}, nil
}

func (f *fakeMember) CommitObject(ctx context.Context, _ *metadatapb.CommitObjectRequest) (*metadatapb.CommitObjectResponse, error) {
	n := f.calls.Add(1)
	if err := f.answer(n); errors.Is(err, errHang) {
		<-ctx.Done()
		return nil, ctx.Err()
	} else if err != nil {
		return nil, metaerr.ToStatus(err)
	}
	return &metadatapb.CommitObjectResponse{Object: &metadatapb.Object{Key: f.addr}}, nil
}

func startFake(t *testing.T, answer func(n int32) error) *fakeMember {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMember{addr: ln.Addr().String(), answer: answer, srv: grpc.NewServer()}
	metadatapb.RegisterMetadataServer(f.srv, f)
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(f.srv.Stop)
	return f
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ok(int32) error { return nil }

func newClient(t *testing.T, addrs ...string) *Client {
	t.Helper()
	c, err := New(addrs, Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestFollowsNotLeader(t *testing.T) {
	leader := startFake(t, ok)
	follower := startFake(t, func(int32) error { return &metaerr.NotLeaderError{LeaderAddr: leader.addr} })
	c := newClient(t, follower.addr)
	for _, call := range []struct {
		name string
		do   func() (string, error)
	}{
		{"read", func() (string, error) {
			r, err := c.GetObject(ctxT(t, 5*time.Second), &metadatapb.GetObjectRequest{})
			return r.GetObject().GetKey(), err
		}},
		{"mutation", func() (string, error) {
			r, err := c.CommitObject(ctxT(t, 5*time.Second), &metadatapb.CommitObjectRequest{})
			return r.GetObject().GetKey(), err
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			got, err := call.do()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if got != leader.addr {
				t.Fatalf("answered by %s, want the leader %s", got, leader.addr)
			}
			if c.Leader() != leader.addr {
				t.Fatalf("Leader() = %s, want %s", c.Leader(), leader.addr)
			}
		})
	}
	if n := follower.calls.Load(); n != 1 {
		t.Fatalf("follower got %d calls, want 1 (the client should remember the leader)", n)
	}
}

func TestSkipsDeadMember(t *testing.T) {
	live := startFake(t, ok)
	c := newClient(t, deadAddr(t), live.addr)
	r, err := c.CommitObject(ctxT(t, 5*time.Second), &metadatapb.CommitObjectRequest{})
	if err != nil {
		t.Fatalf("CommitObject: %v", err)
	}
	if r.GetObject().GetKey() != live.addr {
		t.Fatalf("answered by %s", r.GetObject().GetKey())
	}
}

func TestNotLeaderUnknownTriesNext(t *testing.T) {
	noLeader := startFake(t, func(int32) error { return &metaerr.NotLeaderError{} })
	live := startFake(t, ok)
	c := newClient(t, noLeader.addr, live.addr)
	if _, err := c.CommitObject(ctxT(t, 5*time.Second), &metadatapb.CommitObjectRequest{}); err != nil {
		t.Fatalf("CommitObject: %v", err)
	}
}

func TestElectionThenLeader(t *testing.T) {
	// The member answers "no leader" three times, as during an election,
	// then serves.
	m := startFake(t, func(n int32) error {
		if n <= 3 {
			return &metaerr.NotLeaderError{}
		}
		return nil
	})
	c := newClient(t, m.addr)
	if _, err := c.GetObject(ctxT(t, 5*time.Second), &metadatapb.GetObjectRequest{}); err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	if n := m.calls.Load(); n != 4 {
		t.Fatalf("%d calls, want 4", n)
	}
}

func TestAmbiguousMutationNotRetried(t *testing.T) {
	// Unavailable without a NotLeader reason stands for "sent, outcome
	// unknown" (a connection lost mid-call, leadership lost after
	// proposing): a mutation must come back to the caller, a read retries.
	unavailable := func(int32) error { return status.Error(codes.Unavailable, "leadership lost while committing") }
	bad := startFake(t, unavailable)
	good := startFake(t, ok)
	c := newClient(t, bad.addr, good.addr)
	_, err := c.CommitObject(ctxT(t, 5*time.Second), &metadatapb.CommitObjectRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("CommitObject error = %v, want Unavailable", err)
	}
	if n := good.calls.Load(); n != 0 {
		t.Fatalf("mutation was retried on another member (%d calls)", n)
	}
	if _, err := c.GetObject(ctxT(t, 5*time.Second), &metadatapb.GetObjectRequest{}); err != nil {
		t.Fatalf("GetObject should retry elsewhere: %v", err)
	}
}

func TestErrorsConverted(t *testing.T) {
	m := startFake(t, func(int32) error { return metaerr.Detailed(metaerr.ErrNoSuchKey, "b/k") })
	c := newClient(t, m.addr)
	_, err := c.GetObject(ctxT(t, 5*time.Second), &metadatapb.GetObjectRequest{})
	if !errors.Is(err, metaerr.ErrNoSuchKey) {
		t.Fatalf("error %v is not ErrNoSuchKey", err)
	}
	if n := m.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1 (conditions are not retried)", n)
	}
}

func TestContextEndsRetries(t *testing.T) {
	c := newClient(t, deadAddr(t), deadAddr(t))
	start := time.Now()
	_, err := c.GetObject(ctxT(t, 300*time.Millisecond), &metadatapb.GetObjectRequest{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v after a 300ms deadline", d)
	}
}

func TestClosed(t *testing.T) {
	m := startFake(t, ok)
	c := newClient(t, m.addr)
	c.Close()
	if _, err := c.GetObject(ctxT(t, time.Second), &metadatapb.GetObjectRequest{}); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestReadAttemptTimeout: a read the current member holds without an
// answer goes to the next member after the attempt timeout, and the
// client's later calls go there too; a mutation is never sent twice, and
// a negative timeout leaves reads unbounded.
func TestReadAttemptTimeout(t *testing.T) {
	hang := func(int32) error { return errHang }
	newClientT := func(t *testing.T, timeout time.Duration, addrs ...string) *Client {
		c, err := New(addrs, Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			ConnectTimeout: time.Second, ReadAttemptTimeout: timeout, CommitCalls: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("read moves on", func(t *testing.T) {
		frozen, good := startFake(t, hang), startFake(t, ok)
		c := newClientT(t, 200*time.Millisecond, frozen.addr, good.addr)
		r, err := c.GetObject(ctxT(t, 10*time.Second), &metadatapb.GetObjectRequest{})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		if got := r.GetObject().GetKey(); got != good.addr {
			t.Fatalf("answered by %s, want %s", got, good.addr)
		}
		if c.Leader() != good.addr {
			t.Fatalf("later calls go to %s, want %s", c.Leader(), good.addr)
		}
		if n := frozen.calls.Load(); n != 1 {
			t.Fatalf("the frozen member got %d calls, want 1", n)
		}
	})

	t.Run("mutation waits", func(t *testing.T) {
		frozen, good := startFake(t, hang), startFake(t, ok)
		c := newClientT(t, 100*time.Millisecond, frozen.addr, good.addr)
		_, err := c.CommitObject(ctxT(t, time.Second), &metadatapb.CommitObjectRequest{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CommitObject on a frozen member: %v; want the caller's deadline", err)
		}
		if n := good.calls.Load(); n != 0 {
			t.Fatalf("the mutation was sent again elsewhere (%d calls): its outcome was unknown", n)
		}
	})

	t.Run("unbounded", func(t *testing.T) {
		frozen, good := startFake(t, hang), startFake(t, ok)
		c := newClientT(t, -1, frozen.addr, good.addr)
		_, err := c.GetObject(ctxT(t, time.Second), &metadatapb.GetObjectRequest{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetObject with no attempt timeout: %v; want the caller's deadline", err)
		}
		if n := good.calls.Load(); n != 0 {
			t.Fatalf("the read went elsewhere (%d calls) with no attempt timeout", n)
		}
	})
}
