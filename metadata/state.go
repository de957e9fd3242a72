package metadata

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"
)

// State is the metadata state machine's data, stored in Badger: buckets,
// objects, multipart uploads and parts, the cluster map, metad members, the
// queue of segments and chunks to delete, the balancer's state, and indexes
// of the referenced segments by id, by node and by missing chunks (see
// keys.go for the keyspace, apply_index.go for the indexes).
//
// State knows nothing of Raft. ApplyBatch is the only way state changes
// (besides Restore); it is deterministic: given the same entries in the same
// order, every replica writes the same bytes. Queries answer from local
// state; linearizing them is the caller's job.
//
// Concurrency: ApplyBatch calls are serialized; queries and Snapshot may run
// concurrently with them and with each other; Restore excludes everything
// else (Badger's DropAll must not race with reads).
type State struct {
	db     *badger.DB
	logger *slog.Logger

	// mu is held shared by ApplyBatch, queries and Snapshot, and exclusively
	// by Restore and Close.
	mu sync.RWMutex
	// applyMu serializes ApplyBatch.
	applyMu sync.Mutex
	// applied mirrors m/applied once committed (handed to Badger; see
	// commitAsync).
	applied atomic.Uint64
	closed  bool
	// asyncTxn bounds the transactions commitAsync may commit: half of
	// Badger's own limits, so that a commit cannot fail for its size.
	asyncTxn txnSize

	// listSteps counts iterator Seek and Next calls made by listings, so
	// tests can check that a delimiter page does not walk every key.
	listSteps atomic.Int64
	// nodeScanBudget, when above 0, replaces defaultNodeScanBudget (tests
	// lower it to make short pages).
	nodeScanBudget int
}

// OpenState opens (creating if needed) the state stored by Badger in dir.
//
// Badger runs with SyncWrites=false: the Raft log is the durability point
// (MEASURED.md), so an applied batch may be lost in a crash and is then
// re-applied from the log; Sync makes everything applied so far durable
// before a snapshot lets the log be truncated.
func OpenState(dir string, logger *slog.Logger) (*State, error) {
	return openState(dir, logger, nil)
}

// openState is OpenState with a hook to adjust Badger's options (tests use
// small memtables, which also makes ErrTxnTooBig reachable).
func openState(dir string, logger *slog.Logger, tune func(*badger.Options)) (*State, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "metadata-state")
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithDetectConflicts(false). // one writer: ApplyBatch
		WithLogger(badgerLogger{logger})
	if tune != nil {
		tune(&opts)
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open metadata state in %s: %w", dir, err)
	}
	s := &State{db: db, logger: logger, asyncTxn: asyncTxnLimit(db.Opts().MemTableSize)}
	var applied uint64
	err = db.View(func(txn *badger.Txn) error {
		var err error
		applied, err = readU64(txn, keyApplied)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open metadata state in %s: read applied index: %w", dir, err)
	}
	s.applied.Store(applied)
	// The directory index and the node counts are derived from o/ and
	// seg/; a state from a version without them (or restored from one)
	// gets them before it serves.
	if err := s.ensureDerived(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open metadata state in %s: %w", dir, err)
	}
	return s, nil
}

// Close closes Badger. The State must not be used afterwards.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close metadata state: %w", err)
	}
	return nil
}

// AppliedIndex is the index of the last Raft entry whose effects are
// committed to Badger (0 for a fresh state). It is not necessarily durable
// until Sync.
func (s *State) AppliedIndex() uint64 { return s.applied.Load() }

// Sync makes everything applied so far durable. Call it before a snapshot
// is taken, since the snapshot lets Raft truncate the log the unsynced
// writes could otherwise be replayed from.
func (s *State) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.awaitCommits()
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync metadata state: %w", err)
	}
	return nil
}

