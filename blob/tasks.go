package blob

import (
	"context"
	"fmt"

	"github.com/cairnstore/cairn/chunk"
)

// Work metad hands a blob node with its heartbeat answers, and what the node
// tells metad back. These are plain types: internal/blobreg converts them
// from and to the metadata API, so this package never imports it.

// TaskKind says what a Task asks for.
type TaskKind int

const (
	// TaskInvalid is a task the registrar could not decode; the executor
	// reports it failed with Task.Invalid as the reason.
	TaskInvalid TaskKind = iota
	// TaskRepair rebuilds lost chunks of a segment from its healthy ones
	// and stores them on this node.
	TaskRepair
	// TaskMove copies one chunk from another node to this one.
	TaskMove
	// TaskDelete deletes chunks from this node.
	TaskDelete
)

func (k TaskKind) String() string {
	switch k {
	case TaskRepair:
		return "repair"
	case TaskMove:
		return "move"
	case TaskDelete:
		return "delete"
	}
	return "invalid"
}

// Task is one piece of work from metad. metad hands a task out again with
// every heartbeat until its result is reported (or it times out there), so
// running one twice must do no harm: every kind is idempotent.
type Task struct {
	// ID names the task in its result.
	ID   string
	Kind TaskKind
	// Exactly the field Kind names is set.
	Repair RepairTask
	Move   MoveTask
	Delete DeleteTask
	// Invalid says why a TaskInvalid could not be decoded.
	Invalid string
}

// Segment is what fixes the layout of a segment's chunks.
type Segment struct {
	ID     chunk.SegmentID
	Params chunk.Params
	// Size is the bytes of object data in the segment.
	Size int64
}

// Peer is where a healthy chunk of a segment can be read.
type Peer struct {
	Shard  int
	NodeID string
	// Addr is the HOST:PORT of the node's blob API.
	Addr string
}

// RepairTask asks the node to rebuild Shards of Segment from Sources (at
// least K of them must be usable) and store them.
type RepairTask struct {
	Segment Segment
	Shards  []int
	Sources []Peer
}

// MoveTask asks the node to copy one chunk of Segment from Source.
type MoveTask struct {
	Segment Segment
	Shard   int
	Source  Peer
}

// DeleteTask asks the node to delete chunks (a missing one is fine).
type DeleteTask struct {
	Chunks []chunk.ID
}

// ChunkRef names one chunk and the node it is (or was) on.
type ChunkRef struct {
	ID     chunk.ID
	NodeID string
}

func (r ChunkRef) String() string { return fmt.Sprintf("%s@%s", r.ID, r.NodeID) }

// TaskResult is what the node reports about a task. OK is set only once
// everything the task asked for is durable on this node.
type TaskResult struct {
	TaskID string
	OK     bool
	// Error says why the task failed; empty when OK.
	Error string
	// ShardsDone lists, for a repair, the shards rebuilt and stored (for a
	// move, the shard copied).
	ShardsDone []int
	// BadSources are source chunks found corrupt or missing while the task
	// ran, so metad gets them repaired too.
	BadSources []ChunkRef
}

// Reasons for ChunkReporter.ReportChunks.
const (
	ReasonCorrupt = "corrupt"
	ReasonMissing = "missing"
)

// TaskReporter takes the results of tasks (the executor's line to metad).
type TaskReporter interface {
	ReportTask(ctx context.Context, res TaskResult) error
}

// ChunkReporter takes chunks found bad, for repair (the scrubber's line to
// metad). reason is ReasonCorrupt or ReasonMissing.
type ChunkReporter interface {
	ReportChunks(ctx context.Context, reason string, chunks []ChunkRef) error
}

// ChunkChecker answers which of this node's chunks metadata still
// references (orphan reconciliation's line to metad): referenced[i] answers
// ids[i]. It is a linearizable read; any error means "don't know".
type ChunkChecker interface {
	CheckChunks(ctx context.Context, ids []chunk.ID) (referenced []bool, err error)
}

// MaxCheckBatch bounds the ids of one CheckChunks call.
const MaxCheckBatch = 1000
