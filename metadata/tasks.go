package metadata

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Tasks: work the leader hands blob nodes in heartbeat answers.
//
// The leader keeps its assignments in memory only (taskTable); everything
// they are derived from is replicated state (placements, node states, GC
// entries), so a new leader rebuilds them by scanning and a leader change
// loses nothing. A task is handed out with every heartbeat of its node
// until its result is reported or it expires (RepairTaskTimeout); then the
// work it stood for is planned again, with backoff, possibly elsewhere.
// Executing a task is idempotent on the blob side.
//
// A task id carries everything needed to act on its result (taskRef), so
// a result reported to a new leader, which never saw the task, is still
// committed: results are compare-and-set commits (CommitPlacement), so one
// that lost a race to another task's result changes nothing.

// Task kinds, the first byte of a taskRef encoding.
const (
	kindRepair byte = 'r'
	kindMove   byte = 'm'
	kindDelete byte = 'd'
)

// taskRef is what a task id encodes.
type taskRef struct {
	kind byte
	// node executes the task (and, for repairs and moves, receives the
	// chunks).
	node string
	// segment and shards: the chunks a repair rebuilds or a move copies.
	segment []byte
	shards  []uint32
	// old[i] is where shards[i] was when the task was planned: "" (missing)
	// or a down node for a repair, the source for a move. It is the
	// compare-and-set value of the placement commit.
	old []string
	// gcKey is the GC entry a delete works on.
	gcKey []byte
	// nonce tells apart tasks that are otherwise the same (a re-plan).
	nonce uint64
}

const taskIDVersion = 1

// id encodes r as a task id: "<kind>-" then base64url of a small binary
// form (version, then length-prefixed fields).
func (r taskRef) id() string {
	b := []byte{taskIDVersion}
	str := func(v []byte) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	str([]byte(r.node))
	str(r.segment)
	b = binary.AppendUvarint(b, uint64(len(r.shards)))
	for i, sh := range r.shards {
		b = binary.AppendUvarint(b, uint64(sh))
		str([]byte(r.old[i]))
	}
	str(r.gcKey)
	b = binary.AppendUvarint(b, r.nonce)
	return string(r.kind) + "-" + base64.RawURLEncoding.EncodeToString(b)
}

var errBadTaskID = errors.New("malformed task id")

// parseTaskID decodes what id encodes. Task ids come back from blob nodes,
// so this is a gate for outside input.
func parseTaskID(id string) (taskRef, error) {
	var r taskRef
	if len(id) < 3 || id[1] != '-' {
		return r, fmt.Errorf("%w: %q", errBadTaskID, id)
	}
	r.kind = id[0]
	if r.kind != kindRepair && r.kind != kindMove && r.kind != kindDelete {
		return r, fmt.Errorf("%w: kind %q", errBadTaskID, id[0])
	}
	b, err := base64.RawURLEncoding.DecodeString(id[2:])
	if err != nil || len(b) == 0 || b[0] != taskIDVersion {
		return r, fmt.Errorf("%w: %q", errBadTaskID, id)
	}
	b = b[1:]
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() []byte {
		n := uv()
		if bad || n > uint64(len(b)) {
			bad = true
			return nil
		}
		v := b[:n:n]
		b = b[n:]
		return v
	}
	r.node = string(str())
	if seg := str(); len(seg) > 0 {
		r.segment = slices.Clone(seg)
	}
	count := uv()
	if count > 64 {
		bad = true
	}
	for i := uint64(0); i < count && !bad; i++ {
		r.shards = append(r.shards, uint32(uv()))
		r.old = append(r.old, string(str()))
	}
	if k := str(); len(k) > 0 {
		r.gcKey = slices.Clone(k)
	}
	r.nonce = uv()
	if bad || len(b) != 0 {
		return taskRef{}, fmt.Errorf("%w: %q", errBadTaskID, id)
	}
	switch {
	case r.node == "",
		r.kind == kindDelete && len(r.gcKey) == 0,
		r.kind != kindDelete && (len(r.segment) == 0 || len(r.shards) == 0),
		r.kind == kindMove && len(r.shards) != 1:
		return taskRef{}, fmt.Errorf("%w: %q lacks fields for its kind", errBadTaskID, id)
	}
	return r, nil
}

// assignment is one task the leader has handed (or will hand) a node.
type assignment struct {
	ref  taskRef
	id   string
	task *pb.Task
	// cost is what the task was charged against the bandwidth budget.
	cost int64
	// created and deadline: after deadline the task expires (is dropped
	// and its work planned again).
	created, deadline time.Time
	handedOut         int
}

// chunkAt names one chunk on one node (a CheckChunks key).
type chunkAt struct {
	segment string
	shard   uint32
	node    string
}

