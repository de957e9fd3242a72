package blobreg

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// fakeMeta answers the calls the registrar makes; the rest of the
// interface is left nil (a call to it panics).
type fakeMeta struct {
	pb.MetadataClient
	hbResp  *pb.HeartbeatResponse
	hbErr   error
	task    *pb.ReportTaskRequest
	chunks  *pb.ReportChunksRequest
	check   *pb.CheckChunksRequest
	answers []bool
}

func (f *fakeMeta) Heartbeat(ctx context.Context, in *pb.HeartbeatRequest, _ ...grpc.CallOption) (*pb.HeartbeatResponse, error) {
	return f.hbResp, f.hbErr
}

func (f *fakeMeta) ReportTask(ctx context.Context, in *pb.ReportTaskRequest, _ ...grpc.CallOption) (*pb.ReportTaskResponse, error) {
	f.task = in
	return &pb.ReportTaskResponse{}, nil
}

func (f *fakeMeta) ReportChunks(ctx context.Context, in *pb.ReportChunksRequest, _ ...grpc.CallOption) (*pb.ReportChunksResponse, error) {
	f.chunks = in
	return &pb.ReportChunksResponse{}, nil
}

func (f *fakeMeta) CheckChunks(ctx context.Context, in *pb.CheckChunksRequest, _ ...grpc.CallOption) (*pb.CheckChunksResponse, error) {
	f.check = in
	return &pb.CheckChunksResponse{Referenced: f.answers}, nil
}

var (
	seg    = chunk.SegmentID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	pbSeg  = &pb.Segment{Id: seg[:], Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 4096, Size: 100000, Nodes: []string{"a", "", "c", "d", "e", "f"}}
	params = chunk.Params{Scheme: chunk.Scheme{K: 4, M: 2}, BlockSize: 4096}
)

