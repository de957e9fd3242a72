package metadata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// LogStore is the Raft log and stable store: an append-only log of
// checksummed records in segment files, one write and one fdatasync per
// StoreLogs, so that an entry Raft has stored (and so may acknowledge)
// survives kill -9 and power loss. It is the durability point of the
// metadata service: the state machine's Badger is written without sync and
// rebuilt from this log after a crash.
//
// Why not Badger (the store before this one, logstore_badger.go): a synced
// Badger commit is a hand-off to its write goroutine and an msync of the
// mmapped memtable WAL, a sparse file whose first write to each block also
// commits the filesystem journal. Raft stores on the leader and then on a
// follower in series before every commit, and that took ~1-2 ms each under
// load (docs/perf/metad.md, section 6). Here a segment is zero-filled and
// synced before it takes records, so a StoreLogs overwrites allocated
// blocks and its fdatasync flushes data only (~0.15 ms on this disk), on
// the caller's goroutine.
//
// Layout of dir:
//   - <first index, 20 digits>.wal: segments. A 16-byte header (magic,
//     version), then records, then zeros. A version 2 record is {uint32
//     length, uint32 CRC-32C of the rest of the record, uint32 offset of
//     the record in its batch, uint32 length of the batch, payload =
//     encodeLog}; version 1 (segments written before 2026-11-26) has no
//     batch fields. Record k of a segment holds index first+k; segments
//     follow each other without a gap, and a batch never spans two.
//   - stable: the raft.StableStore keys and the log's first index after a
//     compaction, replaced whole (write, fsync, rename, fsync dir).
//   - spare.tmp: the next segment, zero-filled in the background.
//   - MANIFEST: not Badger's; it makes a metad that predates this store
//     refuse the directory instead of opening it as an empty Badger log.
//
// Reads never see a record before its fdatasync returned. A crash can
// leave a torn last batch: opening stops at the first record whose length,
// checksum or index is wrong, and zero-fills the rest of that segment so
// that later appends can never be followed by stale bytes. A bad record
// followed by data written after its batch is not a torn tail but lost
// acknowledged entries, and opening fails (ErrCorruptLog; see tornTail).
type LogStore struct {
	dir string
	log *slog.Logger

	// wmu serializes writers: Raft stores from its main goroutine but
	// compacts from its snapshot goroutine.
	wmu sync.Mutex
	// mu guards the fields below for readers; writers hold wmu and take mu
	// only to publish. Held shared across a read, so a segment is never
	// closed under a reader.
	mu          sync.RWMutex
	segs        []*walSegment
	first, last uint64
	stable      map[string][]byte

	// spare delivers the zero-filled next segment (spare.tmp).
	spare chan spareSegment
	// buf is the writer's encoding buffer, reused between batches.
	buf []byte
}

var (
	_ raft.LogStore          = (*LogStore)(nil)
	_ raft.StableStore       = (*LogStore)(nil)
	_ raft.MonotonicLogStore = (*LogStore)(nil)
)

type walSegment struct {
	f    *os.File
	path string
	// base is the index of the segment's first record (from its name).
	base uint64
	// offs[k] is the file offset of the record of index base+k.
	offs []int64
	// end is where the next record goes; size is the file's length.
	end, size int64
	// version is the segment's format (walVersion, or 1: see walRecordAt);
	// only a walVersion segment takes more records.
	version uint32
}

type spareSegment struct {
	f    *os.File
	size int64
	err  error
}

const (
	// walSegmentSize is the size of a segment file: a batch of Raft
	// entries is at most MaxAppendEntries × maxBatchBytes, usually far
	// less; a batch bigger than a segment gets a segment of its own size.
	walSegmentSize = 16 << 20
	walHeaderSize  = 16
	walMagic       = "CAIRNWAL"
	walVersion     = 2
	// walRecordHead is the head of a record in a version 2 segment,
	// walRecordHeadV1 in a version 1 one.
	walRecordHead   = 16
	walRecordHeadV1 = 8
	walSuffix       = ".wal"
	walSpareName    = "spare.tmp"
	walStableName   = "stable"
	// walGuardName is Badger's manifest file name (see LogStore).
	walGuardName = "MANIFEST"
	walGuardText = "This is not a Badger manifest: this directory holds cairn metad's Raft log in its WAL format (metadata/logstore.go). A metad from before the WAL cannot read it.\n"
	// walFirstKey is the stable file's key for the log's first index
	// after a compaction; Raft's keys never start with a zero byte.
	walFirstKey = "\x00wal-first"
)

