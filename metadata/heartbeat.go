package metadata

import (
	"context"
	"sync"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Blob nodes heartbeat the leader every few seconds. The leader keeps the
// latest of each in memory and commits only what other members must agree
// on: a node's usage, when it moved by more than usageBand of its capacity
// since the value in the replicated state (or capacity changed). A new
// leader starts with an empty table; nodes reappear at their next
// heartbeat.

// usageBand: a committed usage is at most this fraction of capacity stale.
const usageBand = 0.01

type heartbeat struct {
	at                     time.Time
	capacity, used, chunks int64
}

// heartbeats is the leader's table of the latest heartbeat per blob node.
type heartbeats struct {
	mu    sync.Mutex
	nodes map[string]heartbeat
}

func (h *heartbeats) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes = nil
}

func (h *heartbeats) record(req *pb.HeartbeatRequest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nodes == nil {
		h.nodes = make(map[string]heartbeat)
	}
	h.nodes[req.GetId()] = heartbeat{at: time.Now(), capacity: req.GetCapacityBytes(), used: req.GetUsedBytes(), chunks: req.GetChunkCount()}
}

// overlay fills cm's nodes with what the latest heartbeats say.
func (h *heartbeats) overlay(cm *pb.ClusterMap) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range cm.GetNodes() {
		if hb, ok := h.nodes[n.GetId()]; ok {
			n.LastHeartbeatUnixNano = hb.at.UnixNano()
			n.UsedBytes = hb.used
			n.ChunkCount = hb.chunks
		}
	}
}

// usageMoved reports whether a heartbeat differs enough from the recorded
// node to be worth a commit.
func usageMoved(n *pb.Node, req *pb.HeartbeatRequest) bool {
	if n.GetCapacityBytes() != req.GetCapacityBytes() {
		return true
	}
	diff := n.GetUsedBytes() - req.GetUsedBytes()
	if diff < 0 {
		diff = -diff
	}
	return float64(diff) > usageBand*float64(req.GetCapacityBytes())
}

func (s *Server) heartbeat(ctx context.Context, req *pb.HeartbeatRequest) (*pb.HeartbeatResponse, error) {
	// Linearizable so that a node registered a moment ago is found, and
	// so that only the true leader records heartbeats.
	if err := s.linearize(ctx); err != nil {
		return nil, err
	}
	cm, err := s.state.ClusterMap()
	if err != nil {
		return nil, err
	}
	var node *pb.Node
	for _, n := range cm.GetNodes() {
		if n.GetId() == req.GetId() {
			node = n
			break
		}
	}
	if node == nil {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchNode, "heartbeat from unregistered blob node %q", req.GetId())
	}
	s.hb.record(req)
	// Self-healing (rpc_heal.go): a returning node comes back up; the
	// answer carries the node's tasks.
	tasks, changed := s.healOnHeartbeat(ctx, node)
	if usageMoved(node, req) {
		_, err = s.propose(ctx, &pb.Command{Op: &pb.Command_SetNodeUsage{SetNodeUsage: &pb.SetNodeUsage{
			Id: req.GetId(), CapacityBytes: req.GetCapacityBytes(), UsedBytes: req.GetUsedBytes(),
		}}})
		if err != nil {
			return nil, err
		}
		s.metrics.usageCommits.Inc()
		changed = true
	}
	if changed {
		if cm, err = s.state.ClusterMap(); err != nil {
			return nil, err
		}
	}
	return &pb.HeartbeatResponse{Epoch: cm.GetEpoch(), Tasks: tasks}, nil
}
