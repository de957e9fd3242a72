package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/gateway/sigv4"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// keyMeta answers GetAccessKey from a map, counting the calls; when
// release is set, a call says so on started and waits for release.
type keyMeta struct {
	mu      sync.Mutex
	keys    map[string]*pb.AccessKey
	err     error
	calls   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (m *keyMeta) GetAccessKey(ctx context.Context, in *pb.GetAccessKeyRequest, _ ...grpc.CallOption) (*pb.GetAccessKeyResponse, error) {
	m.calls.Add(1)
	if m.release != nil {
		select {
		case m.started <- struct{}{}:
		default:
		}
		<-m.release
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	k, ok := m.keys[in.GetId()]
	if !ok {
		return nil, metaerr.ToStatus(metaerr.ErrNoSuchAccessKey)
	}
	return &pb.GetAccessKeyResponse{Key: k}, nil
}

// TestKeyring: the root key never asks metad; stored keys are read once
// per key TTL (unknown ones once per unknownKeyTTL), concurrent lookups
// share a read, a failed read is not remembered, and a metad without
// access keys (Unimplemented) has none.
func TestKeyring(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	m := &keyMeta{keys: map[string]*pb.AccessKey{"APPKEY": {Id: "APPKEY", Secret: "app-secret"}}}
	kr := newKeyring(Credentials{AccessKey: "ROOT", SecretKey: "root-secret"}, m, DefaultAccessKeyTTL, clock)

	secret := func(id string) (string, error) { return kr.Secret(ctx, id) }
	if s, err := secret("ROOT"); err != nil || s != "root-secret" || m.calls.Load() != 0 {
		t.Fatalf("root: %q, %v after %d metad calls", s, err, m.calls.Load())
	}
	for i := 0; i < 3; i++ {
		if s, err := secret("APPKEY"); err != nil || s != "app-secret" {
			t.Fatalf("stored key: %q, %v", s, err)
		}
	}
	if n := m.calls.Load(); n != 1 {
		t.Fatalf("3 lookups within the key TTL made %d metad calls, want 1", n)
	}
	now = now.Add(DefaultAccessKeyTTL)
	if _, err := secret("APPKEY"); err != nil || m.calls.Load() != 2 {
		t.Fatalf("after the key TTL: %v, %d calls, want a second read", err, m.calls.Load())
	}

	if _, err := secret("NOKEY"); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	m.mu.Lock()
	m.keys["NOKEY"] = &pb.AccessKey{Id: "NOKEY", Secret: "new-secret"}
	m.mu.Unlock()
	if _, err := secret("NOKEY"); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("unknown key within unknownKeyTTL: %v, want the remembered answer", err)
	}
	now = now.Add(unknownKeyTTL)
	if s, err := secret("NOKEY"); err != nil || s != "new-secret" {
		t.Fatalf("a key created since: %q, %v", s, err)
	}

	// A failed read is an error, not "unknown", and is not remembered.
	m.err = status.Error(codes.Unavailable, "no leader")
	if _, err := secret("OTHER"); err == nil || errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("metad unavailable: %v, want an error other than unknown", err)
	}
	m.err = nil
	m.keys["OTHER"] = &pb.AccessKey{Id: "OTHER", Secret: "other-secret"}
	if s, err := secret("OTHER"); err != nil || s != "other-secret" {
		t.Fatalf("after metad came back: %q, %v", s, err)
	}
	m.err = status.Error(codes.Unimplemented, "unknown method GetAccessKey")
	if _, err := secret("OLDMETAD"); !errors.Is(err, sigv4.ErrUnknownKey) {
		t.Fatalf("a metad without access keys: %v, want unknown", err)
	}
	m.err = nil

	// Concurrent lookups of one key share one read.
	m.started, m.release = make(chan struct{}, 1), make(chan struct{})
	before := m.calls.Load()
	now = now.Add(DefaultAccessKeyTTL)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := secret("APPKEY"); err != nil {
				t.Error(err)
			}
		}()
	}
	<-m.started
	close(m.release)
	wg.Wait()
	if n := m.calls.Load() - before; n != 1 {
		t.Fatalf("8 concurrent lookups made %d metad calls, want 1", n)
	}
}