var walCRC = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptLog is a Raft log whose acknowledged entries are damaged: the
// member cannot serve from it, and is re-added empty (as for a lost disk).
var ErrCorruptLog = errors.New("raft log corrupt")

// OpenLogStore opens (creating if needed) the Raft log in dir. A directory
// written by a metad from before the WAL (a Badger log) is migrated first
// (logstore_migrate.go).
func OpenLogStore(dir string, logger *slog.Logger) (*LogStore, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "raftlog")
	if err := migrateBadgerLog(dir, logger); err != nil {
		return nil, err
	}
	s, err := openWAL(dir, logger)
	if err != nil {
		return nil, fmt.Errorf("open raft log store in %s: %w", dir, err)
	}
	return s, nil
}

func openWAL(dir string, logger *slog.Logger) (*LogStore, error) {
	if !exists(dir) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		// The directory's own entry must be durable before the first
		// entry stored in it is acknowledged.
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	s := &LogStore{dir: dir, log: logger, stable: map[string][]byte{}, spare: make(chan spareSegment, 1)}
	if err := s.writeGuard(); err != nil {
		return nil, err
	}
	if err := s.loadStable(); err != nil {
		return nil, err
	}
	for _, tmp := range []string{walSpareName, "big.tmp", walStableName + ".new"} {
		_ = os.Remove(filepath.Join(dir, tmp))
	}
	if err := s.loadSegments(); err != nil {
		s.closeSegments()
		return nil, err
	}
	go s.prepareSpare()
	return s, nil
}

// writeGuard puts the non-Badger MANIFEST in place once.
func (s *LogStore) writeGuard() error {
	p := filepath.Join(s.dir, walGuardName)
	if b, err := os.ReadFile(p); err == nil && string(b) == walGuardText {
		return nil
	}
	return writeFileSynced(s.dir, walGuardName, []byte(walGuardText))
}

// writeFileSynced replaces dir/name with data so that a crash leaves the
// old or the new content: a synced temporary file renamed over it, then
// the directory synced.
func writeFileSynced(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".new")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// loadStable reads the stable file: {uvarint key length, key, uvarint
// value length, value}... followed by a CRC-32C of all of it.
func (s *LogStore) loadStable() error {
	b, err := os.ReadFile(filepath.Join(s.dir, walStableName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read stable store: %w", err)
	}
	if len(b) < 4 || crc32.Checksum(b[:len(b)-4], walCRC) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return errors.New("stable store file is corrupt (checksum)")
	}
	b = b[:len(b)-4]
	next := func() ([]byte, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		v := b[w : w+int(n)]
		b = b[w+int(n):]
		return v, true
	}
	for len(b) > 0 {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return errors.New("stable store file is corrupt (lengths)")
		}
		s.stable[string(k)] = bytes.Clone(v)
	}
	return nil
}

// saveStable writes m as the stable file. Callers hold wmu.
func (s *LogStore) saveStable(m map[string][]byte) error {
	var b []byte
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, walCRC))
	if err := writeFileSynced(s.dir, walStableName, b); err != nil {
		return fmt.Errorf("write stable store: %w", err)
	}
	return nil
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, walSuffix) }

// loadSegments opens every segment and finds the records in it.
func (s *LogStore) loadSegments() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, walSuffix) {
			continue
		}
		base, err := strconv.ParseUint(strings.TrimSuffix(name, walSuffix), 10, 64)
		if err != nil {
			return fmt.Errorf("segment file name %s: %w", name, err)
		}
		s.segs = append(s.segs, &walSegment{path: filepath.Join(s.dir, name), base: base})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].base < s.segs[j].base })
	for i, sg := range s.segs {
		tail := i == len(s.segs)-1
		if err := sg.open(tail); err != nil {
			return fmt.Errorf("segment %s: %w", filepath.Base(sg.path), err)
		}
		if i > 0 {
			prev := s.segs[i-1]
			if want := prev.base + uint64(len(prev.offs)); sg.base != want {
				return fmt.Errorf("segment %s starts at index %d, but the one before ends at %d", filepath.Base(sg.path), sg.base, want-1)
			}
		}
	}
	for _, sg := range s.segs {
		if len(sg.offs) > 0 {
			s.first = sg.base
			break
		}
	}
	if s.first != 0 {
		tail := s.segs[len(s.segs)-1]
		s.last = tail.base + uint64(len(tail.offs)) - 1
		if len(tail.offs) == 0 {
			s.last = tail.base - 1
		}
		if v := s.stable[walFirstKey]; len(v) == 8 {
			if f := binary.BigEndian.Uint64(v); f > s.first && f <= s.last {
				s.first = f
			}
		}
	}
	return nil
}

