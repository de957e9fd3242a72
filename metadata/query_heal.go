package metadata

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Queries of the self-healing machinery. Like the others they read local
// state at one Badger read timestamp; the server linearizes before calling.
// Paginated scans take after (exclusive; nil to start) and a limit (≤ 0
// means defaultMaxList) and return next, the value to pass as after for
// the following page, nil when there is none.

// Segment returns a referenced segment with its current placement and its
// owner, or ErrNoSuchKey when no object or part references it.
func (s *State) Segment(id []byte) (SegmentInfo, error) {
	var info SegmentInfo
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		ref, ok, err := readSegRefTxn(txn, id)
		if err != nil || !ok {
			return err
		}
		found = true
		info, err = ref.info()
		return err
	})
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("get segment %x: %w", id, err)
	}
	if !found {
		return SegmentInfo{}, metaerr.Detailed(metaerr.ErrNoSuchKey, "segment %x is not referenced", id)
	}
	return info, nil
}

func readSegRefTxn(txn *badger.Txn, id []byte) (segRef, bool, error) {
	if len(id) != segmentIDLen {
		return segRef{}, false, nil
	}
	item, err := txn.Get(segmentKey(id))
	if err == badger.ErrKeyNotFound {
		return segRef{}, false, nil
	}
	if err != nil {
		return segRef{}, false, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return segRef{}, false, err
	}
	ref, err := decodeSegRef(v)
	if err != nil {
		return segRef{}, false, fmt.Errorf("segment %x: %w", id, err)
	}
	return ref, true, nil
}

func limitOrDefault(limit int) int {
	if limit <= 0 {
		return defaultMaxList
	}
	return limit
}

