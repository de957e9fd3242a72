// Package blobreg connects a blob node to the metadata service: it
// implements blob.Registrar over the metadata gRPC API (registration,
// heartbeats and the tasks they bring, task results, bad chunk reports,
// orphan checks), converting between the API's messages and package blob's
// plain types, so that package blob stays free of metadata imports and the
// daemon, `cairn dev` and the test cluster share one adapter.
package blobreg

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/blob"
	"github.com/cairnstore/cairn/chunk"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Registrar registers a blob node with metad and sends its heartbeats.
type Registrar struct {
	meta pb.MetadataClient
	id   string
}

var _ blob.Registrar = (*Registrar)(nil)

// New returns the Registrar of blob node id over meta (a metaclient.Client,
// which follows the leader).
func New(meta pb.MetadataClient, id string) *Registrar { return &Registrar{meta: meta, id: id} }

// Register records the node in the cluster map.
func (r *Registrar) Register(ctx context.Context, n blob.NodeInfo) error {
	_, err := r.meta.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.Node{
		Id:            n.ID,
		Address:       n.Addr,
		Zone:          n.Zone,
		Rack:          n.Rack,
		CapacityBytes: n.Usage.Capacity,
		UsedBytes:     n.Usage.Used,
		ChunkCount:    n.Usage.Chunks,
	}})
	if err != nil {
		return fmt.Errorf("register blob node %s: %w", n.ID, err)
	}
	return nil
}

// Heartbeat reports usage and returns the tasks metad hands the node; an
// unknown node error makes the node register again.
func (r *Registrar) Heartbeat(ctx context.Context, u blob.Usage) ([]blob.Task, error) {
	resp, err := r.meta.Heartbeat(ctx, &pb.HeartbeatRequest{
		Id: r.id, CapacityBytes: u.Capacity, UsedBytes: u.Used, ChunkCount: u.Chunks,
	})
	if errors.Is(err, metaerr.ErrNoSuchNode) {
		return nil, fmt.Errorf("heartbeat of %s: %w (%w)", r.id, blob.ErrUnknownNode, err)
	}
	if err != nil {
		return nil, fmt.Errorf("heartbeat of %s: %w", r.id, err)
	}
	if len(resp.GetTasks()) == 0 {
		return nil, nil
	}
	tasks := make([]blob.Task, len(resp.GetTasks()))
	for i, t := range resp.GetTasks() {
		tasks[i] = Task(t)
	}
	return tasks, nil
}

// ReportTask sends a task's result.
func (r *Registrar) ReportTask(ctx context.Context, res blob.TaskResult) error {
	_, err := r.meta.ReportTask(ctx, &pb.ReportTaskRequest{Result: TaskResult(res, r.id)})
	if err != nil {
		return fmt.Errorf("report task %s of %s: %w", res.TaskID, r.id, err)
	}
	return nil
}

// ReportChunks reports bad chunks, with this node as the reporter.
func (r *Registrar) ReportChunks(ctx context.Context, reason string, chunks []blob.ChunkRef) error {
	refs := make([]*pb.ChunkRef, len(chunks))
	for i, c := range chunks {
		refs[i] = chunkRef(c.ID, c.NodeID)
	}
	_, err := r.meta.ReportChunks(ctx, &pb.ReportChunksRequest{Chunks: refs, Reason: reason, Reporter: r.id})
	if err != nil {
		return fmt.Errorf("report %d %s chunks from %s: %w", len(chunks), reason, r.id, err)
	}
	return nil
}

// CheckChunks asks which of this node's chunks metadata references. An
// answer that does not match the question is an error: the caller deletes
// on a positive "unreferenced" only.
func (r *Registrar) CheckChunks(ctx context.Context, ids []chunk.ID) ([]bool, error) {
	refs := make([]*pb.ChunkRef, len(ids))
	for i, id := range ids {
		refs[i] = chunkRef(id, r.id)
	}
	resp, err := r.meta.CheckChunks(ctx, &pb.CheckChunksRequest{NodeId: r.id, Chunks: refs})
	if err != nil {
		return nil, fmt.Errorf("check %d chunks of %s: %w", len(ids), r.id, err)
	}
	if got := len(resp.GetReferenced()); got != len(ids) {
		return nil, fmt.Errorf("check %d chunks of %s: %d answers", len(ids), r.id, got)
	}
	return resp.GetReferenced(), nil
}