// open reads the segment's records. In the tail segment a bad record ends
// the log (a torn last write) and what follows it is zeroed; elsewhere it
// is corruption.
func (sg *walSegment) open(tail bool) error {
	f, err := os.OpenFile(sg.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	sg.f = f
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	sg.size = int64(len(data))
	if len(data) < walHeaderSize || string(data[:8]) != walMagic {
		return errors.New("not a WAL segment (bad header)")
	}
	sg.version = binary.BigEndian.Uint32(data[8:12])
	if sg.version != walVersion && sg.version != 1 {
		return fmt.Errorf("WAL segment version %d, this version reads 1 and %d", sg.version, walVersion)
	}
	off := int64(walHeaderSize)
	var l raft.Log
	for {
		r, ok := walRecordAt(data, off, sg.version)
		if !ok || decodeLog(r.payload(data), &l) != nil || l.Index != sg.base+uint64(len(sg.offs)) {
			break
		}
		sg.offs = append(sg.offs, off)
		off = r.next
	}
	sg.end = off
	stale := lastNonZero(data[off:])
	if stale == 0 {
		return nil
	}
	index := sg.base + uint64(len(sg.offs))
	if !tail {
		return fmt.Errorf("record at offset %d (index %d) is damaged in a segment that is not the last; re-add this member empty, as for a lost disk: %w", off, index, ErrCorruptLog)
	}
	if err := sg.tornTail(data, off, off+int64(stale)); err != nil {
		return fmt.Errorf("record at offset %d (index %d) is damaged and %v, so it is not a torn last write: "+
			"the entries from there on were acknowledged and are lost; re-add this member empty, as for a lost disk: %w", off, index, err, ErrCorruptLog)
	}
	if err := sg.zero(off, off+int64(stale)); err != nil {
		return fmt.Errorf("zero torn tail: %w", err)
	}
	return nil
}

// tornTail checks that the bytes of the tail segment from the first bad
// record, at off, to the last non-zero byte, before dataEnd, can be what a
// crash left of the last batch written. A batch is one pwrite into zeros,
// acknowledged after its fdatasync, so a crash can leave any part of it
// (the kernel writes its pages back in no set order: a record after a
// damaged one may be intact) but nothing after it, and the batches before
// it intact. So the log is corrupt, not torn, when a valid record after off
// belongs to another batch than the one off is in, or when non-zero bytes
// lie past the end of that batch. Each version 2 record says where its
// batch starts and ends: the batch off is in is the one of the record
// before it if that batch reaches past off, else one that starts at off
// (its end then known only from an intact record of it). A damaged record
// inside the last batch with nothing after it cannot be told from a torn
// write, and is taken for one. Version 1 records say nothing of batches:
// a bad record in a version 1 tail is taken for a torn write, as before.
func (sg *walSegment) tornTail(data []byte, off, dataEnd int64) error {
	if sg.version == 1 {
		return nil
	}
	start, end := off, int64(-1)
	if k := len(sg.offs); k > 0 {
		if prev, ok := walRecordAt(data, sg.offs[k-1], sg.version); ok && prev.batchEnd > off {
			start, end = prev.batchStart, prev.batchEnd
		}
	}
	for p := off + 1; end < 0 && p+walRecordHead < dataEnd; p++ {
		r, ok := walRecordAt(data, p, sg.version)
		if !ok {
			continue
		}
		if r.batchStart != start {
			return fmt.Errorf("an intact record at offset %d belongs to a batch written at offset %d, not at %d", p, r.batchStart, start)
		}
		end = r.batchEnd
	}
	if end >= 0 && dataEnd > end {
		return fmt.Errorf("data lies at offset %d, past the end at %d of the batch it is in (written at %d)", dataEnd-1, end, start)
	}
	return nil
}

// lastNonZero returns the length of b without its trailing zeros.
func lastNonZero(b []byte) int {
	for len(b) >= 8 && binary.LittleEndian.Uint64(b[len(b)-8:]) == 0 {
		b = b[:len(b)-8]
	}
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return len(b)
}

// walRecord is where a record's parts are, as offsets in the data it was
// read from.
type walRecord struct {
	off, next int64 // the record, and the byte after it
	head      int64
	// batchStart and batchEnd bound the batch the record was written in
	// (version 2 only).
	batchStart, batchEnd int64
}

func (r walRecord) payload(data []byte) []byte { return data[r.off+r.head : r.next] }

// walRecordAt returns the well-formed record of a segment of version v at
// off in data (data starting at the segment's start for the batch bounds
// to be offsets in the segment).
func walRecordAt(data []byte, off int64, v uint32) (walRecord, bool) {
	head := int64(walRecordHead)
	if v == 1 {
		head = walRecordHeadV1
	}
	r := walRecord{off: off, head: head}
	if off < 0 || off+head > int64(len(data)) {
		return r, false
	}
	n := int64(binary.BigEndian.Uint32(data[off:]))
	r.next = off + head + n
	if n == 0 || r.next > int64(len(data)) {
		return r, false
	}
	if v != 1 {
		inBatch, batchLen := int64(binary.BigEndian.Uint32(data[off+8:])), int64(binary.BigEndian.Uint32(data[off+12:]))
		if inBatch+head+n > batchLen || data[off+head] != logEncodingV1 {
			return r, false // cheap refusals first: tornTail tries every offset
		}
		r.batchStart, r.batchEnd = off-inBatch, off-inBatch+batchLen
	}
	c := crc32.Checksum(data[off:off+4], walCRC)
	if v != 1 {
		c = crc32.Update(c, walCRC, data[off+8:off+16])
	}
	c = crc32.Update(c, walCRC, data[off+head:r.next])
	return r, c == binary.BigEndian.Uint32(data[off+4:])
}

// clearFrom makes the segment zeros from off to its size such that no
// record there can come back after a crash: the file is cut at off and
// synced, then extended with zeros and synced. Zeroing in place could
// leave, after a crash, some of the old records after zeroed ones, which
// tornTail would rightly take for damage to acknowledged entries. Writing
// the zeros (not leaving a hole) keeps later appends to allocated blocks.
func (sg *walSegment) clearFrom(off int64) error {
	if err := sg.f.Truncate(off); err != nil {
		return err
	}
	if err := sg.f.Sync(); err != nil {
		return err
	}
	return sg.zero(off, sg.size)
}

// zero overwrites [from, to) with zeros and syncs.
func (sg *walSegment) zero(from, to int64) error {
	z := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n := min(int64(len(z)), to-off)
		if _, err := sg.f.WriteAt(z[:n], off); err != nil {
			return err
		}
		off += n
	}
	return unix.Fdatasync(int(sg.f.Fd()))
}

