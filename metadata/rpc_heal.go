package metadata

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// The self-healing RPCs: blob nodes and gateways report, the leader
// schedules. All are served by the leader only.

// maxCheckChunks bounds one CheckChunks request.
const maxCheckChunks = 10_000

// maxTasksPerHeartbeat bounds the tasks one heartbeat answer carries.
const maxTasksPerHeartbeat = 256

func (a *api) ReportChunks(ctx context.Context, req *pb.ReportChunksRequest) (*pb.ReportChunksResponse, error) {
	if err := a.s.reportChunks(ctx, req.GetChunks(), req.GetReason(), req.GetReporter()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReportChunksResponse{}, nil
}

func (a *api) ReportTask(ctx context.Context, req *pb.ReportTaskRequest) (*pb.ReportTaskResponse, error) {
	if err := a.s.reportTask(ctx, req.GetResult()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ReportTaskResponse{}, nil
}

func (a *api) CheckChunks(ctx context.Context, req *pb.CheckChunksRequest) (*pb.CheckChunksResponse, error) {
	resp, err := a.s.checkChunks(ctx, req)
	return resp, toStatus(err)
}

func (a *api) HealthStatus(ctx context.Context, req *pb.HealthStatusRequest) (*pb.HealthStatusResponse, error) {
	if err := a.s.linearize(ctx); err != nil {
		return nil, toStatus(err)
	}
	h, err := a.s.currentHealer()
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := h.healthStatus(ctx, int(req.GetMaxLost()))
	return resp, toStatus(err)
}

// reportChunks commits chunks found bad (MarkChunks) and has the repair
// loop rescan.
func (s *Server) reportChunks(ctx context.Context, chunks []*pb.ChunkRef, reason, reporter string) error {
	if len(chunks) == 0 {
		return nil
	}
	for _, c := range chunks {
		if len(c.GetSegmentId()) == 0 || c.GetNodeId() == "" {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "report of a chunk without a segment id or node")
		}
	}
	if _, err := s.propose(ctx, &pb.Command{Op: &pb.Command_MarkChunks{MarkChunks: &pb.MarkChunks{
		Chunks: chunks, Reason: reason, Reporter: reporter,
	}}}); err != nil {
		return fmt.Errorf("mark %d chunks %s: %w", len(chunks), reason, err)
	}
	s.log.Info("chunks reported bad", "count", len(chunks), "reason", reason, "reporter", reporter)
	if h := s.heal.Load(); h != nil {
		h.wantScan()
	}
	return nil
}

// reportTask acts on a task result. The task id says what to do, so a
// result for a task this leader never handed out (a predecessor did) is
// handled the same way.
func (s *Server) reportTask(ctx context.Context, res *pb.TaskResult) error {
	ref, err := parseTaskID(res.GetTaskId())
	if err != nil {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "report task: %v", err)
	}
	if res.GetNodeId() != "" && res.GetNodeId() != ref.node {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "report task %s from node %q, handed to %q", res.GetTaskId(), res.GetNodeId(), ref.node)
	}
	h, err := s.currentHealer()
	if err != nil {
		return err
	}
	var errs []error
	if bad := res.GetBadSources(); len(bad) > 0 {
		if err := s.reportChunks(ctx, bad, "corrupt", ref.node); err != nil {
			errs = append(errs, err)
		}
	}
	_, known := h.tasks.take(res.GetTaskId())
	switch ref.kind {
	case kindRepair, kindMove:
		if err := h.placementResult(ctx, ref, res); err != nil {
			errs = append(errs, err)
		}
	case kindDelete:
		h.deleteResult(ref, res)
	}
	if !known {
		s.log.Debug("result of a task this leader did not hand out", "task", res.GetTaskId(), "node", ref.node, "ok", res.GetOk())
	}
	return errors.Join(errs...)
}

// checkChunks answers which chunks are referenced: placed there by their
// segment, or being written there by an outstanding repair or move.
func (s *Server) checkChunks(ctx context.Context, req *pb.CheckChunksRequest) (*pb.CheckChunksResponse, error) {
	if len(req.GetChunks()) > maxCheckChunks {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "check chunks: %d chunks, at most %d per call", len(req.GetChunks()), maxCheckChunks)
	}
	if err := s.linearize(ctx); err != nil {
		return nil, err
	}
	h, err := s.currentHealer()
	if err != nil {
		return nil, err
	}
	resp := &pb.CheckChunksResponse{Referenced: make([]bool, len(req.GetChunks()))}
	for i, c := range req.GetChunks() {
		node := c.GetNodeId()
		if node == "" {
			node = req.GetNodeId()
		}
		if h.tasks.isWriting(c.GetSegmentId(), c.GetShard(), node) {
			resp.Referenced[i] = true
			continue
		}
		info, err := s.state.Segment(c.GetSegmentId())
		if errors.Is(err, metaerr.ErrNoSuchKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("check chunk %x.%d: %w", c.GetSegmentId(), c.GetShard(), err)
		}
		nodes := info.Segment.GetNodes()
		resp.Referenced[i] = int(c.GetShard()) < len(nodes) && nodes[c.GetShard()] == node
	}
	return resp, nil
}

// healOnHeartbeat is the heartbeat's part in self-healing: it brings a
// SUSPECT or DOWN node back up (revived) and returns the node's tasks.
func (s *Server) healOnHeartbeat(ctx context.Context, n *pb.Node) (tasks []*pb.Task, revived bool) {
	h := s.heal.Load()
	revived = s.heartbeatRevives(ctx, n)
	if h == nil {
		return nil, revived
	}
	if revived {
		h.wantScan()
	}
	return h.tasks.forNode(n.GetId(), maxTasksPerHeartbeat), revived
}
