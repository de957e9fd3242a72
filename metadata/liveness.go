package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Liveness. The leader holds blob nodes' heartbeats in memory
// (heartbeat.go); a node silent for Heal.NodeSuspectAfter is committed
// SUSPECT, then after Heal.NodeDownAfter DOWN (SetNodeState, which bumps
// the cluster map epoch). A heartbeat from a SUSPECT or DOWN node commits
// it UP again. DRAINING and DECOMMISSIONED nodes are left alone: an
// operator put them there (a silent draining node's chunks are the
// balancer's to move; see the report of issue 4).
//
// A new leader has heard nobody yet: it counts a node's silence from the
// start of its own term, so a leader change costs a node at most one
// NodeSuspectAfter of extra grace and never marks a live node down. Only a
// heartbeat heard in this term brings a node back up.

// livenessNext is the state a node in state cur should be committed to.
// heard says whether this leader has had a heartbeat from it; silent is
// the time since that heartbeat (or since the term began, if none).
func livenessNext(cur pb.NodeState, heard bool, silent time.Duration, c HealConfig) pb.NodeState {
	switch cur {
	case pb.NodeState_NODE_STATE_UP:
		if silent >= c.NodeSuspectAfter {
			return pb.NodeState_NODE_STATE_SUSPECT
		}
	case pb.NodeState_NODE_STATE_SUSPECT:
		switch {
		case heard && silent < c.NodeSuspectAfter:
			return pb.NodeState_NODE_STATE_UP
		case silent >= c.NodeDownAfter:
			return pb.NodeState_NODE_STATE_DOWN
		}
	case pb.NodeState_NODE_STATE_DOWN:
		if heard && silent < c.NodeSuspectAfter {
			return pb.NodeState_NODE_STATE_UP
		}
	}
	return cur
}

// lastSeen returns when the node last heartbeated this leader, if it has.
func (h *heartbeats) lastSeen(id string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hb, ok := h.nodes[id]
	return hb.at, ok
}

// livenessTick is how often the leader checks for silent nodes.
func livenessTick(c HealConfig) time.Duration {
	return min(max(c.NodeSuspectAfter/4, 5*time.Millisecond), time.Second)
}

// livenessLoop commits node state changes until ctx ends. termStart is
// when this leader's term began serving; onDown is called (without locks)
// for each node committed DOWN.
func (s *Server) livenessLoop(ctx context.Context, termStart time.Time, onChange func(id string, st pb.NodeState)) {
	tick := time.NewTicker(livenessTick(s.cfg.Heal))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.livenessPass(ctx, termStart, time.Now(), onChange); err != nil && ctx.Err() == nil {
			s.log.Warn("liveness pass", "err", err)
		}
	}
}

// livenessPass compares every node's silence with its committed state and
// commits the changes due. It goes on past a failed commit (the next pass
// retries it).
func (s *Server) livenessPass(ctx context.Context, termStart, now time.Time, onChange func(string, pb.NodeState)) error {
	cm, err := s.state.ClusterMap()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range cm.GetNodes() {
		at, heard := s.hb.lastSeen(n.GetId())
		if !heard || at.Before(termStart) {
			at = termStart
		}
		next := livenessNext(n.GetState(), heard, now.Sub(at), s.cfg.Heal)
		if next == n.GetState() {
			continue
		}
		reason := fmt.Sprintf("no heartbeat for %v", now.Sub(at).Round(time.Millisecond))
		if next == pb.NodeState_NODE_STATE_UP {
			reason = "heartbeat resumed"
		}
		if err := s.commitNodeState(ctx, n.GetId(), n.GetState(), next, reason); err != nil {
			errs = append(errs, err)
			continue
		}
		if onChange != nil {
			onChange(n.GetId(), next)
		}
	}
	return errors.Join(errs...)
}

// commitNodeState commits a liveness transition of node id.
func (s *Server) commitNodeState(ctx context.Context, id string, from, to pb.NodeState, reason string) error {
	_, err := s.propose(ctx, &pb.Command{Op: &pb.Command_SetNodeState{SetNodeState: &pb.SetNodeState{
		Id: id, State: to, Reason: reason,
	}}})
	if err != nil {
		return fmt.Errorf("commit node %s %v -> %v: %w", id, from, to, err)
	}
	s.log.Info("blob node state changed", "node", id, "from", from, "to", to, "reason", reason)
	return nil
}

// heartbeatRevives commits a SUSPECT or DOWN node UP on its heartbeat; it
// reports whether it did. Failure is logged, not returned: the liveness
// loop tries again, and the heartbeat itself succeeded.
func (s *Server) heartbeatRevives(ctx context.Context, n *pb.Node) bool {
	st := n.GetState()
	if st != pb.NodeState_NODE_STATE_SUSPECT && st != pb.NodeState_NODE_STATE_DOWN {
		return false
	}
	if err := s.commitNodeState(ctx, n.GetId(), st, pb.NodeState_NODE_STATE_UP, "heartbeat resumed"); err != nil {
		s.log.Warn("bring blob node back up", "err", err)
		return false
	}
	return true
}