// prepareSpare zero-fills the next segment file; StoreLogs takes it when
// the tail is full.
func (s *LogStore) prepareSpare() {
	f, err := createSegmentFile(filepath.Join(s.dir, walSpareName), walSegmentSize)
	s.spare <- spareSegment{f: f, size: walSegmentSize, err: err}
}

// createSegmentFile writes a header and zeros through size, and syncs.
func createSegmentFile(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	copy(buf, walMagic)
	binary.BigEndian.PutUint32(buf[8:], walVersion)
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			f.Close()
			return nil, err
		}
		if off == 0 {
			clear(buf[:walHeaderSize])
		}
		off += n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// newSegment makes a segment for records from base on that can hold need
// bytes of records. Callers hold wmu.
func (s *LogStore) newSegment(base uint64, need int64) (*walSegment, error) {
	size := int64(walSegmentSize)
	var f *os.File
	var err error
	if walHeaderSize+need <= size {
		sp := <-s.spare
		// The next spare is started only once this one is renamed:
		// both are spare.tmp.
		defer func() { go s.prepareSpare() }()
		if f = sp.f; sp.err != nil {
			if f, err = createSegmentFile(filepath.Join(s.dir, walSpareName), size); err != nil {
				return nil, fmt.Errorf("create raft log segment: %w (and in the background: %v)", err, sp.err)
			}
		}
	} else {
		size = walHeaderSize + need
		if f, err = createSegmentFile(filepath.Join(s.dir, "big.tmp"), size); err != nil {
			return nil, fmt.Errorf("create raft log segment: %w", err)
		}
	}
	sg := &walSegment{f: f, path: filepath.Join(s.dir, segmentName(base)), base: base, end: walHeaderSize, size: size, version: walVersion}
	// The name is what says where the segment's records start: it must be
	// durable before any record in it is acknowledged.
	if err := os.Rename(f.Name(), sg.path); err != nil {
		f.Close()
		return nil, fmt.Errorf("name raft log segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	return sg, nil
}

// Close closes the files.
func (s *LogStore) Close() error {
	sp := <-s.spare
	if sp.f != nil {
		sp.f.Close()
	}
	// Nothing may wait for a spare any more.
	s.spare <- spareSegment{err: errors.New("log store closed")}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeSegments()
}

func (s *LogStore) closeSegments() error {
	var errs []error
	for _, sg := range s.segs {
		if sg.f != nil {
			if err := sg.f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.segs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close raft log store: %w", err)
	}
	return nil
}

// IsMonotonic implements raft.MonotonicLogStore: indexes are contiguous,
// so after installing a snapshot Raft deletes the whole log instead of
// leaving a gap.
func (s *LogStore) IsMonotonic() bool { return true }

// FirstIndex implements raft.LogStore.
func (s *LogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *LogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// GetLog implements raft.LogStore. It returns raft.ErrLogNotFound for an
// index that is not stored.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.first == 0 || index < s.first || index > s.last {
		return raft.ErrLogNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > index }) - 1
	sg := s.segs[i]
	k := index - sg.base
	off := sg.offs[k]
	end := sg.end
	if k+1 < uint64(len(sg.offs)) {
		end = sg.offs[k+1]
	}
	b := make([]byte, end-off)
	if _, err := sg.f.ReadAt(b, off); err != nil {
		return fmt.Errorf("read raft log %d: %w", index, err)
	}
	r, ok := walRecordAt(b, 0, sg.version)
	if !ok {
		return fmt.Errorf("read raft log %d: record fails its checksum", index)
	}
	if err := decodeLog(r.payload(b), out); err != nil {
		return fmt.Errorf("decode raft log %d: %w", index, err)
	}
	return nil
}

// StoreLog implements raft.LogStore.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: one write and one fdatasync for the
// whole batch, which must be contiguous. Storing an index at or below the
// last one replaces the log from there (as a DeleteRange of the suffix
// would).
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	lo, hi := logs[0].Index, logs[len(logs)-1].Index
	for i, l := range logs[1:] {
		if l.Index != logs[i].Index+1 {
			return fmt.Errorf("store raft logs: index %d follows %d", l.Index, logs[i].Index)
		}
	}
	switch {
	case s.first == 0:
	case lo <= s.first:
		if err := s.deleteAll(); err != nil {
			return fmt.Errorf("store raft logs %d-%d: %w", lo, hi, err)
		}
	case lo <= s.last:
		if err := s.truncateFrom(lo); err != nil {
			return fmt.Errorf("store raft logs %d-%d: %w", lo, hi, err)
		}
	case lo > s.last+1:
		return fmt.Errorf("store raft logs %d-%d: the log ends at %d", lo, hi, s.last)
	}

	buf := s.buf[:0]
	rel := make([]int64, len(logs)+1)
	for i, l := range logs {
		rel[i] = int64(len(buf))
		buf = append(buf, make([]byte, walRecordHead)...)
		buf = appendLog(buf, l)
	}
	rel[len(logs)] = int64(len(buf))
	if len(buf) > 1<<32-1 {
		return fmt.Errorf("store raft logs %d-%d: %d bytes is too big for one batch", lo, hi, len(buf))
	}
	// Every record says where its batch starts and ends, which is what
	// tells a torn last batch from damage to acknowledged ones (tornTail).
	for i := range logs {
		at, next := rel[i], rel[i+1]
		binary.BigEndian.PutUint32(buf[at:], uint32(next-at-walRecordHead))
		binary.BigEndian.PutUint32(buf[at+8:], uint32(at))
		binary.BigEndian.PutUint32(buf[at+12:], uint32(len(buf)))
		c := crc32.Checksum(buf[at:at+4], walCRC)
		c = crc32.Update(c, walCRC, buf[at+8:next])
		binary.BigEndian.PutUint32(buf[at+4:], c)
	}
	rel = rel[:len(logs)]
	s.buf = buf[:0]
	if cap(s.buf) > 4*maxBatchBytes {
		s.buf = nil
	}

	var tail *walSegment
	if n := len(s.segs); n > 0 {
		tail = s.segs[n-1]
		if len(tail.offs) == 0 && (tail.base != lo || tail.version != walVersion) {
			// An empty tail left by a truncation, named for another index
			// or of an older format.
			if err := s.dropSegments(n - 1); err != nil {
				return fmt.Errorf("store raft logs %d-%d: %w", lo, hi, err)
			}
			tail = nil
		}
	}
	// A segment of an older format takes no more records: appends go to a
	// new one.
	if tail == nil || tail.version != walVersion || tail.end+int64(len(buf)) > tail.size {
		sg, err := s.newSegment(lo, int64(len(buf)))
		if err != nil {
			return fmt.Errorf("store raft logs %d-%d: %w", lo, hi, err)
		}
		s.mu.Lock()
		s.segs = append(s.segs, sg)
		s.mu.Unlock()
		tail = sg
	}
	if _, err := tail.f.WriteAt(buf, tail.end); err != nil {
		return fmt.Errorf("store raft logs %d-%d: %w", lo, hi, err)
	}
	if err := unix.Fdatasync(int(tail.f.Fd())); err != nil {
		return fmt.Errorf("store raft logs %d-%d: sync: %w", lo, hi, err)
	}
	s.mu.Lock()
	for _, r := range rel {
		tail.offs = append(tail.offs, tail.end+r)
	}
	tail.end += int64(len(buf))
	if s.first == 0 {
		s.first = lo
	}
	s.last = hi
	s.mu.Unlock()
	return nil
}

