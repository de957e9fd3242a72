package object

import (
	"slices"
	"sync"
	"time"

	"github.com/cairnstore/cairn/placement"
)

// stalledNodes remembers the blob nodes whose chunk uploads (or reads) this
// Store gave up on for stalling, so that for a while the next segments are
// placed around them and reads go to parity first: a large object's PUT
// would otherwise wait a write budget for every segment, and every GET a
// read budget. metad marks a node suspect only once its heartbeats stop; a
// node that heartbeats but does not serve its disk (a hung disk) never is.
type stalledNodes struct {
	hold time.Duration

	mu    sync.Mutex
	until map[string]time.Time
}

// stallHold is how long a node that stalled an upload or a read is avoided:
// a node that stays hung costs a stalled request now and then rather than
// every one, and one that recovers is back within half a minute.
const stallHold = 30 * time.Second

func (s *stalledNodes) add(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = make(map[string]time.Time)
	}
	s.until[id] = now.Add(s.hold)
}

// has says whether id stalled within the hold.
func (s *stalledNodes) has(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.until[id]
	return ok && now.Before(until)
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
