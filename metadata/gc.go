package metadata

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// Garbage collection on the leader. A GC entry (written by the state
// machine when segments stop being referenced, or a bad chunk is marked)
// lists segments whose chunks are to be deleted. Every GCInterval the
// leader reads up to gcTrackMax entries, from where it left off (wrapping
// around), and hands each node holding chunks of an entry one DeleteTask
// with them. An entry is acknowledged (AckGC, which removes it) once every
// node has reported its delete; a node that is DECOMMISSIONED or no
// longer in the cluster map counts as done (its disks are gone); a DOWN
// node holds the entry back until it returns or is decommissioned. An
// entry waiting only on DOWN nodes is let go of and met again on the next
// round, so blocked entries never crowd out the rest.
//
// Segment ids are fresh for every write, so a GC entry never names a chunk
// that is still referenced: deleting is safe whatever else happens.
//
// Cost per round: one read of up to gcTrackMax entries; the backlog count
// comes from the state (GCBacklog).

const (
	// gcTrackMax bounds the entries tracked at once.
	gcTrackMax = 1024
	// gcPerNode bounds outstanding delete tasks per node.
	gcPerNode = 16
)

// gcTracker is the leader's view of GC work in progress.
type gcTracker struct {
	entries map[string]*gcWork
	cursor  []byte // read entries after this key next round
}

type gcWork struct {
	key   []byte
	nodes map[string]*gcNodeWork
}

type gcNodeWork struct {
	chunks    []*pb.ChunkRef
	done      bool
	attempts  int
	notBefore time.Time
}

// newGCWork groups an entry's chunks by node.
func newGCWork(it GCItem) *gcWork {
	w := &gcWork{key: it.Key, nodes: map[string]*gcNodeWork{}}
	for _, seg := range it.Entry.GetSegments() {
		for i, node := range seg.GetNodes() {
			if node == "" {
				continue
			}
			nw := w.nodes[node]
			if nw == nil {
				nw = &gcNodeWork{}
				w.nodes[node] = nw
			}
			nw.chunks = append(nw.chunks, &pb.ChunkRef{SegmentId: seg.GetId(), Shard: uint32(i), NodeId: node})
		}
	}
	return w
}

