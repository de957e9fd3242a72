package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The directory index lets a listing with delimiter "/" walk the
// subdirectories under a prefix one Next each, instead of one Seek past
// each in o/ (a Seek costs ~14 Nexts on 10M keys: Badger binary-searches
// every level's block index).
//
// For each bucket with objects and each of its directories (the root ""
// and every prefix of an object key that ends in "/") it holds
//
//	ld/<bucket> 00 <depth, 2 bytes BE> <dir>  →  uvarint direct, uvarint children
//
// depth is the number of "/" in dir; direct counts the objects in dir
// (keys with no "/" after it), children its subdirectories (one "/"
// deeper). An entry exists exactly when one of the two is above 0. With the
// depth ahead of the path, the subdirectories of D are one contiguous range
// in key order, ld/<bucket> 00 <depth(D)+1> D, and those whose names start
// with D+r are the range under D+r: the common prefixes of a listing with
// prefix D+r. Keys hold at most 1,024 bytes, so 2 bytes of depth are
// plenty; the path is the key's last component and needs no escaping (as
// in o/).
//
// Counting children rather than every object below a directory keeps the
// upkeep to one entry for most writes: a key created in a directory that
// exists changes only that directory's direct count; its ancestors change
// only when a directory appears or disappears. (A subtree count would
// rewrite every ancestor, the bucket's root included, on every write.)
// A leaf directory's direct count is its number of keys, which is what the
// listing needs to pass it with Nexts.
//
// The index is derived data, a function of the o/ keyspace alone. The
// commands that bring an object key into existence or remove it
// (commitObject and completeMultipart without a current version,
// deleteObject) update it in the same staged writes, so it is atomic with
// the object and every replica writes the same bytes. Rewrites of an
// existing object (overwrites, repairs, moves) leave it alone.
//
// m/dirindex holds the index's version and the applied index it is current
// at; every applied batch rewrites it together with m/applied. A state
// without it, with another version, or with another applied index (written
// or restored by a metad without the index, including one run on a data
// directory this version had indexed) gets its index rebuilt from o/ when
// it is opened or restored, before it serves (ensureDirIndex).

// dirIndexVersion changes whenever the index's keys or meaning do, so a
// state indexed by another version is rebuilt. (1 counted every object
// below a directory; it lived on main for half an hour.)
const dirIndexVersion = 2

// dirCounts is the value of a directory index entry.
type dirCounts struct {
	direct   uint64 // objects in the directory itself
	children uint64 // its subdirectories
}

func (c dirCounts) empty() bool { return c.direct == 0 && c.children == 0 }

// keys is how many keys lie under the directory when the index can tell
// without reading more entries (no subdirectories), else ok is false.
func (c dirCounts) keys() (n uint64, ok bool) { return c.direct, c.children == 0 }

func (c dirCounts) appendTo(b []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, c.direct), c.children)
}

func decodeDirCounts(v []byte) (dirCounts, error) {
	d, n := binary.Uvarint(v)
	if n <= 0 {
		return dirCounts{}, fmt.Errorf("corrupt directory index entry %x", v)
	}
	c, m := binary.Uvarint(v[n:])
	if m <= 0 || n+m != len(v) || (d == 0 && c == 0) {
		return dirCounts{}, fmt.Errorf("corrupt directory index entry %x", v)
	}
	return dirCounts{direct: d, children: c}, nil
}

// dirBase is ld/<bucket>\x00: the prefix of a bucket's directory entries.
func dirBase(bucket string) []byte { return append(join(prefixDirIndex, bucket), 0) }

// appendDirKey appends <depth><dir> to a dirBase.
func appendDirKey(b []byte, depth int, dir string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(depth)), dir...)
}

// dirIndexMarker is m/dirindex's value when the index is current at
// applied.
func dirIndexMarker(applied uint64) []byte {
	return appendU64(appendU64(make([]byte, 0, 16), dirIndexVersion), applied)
}

// setDirIndexApplied records, in the transaction that stores m/applied,
// that the directory index is current at applied.
func setDirIndexApplied(txn *badger.Txn, applied uint64) error {
	if err := txn.Set(keyDirIndex, dirIndexMarker(applied)); err != nil {
		return fmt.Errorf("store directory index marker: %w", err)
	}
	return nil
}

// readDirCounts reads one entry; an absent one counts nothing.
func readDirCounts(txn *badger.Txn, key []byte) (dirCounts, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return dirCounts{}, nil
	}
	if err != nil {
		return dirCounts{}, err
	}
	var c dirCounts
	err = item.Value(func(v []byte) error {
		var err error
		c, err = decodeDirCounts(v)
		return err
	})
	return c, err
}

// countObject updates the directory index for an object key that came
// into existence (delta +1) or went out of it (-1): the direct count of the
// key's directory, and, going up, the children count of each parent whose
// subdirectory appeared (or disappeared) with it. Counts go through the
// stage, so a refused command leaves none behind, and a later command of
// the same batch reads them back from the transaction's pending writes.
func (a *applier) countObject(bucket, key string, delta int) error {
	// The entries' keys are built in the stage's scratch (set copies them).
	base := append(append(append(a.st.scratch[:0], prefixDirIndex...), bucket...), 0)
	defer func() { a.st.scratch = base[:0] }()
	end := strings.LastIndexByte(key, '/') + 1
	depth := strings.Count(key[:end], "/")
	leaf := depth
	for {
		k := appendDirKey(base, depth, key[:end])
		base = k[:len(base)]
		c, found, err := a.stagedDirCounts(k)
		if err != nil {
			return fmt.Errorf("bucket %q directory %q: %w", bucket, key[:end], err)
		}
		n := &c.children
		if depth == leaf {
			n = &c.direct
		}
		if delta < 0 && *n == 0 {
			return fmt.Errorf("corrupt directory index: bucket %q directory %q has nothing to remove for %q", bucket, key[:end], key)
		}
		*n = uint64(int64(*n) + int64(delta))
		if c.empty() {
			a.st.del(k)
		} else {
			a.st.set(k, c.appendTo(a.st.space(2*binary.MaxVarintLen64)))
		}
		// The parent changes only when this directory appeared or went.
		if (delta > 0 && found) || (delta < 0 && !c.empty()) || end == 0 {
			return nil
		}
		end = strings.LastIndexByte(key[:end-1], '/') + 1
		depth--
	}
}

