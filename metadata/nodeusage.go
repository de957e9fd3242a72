package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Node usage: how many chunks the placements put on each node, and the
// bytes of their files (chunk.Layout), one entry per node:
//
//	nu/<node id>  →  varint chunks, varint bytes
//
// It is derived data, a function of the seg/ entries alone (each segment's
// non-empty placement entries). Until this version a key per chunk,
// nc/<node><segment id><shard>, held the same figures and answered
// SegmentsOnNode with a prefix scan; its six keys per 4+2 segment were about
// half of what every member's state machine spent on a CommitObject (docs/
// perf/metad.md §10). SegmentsOnNode now reads seg/ (query_heal.go).
//
// Commands change the counts through the stage (addUsage): a command's
// changes are dropped with its other writes when it is refused, and the
// transaction writes each touched node's entry once, at its end
// (writeUsage), so a batch of commits costs one read and one write per
// node, not one key per chunk. An entry exists exactly when its node holds
// a chunk.
//
// m/nodeusage holds the counts' version and the applied index they are
// current at; every applied batch rewrites it with m/applied. A state
// without it, with another version or another applied index (written or
// restored by a metad of an earlier version, including one run on a data
// directory this version had counted) gets its counts rebuilt from seg/,
// and any nc/ keys dropped, when it is opened or restored, before it serves
// (ensureNodeUsage).

var (
	prefixNodeUsage = []byte("nu/")
	keyNodeUsage    = []byte("m/nodeusage")
)

// nodeUsageVersion changes whenever the counts' keys or meaning do.
const nodeUsageVersion = 1

// chunkCount is one node's counts, or a change to them; for a bucket
// (bucketusage.go), chunks counts its objects (current versions), uploads
// the bytes of its uploads' parts, and versions and versionBytes its
// noncurrent versions (always 0 for a node).
type chunkCount struct {
	chunks, bytes, uploads, versions, versionBytes int64
}

// appendTo encodes u as varint chunks, varint bytes, then varint uploads
// when it or a later count is not 0, then varint versions and varint
// versionBytes when either is not 0: a node's entry, and a bucket's
// without uploads or versions, are two varints as they have always been.
func (u chunkCount) appendTo(b []byte) []byte {
	b = binary.AppendVarint(binary.AppendVarint(b, u.chunks), u.bytes)
	hasVersions := u.versions != 0 || u.versionBytes != 0
	if u.uploads != 0 || hasVersions {
		b = binary.AppendVarint(b, u.uploads)
	}
	if hasVersions {
		b = binary.AppendVarint(binary.AppendVarint(b, u.versions), u.versionBytes)
	}
	return b
}

// decodeUsage reads what appendTo wrote: 2, 3 or 5 varints.
func decodeUsage(v []byte) (chunkCount, error) {
	var u chunkCount
	for i, f := range []*int64{&u.chunks, &u.bytes, &u.uploads, &u.versions, &u.versionBytes} {
		if (i == 2 || i == 3) && len(v) == 0 {
			break // no uploads, or no versions
		}
		x, n := binary.Varint(v)
		if n <= 0 {
			return chunkCount{}, fmt.Errorf("corrupt usage entry %x", v)
		}
		*f, v = x, v[n:]
	}
	if len(v) != 0 {
		return chunkCount{}, fmt.Errorf("corrupt usage entry: %d bytes after the counts", len(v))
	}
	return u, nil
}

// add adds the change d to u.
func (u *chunkCount) add(d chunkCount) {
	u.chunks += d.chunks
	u.bytes += d.bytes
	u.uploads += d.uploads
	u.versions += d.versions
	u.versionBytes += d.versionBytes
}

func nodeUsageKey(node string) []byte { return join(prefixNodeUsage, node) }

// nodeUsageMarker is m/nodeusage's value when the counts are current at
// applied.
func nodeUsageMarker(applied uint64) []byte {
	return appendU64(appendU64(make([]byte, 0, 16), nodeUsageVersion), applied)
}

// setNodeUsageApplied records, in the transaction that stores m/applied,
// that the counts are current at applied.
func setNodeUsageApplied(txn *badger.Txn, applied uint64) error {
	if err := txn.Set(keyNodeUsage, nodeUsageMarker(applied)); err != nil {
		return fmt.Errorf("store node usage marker: %w", err)
	}
	return nil
}

// addUsage counts the chunk of seg's shard on node (sign +1) or stops
// counting it (-1), for the command being applied.
func (st *stage) addUsage(node string, chunkBytes int64, sign int64) {
	if st.usage == nil {
		st.usage = make(map[string]chunkCount, 8)
	}
	u := st.usage[node]
	u.chunks += sign
	u.bytes += sign * chunkBytes
	st.usage[node] = u
}

// mergeUsage moves the command's count changes into the transaction's, once
// the command's writes are in the transaction.
func (st *stage) mergeUsage() {
	st.txnUsage = mergeCounts(st.txnUsage, st.usage)
	st.txnBucketUsage = mergeCounts(st.txnBucketUsage, st.bucketUsage)
}

// mergeCounts adds the changes in from to into, and empties from.
func mergeCounts(into, from map[string]chunkCount) map[string]chunkCount {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = make(map[string]chunkCount, len(from))
	}
	for n, d := range from {
		u := into[n]
		u.add(d)
		into[n] = u
	}
	clear(from)
	return into
}

// writeUsage applies the transaction's count changes to the nodes' and
// the buckets' entries (bucketusage.go).
func (st *stage) writeUsage() error {
	if err := st.writeCounts(st.txnUsage, nodeUsageKey, "node usage"); err != nil {
		return err
	}
	return st.writeCounts(st.txnBucketUsage, bucketUsageKey, "bucket usage")
}