func (h *healer) gcLoop(ctx context.Context) {
	tick := time.NewTicker(h.cfg.GCInterval)
	defer tick.Stop()
	for {
		if err := h.gcRound(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("gc round", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gcRound reads more entries, hands out deletes and acknowledges finished
// entries.
func (h *healer) gcRound(ctx context.Context) error {
	if n, err := h.st.GCBacklog(); err == nil {
		h.gcBacklog.Store(n)
	}
	cm, err := h.st.ClusterMap()
	if err != nil {
		return err
	}
	h.mu.Lock()
	room := gcTrackMax - len(h.gc.entries)
	cursor := h.gc.cursor
	h.mu.Unlock()
	if room > 0 {
		items, err := h.st.GCEntries(cursor, room)
		if err != nil {
			return fmt.Errorf("read gc entries: %w", err)
		}
		// The grace period protects readers of replaced and deleted
		// versions, which may still be reading those chunks. Single-chunk
		// entries (chunkGCSeq: a chunk marked bad, or the old copy of a
		// moved or repaired one) skip it: their segment stays readable
		// from its other shards, and while such an entry is pending its
		// node cannot take that shard again, so with the grace a segment
		// whose only rule-keeping target held a corrupt chunk stayed
		// degraded for the whole grace (10 minutes by default; TestChaos
		// found it). Entries are keyed by the time they were queued, so a
		// page holds young entries only after the old ones; the scan goes
		// on past them (to reach single-chunk entries queued later) and
		// starts over at the end.
		last := len(items)
		if h.cfg.GCGrace > 0 {
			cutoff := h.now().Add(-h.cfg.GCGrace).UnixNano()
			kept := items[:0:0]
			for _, it := range items {
				if it.Entry.GetQueuedUnixNano() <= cutoff || isChunkGCKey(it.Key) {
					kept = append(kept, it)
				}
			}
			if len(items) > 0 {
				h.mu.Lock()
				h.gc.cursor = items[len(items)-1].Key
				h.mu.Unlock()
			}
			items = kept
		}
		h.mu.Lock()
		for _, it := range items {
			if _, ok := h.gc.entries[string(it.Key)]; !ok {
				h.gc.entries[string(it.Key)] = newGCWork(it)
			}
		}
		if last < room {
			h.gc.cursor = nil // reached the end: start over next round
		} else if h.cfg.GCGrace <= 0 {
			h.gc.cursor = items[len(items)-1].Key
		}
		h.mu.Unlock()
	}

	nodes := map[string]*pb.Node{}
	for _, n := range cm.GetNodes() {
		nodes[n.GetId()] = n
	}
	now := h.now()
	var ack [][]byte
	var issue []*assignment
	h.mu.Lock()
	keys := make([]string, 0, len(h.gc.entries))
	for k := range h.gc.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	perNode := map[string]int{}
	for _, k := range keys {
		w := h.gc.entries[k]
		pending, blocked := 0, 0
		for id, nw := range w.nodes {
			if nw.done {
				continue
			}
			n, known := nodes[id]
			if !known || n.GetState() == pb.NodeState_NODE_STATE_DECOMMISSIONED {
				nw.done = true // gone with its disks
				continue
			}
			if n.GetState() == pb.NodeState_NODE_STATE_DOWN {
				blocked++
				continue
			}
			pending++
			if now.Before(nw.notBefore) || h.tasks.hasDelete(w.key, id) {
				continue
			}
			if perNode[id] == 0 {
				perNode[id] = h.tasks.deletesOn(id)
			}
			if perNode[id] >= gcPerNode {
				continue
			}
			perNode[id]++
			ref := taskRef{kind: kindDelete, node: id, gcKey: w.key, nonce: h.nonce.Add(1)}
			tid := ref.id()
			issue = append(issue, &assignment{
				ref: ref, id: tid, created: now, deadline: now.Add(h.cfg.RepairTaskTimeout),
				task: &pb.Task{Id: tid, Kind: &pb.Task_Delete{Delete: &pb.DeleteTask{Chunks: nw.chunks}}},
			})
		}
		switch {
		case pending == 0 && blocked == 0:
			ack = append(ack, w.key)
		case pending == 0:
			delete(h.gc.entries, k) // waits only on down nodes: met again later
		}
	}
	h.mu.Unlock()
	for _, a := range issue {
		if err := h.tasks.add(a); err != nil {
			return err
		}
	}
	if len(ack) == 0 {
		return nil
	}
	if _, err := h.propose(ctx, &pb.Command{Op: &pb.Command_AckGc{AckGc: &pb.AckGC{Keys: ack}}}); err != nil {
		return fmt.Errorf("acknowledge %d gc entries: %w", len(ack), err)
	}
	h.mu.Lock()
	for _, k := range ack {
		delete(h.gc.entries, string(k))
	}
	h.mu.Unlock()
	h.m.gcAcked.Add(float64(len(ack)))
	if n, err := h.st.GCBacklog(); err == nil {
		h.gcBacklog.Store(n)
	}
	return nil
}

// deleteResult records a reported delete.
func (h *healer) deleteResult(ref taskRef, res *pb.TaskResult) {
	if !res.GetOk() {
		h.m.tasks.WithLabelValues("delete", "failed").Inc()
		h.log.Warn("delete task failed", "task", res.GetTaskId(), "node", ref.node, "err", res.GetError())
		h.gcFailed(ref.gcKey, ref.node)
		return
	}
	h.m.tasks.WithLabelValues("delete", "done").Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	if w, ok := h.gc.entries[string(ref.gcKey)]; ok {
		if nw, ok := w.nodes[ref.node]; ok {
			nw.done = true
		}
	}
}

// gcFailed backs off a node's delete of an entry.
func (h *healer) gcFailed(key []byte, node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w, ok := h.gc.entries[string(key)]; ok && bytes.Equal(w.key, key) {
		if nw, ok := w.nodes[node]; ok {
			nw.attempts++
			nw.notBefore = h.now().Add(retryDelay(h.cfg.RepairBackoff, nw.attempts))
		}
	}
}

// isChunkGCKey tells a gc/ key queued for single chunks (chunkGCSeq).
func isChunkGCKey(k []byte) bool {
	return len(k) == gcKeyLen && binary.BigEndian.Uint32(k[gcKeyLen-4:])&chunkGCSeq != 0
}
