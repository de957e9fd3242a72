package main

import (
	"encoding/hex"
	"strings"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// What the admin commands print with --json: the CLI's own, stable shape
// (snake_case, numbers as numbers, sizes in exact bytes, times RFC 3339),
// not the wire messages.

type memberView struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	GRPCAddress string `json:"grpc_address"`
	Leader      bool   `json:"leader"`
	Voter       bool   `json:"voter"`
}

type metadView struct {
	LeaderID     string       `json:"leader_id"`
	Term         uint64       `json:"term"`
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	Members      []memberView `json:"members"`
}

func toMetadView(r *pb.ClusterStatusResponse) *metadView {
	v := &metadView{LeaderID: r.GetLeaderId(), Term: r.GetTerm(), CommitIndex: r.GetCommitIndex(), AppliedIndex: r.GetAppliedIndex(), Members: []memberView{}}
	for _, m := range r.GetMembers() {
		v.Members = append(v.Members, memberView{ID: m.GetId(), RaftAddress: m.GetRaftAddress(), GRPCAddress: m.GetGrpcAddress(), Leader: m.GetLeader(), Voter: m.GetVoter()})
	}
	return v
}

type nodeView struct {
	ID            string     `json:"id"`
	Address       string     `json:"address"`
	Zone          string     `json:"zone"`
	Rack          string     `json:"rack"`
	State         string     `json:"state"`
	CapacityBytes int64      `json:"capacity_bytes"`
	UsedBytes     int64      `json:"used_bytes"`
	ChunkCount    int64      `json:"chunk_count"`
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
}

// stateName is a node state as people say it: "up", "draining".
func stateName(s pb.NodeState) string {
	if s == pb.NodeState_NODE_STATE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATE_"))
}

// stateOrder lists node states in the order status shows them.
var stateOrder = []string{"up", "suspect", "down", "draining", "decommissioned", "unknown"}

func toNodeView(n *pb.Node) nodeView {
	v := nodeView{
		ID: n.GetId(), Address: n.GetAddress(), Zone: n.GetZone(), Rack: n.GetRack(), State: stateName(n.GetState()),
		CapacityBytes: n.GetCapacityBytes(), UsedBytes: n.GetUsedBytes(), ChunkCount: n.GetChunkCount(),
	}
	if ns := n.GetLastHeartbeatUnixNano(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		v.LastHeartbeat = &t
	}
	return v
}

type nodesSummary struct {
	Epoch         uint64         `json:"epoch"`
	Total         int            `json:"total"`
	ByState       map[string]int `json:"by_state"`
	CapacityBytes int64          `json:"capacity_bytes"`
	UsedBytes     int64          `json:"used_bytes"`
}

func toNodesSummary(cm *pb.ClusterMap) *nodesSummary {
	v := &nodesSummary{Epoch: cm.GetEpoch(), ByState: map[string]int{}}
	for _, n := range cm.GetNodes() {
		st := stateName(n.GetState())
		v.Total++
		v.ByState[st]++
		if st == "decommissioned" {
			continue // gone: its disks no longer count
		}
		v.CapacityBytes += n.GetCapacityBytes()
		v.UsedBytes += n.GetUsedBytes()
	}
	return v
}

type lostView struct {
	Bucket     string `json:"bucket"`
	Key        string `json:"key"`
	VersionID  string `json:"version_id,omitempty"`
	UploadID   string `json:"upload_id,omitempty"`
	PartNumber int32  `json:"part_number,omitempty"`
	SegmentID  string `json:"segment_id"`
	Healthy    int32  `json:"healthy"`
	Needed     int32  `json:"needed"`
}

type healthView struct {
	SegmentsTotal        int64      `json:"segments_total"`
	SegmentsByMissing    []int64    `json:"segments_by_missing"`
	SegmentsDegraded     int64      `json:"segments_degraded"`
	SegmentsLost         int64      `json:"segments_lost"`
	BytesAtRisk          int64      `json:"bytes_at_risk"`
	RepairQueue          int64      `json:"repair_queue"`
	RepairsInFlight      int64      `json:"repairs_in_flight"`
	RepairsDone          int64      `json:"repairs_done"`
	RepairsFailed        int64      `json:"repairs_failed"`
	RepairBytesPerSecond float64    `json:"repair_bytes_per_second"`
	ETASeconds           float64    `json:"eta_seconds"`
	GCBacklog            int64      `json:"gc_backlog"`
	Lost                 []lostView `json:"lost"`
	ComputedAt           *time.Time `json:"computed_at,omitempty"`
}