// writeCounts adds changes, by name, to the entries key(name) holds; an
// entry that comes to count nothing is deleted.
func (st *stage) writeCounts(changes map[string]chunkCount, key func(string) []byte, what string) error {
	names := make([]string, 0, len(changes))
	for n, d := range changes {
		if d != (chunkCount{}) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		k := key(n)
		u, err := readUsage(st.txn, k)
		if err != nil {
			return fmt.Errorf("%s of %q: %w", what, n, err)
		}
		u.add(changes[n])
		val := u.appendTo(nil)
		st.size.add(k, val)
		if u == (chunkCount{}) {
			err = st.txn.Delete(k)
		} else {
			err = st.txn.Set(k, val)
		}
		if err != nil {
			return fmt.Errorf("store %s of %q: %w", what, n, err)
		}
	}
	return nil
}

// readUsage reads one node's or bucket's counts; an absent entry counts
// nothing.
func readUsage(txn *badger.Txn, key []byte) (chunkCount, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return chunkCount{}, nil
	}
	if err != nil {
		return chunkCount{}, err
	}
	var u chunkCount
	err = item.Value(func(v []byte) error {
		var err error
		u, err = decodeUsage(v)
		return err
	})
	return u, err
}

// NodeUsage returns the chunks placement puts on node and the bytes of
// their files (per chunk.Layout).
func (s *State) NodeUsage(node string) (chunks, size int64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		chunks, size, err = nodeUsageTxn(txn, node)
		return err
	})
	return chunks, size, err
}

// nodeUsageTxn is NodeUsage within txn.
func nodeUsageTxn(txn *badger.Txn, node string) (chunks, size int64, err error) {
	u, err := readUsage(txn, nodeUsageKey(node))
	if err != nil {
		return 0, 0, fmt.Errorf("node usage of %q: %w", node, err)
	}
	return u.chunks, u.bytes, nil
}

// ensureNodeUsage rebuilds the node counts unless they are current at the
// applied index. It must not run concurrently with ApplyBatch.
func (s *State) ensureNodeUsage() error {
	current, err := s.holds(keyNodeUsage, nodeUsageMarker(s.applied.Load()))
	if err != nil {
		return fmt.Errorf("read node usage marker: %w", err)
	}
	if current {
		return nil
	}
	return s.rebuildNodeUsage()
}

// rebuildNodeUsage drops the node counts and the per-chunk keys of earlier
// versions (nc/), counts again from seg/, and writes the counts with the
// marker in one transaction: a crash before it leaves a state that
// rebuilds on the next open.
func (s *State) rebuildNodeUsage() error {
	start := time.Now()
	dropped, err := s.dropPrefix(prefixNodeUsage)
	if err != nil {
		return fmt.Errorf("rebuild node usage: %w", err)
	}
	// An earlier version's nc/ keys are six per segment: Badger drops
	// them table by table rather than as tens of millions of deletes.
	legacy, err := s.hasKeyWithPrefix(prefixNodeChunk)
	if err == nil && legacy {
		err = s.db.DropPrefix(prefixNodeChunk)
	}
	if err != nil {
		return fmt.Errorf("rebuild node usage: drop the per-chunk node index: %w", err)
	}
	counts := map[string]chunkCount{}
	segments := 0
	err = s.db.View(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixSegment, func(k, v []byte) error {
			ref, err := decodeSegRef(v)
			if err != nil {
				return fmt.Errorf("segment %x: %w", k[len(prefixSegment):], err)
			}
			size := chunkBytes(ref.seg)
			for _, n := range ref.seg.GetNodes() {
				if n != "" {
					u := counts[n]
					u.chunks++
					u.bytes += size
					counts[n] = u
				}
			}
			segments++
			return nil
		})
	})
	if err == nil {
		err = s.storeCounts(counts, nodeUsageKey, setNodeUsageApplied)
	}
	if err != nil {
		return fmt.Errorf("rebuild node usage: %w", err)
	}
	s.logger.Info("counted chunks per node from the segment index", "segments", segments, "nodes", len(counts),
		"old_counts_dropped", dropped, "per_chunk_index_dropped", legacy, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// storeCounts writes rebuilt counts, each under key(name), and marks them
// current at the applied index, in one transaction. Counts of nothing (a
// bucket with empty parts only) get no entry, as writeCounts leaves none.
func (s *State) storeCounts(counts map[string]chunkCount, key func(string) []byte, mark func(*badger.Txn, uint64) error) error {
	applied := s.applied.Load()
	return s.db.Update(func(txn *badger.Txn) error {
		for n, u := range counts {
			if u == (chunkCount{}) {
				continue
			}
			if err := txn.Set(key(n), u.appendTo(nil)); err != nil {
				return err
			}
		}
		return mark(txn, applied)
	})
}

// hasKeyWithPrefix reports whether the state holds a key with prefix.
func (s *State) hasKeyWithPrefix(prefix []byte) (bool, error) {
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		found = prefixExists(txn, prefix)
		return nil
	})
	return found, err
}

// dropPrefix deletes every key with prefix and the keys also, in write
// batches of bounded size, and returns how many keys had prefix.
func (s *State) dropPrefix(prefix []byte, also ...[]byte) (int, error) {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
			n++
		}
		for _, k := range also {
			if err := wb.Delete(bytes.Clone(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("drop %q keys: %w", prefix, err)
	}
	return n, nil
}
