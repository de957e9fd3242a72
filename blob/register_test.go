package blob

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// fakeRegistrar records calls and fails as programmed.
type fakeRegistrar struct {
	mu            sync.Mutex
	registerFails int  // fail this many Register calls first
	unknownOnce   bool // answer the first Heartbeat with ErrUnknownNode
	registers     chan NodeInfo
	heartbeats    chan Usage
}

func newFakeRegistrar() *fakeRegistrar {
	return &fakeRegistrar{registers: make(chan NodeInfo, 100), heartbeats: make(chan Usage, 1000)}
}

func (f *fakeRegistrar) Register(ctx context.Context, n NodeInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registerFails > 0 {
		f.registerFails--
		return errors.New("metad unavailable")
	}
	f.registers <- n
	return nil
}

func (f *fakeRegistrar) Heartbeat(ctx context.Context, u Usage) ([]Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unknownOnce {
		f.unknownOnce = false
		return nil, ErrUnknownNode
	}
	select {
	case f.heartbeats <- u:
	default: // the test stopped looking
	}
	return nil, nil
}

func (f *fakeRegistrar) ReportTask(context.Context, TaskResult) error { return nil }

func (f *fakeRegistrar) ReportChunks(context.Context, string, []ChunkRef) error { return nil }

func (f *fakeRegistrar) CheckChunks(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	return nil, errors.New("not implemented by this fake")
}

func TestRegisterAndHeartbeat(t *testing.T) {
	reg := newFakeRegistrar()
	reg.registerFails = 2
	reg.unknownOnce = true
	n := startNode(t, Config{ID: "b9", Zone: "z1", Rack: "r1", Capacity: 1 << 30,
		Registrar: reg, HeartbeatInterval: 5 * time.Millisecond})

	// Registered after two failures, with what the node is.
	info := await(t, reg.registers, "registration")
	if info.ID != "b9" || info.Addr != n.Addr() || info.Zone != "z1" || info.Rack != "r1" || info.Usage.Capacity != 1<<30 {
		t.Fatalf("registered %+v (node listens on %s)", info, n.Addr())
	}
	// The first heartbeat is refused as unknown: the node registers again.
	await(t, reg.registers, "registration after ErrUnknownNode")
	await(t, reg.heartbeats, "first heartbeat")

	// Heartbeats follow usage.
	id := randomID(t, 0)
	c := makeChunk(t, id, 1000)
	if err := n.client.Put(context.Background(), n.Addr(), id, bytes.NewReader(c), int64(len(c))); err != nil {
		t.Fatal(err)
	}
	for {
		u := await(t, reg.heartbeats, "a heartbeat with the new chunk")
		if u.Chunks == 1 && u.Used == int64(len(c)) && u.Capacity == 1<<30 {
			break
		}
	}
}

// Without a Registrar the node just serves.
func TestNoRegistrar(t *testing.T) {
	n := startNode(t, Config{})
	if _, _, err := n.client.List(context.Background(), n.Addr(), "", 1); err != nil {
		t.Fatalf("List: %v", err)
	}
}