func chunkRef(id chunk.ID, node string) *pb.ChunkRef {
	return &pb.ChunkRef{SegmentId: id.Segment[:], Shard: uint32(id.Shard), NodeId: node}
}

// Task converts a task from metad. One that cannot be converted (a
// malformed segment, an unknown kind) comes back as blob.TaskInvalid with
// the reason, so the node reports it failed instead of dropping it.
func Task(t *pb.Task) blob.Task {
	out := blob.Task{ID: t.GetId()}
	var err error
	switch k := t.GetKind().(type) {
	case *pb.Task_Repair:
		out.Kind = blob.TaskRepair
		out.Repair.Segment, err = segment(k.Repair.GetSegment())
		for _, s := range k.Repair.GetShards() {
			out.Repair.Shards = append(out.Repair.Shards, int(s))
		}
		for _, p := range k.Repair.GetSources() {
			out.Repair.Sources = append(out.Repair.Sources, peer(p))
		}
	case *pb.Task_Move:
		out.Kind = blob.TaskMove
		out.Move.Segment, err = segment(k.Move.GetSegment())
		out.Move.Shard = int(k.Move.GetShard())
		out.Move.Source = peer(k.Move.GetSource())
	case *pb.Task_Delete:
		out.Kind = blob.TaskDelete
		for _, c := range k.Delete.GetChunks() {
			id, cerr := chunkID(c)
			if cerr != nil {
				err = cerr
				break
			}
			out.Delete.Chunks = append(out.Delete.Chunks, id)
		}
	default:
		err = fmt.Errorf("unknown task kind %T", k)
	}
	if err != nil {
		return blob.Task{ID: t.GetId(), Kind: blob.TaskInvalid, Invalid: err.Error()}
	}
	return out
}

func segment(s *pb.Segment) (blob.Segment, error) {
	if s == nil {
		return blob.Segment{}, errors.New("no segment")
	}
	id, err := chunk.SegmentIDFromBytes(s.GetId())
	if err != nil {
		return blob.Segment{}, err
	}
	p := chunk.Params{
		Scheme:    chunk.Scheme{K: int(s.GetScheme().GetK()), M: int(s.GetScheme().GetM())},
		BlockSize: int(s.GetBlockSize()),
	}
	if err := p.Validate(); err != nil {
		return blob.Segment{}, fmt.Errorf("segment %s: %w", id, err)
	}
	return blob.Segment{ID: id, Params: p, Size: s.GetSize()}, nil
}

func peer(p *pb.PeerChunk) blob.Peer {
	return blob.Peer{Shard: int(p.GetShard()), NodeID: p.GetNodeId(), Addr: p.GetAddress()}
}

func chunkID(c *pb.ChunkRef) (chunk.ID, error) {
	seg, err := chunk.SegmentIDFromBytes(c.GetSegmentId())
	if err != nil {
		return chunk.ID{}, err
	}
	if c.GetShard() >= chunk.MaxShards {
		return chunk.ID{}, fmt.Errorf("chunk of segment %s: shard %d: %w", seg, c.GetShard(), chunk.ErrBadID)
	}
	return chunk.ID{Segment: seg, Shard: int(c.GetShard())}, nil
}

// TaskResult converts a task's result for metad, from node.
func TaskResult(res blob.TaskResult, node string) *pb.TaskResult {
	out := &pb.TaskResult{TaskId: res.TaskID, NodeId: node, Ok: res.OK, Error: res.Error}
	for _, s := range res.ShardsDone {
		out.ShardsDone = append(out.ShardsDone, uint32(s))
	}
	for _, b := range res.BadSources {
		out.BadSources = append(out.BadSources, chunkRef(b.ID, b.NodeID))
	}
	return out
}