func TestTaskConversion(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *pb.Task
		want blob.Task
	}{
		{"repair", &pb.Task{Id: "r1", Kind: &pb.Task_Repair{Repair: &pb.RepairTask{
			Segment: pbSeg, Shards: []uint32{1, 5},
			Sources: []*pb.PeerChunk{{Shard: 0, NodeId: "a", Address: "h:1"}, {Shard: 2, NodeId: "c", Address: "h:3"}},
		}}}, blob.Task{ID: "r1", Kind: blob.TaskRepair, Repair: blob.RepairTask{
			Segment: blob.Segment{ID: seg, Params: params, Size: 100000}, Shards: []int{1, 5},
			Sources: []blob.Peer{{Shard: 0, NodeID: "a", Addr: "h:1"}, {Shard: 2, NodeID: "c", Addr: "h:3"}},
		}}},
		{"move", &pb.Task{Id: "m1", Kind: &pb.Task_Move{Move: &pb.MoveTask{
			Segment: pbSeg, Shard: 3, Source: &pb.PeerChunk{Shard: 3, NodeId: "d", Address: "h:4"},
		}}}, blob.Task{ID: "m1", Kind: blob.TaskMove, Move: blob.MoveTask{
			Segment: blob.Segment{ID: seg, Params: params, Size: 100000}, Shard: 3, Source: blob.Peer{Shard: 3, NodeID: "d", Addr: "h:4"},
		}}},
		{"delete", &pb.Task{Id: "d1", Kind: &pb.Task_Delete{Delete: &pb.DeleteTask{
			Chunks: []*pb.ChunkRef{{SegmentId: seg[:], Shard: 2, NodeId: "n"}, {SegmentId: seg[:], Shard: 23}},
		}}}, blob.Task{ID: "d1", Kind: blob.TaskDelete, Delete: blob.DeleteTask{Chunks: []chunk.ID{{Segment: seg, Shard: 2}, {Segment: seg, Shard: 23}}}}},
		{"no kind", &pb.Task{Id: "x"}, blob.Task{ID: "x", Kind: blob.TaskInvalid}},
		{"short segment id", &pb.Task{Id: "x", Kind: &pb.Task_Move{Move: &pb.MoveTask{Segment: &pb.Segment{Id: []byte{1}, Scheme: &pb.Scheme{K: 4, M: 2}, BlockSize: 4096}}}},
			blob.Task{ID: "x", Kind: blob.TaskInvalid}},
		{"no segment", &pb.Task{Id: "x", Kind: &pb.Task_Repair{Repair: &pb.RepairTask{Shards: []uint32{1}}}}, blob.Task{ID: "x", Kind: blob.TaskInvalid}},
		{"bad scheme", &pb.Task{Id: "x", Kind: &pb.Task_Repair{Repair: &pb.RepairTask{Segment: &pb.Segment{Id: seg[:], Scheme: &pb.Scheme{K: 0, M: 2}, BlockSize: 4096}}}},
			blob.Task{ID: "x", Kind: blob.TaskInvalid}},
		{"shard out of range", &pb.Task{Id: "x", Kind: &pb.Task_Delete{Delete: &pb.DeleteTask{Chunks: []*pb.ChunkRef{{SegmentId: seg[:], Shard: 24}}}}},
			blob.Task{ID: "x", Kind: blob.TaskInvalid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Task(tc.in)
			if tc.want.Kind == blob.TaskInvalid {
				if got.Kind != blob.TaskInvalid || got.ID != tc.want.ID || got.Invalid == "" {
					t.Fatalf("got %+v, want an invalid task with a reason", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestHeartbeatReturnsTasks(t *testing.T) {
	f := &fakeMeta{hbResp: &pb.HeartbeatResponse{Tasks: []*pb.Task{
		{Id: "d1", Kind: &pb.Task_Delete{Delete: &pb.DeleteTask{Chunks: []*pb.ChunkRef{{SegmentId: seg[:], Shard: 1}}}}},
		{Id: "bad"},
	}}}
	r := New(f, "b1")
	tasks, err := r.Heartbeat(context.Background(), blob.Usage{})
	if err != nil || len(tasks) != 2 || tasks[0].Kind != blob.TaskDelete || tasks[1].Kind != blob.TaskInvalid {
		t.Fatalf("tasks %+v, %v", tasks, err)
	}
	f.hbErr = metaerr.ErrNoSuchNode
	if _, err := r.Heartbeat(context.Background(), blob.Usage{}); !errors.Is(err, blob.ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
}

func TestReports(t *testing.T) {
	f := &fakeMeta{}
	r := New(f, "b1")
	other := chunk.ID{Segment: seg, Shard: 4}
	err := r.ReportTask(context.Background(), blob.TaskResult{TaskID: "t", OK: false, Error: "boom", ShardsDone: []int{1},
		BadSources: []blob.ChunkRef{{ID: other, NodeID: "b7"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.TaskResult{TaskId: "t", NodeId: "b1", Error: "boom", ShardsDone: []uint32{1},
		BadSources: []*pb.ChunkRef{{SegmentId: seg[:], Shard: 4, NodeId: "b7"}}}
	if !proto.Equal(f.task.GetResult(), want) {
		t.Errorf("ReportTask sent %v, want %v", f.task.GetResult(), want)
	}

	if err := r.ReportChunks(context.Background(), blob.ReasonCorrupt, []blob.ChunkRef{{ID: other, NodeID: "b1"}}); err != nil {
		t.Fatal(err)
	}
	wantChunks := &pb.ReportChunksRequest{Chunks: []*pb.ChunkRef{{SegmentId: seg[:], Shard: 4, NodeId: "b1"}}, Reason: "corrupt", Reporter: "b1"}
	if !proto.Equal(f.chunks, wantChunks) {
		t.Errorf("ReportChunks sent %v", f.chunks)
	}

	f.answers = []bool{true, false}
	got, err := r.CheckChunks(context.Background(), []chunk.ID{other, {Segment: seg, Shard: 0}})
	if err != nil || !reflect.DeepEqual(got, []bool{true, false}) {
		t.Fatalf("CheckChunks: %v, %v", got, err)
	}
	if f.check.GetNodeId() != "b1" || len(f.check.GetChunks()) != 2 || f.check.GetChunks()[1].GetNodeId() != "b1" {
		t.Errorf("CheckChunks sent %v", f.check)
	}
	// An answer of the wrong length is an error, never a guess.
	f.answers = []bool{false}
	if _, err := r.CheckChunks(context.Background(), []chunk.ID{other, other}); err == nil {
		t.Fatal("CheckChunks accepted 1 answer for 2 chunks")
	}
}