// truncateFrom removes index i and everything after it; s.first < i <=
// s.last. Callers hold wmu. Later segments go first, then the records in
// i's segment are zeroed, so a crash in between leaves a prefix of the old
// log, never old records after new ones.
func (s *LogStore) truncateFrom(i uint64) error {
	k := sort.Search(len(s.segs), func(k int) bool { return s.segs[k].base > i }) - 1
	if err := s.dropSegments(k + 1); err != nil {
		return err
	}
	sg := s.segs[k]
	off := sg.offs[i-sg.base]
	if err := sg.clearFrom(off); err != nil {
		return fmt.Errorf("truncate raft log from %d: %w", i, err)
	}
	s.mu.Lock()
	sg.offs = sg.offs[:i-sg.base]
	sg.end = off
	s.last = i - 1
	s.mu.Unlock()
	return nil
}

// dropSegments removes s.segs[k:] from the list and the disk. Callers hold
// wmu.
func (s *LogStore) dropSegments(k int) error {
	if k >= len(s.segs) {
		return nil
	}
	s.mu.Lock()
	gone := slices.Clone(s.segs[k:])
	s.segs = s.segs[:k]
	s.mu.Unlock()
	return s.removeFiles(gone)
}

func (s *LogStore) removeFiles(gone []*walSegment) error {
	for _, sg := range gone {
		sg.f.Close()
		if err := os.Remove(sg.path); err != nil {
			return fmt.Errorf("remove raft log segment: %w", err)
		}
	}
	return syncDir(s.dir)
}

