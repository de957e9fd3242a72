package metadata

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

func newTestFSM(t *testing.T) *fsm {
	t.Helper()
	st, err := OpenState(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newFSM(st)
}

func cmdLog(t *testing.T, index uint64, cmd *pb.Command) *raft.Log {
	t.Helper()
	b, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

func bucketCmd(name string) *pb.Command {
	return &pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: &pb.CreateBucketRequest{Name: name}}}
}

func TestFSMApplyBatch(t *testing.T) {
	f := newTestFSM(t)
	logs := []*raft.Log{
		cmdLog(t, 1, bucketCmd("a")),
		{Index: 2, Term: 1, Type: raft.LogConfiguration, Data: []byte("raft's own")},
		cmdLog(t, 3, bucketCmd("a")), // refused: already exists
		cmdLog(t, 4, bucketCmd("b")),
	}
	out := f.ApplyBatch(logs)
	if len(out) != len(logs) {
		t.Fatalf("%d responses for %d logs", len(out), len(logs))
	}
	if r, ok := out[0].(Result); !ok || r.Err != nil || r.Resp.(*pb.CreateBucketResponse).GetBucket().GetName() != "a" {
		t.Fatalf("response 0 = %#v", out[0])
	}
	if out[1] != nil {
		t.Fatalf("configuration entry got response %#v, want nil", out[1])
	}
	if r := out[2].(Result); !errors.Is(r.Err, metaerr.ErrBucketAlreadyOwnedByYou) && !errors.Is(r.Err, metaerr.ErrBucketAlreadyExists) {
		t.Fatalf("response 2 = %#v, want bucket exists", r)
	}
	if got := f.seen.Load(); got != 4 {
		t.Fatalf("seen = %d, want 4", got)
	}
	if got := f.state.AppliedIndex(); got != 4 {
		t.Fatalf("state applied index = %d, want 4", got)
	}

	// Replay after a restart: the same entries again are skipped, not
	// applied twice.
	out = f.ApplyBatch(logs)
	if r := out[3].(Result); !r.Skipped {
		t.Fatalf("replayed entry not skipped: %#v", r)
	}
}

func TestFSMPanicsOnUndecodableEntry(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}},
		{"no operation", nil},
		{"unknown operation from a newer version", protowireField(999)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFSM(t)
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("ApplyBatch did not panic")
				}
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

// protowireField encodes one varint field with the given number.
func protowireField(num int) []byte {
	key := uint64(num) << 3 // wire type 0: varint
	var b []byte
	for key >= 0x80 {
		b = append(b, byte(key)|0x80)
		key >>= 7
	}
	return append(b, byte(key), 1)
}

type memSink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *memSink) ID() string    { return "test" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	src := newTestFSM(t)
	src.ApplyBatch([]*raft.Log{cmdLog(t, 1, bucketCmd("a")), cmdLog(t, 2, bucketCmd("b"))})
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed || sink.cancelled {
		t.Fatalf("Persist: %v (closed %v, cancelled %v)", err, sink.closed, sink.cancelled)
	}
	snap.Release()

	dst := newTestFSM(t)
	dst.ApplyBatch([]*raft.Log{cmdLog(t, 1, bucketCmd("old"))})
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.seen.Load() != 2 || dst.state.AppliedIndex() != 2 {
		t.Fatalf("after restore seen %d, applied %d; want 2", dst.seen.Load(), dst.state.AppliedIndex())
	}
	resp, err := dst.state.ListBuckets(&pb.ListBucketsRequest{})
	if err != nil || len(resp.GetBuckets()) != 2 || resp.GetBuckets()[0].GetName() != "a" {
		t.Fatalf("buckets after restore = %v, %v", resp, err)
	}
}