// stagedDirCounts reads an entry as the command sees it (staged writes, then
// the transaction), decoding in place. A stored entry is never empty
// (decodeDirCounts refuses one), so found is whether it exists.
func (a *applier) stagedDirCounts(key []byte) (c dirCounts, found bool, err error) {
	if w, ok := a.st.staged(key); ok {
		if w.del {
			return dirCounts{}, false, nil
		}
		c, err = decodeDirCounts(w.val)
	} else {
		c, err = readDirCounts(a.st.txn, key)
	}
	return c, err == nil && !c.empty(), err
}

// ensureDirIndex rebuilds the directory index unless m/dirindex says it is
// current at the applied index. It runs when nothing else uses the state
// (open, or Restore with the state locked).
func (s *State) ensureDirIndex() error {
	current, err := s.holds(keyDirIndex, dirIndexMarker(s.applied.Load()))
	if err != nil {
		return fmt.Errorf("read directory index marker: %w", err)
	}
	if current {
		return nil
	}
	return s.rebuildDirIndex()
}

// holds reports whether key is present with value want (a derived index's
// marker).
func (s *State) holds(key, want []byte) (bool, error) {
	var ok bool
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			ok = bytes.Equal(v, want)
			return nil
		})
	})
	return ok, err
}

// rebuildDirIndex drops the directory index and builds it again from o/,
// in one pass over the keys (values are not read) with write batches of
// bounded size, then writes the marker: a crash before the marker leaves a
// state that rebuilds on the next open. It must not run concurrently with
// ApplyBatch.
func (s *State) rebuildDirIndex() error {
	start := time.Now()
	dropped, err := s.dropDirIndex()
	if err != nil {
		return fmt.Errorf("rebuild directory index: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	var objects, dirs int
	b := dirIndexBuilder{emit: func(k, v []byte) error {
		dirs++
		return wb.Set(k, v)
	}}
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixObject})
		defer it.Close()
		for it.Seek(prefixObject); it.ValidForPrefix(prefixObject); it.Next() {
			rest := it.Item().Key()[len(prefixObject):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return fmt.Errorf("corrupt object key %q", it.Item().Key())
			}
			if err := b.add(rest[:i], rest[i+1:]); err != nil {
				return err
			}
			objects++
		}
		return b.finish()
	})
	if err == nil {
		err = wb.Flush()
	}
	if err == nil {
		applied := s.applied.Load()
		err = s.db.Update(func(txn *badger.Txn) error { return setDirIndexApplied(txn, applied) })
	}
	if err != nil {
		return fmt.Errorf("rebuild directory index: %w", err)
	}
	s.logger.Info("built directory index from object keys", "objects", objects, "directories", dirs,
		"old_entries_dropped", dropped, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// dropDirIndex deletes every ld/ entry and the marker.
func (s *State) dropDirIndex() (int, error) {
	n, err := s.dropPrefix(prefixDirIndex, keyDirIndex)
	if err != nil {
		return 0, fmt.Errorf("drop directory index: %w", err)
	}
	return n, nil
}

// dirIndexBuilder computes directory index entries from object keys given
// in key order, holding only the directories of the current key (a stack,
// one frame per depth): a directory's counts are complete, and emitted,
// when the first key outside it arrives.
type dirIndexBuilder struct {
	emit   func(key, val []byte) error
	bucket []byte
	path   []byte     // the deepest open directory
	stack  []dirFrame // stack[d] is the open directory at depth d: path[:end]
}

type dirFrame struct {
	end    int
	counts dirCounts
}

func (b *dirIndexBuilder) add(bucket, key []byte) error {
	if len(b.stack) == 0 || !bytes.Equal(bucket, b.bucket) {
		if err := b.finish(); err != nil {
			return err
		}
		b.bucket = append(b.bucket[:0], bucket...)
		b.stack = append(b.stack[:0], dirFrame{})
		b.path = b.path[:0]
	}
	for top := len(b.stack) - 1; top > 0 && !bytes.HasPrefix(key, b.path[:b.stack[top].end]); top-- {
		if err := b.pop(); err != nil {
			return err
		}
	}
	top := b.stack[len(b.stack)-1].end
	parent := bytes.LastIndexByte(key, '/') + 1
	b.path = append(b.path[:top], key[top:max(top, parent)]...)
	for end := top; end < parent; {
		end += bytes.IndexByte(key[end:], '/') + 1
		b.stack[len(b.stack)-1].counts.children++
		b.stack = append(b.stack, dirFrame{end: end})
	}
	b.stack[len(b.stack)-1].counts.direct++
	return nil
}

// pop emits the deepest open directory.
func (b *dirIndexBuilder) pop() error {
	d := len(b.stack) - 1
	f := b.stack[d]
	b.stack = b.stack[:d]
	key := appendDirKey(dirBase(string(b.bucket)), d, string(b.path[:f.end]))
	return b.emit(key, f.counts.appendTo(nil))
}

// finish emits every open directory (the end of a bucket's keys).
func (b *dirIndexBuilder) finish() error {
	for len(b.stack) > 0 {
		if err := b.pop(); err != nil {
			return err
		}
	}
	return nil
}
