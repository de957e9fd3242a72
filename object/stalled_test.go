package object

import (
	"testing"
	"time"

	"github.com/cairnstore/cairn/placement"
)

func TestStalledNodesAvoid(t *testing.T) {
	nodes := []placement.Node{{ID: "a", State: placement.StateUp}, {ID: "b", State: placement.StateUp}, {ID: "c", State: placement.StateDraining}}
	t0 := time.Unix(1000, 0)
	s := stalledNodes{hold: 3 * time.Second}
	if got := s.avoid(nodes, t0); &got[0] != &nodes[0] {
		t.Fatal("nothing stalled: avoid must return the nodes as they are")
	}
	s.add("b", t0)
	s.add("c", t0)
	s.add("gone", t0)
	if !s.has("b", t0.Add(time.Second)) || s.has("a", t0) || s.has("b", t0.Add(3*time.Second)) {
		t.Error("has: b must be held for 3s from t0, a never")
	}
	got := s.avoid(nodes, t0.Add(time.Second))
	want := []placement.State{placement.StateUp, placement.StateSuspect, placement.StateDraining}
	for i, n := range got {
		if n.State != want[i] {
			t.Errorf("within the hold: %s is %v, want %v", n.ID, n.State, want[i])
		}
	}
	if nodes[1].State != placement.StateUp {
		t.Error("avoid changed the cluster map's own list")
	}
	if got := s.avoid(nodes, t0.Add(3*time.Second)); got[1].State != placement.StateUp {
		t.Errorf("after the hold: b is %v, want up", got[1].State)
	}
	if len(s.until) != 0 {
		t.Errorf("expired entries kept: %v", s.until)
	}
}