// ScanSegments returns every referenced segment, in segment id order.
func (s *State) ScanSegments(after []byte, limit int) ([]SegmentInfo, []byte, error) {
	infos, next, err := s.scanIDs(prefixSegment, after, limit, func(txn *badger.Txn, id, v []byte) (SegmentInfo, error) {
		ref, err := decodeSegRef(v)
		if err != nil {
			return SegmentInfo{}, fmt.Errorf("segment %x: %w", id, err)
		}
		return ref.info()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan segments: %w", err)
	}
	return infos, next, nil
}

// SegmentsWithMissing returns the referenced segments with at least one
// missing ("") placement entry, in segment id order.
func (s *State) SegmentsWithMissing(after []byte, limit int) ([]SegmentInfo, []byte, error) {
	infos, next, err := s.scanIDs(prefixMissing, after, limit, lookupSegment)
	if err != nil {
		return nil, nil, fmt.Errorf("scan segments with missing chunks: %w", err)
	}
	return infos, next, nil
}

func lookupSegment(txn *badger.Txn, id, _ []byte) (SegmentInfo, error) {
	ref, ok, err := readSegRefTxn(txn, id)
	if err != nil {
		return SegmentInfo{}, err
	}
	if !ok {
		return SegmentInfo{}, fmt.Errorf("corrupt segment index: segment %x indexed but not referenced", id)
	}
	return ref.info()
}

// scanIDs pages through prefix/<segment id> keys.
func (s *State) scanIDs(prefix, after []byte, limit int, get func(txn *badger.Txn, id, v []byte) (SegmentInfo, error)) ([]SegmentInfo, []byte, error) {
	limit = limitOrDefault(limit)
	var out []SegmentInfo
	var next []byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		start := prefix
		if after != nil {
			start = append(append(bytes.Clone(prefix), after...), 0) // the least key above after
		}
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			id := item.Key()[len(prefix):]
			if len(out) == limit {
				next = bytes.Clone(out[len(out)-1].Segment.GetId())
				return nil
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			info, err := get(txn, bytes.Clone(id), v)
			if err != nil {
				return err
			}
			out = append(out, info)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, next, nil
}

// SegmentsOnNode returns the referenced segments with at least one chunk
// placed on node, in segment id order (a segment once, however many of its
// shards the node holds).
func (s *State) SegmentsOnNode(node string, after []byte, limit int) ([]SegmentInfo, []byte, error) {
	infos, next, err := s.SegmentsOnNodes([]string{node}, after, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("scan segments on node %q: %w", node, err)
	}
	return infos, next, nil
}

// defaultNodeScanBudget bounds the seg/ entries one SegmentsOnNodes call reads,
// so that a page of a node holding few chunks in a big state does not hold
// one read transaction over the whole index.
const defaultNodeScanBudget = 1 << 16

// SegmentsOnNodes returns the referenced segments with at least one chunk
// placed on any of nodes, in segment id order. It reads seg/, every
// segment's entry (there is no index by node: it cost every commit six
// keys per 4+2 segment, nodeusage.go), checking each placement only when
// the entry's bytes contain one of the node ids. A page may be short, even
// empty, with a non-nil next, when it stops after defaultNodeScanBudget
// entries.
func (s *State) SegmentsOnNodes(nodes []string, after []byte, limit int) ([]SegmentInfo, []byte, error) {
	limit = limitOrDefault(limit)
	budget := defaultNodeScanBudget
	if s.nodeScanBudget > 0 {
		budget = s.nodeScanBudget
	}
	needles := make([][]byte, len(nodes))
	for i, n := range nodes {
		needles[i] = []byte(n)
	}
	var out []SegmentInfo
	var next []byte
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixSegment})
		defer it.Close()
		start := prefixSegment
		if after != nil {
			start = append(segmentKey(after), 0)
		}
		read := 0
		last := make([]byte, 0, segmentIDLen) // the id read last
		for it.Seek(start); it.ValidForPrefix(prefixSegment); it.Next() {
			item := it.Item()
			id := item.Key()[len(prefixSegment):]
			if len(id) != segmentIDLen {
				return fmt.Errorf("corrupt segment index key %q", item.Key())
			}
			if read == budget {
				next = bytes.Clone(last)
				return nil
			}
			read++
			last = append(last[:0], id...)
			var info SegmentInfo
			var on bool
			err := item.Value(func(v []byte) error {
				if !containsAny(v, needles) {
					return nil
				}
				ref, err := decodeSegRef(v)
				if err != nil {
					return fmt.Errorf("segment %x: %w", id, err)
				}
				for _, n := range ref.seg.GetNodes() {
					if n != "" && slices.Contains(nodes, n) {
						on = true
						break
					}
				}
				if on {
					info, err = ref.info()
				}
				return err
			})
			if err != nil {
				return err
			}
			if !on {
				continue
			}
			out = append(out, info)
			if len(out) == limit {
				next = bytes.Clone(id)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, next, nil
}

func containsAny(b []byte, needles [][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	return false
}

// GCItem is one queued GC entry and its key (for AckGC).
type GCItem struct {
	Key   []byte
	Entry *metadatapb.GCEntry
}

// GCEntries returns up to limit (≤ 0: defaultMaxList) GC entries with keys
// above after (nil: from the first), oldest first.
func (s *State) GCEntries(after []byte, limit int) ([]GCItem, error) {
	limit = limitOrDefault(limit)
	var out []GCItem
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixGC, PrefetchValues: true, PrefetchSize: min(limit, 100)})
		defer it.Close()
		start := prefixGC
		if after != nil {
			start = append(bytes.Clone(after), 0)
		}
		for it.Seek(start); it.ValidForPrefix(prefixGC) && len(out) < limit; it.Next() {
			item := it.Item()
			e := &metadatapb.GCEntry{}
			if err := item.Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, e) }); err != nil {
				return fmt.Errorf("read %q: %w", item.Key(), err)
			}
			out = append(out, GCItem{Key: item.KeyCopy(nil), Entry: e})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read gc entries: %w", err)
	}
	return out, nil
}

// GCBacklog counts the queued GC entries (a key-only scan of gc/).
func (s *State) GCBacklog() (int64, error) {
	var n int64
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixGC})
		defer it.Close()
		for it.Seek(prefixGC); it.ValidForPrefix(prefixGC); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count gc entries: %w", err)
	}
	return n, nil
}

// ChunkDeletePending reports whether a deletion of shard of segment id on
// node is queued while the segment is still referenced (MarkChunks or a
// rebalance): CommitPlacement refuses to put that shard back on that node
// until the deletion is acknowledged, so a repair should pick another
// target.
func (s *State) ChunkDeletePending(id []byte, shard int, node string) (bool, error) {
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		_, err := txn.Get(chunkGCKey(id, shard, node))
		if err == badger.ErrKeyNotFound {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read chunk gc guard: %w", err)
	}
	return found, nil
}

// Rebalance returns the balancer's recorded state, nil if never set.
func (s *State) Rebalance() (*metadatapb.SetRebalance, error) {
	r := &metadatapb.SetRebalance{}
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getProto(txn, keyRebalance, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read rebalance state: %w", err)
	}
	if !found {
		return nil, nil
	}
	return r, nil
}

// Node returns one blob node of the cluster map, or ErrNoSuchNode.
func (s *State) Node(id string) (*metadatapb.Node, error) {
	n := &metadatapb.Node{}
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getProto(txn, nodeKey(id), n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get node %q: %w", id, err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchNode, "node %q", id)
	}
	return n, nil
}