// deleteAll empties the log. Callers hold wmu.
func (s *LogStore) deleteAll() error {
	if err := s.dropSegments(0); err != nil {
		return err
	}
	s.mu.Lock()
	s.first, s.last = 0, 0
	s.mu.Unlock()
	if _, ok := s.stable[walFirstKey]; ok {
		m := maps.Clone(s.stable)
		delete(m, walFirstKey)
		if err := s.saveStable(m); err != nil {
			return err
		}
		s.mu.Lock()
		s.stable = m
		s.mu.Unlock()
	}
	return nil
}

// DeleteRange implements raft.LogStore; the range is inclusive. Raft
// deletes a prefix after a snapshot, a suffix that conflicts with the
// leader's entries, or everything after installing a snapshot; a hole in
// the middle is refused.
func (s *LogStore) DeleteRange(lo, hi uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	from, to := max(lo, s.first), min(hi, s.last)
	if s.first == 0 || from > to {
		return nil
	}
	var err error
	switch {
	case from == s.first && to == s.last:
		err = s.deleteAll()
	case to == s.last:
		err = s.truncateFrom(from)
	case from == s.first:
		err = s.deletePrefix(to + 1)
	default:
		err = errors.New("the log keeps its indexes contiguous: no hole in the middle")
	}
	if err != nil {
		return fmt.Errorf("delete raft logs %d-%d: %w", from, to, err)
	}
	return nil
}

