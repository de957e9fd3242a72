package metadata

import (
	"errors"
	"reflect"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

func TestTaskIDRoundTrip(t *testing.T) {
	seg := []byte("0123456789abcdef")
	for _, r := range []taskRef{
		{kind: kindRepair, node: "b1", segment: seg, shards: []uint32{3}, old: []string{""}, nonce: 7},
		{kind: kindRepair, node: "b-2", segment: seg, shards: []uint32{0, 5}, old: []string{"down-1", ""}, nonce: 1 << 40},
		{kind: kindMove, node: "b3", segment: seg, shards: []uint32{2}, old: []string{"b9"}},
		{kind: kindDelete, node: "b4", gcKey: []byte("gc/\x00\x01\xff"), nonce: 3},
	} {
		id := r.id()
		got, err := parseTaskID(id)
		if err != nil {
			t.Fatalf("parseTaskID(%q): %v", id, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("parseTaskID(%q) = %+v, want %+v", id, got, r)
		}
	}
}

func TestParseTaskIDRejects(t *testing.T) {
	seg := []byte("0123456789abcdef")
	for _, id := range []string{
		"", "r", "r-", "x-AQ", "r-!!!",
		"r-AQ", // version only
		taskRef{kind: kindRepair, node: "b"}.id(), // no segment
		taskRef{kind: kindDelete, node: "b"}.id(), // no gc key
		taskRef{kind: kindMove, node: "b", segment: seg, shards: []uint32{1, 2}, old: []string{"a", "c"}}.id(),
		taskRef{kind: kindRepair, node: "", segment: seg, shards: []uint32{1}, old: []string{""}}.id(),
		taskRef{kind: kindRepair, node: "b", segment: seg, shards: []uint32{1}, old: []string{""}}.id() + "AA",
	} {
		if _, err := parseTaskID(id); !errors.Is(err, errBadTaskID) {
			t.Errorf("parseTaskID(%q) = %v, want errBadTaskID", id, err)
		}
	}
}

func FuzzParseTaskID(f *testing.F) {
	f.Add(taskRef{kind: kindRepair, node: "b1", segment: []byte("0123456789abcdef"), shards: []uint32{3}, old: []string{""}}.id())
	f.Add(taskRef{kind: kindDelete, node: "b4", gcKey: []byte("gc/x")}.id())
	f.Fuzz(func(t *testing.T, id string) {
		r, err := parseTaskID(id)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to something that parses the same.
		again, err := parseTaskID(r.id())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", id, again, err, r)
		}
	})
}

func TestTaskTable(t *testing.T) {
	seg := []byte("0123456789abcdef")
	now := time.Unix(1000, 0)
	mk := func(ref taskRef, created time.Time) *assignment {
		return &assignment{ref: ref, id: ref.id(), task: &pb.Task{Id: ref.id()}, created: created, deadline: created.Add(time.Minute)}
	}
	tt := newTaskTable()
	r1 := mk(taskRef{kind: kindRepair, node: "a", segment: seg, shards: []uint32{1}, old: []string{""}}, now)
	r2 := mk(taskRef{kind: kindRepair, node: "a", segment: seg, shards: []uint32{2}, old: []string{"x"}, nonce: 1}, now.Add(time.Second))
	d1 := mk(taskRef{kind: kindDelete, node: "a", gcKey: []byte("k1")}, now.Add(2*time.Second))
	m1 := mk(taskRef{kind: kindMove, node: "b", segment: seg, shards: []uint32{4}, old: []string{"c"}}, now.Add(90*time.Second))
	for _, a := range []*assignment{r1, r2, d1, m1} {
		if err := tt.add(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := tt.add(r1); err == nil {
		t.Error("adding a task twice succeeded")
	}
	if got := tt.forNode("a", 10); len(got) != 3 || got[0].Id != r1.id || got[1].Id != r2.id || got[2].Id != d1.id {
		t.Errorf("forNode(a) = %v, want r1, r2, d1 in creation order", got)
	}
	if got := tt.forNode("a", 1); len(got) != 1 || got[0].Id != r1.id {
		t.Errorf("forNode(a, 1) = %v, want r1", got)
	}
	if on, total := tt.load("a"); on != 2 || total != 3 {
		t.Errorf("load(a) = %d, %d; want 2, 3 (deletes do not count)", on, total)
	}
	if !tt.isWriting(seg, 1, "a") || !tt.isWriting(seg, 4, "b") || tt.isWriting(seg, 1, "b") || tt.isWriting(seg, 3, "a") {
		t.Error("isWriting does not match the repair and move targets")
	}
	if !tt.hasDelete([]byte("k1"), "a") || tt.hasDelete([]byte("k1"), "b") {
		t.Error("hasDelete wrong")
	}
	if _, ok := tt.take(r1.id); !ok {
		t.Fatal("take(r1) found nothing")
	}
	if _, ok := tt.take(r1.id); ok {
		t.Fatal("take(r1) twice found it twice")
	}
	if tt.isWriting(seg, 1, "a") {
		t.Error("a taken task still counts as writing")
	}
	exp := tt.expire(now.Add(63 * time.Second))
	if len(exp) != 2 {
		t.Fatalf("expire took %d tasks, want r2 and d1", len(exp))
	}
	if !tt.segmentBusy(seg) { // m1 is still outstanding
		t.Error("segment with an outstanding move not busy")
	}
	if r, m, d := tt.counts(); r != 0 || m != 1 || d != 0 {
		t.Errorf("counts = %d %d %d, want 0 1 0", r, m, d)
	}
	tt.take(m1.id)
	if tt.segmentBusy(seg) || len(tt.byNode) != 0 || len(tt.perNode) != 0 || len(tt.writing) != 0 {
		t.Errorf("table not empty after every task left: %+v", tt)
	}
}