func toHealthView(r *pb.HealthStatusResponse) *healthView {
	v := &healthView{
		SegmentsTotal: r.GetSegmentsTotal(), SegmentsByMissing: r.GetSegmentsByMissing(),
		SegmentsDegraded: r.GetSegmentsDegraded(), SegmentsLost: r.GetSegmentsLost(), BytesAtRisk: r.GetBytesAtRisk(),
		RepairQueue: r.GetRepairQueue(), RepairsInFlight: r.GetRepairsInFlight(), RepairsDone: r.GetRepairsDone(),
		RepairsFailed: r.GetRepairsFailed(), RepairBytesPerSecond: r.GetRepairBytesPerSecond(), ETASeconds: r.GetEtaSeconds(),
		GCBacklog: r.GetGcBacklog(), Lost: []lostView{},
	}
	if v.SegmentsByMissing == nil {
		v.SegmentsByMissing = []int64{}
	}
	for _, l := range r.GetLost() {
		v.Lost = append(v.Lost, lostView{
			Bucket: l.GetBucket(), Key: l.GetKey(), VersionID: l.GetVersionId(), UploadID: l.GetUploadId(),
			PartNumber: l.GetPartNumber(), SegmentID: hex.EncodeToString(l.GetSegmentId()), Healthy: l.GetHealthy(), Needed: l.GetNeeded(),
		})
	}
	if ns := r.GetComputedUnixNano(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		v.ComputedAt = &t
	}
	return v
}

type rebalanceView struct {
	Running            bool       `json:"running"`
	Threshold          float64    `json:"threshold"`
	RateBytesPerSecond int64      `json:"rate_bytes_per_second"`
	BytesTotal         int64      `json:"bytes_total"`
	BytesMoved         int64      `json:"bytes_moved"`
	MovesTotal         int64      `json:"moves_total"`
	MovesDone          int64      `json:"moves_done"`
	BytesPerSecond     float64    `json:"bytes_per_second"`
	ETASeconds         float64    `json:"eta_seconds"`
	StartedAt          *time.Time `json:"started_at,omitempty"`
	Outcome            string     `json:"outcome"`
	// Skipped: moves that failed and that the balancer does not try now
	// (the first of SkippedCount).
	Skipped      []skippedMoveView `json:"skipped,omitempty"`
	SkippedCount int64             `json:"skipped_count,omitempty"`
}

type skippedMoveView struct {
	SegmentID string `json:"segment_id"`
	Shard     uint32 `json:"shard"`
	From      string `json:"from"`
	To        string `json:"to"`
	Failures  int64  `json:"failures"`
	// RetryAt is when it may be tried again; nil: given up for this run.
	RetryAt *time.Time `json:"retry_at,omitempty"`
	Reason  string     `json:"reason"`
}

func toRebalanceView(r *pb.RebalanceStatusResponse) *rebalanceView {
	v := &rebalanceView{
		Running: r.GetRunning(), Threshold: r.GetThreshold(), RateBytesPerSecond: r.GetRateBytesPerSecond(),
		BytesTotal: r.GetBytesTotal(), BytesMoved: r.GetBytesMoved(), MovesTotal: r.GetMovesTotal(), MovesDone: r.GetMovesDone(),
		BytesPerSecond: r.GetBytesPerSecond(), ETASeconds: r.GetEtaSeconds(), Outcome: r.GetOutcome(),
	}
	if ns := r.GetStartedUnixNano(); ns != 0 {
		t := time.Unix(0, ns).UTC()
		v.StartedAt = &t
	}
	v.SkippedCount = r.GetSkippedCount()
	v.Skipped = toSkippedMoveViews(r.GetSkipped())
	return v
}

func toSkippedMoveViews(ms []*pb.SkippedMove) []skippedMoveView {
	var out []skippedMoveView
	for _, m := range ms {
		sv := skippedMoveView{SegmentID: hex.EncodeToString(m.GetSegmentId()), Shard: m.GetShard(), From: m.GetFromNode(), To: m.GetToNode(),
			Failures: m.GetFailures(), Reason: m.GetReason()}
		if ns := m.GetRetryUnixNano(); ns != 0 {
			t := time.Unix(0, ns).UTC()
			sv.RetryAt = &t
		}
		out = append(out, sv)
	}
	return out
}