// taskTable is the leader's in-memory set of outstanding tasks.
type taskTable struct {
	mu     sync.Mutex
	byID   map[string]*assignment
	byNode map[string]map[string]*assignment
	// writing counts outstanding tasks that write each chunk (repair and
	// move targets): CheckChunks calls those referenced.
	writing map[chunkAt]int
	// perNode counts outstanding repairs and moves by target node.
	perNode map[string]int
	// perSegment counts outstanding repairs and moves by segment.
	perSegment map[string]int
}

func newTaskTable() *taskTable {
	return &taskTable{
		byID:       map[string]*assignment{},
		byNode:     map[string]map[string]*assignment{},
		writing:    map[chunkAt]int{},
		perNode:    map[string]int{},
		perSegment: map[string]int{},
	}
}

// writes lists the chunks a in flight writes.
func (a *assignment) writes() []chunkAt {
	if a.ref.kind == kindDelete {
		return nil
	}
	out := make([]chunkAt, len(a.ref.shards))
	for i, sh := range a.ref.shards {
		out[i] = chunkAt{string(a.ref.segment), sh, a.ref.node}
	}
	return out
}

// add records a. It is an error to add an id twice.
func (t *taskTable) add(a *assignment) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.byID[a.id]; dup {
		return fmt.Errorf("task %s already outstanding", a.id)
	}
	t.byID[a.id] = a
	m := t.byNode[a.ref.node]
	if m == nil {
		m = map[string]*assignment{}
		t.byNode[a.ref.node] = m
	}
	m[a.id] = a
	for _, c := range a.writes() {
		t.writing[c]++
	}
	if a.ref.kind != kindDelete {
		t.perNode[a.ref.node]++
		t.perSegment[string(a.ref.segment)]++
	}
	return nil
}

// removeLocked forgets a.
func (t *taskTable) removeLocked(a *assignment) {
	delete(t.byID, a.id)
	if m := t.byNode[a.ref.node]; m != nil {
		delete(m, a.id)
		if len(m) == 0 {
			delete(t.byNode, a.ref.node)
		}
	}
	for _, c := range a.writes() {
		if t.writing[c]--; t.writing[c] <= 0 {
			delete(t.writing, c)
		}
	}
	if a.ref.kind != kindDelete {
		if t.perNode[a.ref.node]--; t.perNode[a.ref.node] <= 0 {
			delete(t.perNode, a.ref.node)
		}
		seg := string(a.ref.segment)
		if t.perSegment[seg]--; t.perSegment[seg] <= 0 {
			delete(t.perSegment, seg)
		}
	}
}

// take removes and returns the task with this id, if outstanding.
func (t *taskTable) take(id string) (*assignment, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.byID[id]
	if ok {
		t.removeLocked(a)
	}
	return a, ok
}

// forNode returns up to max of node's outstanding tasks, oldest first, to
// hand out (again) in a heartbeat answer.
func (t *taskTable) forNode(node string, max int) []*pb.Task {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.byNode[node]
	if len(m) == 0 {
		return nil
	}
	as := make([]*assignment, 0, len(m))
	for _, a := range m {
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool {
		if !as[i].created.Equal(as[j].created) {
			return as[i].created.Before(as[j].created)
		}
		return as[i].id < as[j].id
	})
	if len(as) > max {
		as = as[:max]
	}
	out := make([]*pb.Task, len(as))
	for i, a := range as {
		a.handedOut++
		out[i] = a.task
	}
	return out
}

// expire removes and returns every task whose deadline has passed.
func (t *taskTable) expire(now time.Time) []*assignment {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*assignment
	for _, a := range t.byID {
		if now.After(a.deadline) {
			out = append(out, a)
		}
	}
	for _, a := range out {
		t.removeLocked(a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// isWriting reports whether an outstanding repair or move writes shard of
// segment on node.
func (t *taskTable) isWriting(segment []byte, shard uint32, node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writing[chunkAt{string(segment), shard, node}] > 0
}

// load returns the outstanding repairs and moves targeting node, and in
// total.
func (t *taskTable) load(node string) (onNode, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.perNode {
		total += n
	}
	return t.perNode[node], total
}

// segmentBusy reports whether a repair or move of segment is outstanding.
func (t *taskTable) segmentBusy(segment []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perSegment[string(segment)] > 0
}

// hasDelete reports whether a delete of gcKey on node is outstanding.
func (t *taskTable) hasDelete(gcKey []byte, node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.byNode[node] {
		if a.ref.kind == kindDelete && bytes.Equal(a.ref.gcKey, gcKey) {
			return true
		}
	}
	return false
}

// counts returns the number of outstanding tasks by kind.
func (t *taskTable) counts() (repairs, moves, deletes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.byID {
		switch a.ref.kind {
		case kindRepair:
			repairs++
		case kindMove:
			moves++
		case kindDelete:
			deletes++
		}
	}
	return repairs, moves, deletes
}

// deletesOn returns the outstanding delete tasks of node.
func (t *taskTable) deletesOn(node string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, a := range t.byNode[node] {
		if a.ref.kind == kindDelete {
			n++
		}
	}
	return n
}