// deletePrefix makes first the first index; s.first < first <= s.last.
// The new first index is recorded before segments go, so a crash cannot
// bring back a shorter prefix than Raft was told. Callers hold wmu.
func (s *LogStore) deletePrefix(first uint64) error {
	m := maps.Clone(s.stable)
	m[walFirstKey] = binary.BigEndian.AppendUint64(nil, first)
	if err := s.saveStable(m); err != nil {
		return err
	}
	// Segments entirely below first go; the one holding first stays.
	k := sort.Search(len(s.segs), func(k int) bool { return s.segs[k].base > first }) - 1
	s.mu.Lock()
	s.stable = m
	s.first = first
	gone := slices.Clone(s.segs[:k])
	s.segs = slices.Delete(s.segs, 0, k)
	s.mu.Unlock()
	return s.removeFiles(gone)
}

// Set implements raft.StableStore.
func (s *LogStore) Set(key, val []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	m := maps.Clone(s.stable)
	m[string(key)] = bytes.Clone(val)
	if err := s.saveStable(m); err != nil {
		return fmt.Errorf("set raft stable key %q: %w", key, err)
	}
	s.mu.Lock()
	s.stable = m
	s.mu.Unlock()
	return nil
}

// Get implements raft.StableStore: a missing key is an empty value.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.stable[string(key)]), nil
}

// SetUint64 implements raft.StableStore.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore: a missing key is 0.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) == 0 {
		return 0, nil
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raft stable key %q: %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// logEncodingV1 is the first byte of every stored entry (in the WAL's
// records as in the Badger store's values).
const logEncodingV1 = 1

// encodeLog: version byte, index, term (uvarint), type byte, appended-at
// unix nanoseconds (varint; 0 for the zero time), data and extensions
// (uvarint length + bytes).
func encodeLog(l *raft.Log) []byte {
	return appendLog(make([]byte, 0, 1+3*binary.MaxVarintLen64+1+2*binary.MaxVarintLen32+len(l.Data)+len(l.Extensions)), l)
}

// appendLog appends encodeLog's encoding of l to b.
func appendLog(b []byte, l *raft.Log) []byte {
	b = append(b, logEncodingV1)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.AppendVarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

var errShortLog = errors.New("truncated entry")

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) == 0 || b[0] != logEncodingV1 {
		return fmt.Errorf("unknown log encoding (first byte of %d)", len(b))
	}
	b = b[1:]
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errShortLog
		}
		b = b[n:]
		return v, nil
	}
	bytesField := func() ([]byte, error) {
		n, err := uv()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, errShortLog
		}
		if n == 0 {
			return nil, nil
		}
		out := append([]byte(nil), b[:n]...)
		b = b[n:]
		return out, nil
	}
	var err error
	if l.Index, err = uv(); err != nil {
		return err
	}
	if l.Term, err = uv(); err != nil {
		return err
	}
	if len(b) == 0 {
		return errShortLog
	}
	l.Type = raft.LogType(b[0])
	b = b[1:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return errShortLog
	}
	b = b[n:]
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	if l.Data, err = bytesField(); err != nil {
		return err
	}
	if l.Extensions, err = bytesField(); err != nil {
		return err
	}
	if len(b) != 0 {
		return fmt.Errorf("%d trailing bytes", len(b))
	}
	return nil
}
