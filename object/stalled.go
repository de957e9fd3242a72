package object

import (
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/placement"
)

// stalledNodes remembers the blob nodes whose chunk uploads this Store gave
// up on for stalling, so that the next segments are placed around them for
// a while: a large object's PUT would otherwise wait a write budget for
// every segment. metad marks a node suspect only once its heartbeats stop;
// a node that heartbeats but does not take writes (a hung disk) never is.
type stalledNodes struct {
	hold time.Duration

	mu    sync.Mutex
	until map[string]time.Time
}

// stallHold is how long a node that stalled an upload gets no new chunks
// from this Store: a few write budgets, so a node that stays hung costs a
// stalled segment now and then rather than every one.
func stallHold(writeBudget time.Duration) time.Duration {
	return max(3*writeBudget, time.Second)
}

func (s *stalledNodes) add(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = make(map[string]time.Time)
	}
	s.until[id] = now.Add(s.hold)
}

// avoid returns nodes with the ones that stalled lately marked suspect (a
// copy), or nodes itself when there are none.
func (s *stalledNodes) avoid(nodes []placement.Node, now time.Time) []placement.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []placement.Node
	for id, until := range s.until {
		if !now.Before(until) {
			delete(s.until, id)
			continue
		}
		i := slices.IndexFunc(nodes, func(n placement.Node) bool { return n.ID == id })
		if i < 0 || nodes[i].State != placement.StateUp {
			continue
		}
		if out == nil {
			out = slices.Clone(nodes)
		}
		out[i].State = placement.StateSuspect
	}
	if out == nil {
		return nodes
	}
	return out
}