// The snapshot stream format:
//
//	magic "cairnms1"
//	records: uvarint key length (> 0), key, uvarint value length, value
//	uvarint 0 (end of records)
//	CRC-32C (Castagnoli), 4 bytes big-endian, of everything before it
//
// Records are in key order; m/applied is one of them.
var snapshotMagic = []byte("cairnms1")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maxSnapshotKey bounds a key read back from a snapshot (Badger's own limit
// is 65000 bytes).
const maxSnapshotKey = 1 << 16

// maxSnapshotValue bounds a value read back from a snapshot.
const maxSnapshotValue = 1 << 30

// Snapshot writes a consistent dump of all state, as of one Badger read
// timestamp, to w. It may run concurrently with ApplyBatch; the dump then
// holds exactly the batches committed before it started, and its m/applied
// says which.
func (s *State) Snapshot(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	if _, err := bw.Write(snapshotMagic); err != nil {
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	var lenBuf [binary.MaxVarintLen64]byte
	writeBytes := func(b []byte) error {
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := bw.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := writeBytes(item.Key()); err != nil {
				return err
			}
			err := item.Value(func(v []byte) error { return writeBytes(v) })
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	if err := bw.WriteByte(0); err != nil {
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	return nil
}

// Restore replaces all state with a dump written by Snapshot. It must not
// run concurrently with ApplyBatch (Raft guarantees this); queries wait.
//
// The applied index is written last, after the dump's checksum is verified:
// if Restore fails midway the state holds a partial dump with applied index
// 0 and must be restored again before use.
func (s *State) Restore(r io.Reader) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.restore(r); err != nil {
		return fmt.Errorf("restore metadata snapshot: %w", err)
	}
	return nil
}

func (s *State) restore(r io.Reader) error {
	crc := crc32.New(crcTable)
	br := bufio.NewReaderSize(r, 256<<10)
	tr := io.TeeReader(br, crc)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if string(magic) != string(snapshotMagic) {
		return fmt.Errorf("not a metadata snapshot (header %q)", magic)
	}
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("drop old state: %w", err)
	}
	s.applied.Store(0)
	byteReader := &teeByteReader{r: br, crc: crc}
	readBytes := func(max uint64) ([]byte, error) {
		n, err := binary.ReadUvarint(byteReader)
		if err != nil {
			return nil, err
		}
		if n > max {
			return nil, fmt.Errorf("record of %d bytes exceeds %d", n, max)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(tr, b)
		return b, err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	var applied []byte
	var count int
	for {
		key, err := readBytes(maxSnapshotKey)
		if err != nil {
			return fmt.Errorf("read record %d key: %w", count, unexpectedEOF(err))
		}
		if len(key) == 0 {
			break
		}
		val, err := readBytes(maxSnapshotValue)
		if err != nil {
			return fmt.Errorf("read record %d value: %w", count, unexpectedEOF(err))
		}
		count++
		if string(key) == string(keyApplied) {
			applied = val
			continue
		}
		if err := wb.Set(key, val); err != nil {
			return fmt.Errorf("write record %d: %w", count, err)
		}
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return fmt.Errorf("read checksum: %w", unexpectedEOF(err))
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("checksum mismatch: stream says %08x, data is %08x", got, want)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	var index uint64
	if applied != nil {
		var err error
		if index, err = decodeU64(applied); err != nil {
			return err
		}
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyApplied, applied) }); err != nil {
			return fmt.Errorf("write applied index: %w", err)
		}
	}
	s.applied.Store(index)
	s.logger.Info("restored metadata snapshot", "records", count, "applied_index", index)
	// A snapshot from a member of an earlier version lacks derived data.
	return s.ensureDerived()
}

// ensureDerived brings the derived indexes up to date with the state.
func (s *State) ensureDerived() error {
	if err := s.ensureDirIndex(); err != nil {
		return err
	}
	if err := s.ensureBucketUsage(); err != nil {
		return err
	}
	return s.ensureNodeUsage()
}

// teeByteReader feeds single bytes read for varints into the checksum.
type teeByteReader struct {
	r   *bufio.Reader
	crc io.Writer
}

func (t *teeByteReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.crc.Write([]byte{b})
	}
	return b, err
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readU64 reads an 8-byte counter; a missing key reads as 0.
func readU64(txn *badger.Txn, key []byte) (uint64, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		var err error
		v, err = decodeU64(b)
		return err
	})
	return v, err
}

// getProto reads key into m; found is false (and m untouched) when the key
// does not exist.
func getProto(txn *badger.Txn, key []byte, m proto.Message) (found bool, err error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = item.Value(func(b []byte) error { return grpcbuf.UnmarshalUnchecked(b, m) })
	if err != nil {
		return false, fmt.Errorf("read %q: %w", key, err)
	}
	return true, nil
}

// marshal is deterministic (map fields in key order), so replicas store
// identical bytes; the generated code's encoding of a stored value
// (internal/grpcbuf) is this one's, byte for byte.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// badgerLogger sends Badger's log to slog. Badger's Info lines (compaction,
// value log housekeeping) go to Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(trimNL(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(trimNL(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Infof(f string, a ...any)    { b.Debugf(f, a...) }
func (b badgerLogger) Debugf(f string, a ...any) {
	if b.l.Enabled(context.Background(), slog.LevelDebug) {
		b.l.Debug(trimNL(fmt.Sprintf(f, a...)))
	}
}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
