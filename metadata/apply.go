package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Entry is one command of a committed Raft log entry. A Raft entry usually
// holds one command; one written by the leader's proposal batcher
// (propose.go) holds several, which reach ApplyBatch as consecutive Entries
// with the same Index.
type Entry struct {
	// Index is the Raft log index of the entry holding the command; indices
	// never decrease within a batch, and Entries sharing an index are the
	// commands of one Raft entry, in their order there.
	Index uint64
	// Cmd is the decoded command. A nil Cmd or one without an operation is
	// refused with ErrInvalidArgument (the Raft side should never commit
	// one).
	Cmd *metadatapb.Command
	// owned: Cmd is ApplyBatch's alone (fsm decodes it from the log for
	// this call), so the state machine may store and return Cmd's messages,
	// setting the fields it records, instead of copies of them (copying a
	// committed object was ~2% of a member's CPU per commit). Otherwise
	// Cmd is left as it was.
	owned bool
}

// Result is the outcome of applying one Entry.
//
// Resp is the command's response message:
//
//	CreateBucket       *metadatapb.CreateBucketResponse
//	DeleteBucket       *metadatapb.DeleteBucketResponse
//	CommitObject       *metadatapb.CommitObjectResponse
//	DeleteObject       *metadatapb.DeleteObjectResponse
//	CreateMultipart    *metadatapb.CreateMultipartResponse
//	PutPart            *metadatapb.PutPartResponse
//	CompleteMultipart  *metadatapb.CompleteMultipartResponse
//	AbortMultipart     *metadatapb.AbortMultipartResponse
//	RegisterNode       *metadatapb.RegisterNodeResponse
//	SetMemberAddress   *metadatapb.MetadMember (as recorded)
//	Bootstrap          *metadatapb.ClusterMap (after the command)
//	SetNodeUsage       *metadatapb.Node (as recorded)
//	SetNodeState       *metadatapb.Node (as recorded)
//	MarkChunks         *metadatapb.MarkChunks (only the chunks actually marked)
//	CommitPlacement    *metadatapb.Segment (as recorded, new placement)
//	AckGC              *metadatapb.AckGC (only the keys that existed)
//	SetRebalance       *metadatapb.SetRebalance (as recorded)
//
// Err is a metadata condition (a *metaerr.Error, possibly wrapped with
// metaerr.Detailed) when the command was refused; the entry then changed
// nothing but still counts as applied. Any other error means the State
// itself failed (I/O, corrupt data): the entry and the rest of the batch
// were not applied and the caller must stop applying (crash the FSM).
type Result struct {
	Resp proto.Message
	Err  error
	// Skipped: the entry's index was at or below the applied index (log
	// replay after a restart); it was not applied again and Resp and Err
	// are nil.
	Skipped bool
}

// Limits checked by the state machine so no command can make Badger refuse
// a key (its limit is 65000 bytes). S3's own limit on keys is 1024 bytes.
const (
	maxBucketName = 1024
	maxObjectKey  = 1024
	maxIDLen      = 1024
	maxPartNumber = 10000
)

// ApplyBatch applies entries in one Badger transaction together with the
// last applied index. Entries at or below the stored applied index are
// skipped (log replay after restart). Each entry is all-or-nothing: its
// writes are staged and reach the transaction only if the command succeeds,
// so a refused command leaves the others in the batch unaffected. If Badger
// says the transaction is too big, the batch is split in halves (still in
// order, each half atomic) down to single Raft entries, never between
// commands of one Raft entry (the applied index could not say how much of
// it was applied); a single Raft entry too big for a transaction has all
// its commands refused with ErrInvalidArgument.
//
// It returns one Result per entry. Calls are serialized.
func (s *State) ApplyBatch(entries []Entry) []Result {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()

	results := make([]Result, len(entries))
	// Keep only entries above the applied index, in order; commands of
	// one Raft entry share its index.
	todo := make([]Entry, 0, len(entries))
	pos := make([]int, 0, len(entries))
	applied := s.applied.Load()
	last := applied
	for i, e := range entries {
		if e.Index <= applied || e.Index < last {
			results[i].Skipped = true
			continue
		}
		last = e.Index
		todo = append(todo, e)
		pos = append(pos, i)
	}
	if len(todo) == 0 {
		return results
	}
	rs := make([]Result, len(todo))
	if err := s.applyChunk(todo, rs); err != nil {
		s.logger.Error("apply failed; state machine cannot continue", "first_index", todo[0].Index, "err", err)
	}
	for j, i := range pos {
		results[i] = rs[j]
	}
	return results
}

// applyChunk applies es in one transaction, splitting on ErrTxnTooBig. On
// any other failure it fills every result of es not yet committed with the
// error and returns it.
func (s *State) applyChunk(es []Entry, rs []Result) error {
	err := s.applyTxn(es, rs)
	if err == nil {
		return nil
	}
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return failAll(rs, err)
	}
	mid := splitPoint(es)
	if mid == 0 {
		// One Raft entry: refuse its commands together.
		index := es[0].Index
		s.logger.Warn("raft entry too large for one transaction; refused", "index", index, "commands", len(es))
		if err := s.commitApplied(index); err != nil {
			return failAll(rs, err)
		}
		for i := range rs {
			rs[i] = Result{Err: metaerr.Detailed(metaerr.ErrInvalidArgument, "command at index %d too large for one transaction", index)}
		}
		return nil
	}
	if err := s.applyChunk(es[:mid], rs[:mid]); err != nil {
		return failAll(rs[mid:], err)
	}
	return s.applyChunk(es[mid:], rs[mid:])
}

// splitPoint is where to cut es in two without separating commands of one
// Raft entry, as near the middle as possible; 0 when es is one Raft entry.
func splitPoint(es []Entry) int {
	mid := len(es) / 2
	for i := max(mid, 1); i < len(es); i++ {
		if es[i].Index != es[i-1].Index {
			return i
		}
	}
	for i := mid - 1; i > 0; i-- {
		if es[i].Index != es[i-1].Index {
			return i
		}
	}
	return 0
}

func failAll(rs []Result, err error) error {
	for i := range rs {
		rs[i] = Result{Err: err}
	}
	return err
}

// applyTxn applies es in one transaction and commits it with the applied
// index. On error nothing is committed.
func (s *State) applyTxn(es []Entry, rs []Result) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	// Commands of one Raft entry share its index, so they continue one
	// sequence of gc/ keys (a command alone starts at 0, as it always has).
	var gcSeq uint32
	// One stage serves every command, emptied between them: a map per
	// command, grown key by key, was ~15% of the bytes State.ApplyBatch
	// allocated in BenchmarkCommitObject3Nodes.
	st := &stage{txn: txn}
	for i, e := range es {
		if i == 0 || e.Index != es[i-1].Index {
			gcSeq = 0
		}
		st.reset()
		a := &applier{st: st, now: e.Cmd.GetProposedUnixNano(), index: e.Index, gcSeq: gcSeq, owned: e.owned}
		resp, err := a.apply(e.Cmd)
		gcSeq = a.gcSeq
		if err != nil {
			var cond *metaerr.Error
			if errors.As(err, &cond) {
				rs[i] = Result{Err: err}
				continue
			}
			return fmt.Errorf("apply entry %d: %w", e.Index, err)
		}
		if err := st.flush(); err != nil {
			return fmt.Errorf("apply entry %d: %w", e.Index, err)
		}
		rs[i] = Result{Resp: resp}
	}
	if err := st.writeUsage(); err != nil {
		return err
	}
	last := es[len(es)-1].Index
	if err := setApplied(txn, last); err != nil {
		return err
	}
	if st.size.within(s.asyncTxn) {
		s.commitAsync(txn, es[0].Index, last)
	} else if err := txn.Commit(); err != nil {
		return fmt.Errorf("commit entries %d..%d: %w", es[0].Index, last, err)
	}
	s.applied.Store(last)
	return nil
}

// commitAsync commits txn without waiting for Badger to write it, so the
// results of its entries go out without that wait on every answer's path
// (docs/perf/metad.md §14). Nothing can read around the write: a Badger
// read timestamp waits until every commit before it is written, so every
// later transaction, query and snapshot dump sees it, and Sync waits for
// it before Raft may drop the log it came from. A crash before the write
// loses it with m/applied, and the log replays it, as for any write not
// yet synced. txn must be within s.asyncTxn: at its commit Badger checks
// the size again, and a failure then could not be split and retried.
func (s *State) commitAsync(txn *badger.Txn, first, last uint64) {
	txn.CommitWith(func(err error) {
		if err != nil {
			// The state machine cannot go on past an entry it failed to
			// write (as fsm.ApplyBatch on a synchronous failure); the
			// entries stay in the Raft log and are applied again at the
			// next start.
			panic(fmt.Sprintf("metadata: writing raft entries %d..%d to the state failed: %v", first, last, err))
		}
	})
}

// awaitCommits waits until every commit handed to Badger is written.
func (s *State) awaitCommits() {
	// A read transaction's timestamp waits for them (oracle.readTs).
	s.db.NewTransaction(false).Discard()
}

// txnSize is what a transaction holds, as Badger counts it closely enough
// for a bound: entries, and bytes of keys and values.
type txnSize struct{ entries, bytes int64 }

// txnSizeSlack covers the few small keys written beside the stage's:
// m/applied and the derived indexes' markers, Badger's own commit marker.
var txnSizeSlack = txnSize{entries: 16, bytes: 4 << 10}

// asyncTxnLimit is half of Badger's transaction limits for a memtable of
// memTable bytes (badger.Open: 15% of the memtable, and that over the
// skiplist's largest node for entries).
func asyncTxnLimit(memTable int64) txnSize {
	bytes := memTable * 15 / 100
	return txnSize{entries: bytes / int64(skl.MaxNodeSize) / 2, bytes: bytes / 2}
}

func (t *txnSize) add(key, val []byte) {
	t.entries++
	// Badger adds a version to each key and a few bytes of header.
	t.bytes += int64(len(key)+len(val)) + 16
}

func (t txnSize) within(limit txnSize) bool {
	return t.entries+txnSizeSlack.entries < limit.entries && t.bytes+txnSizeSlack.bytes < limit.bytes
}

// commitApplied records index as applied without any other change.
func (s *State) commitApplied(index uint64) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return setApplied(txn, index) }); err != nil {
		return err
	}
	s.applied.Store(index)
	return nil
}

// setApplied stores the applied index and marks the derived indexes
// (directory index, node and bucket counts) current at it.
func setApplied(txn *badger.Txn, index uint64) error {
	if err := txn.Set(keyApplied, appendU64(nil, index)); err != nil {
		return fmt.Errorf("store applied index %d: %w", index, err)
	}
	if err := setDirIndexApplied(txn, index); err != nil {
		return err
	}
	if err := setBucketUsageApplied(txn, index); err != nil {
		return err
	}
	return setNodeUsageApplied(txn, index)
}

// stage holds one entry's writes until the command has succeeded, so a
// refused command leaves no trace in the batch's transaction. Point reads
// see the staged writes; scans read the transaction only, so every command
// does all its scans before its first write (scan enforces this).
//
// One stage serves a whole transaction. The keys and values it hands to
// Badger, and Badger's entries for them, are carved from chunks it keeps
// for that transaction: Badger holds on to all three until the commit, and
// an allocation for each of them (~10 keys per CommitObject on every
// member) was a fifth of the objects the state machine allocated.
type stage struct {
	txn *badger.Txn
	// writes holds the command's staged writes in the order first
	// written; at maps a staged key (a string view of writes[i].key) to i.
	writes []stagedWrite
	at     map[string]int
	// mem is the unused rest of the current chunk of staged key and value
	// bytes. Bytes carved from it are never written again, so the chunks
	// stay valid for the transaction's lifetime and the map keys above may
	// alias them.
	mem []byte
	// ents is the current chunk of Badger entries (SetEntry keeps the
	// pointer until the commit, so a chunk never grows in place).
	ents []badger.Entry
	// scratch is where a command builds a key that is only looked up or
	// that set copies.
	scratch []byte
	// buckets holds the bucket keys this transaction is known to hold
	// (read from it, not staged): every command of a batch checks its
	// bucket, and a Badger Get that misses the memtables looks in every
	// level. Emptied whenever a flush writes a bucket key.
	buckets map[string]struct{}
	// usage is the command's changes to the node counts, txnUsage those of
	// the commands already in the transaction (nodeusage.go).
	usage, txnUsage map[string]chunkCount
	// bucketUsage and txnBucketUsage are the same for the buckets'
	// counts (bucketusage.go).
	bucketUsage, txnBucketUsage map[string]chunkCount
	// settings holds the settings of the buckets this transaction read,
	// like buckets; emptied whenever a flush writes a bucket key.
	settings map[string]bucketSettings
	// level is the lowest feature level of the members, as the state
	// records them, once read (levelRead) for a quota; forgotten whenever
	// a flush writes a member key (membersLevel).
	level     uint32
	levelRead bool
	// size is what the stage has written to the transaction.
	size txnSize
}

type stagedWrite struct {
	key, val []byte
	del      bool
}

// Chunk sizes of a stage: a CommitObject stages ~500 bytes in ~10 keys.
const (
	stageMemChunk   = 16 << 10
	stageEntryChunk = 64
)

// reset drops the staged writes of the previous command, which are either
// in the transaction (flushed) or refused.
func (st *stage) reset() {
	clear(st.usage)
	clear(st.bucketUsage)
	if len(st.writes) > 64 {
		// clear costs the map's size, which a big command leaves large.
		st.writes, st.at = nil, nil
		return
	}
	clear(st.at)
	st.writes = st.writes[:0]
}

// space returns an empty slice with room for n bytes that stays valid
// until the transaction ends; appending up to n bytes to it writes nothing
// else.
func (st *stage) space(n int) []byte {
	if n > stageMemChunk/8 {
		return make([]byte, 0, n)
	}
	if len(st.mem) < n {
		st.mem = make([]byte, stageMemChunk)
	}
	b := st.mem[:0:n]
	st.mem = st.mem[n:]
	return b
}

// keep copies b into the transaction's memory.
func (st *stage) keep(b []byte) []byte { return append(st.space(len(b)), b...) }

// staged returns the write staged for key, if any.
func (st *stage) staged(key []byte) (stagedWrite, bool) {
	i, ok := st.at[string(key)]
	if !ok {
		return stagedWrite{}, false
	}
	return st.writes[i], true
}

// getRaw returns the value of key as the command sees it.
func (st *stage) getRaw(key []byte) ([]byte, bool, error) {
	if w, ok := st.staged(key); ok {
		return w.val, !w.del, nil
	}
	item, err := st.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

// has reports whether key exists as the command sees it, without reading
// its value.
func (st *stage) has(key []byte) (bool, error) {
	if w, ok := st.staged(key); ok {
		return !w.del, nil
	}
	_, err := st.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// hasBucket is has for a bucket key, remembering the buckets found in the
// transaction.
func (st *stage) hasBucket(key []byte) (bool, error) {
	if w, ok := st.staged(key); ok {
		return !w.del, nil
	}
	if _, ok := st.buckets[string(key)]; ok {
		return true, nil
	}
	found, err := st.has(key)
	if found {
		if st.buckets == nil {
			st.buckets = make(map[string]struct{}, 1)
		}
		st.buckets[string(key)] = struct{}{}
	}
	return found, err
}

func (st *stage) get(key []byte, m proto.Message) (bool, error) {
	if w, ok := st.staged(key); ok {
		if w.del {
			return false, nil
		}
		if err := grpcbuf.UnmarshalUnchecked(w.val, m); err != nil {
			return false, fmt.Errorf("read staged %q: %w", key, err)
		}
		return true, nil
	}
	return getProto(st.txn, key, m)
}

// set stages val under key. The stage keeps a copy of key (the caller may
// reuse it) and val itself, which must not change afterwards.
func (st *stage) set(key, val []byte) { st.stageWrite(key, val, false) }

func (st *stage) del(key []byte) { st.stageWrite(key, nil, true) }

func (st *stage) stageWrite(key, val []byte, del bool) {
	if i, ok := st.at[string(key)]; ok {
		st.writes[i].val, st.writes[i].del = val, del
		return
	}
	if st.at == nil {
		st.at = make(map[string]int, 16)
	}
	// (SliceData of an empty key may be nil; String of nil and 0 is "".)
	k := st.keep(key)
	st.at[unsafe.String(unsafe.SliceData(k), len(k))] = len(st.writes)
	st.writes = append(st.writes, stagedWrite{key: k, val: val, del: del})
}

// put stages m under key. Marshalling fails only on what the command
// carried (proto3 strings must be valid UTF-8), so it refuses the command.
func (st *stage) put(key []byte, m proto.Message) error {
	size := grpcbuf.Size(m)
	b, err := grpcbuf.AppendSized(st.space(size), m, size, marshalOpts.Deterministic)
	if err != nil {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "store %T: %v", m, err)
	}
	st.set(key, b)
	return nil
}

// marshalSized appends m to b (b usually has room for it).
func marshalSized(b []byte, m proto.Message) ([]byte, error) {
	return grpcbuf.Append(b, m, marshalOpts.Deterministic)
}

// scan calls fn for every key with prefix, in order, as the transaction
// has them. It must run before the command stages any write.
func (st *stage) scan(prefix []byte, fn func(key, val []byte) error) error {
	if len(st.writes) > 0 {
		panic("metadata: scan after staged writes in one command")
	}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := st.txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		err := item.Value(func(v []byte) error { return fn(item.Key(), v) })
		if err != nil {
			return err
		}
	}
	return nil
}

// exists reports whether some key has prefix.
func (st *stage) exists(prefix []byte) (bool, error) {
	if len(st.writes) > 0 {
		panic("metadata: scan after staged writes in one command")
	}
	return prefixExists(st.txn, prefix), nil
}

// prefixExists reports whether txn sees a key with prefix.
func prefixExists(txn *badger.Txn, prefix []byte) bool {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	it.Seek(prefix)
	return it.ValidForPrefix(prefix)
}

// flush moves the staged writes into the transaction.
func (st *stage) flush() error {
	for _, w := range st.writes {
		if bytes.HasPrefix(w.key, prefixBucket) {
			clear(st.buckets)
			clear(st.settings)
		}
		if bytes.HasPrefix(w.key, prefixMember) {
			st.levelRead = false
		}
		var err error
		st.size.add(w.key, w.val)
		if w.del {
			err = st.txn.Delete(w.key)
		} else {
			if len(st.ents) == cap(st.ents) {
				st.ents = make([]badger.Entry, 0, stageEntryChunk)
			}
			st.ents = append(st.ents, badger.Entry{Key: w.key, Value: w.val})
			err = st.txn.SetEntry(&st.ents[len(st.ents)-1])
		}
		if err != nil {
			return err
		}
	}
	st.mergeUsage()
	return nil
}

// applier applies one command. now is the command's proposed time, the
// only clock the state machine uses.
type applier struct {
	st    *stage
	now   int64
	index uint64
	gcSeq uint32
	// owned: the command is the state machine's own (see Entry.owned).
	owned bool
}

func (a *applier) apply(cmd *metadatapb.Command) (proto.Message, error) {
	switch op := cmd.GetOp().(type) {
	case *metadatapb.Command_Bootstrap:
		return a.bootstrap(op.Bootstrap)
	case *metadatapb.Command_CreateBucket:
		return a.createBucket(op.CreateBucket)
	case *metadatapb.Command_DeleteBucket:
		return a.deleteBucket(op.DeleteBucket)
	case *metadatapb.Command_CommitObject:
		return a.commitObject(op.CommitObject)
	case *metadatapb.Command_DeleteObject:
		return a.deleteObject(op.DeleteObject)
	case *metadatapb.Command_CreateMultipart:
		return a.createMultipart(op.CreateMultipart)
	case *metadatapb.Command_PutPart:
		return a.putPart(op.PutPart)
	case *metadatapb.Command_CompleteMultipart:
		return a.completeMultipart(op.CompleteMultipart)
	case *metadatapb.Command_AbortMultipart:
		return a.abortMultipart(op.AbortMultipart)
	case *metadatapb.Command_RegisterNode:
		return a.registerNode(op.RegisterNode)
	case *metadatapb.Command_SetNodeUsage:
		return a.setNodeUsage(op.SetNodeUsage)
	case *metadatapb.Command_SetMemberAddress:
		return a.setMemberAddress(op.SetMemberAddress)
	case *metadatapb.Command_SetNodeState:
		return a.setNodeState(op.SetNodeState)
	case *metadatapb.Command_MarkChunks:
		return a.markChunks(op.MarkChunks)
	case *metadatapb.Command_CommitPlacement:
		return a.commitPlacement(op.CommitPlacement)
	case *metadatapb.Command_AckGc:
		return a.ackGC(op.AckGc)
	case *metadatapb.Command_SetRebalance:
		return a.setRebalance(op.SetRebalance)
	case *metadatapb.Command_SetBucketPolicy:
		return a.setBucketPolicy(op.SetBucketPolicy)
	case *metadatapb.Command_SetBucketLifecycle:
		return a.setBucketLifecycle(op.SetBucketLifecycle)
	case *metadatapb.Command_SetObjectTags:
		return a.setObjectTags(op.SetObjectTags)
	case *metadatapb.Command_SetBucketTags:
		return a.setBucketTags(op.SetBucketTags)
	case *metadatapb.Command_SetBucketCors:
		return a.setBucketCors(op.SetBucketCors)
	case *metadatapb.Command_SetBucketQuota:
		return a.setBucketQuota(op.SetBucketQuota)
	case *metadatapb.Command_SetBucketEncryption:
		return a.setBucketEncryption(op.SetBucketEncryption)
	case *metadatapb.Command_SetBucketVersioning:
		return a.setBucketVersioning(op.SetBucketVersioning)
	case *metadatapb.Command_SetBucketObjectLock:
		return a.setBucketObjectLock(op.SetBucketObjectLock)
	case *metadatapb.Command_SetObjectRetention:
		return a.setObjectRetention(op.SetObjectRetention)
	case *metadatapb.Command_SetObjectLegalHold:
		return a.setObjectLegalHold(op.SetObjectLegalHold)
	case *metadatapb.Command_CreateAccessKey:
		return a.createAccessKey(op.CreateAccessKey)
	case *metadatapb.Command_UpdateAccessKey:
		return a.updateAccessKey(op.UpdateAccessKey)
	case *metadatapb.Command_DeleteAccessKey:
		return a.deleteAccessKey(op.DeleteAccessKey)
	default:
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "command %T has no known operation", op)
	}
}

// queueGC records segments whose chunks are to be deleted. Records without
// segments (inline objects) are not written.
func (a *applier) queueGC(e *metadatapb.GCEntry) error {
	_, err := a.queueGCSeq(e, 0)
	return err
}

// queueGCSeq queues e under a fresh gc/ key with flags or-ed into its seq,
// and returns the key (nil when nothing was queued).
func (a *applier) queueGCSeq(e *metadatapb.GCEntry, flags uint32) ([]byte, error) {
	if len(e.GetSegments()) == 0 {
		return nil, nil
	}
	e.QueuedUnixNano = a.now
	key := gcKey(a.now, a.index, a.gcSeq|flags)
	a.gcSeq++
	return key, a.st.put(key, e)
}

func (a *applier) queueObjectGC(o *metadatapb.Object) error {
	return a.queueGC(&metadatapb.GCEntry{
		Bucket: o.GetBucket(), Key: o.GetKey(), VersionId: o.GetVersionId(), Segments: o.GetSegments(),
	})
}

func (a *applier) queuePartGC(bucket, key string, p *metadatapb.Part) error {
	return a.queueGC(&metadatapb.GCEntry{
		Bucket: bucket, Key: key, UploadId: p.GetUploadId(), PartNumber: p.GetNumber(), Segments: p.GetSegments(),
	})
}

// ---------------------------------------------------------------- cluster

func (a *applier) bootstrap(req *metadatapb.Bootstrap) (proto.Message, error) {
	sch := req.GetDefaultScheme()
	// The limits of chunk.Scheme: 1 ≤ k ≤ 16, 0 ≤ m ≤ 8.
	if sch == nil || sch.GetK() < 1 || sch.GetK() > 16 || sch.GetM() > 8 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "bootstrap: default scheme %d+%d: want 1 ≤ k ≤ 16 and m ≤ 8", sch.GetK(), sch.GetM())
	}
	cm, err := a.clusterMap()
	if err != nil {
		return nil, err
	}
	if cm.DefaultScheme != nil {
		return cm, nil // already bootstrapped: no-op
	}
	cm.DefaultScheme = &metadatapb.Scheme{K: sch.GetK(), M: sch.GetM()}
	cm.Epoch++ // cached maps without a scheme must refresh
	if err := a.st.put(keyScheme, cm.DefaultScheme); err != nil {
		return nil, err
	}
	a.st.set(keyEpoch, appendU64(nil, cm.Epoch))
	return cm, nil
}

// clusterMap reads the cluster map as the transaction has it (a scan:
// call before staging writes).
func (a *applier) clusterMap() (*metadatapb.ClusterMap, error) {
	return readClusterMap(a.st.txn, a.st.scan)
}

func (a *applier) registerNode(req *metadatapb.RegisterNodeRequest) (proto.Message, error) {
	n := req.GetNode()
	if n.GetId() == "" || len(n.GetId()) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "register node: id must be 1..%d bytes", maxIDLen)
	}
	cm, err := a.clusterMap()
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(cm.Nodes, n.GetId(), func(x *metadatapb.Node, id string) int { return strings.Compare(x.GetId(), id) })
	var node *metadatapb.Node
	changed := !found
	if found {
		node = cm.Nodes[i]
		changed = node.Address != n.GetAddress() || node.Zone != n.GetZone() || node.Rack != n.GetRack() ||
			node.CapacityBytes != n.GetCapacityBytes()
	} else {
		node = &metadatapb.Node{Id: n.GetId(), State: metadatapb.NodeState_NODE_STATE_UP}
		cm.Nodes = slices.Insert(cm.Nodes, i, node)
	}
	node.Address, node.Zone, node.Rack = n.GetAddress(), n.GetZone(), n.GetRack()
	node.CapacityBytes, node.UsedBytes, node.ChunkCount = n.GetCapacityBytes(), n.GetUsedBytes(), n.GetChunkCount()
	node.LastHeartbeatUnixNano = 0 // heartbeats are not replicated
	if err := a.st.put(nodeKey(node.Id), node); err != nil {
		return nil, err
	}
	if changed {
		cm.Epoch++
		a.st.set(keyEpoch, appendU64(nil, cm.Epoch))
	}
	return &metadatapb.RegisterNodeResponse{ClusterMap: cm}, nil
}

func (a *applier) setNodeUsage(req *metadatapb.SetNodeUsage) (proto.Message, error) {
	node := &metadatapb.Node{}
	found, err := a.st.get(nodeKey(req.GetId()), node)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchNode, "node %q", req.GetId())
	}
	node.CapacityBytes, node.UsedBytes = req.GetCapacityBytes(), req.GetUsedBytes()
	if err := a.st.put(nodeKey(node.Id), node); err != nil {
		return nil, err
	}
	return node, nil
}

func (a *applier) setMemberAddress(req *metadatapb.SetMemberAddress) (proto.Message, error) {
	if req.GetId() == "" || len(req.GetId()) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set member address: id must be 1..%d bytes", maxIDLen)
	}
	m := &metadatapb.MetadMember{Id: req.GetId(), GrpcAddress: req.GetGrpcAddress(), FeatureLevel: req.GetFeatureLevel()}
	if err := a.st.put(memberKey(m.Id), m); err != nil {
		return nil, err
	}
	return m, nil
}

// ---------------------------------------------------------------- buckets

func (a *applier) createBucket(req *metadatapb.CreateBucketRequest) (proto.Message, error) {
	name := req.GetName()
	if name == "" || len(name) > maxBucketName || strings.IndexByte(name, 0) >= 0 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "create bucket: name must be 1..%d bytes without NUL", maxBucketName)
	}
	found, err := a.st.get(bucketKey(name), &metadatapb.Bucket{})
	if err != nil {
		return nil, err
	}
	if found {
		return nil, metaerr.Detailed(metaerr.ErrBucketAlreadyOwnedByYou, "bucket %q", name)
	}
	b := &metadatapb.Bucket{Name: name, CreatedUnixNano: a.now, Region: req.GetRegion()}
	if req.GetObjectLockEnabled() {
		b.Versioning = metadatapb.VersioningStatus_VERSIONING_STATUS_ENABLED
		b.ObjectLock = &metadatapb.ObjectLockConfiguration{Enabled: true}
	}
	if owner := req.GetOwnerKey(); owner != "" {
		if err := a.grantOwner(owner, name); err != nil {
			return nil, err
		}
	}
	if err := a.st.put(bucketKey(name), b); err != nil {
		return nil, err
	}
	return &metadatapb.CreateBucketResponse{Bucket: b}, nil
}

// maxBucketPolicy bounds a stored bucket policy, as S3 does (20 KiB).
const maxBucketPolicy = 20 << 10

// setBucketPolicy replaces a bucket's policy ("" deletes it). The gateway
// parses and normalizes policies; the state machine only stores them.
func (a *applier) setBucketPolicy(req *metadatapb.SetBucketPolicyRequest) (proto.Message, error) {
	if len(req.GetPolicy()) > maxBucketPolicy {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket policy: a policy may have at most %d bytes", maxBucketPolicy)
	}
	b, err := a.updateBucket(req.GetName(), func(b *metadatapb.Bucket) { b.Policy = req.GetPolicy() })
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetBucketPolicyResponse{Bucket: b}, nil
}

// maxBucketTags is S3's limit of tags per bucket.
const maxBucketTags = 50

// setBucketTags replaces a bucket's tags (none deletes them).
func (a *applier) setBucketTags(req *metadatapb.SetBucketTagsRequest) (proto.Message, error) {
	if err := checkTagLimits("set bucket tags", req.GetTags(), maxBucketTags); err != nil {
		return nil, err
	}
	b, err := a.updateBucket(req.GetName(), func(b *metadatapb.Bucket) { b.Tags = req.GetTags() })
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetBucketTagsResponse{Bucket: b}, nil
}

// maxBucketLifecycle bounds a stored lifecycle configuration (1000 rules
// of a few hundred bytes each).
const maxBucketLifecycle = 1 << 20

// setBucketLifecycle replaces a bucket's lifecycle configuration (""
// deletes it). The gateway parses it; the leader carries it out.
func (a *applier) setBucketLifecycle(req *metadatapb.SetBucketLifecycleRequest) (proto.Message, error) {
	if len(req.GetLifecycle()) > maxBucketLifecycle {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket lifecycle: a configuration may have at most %d bytes", maxBucketLifecycle)
	}
	b, err := a.updateBucket(req.GetName(), func(b *metadatapb.Bucket) { b.Lifecycle = req.GetLifecycle() })
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetBucketLifecycleResponse{Bucket: b}, nil
}

// maxBucketCors bounds a stored CORS configuration (S3's 64 KiB).
const maxBucketCors = 64 << 10

// setBucketCors replaces a bucket's CORS configuration ("" deletes it).
// The gateway parses it and answers browsers by it.
func (a *applier) setBucketCors(req *metadatapb.SetBucketCorsRequest) (proto.Message, error) {
	if len(req.GetCors()) > maxBucketCors {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket cors: a configuration may have at most %d bytes", maxBucketCors)
	}
	b, err := a.updateBucket(req.GetName(), func(b *metadatapb.Bucket) { b.Cors = req.GetCors() })
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetBucketCorsResponse{Bucket: b}, nil
}

// setBucketEncryption replaces a bucket's default server-side encryption:
// "AES256" (SSE-S3) or "" (none). The gateway validates it too and
// encrypts the objects written without a header of their own by it.
func (a *applier) setBucketEncryption(req *metadatapb.SetBucketEncryptionRequest) (proto.Message, error) {
	enc := req.GetDefaultEncryption()
	if enc != "" && enc != "AES256" {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket encryption: default encryption %q is not supported (only AES256, or \"\" for none)", enc)
	}
	b, err := a.updateBucket(req.GetName(), func(b *metadatapb.Bucket) { b.DefaultEncryption = enc })
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetBucketEncryptionResponse{Bucket: b}, nil
}

// updateBucket applies change to a bucket's record (ErrNoSuchBucket if
// there is none).
func (a *applier) updateBucket(name string, change func(*metadatapb.Bucket)) (*metadatapb.Bucket, error) {
	b := &metadatapb.Bucket{}
	found, err := a.st.get(bucketKey(name), b)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", name)
	}
	change(b)
	if err := a.st.put(bucketKey(name), b); err != nil {
		return nil, err
	}
	return b, nil
}

// deleteBucket refuses a bucket with objects (as S3 does) and aborts the
// bucket's in-progress multipart uploads, queueing their parts for GC.
func (a *applier) deleteBucket(req *metadatapb.DeleteBucketRequest) (proto.Message, error) {
	name := req.GetName()
	if err := a.requireBucket(name); err != nil {
		return nil, err
	}
	nonEmpty, err := a.st.exists(objectBase(name))
	if err != nil {
		return nil, err
	}
	if !nonEmpty {
		// Noncurrent versions and delete markers count too, as on S3.
		if nonEmpty, err = a.st.exists(versionBase(name)); err != nil {
			return nil, err
		}
	}
	if nonEmpty {
		return nil, metaerr.Detailed(metaerr.ErrBucketNotEmpty, "bucket %q", name)
	}
	var uploads []*metadatapb.MultipartUpload
	var uploadKeys [][]byte
	err = a.st.scan(uploadBase(name), func(k, v []byte) error {
		u := &metadatapb.MultipartUpload{}
		if err := grpcbuf.UnmarshalUnchecked(v, u); err != nil {
			return fmt.Errorf("read upload %q: %w", k, err)
		}
		uploads = append(uploads, u)
		uploadKeys = append(uploadKeys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	var parts [][]partRecord
	for _, u := range uploads {
		ps, err := a.readParts(name, u.GetKey(), u.GetUploadId())
		if err != nil {
			return nil, err
		}
		parts = append(parts, ps)
	}
	grantees, err := a.keysGranting(name)
	if err != nil {
		return nil, err
	}
	a.st.del(bucketKey(name))
	if err := a.dropGrants(name, grantees); err != nil {
		return nil, err
	}
	for i, u := range uploads {
		a.st.del(uploadKeys[i])
		for _, p := range parts[i] {
			a.st.del(p.key)
			a.st.countBucket(name, chunkCount{uploads: -p.part.GetSize()})
			a.indexRemove(p.part.GetSegments())
			if err := a.queuePartGC(name, u.GetKey(), p.part); err != nil {
				return nil, err
			}
		}
	}
	return &metadatapb.DeleteBucketResponse{}, nil
}

func (a *applier) requireBucket(name string) error {
	// Existence is all it needs: decoding the bucket record was ~2.5% of
	// a 3-member cluster's CPU per CommitObject.
	a.st.scratch = append(append(a.st.scratch[:0], prefixBucket...), name...)
	found, err := a.st.hasBucket(a.st.scratch)
	if err != nil {
		return err
	}
	if !found {
		return metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", name)
	}
	return nil
}

// ---------------------------------------------------------------- objects

func validKey(what, key string) error {
	if key == "" || len(key) > maxObjectKey {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: key must be 1..%d bytes", what, maxObjectKey)
	}
	return nil
}

// readObject returns the current version of bucket/key, nil if none.
func (a *applier) readObject(bucket, key string) (*metadatapb.Object, error) {
	return a.readObjectAt(objectKey(bucket, key))
}

// readObjectAt is readObject by the object's key.
func (a *applier) readObjectAt(objKey []byte) (*metadatapb.Object, error) {
	o := &metadatapb.Object{}
	found, err := a.st.get(objKey, o)
	if err != nil || !found {
		return nil, err
	}
	return o, nil
}

// checkCondition applies a commit condition to the current version (nil
// when the key does not exist). An if_match_etag of "*" only requires the
// key to exist; on a missing key it fails with ErrNoSuchKey, as S3's
// conditional writes answer 404 there and 412 only for another ETag.
func checkCondition(cur *metadatapb.Object, c *metadatapb.Condition, bucket, key string) error {
	if c.GetMustNotExist() && cur != nil {
		return metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s exists", bucket, key)
	}
	if m := c.GetIfMatchEtag(); m != "" {
		if cur == nil {
			return metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
		}
		if m != "*" && trimQuotes(m) != trimQuotes(cur.GetEtag()) {
			return metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s has ETag %q, not %q", bucket, key, cur.GetEtag(), m)
		}
	}
	if v := c.GetIfVersionId(); v != "" {
		if cur == nil {
			return metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
		}
		if v != cur.GetVersionId() {
			return metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s is version %q, not %q", bucket, key, cur.GetVersionId(), v)
		}
	}
	return nil
}

// maxObjectTags and maxTagKey/maxTagValue are S3's limits on object tags
// (the gateway checks them with S3's errors; this is the state's guard).
const (
	maxObjectTags = 10
	maxTagKey     = 128
	maxTagValue   = 256
)

// checkTagLimits applies S3's limits on a tag set.
func checkTagLimits(what string, tags map[string]string, most int) error {
	if len(tags) > most {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: at most %d tags", what, most)
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > maxTagKey || utf8.RuneCountInString(v) > maxTagValue {
			return metaerr.Detailed(metaerr.ErrInvalidArgument, "%s: a tag key has 1..%d characters, a value at most %d", what, maxTagKey, maxTagValue)
		}
	}
	return nil
}

// setObjectTags replaces the current object's tags; nothing else of the
// object changes (ETag, modification time, data).
func (a *applier) setObjectTags(req *metadatapb.SetObjectTagsRequest) (proto.Message, error) {
	bucket, key := req.GetBucket(), req.GetKey()
	if err := checkTagLimits("set object tags", req.GetTags(), maxObjectTags); err != nil {
		return nil, err
	}
	if err := a.requireBucket(bucket); err != nil {
		return nil, err
	}
	if len(key) > maxObjectKey {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
	}
	objKey := objectKey(bucket, key)
	var cur *metadatapb.Object
	var err error
	if id := req.GetVersionId(); id != "" {
		cur, objKey, err = a.findVersion(bucket, key, id)
		switch {
		case err != nil:
			return nil, err
		case cur == nil:
			return nil, metaerr.Detailed(metaerr.ErrNoSuchVersion, "%s/%s version %q", bucket, key, id)
		case cur.GetDeleteMarker():
			return nil, metaerr.Detailed(metaerr.ErrMethodNotAllowed, "%s/%s version %q is a delete marker", bucket, key, id)
		}
	} else {
		cur, err = a.readObjectAt(objKey)
	}
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s does not exist", bucket, key)
	}
	if err := checkCondition(cur, req.GetCondition(), bucket, key); err != nil {
		return nil, err
	}
	cur.Tags = req.GetTags()
	if err := a.st.put(objKey, cur); err != nil {
		return nil, err
	}
	set, err := a.st.bucketSettings(bucket)
	if err != nil {
		return nil, err
	}
	return &metadatapb.SetObjectTagsResponse{VersionId: answeredVersionID(cur, set.versioning)}, nil
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func (a *applier) commitObject(req *metadatapb.CommitObjectRequest) (proto.Message, error) {
	obj := req.GetObject()
	bucket, key := obj.GetBucket(), obj.GetKey()
	if err := validKey("commit object", key); err != nil {
		return nil, err
	}
	if err := a.requireBucket(bucket); err != nil {
		return nil, err
	}
	objKey := objectKey(bucket, key)
	cur, err := a.readObjectAt(objKey)
	if err != nil {
		return nil, err
	}
	if err := checkCondition(cur, req.GetCondition(), bucket, key); err != nil {
		return nil, err
	}
	if err := a.checkNewSegments("commit object", obj.GetSegments()); err != nil {
		return nil, err
	}
	set, vs, err := a.versioningOf(bucket, key)
	if err != nil {
		return nil, err
	}
	stored := obj
	if !a.owned {
		stored = proto.CloneOf(obj)
	}
	stored.ModifiedUnixNano = a.now
	if err := a.replaceCurrent(objKey, cur, stored, set, vs, 0); err != nil {
		return nil, err
	}
	if err := a.indexAdd(objKey, stored.GetVersionId(), stored.GetSegments()); err != nil {
		return nil, err
	}
	return &metadatapb.CommitObjectResponse{Object: stored, VersionId: answeredVersionID(stored, set.versioning)}, nil
}

// versioningOf reads the versioning of bucket and, when it is SUSPENDED,
// the v/ records of key (a commit or delete then replaces its null
// version). It must run before the command stages a write.
func (a *applier) versioningOf(bucket, key string) (bucketSettings, []versionRecord, error) {
	set, err := a.st.bucketSettings(bucket)
	if err != nil || set.versioning != metadatapb.VersioningStatus_VERSIONING_STATUS_SUSPENDED {
		return set, nil, err
	}
	vs, err := a.keyVersions(bucket, key)
	return set, vs, err
}

// replaceCurrent stores stored at objKey as its key's current version in
// place of cur (nil: none), in a bucket with settings set: cur is kept as
// a noncurrent version or released (retireCurrent), and stored gets the
// bucket's default retention under object lock. It counts the change
// in the bucket's usage, with uploads the change to its upload bytes that
// comes with it (a completion's parts leaving them), and refuses with
// ErrQuotaExceeded a change that grows the bucket past its quota
// (checkQuota). The caller indexes stored's segments.
func (a *applier) replaceCurrent(objKey []byte, cur, stored *metadatapb.Object, set bucketSettings, vs []versionRecord, uploads int64) error {
	v := set.versioning
	stored.Versioned = v == metadatapb.VersioningStatus_VERSIONING_STATUS_ENABLED
	stored.DeleteMarker, stored.NoncurrentSinceUnixNano, stored.IsLatest = false, 0, false
	if err := a.applyLockOnCommit(stored, set.lock); err != nil {
		return err
	}
	if err := a.st.put(objKey, stored); err != nil {
		return err
	}
	bucket := stored.GetBucket()
	d := chunkCount{bytes: stored.GetSize() - cur.GetSize(), uploads: uploads}
	if cur == nil {
		d.chunks = 1
		if err := a.countObject(bucket, stored.GetKey(), +1); err != nil {
			return err
		}
	}
	a.st.countBucket(bucket, d)
	retired, err := a.retireCurrent(cur, v, vs)
	if err != nil {
		return err
	}
	d.add(retired)
	return a.checkQuota(bucket, d)
}

// replaceCounted counts, in its bucket's usage, an object's current
// version old (nil: none) replaced by cur (nil: deleted), with uploads
// the change to the bucket's upload bytes that comes with it (a
// completion's parts leaving them), and refuses with ErrQuotaExceeded a
// change that grows the bucket past its quota (checkQuota).
func (a *applier) replaceCounted(bucket string, old, cur *metadatapb.Object, uploads int64) error {
	d := chunkCount{bytes: cur.GetSize() - old.GetSize(), uploads: uploads}
	switch {
	case old == nil && cur != nil:
		d.chunks = 1
	case old != nil && cur == nil:
		d.chunks = -1
	}
	a.st.countBucket(bucket, d)
	return a.checkQuota(bucket, d)
}

func (a *applier) deleteObject(req *metadatapb.DeleteObjectRequest) (proto.Message, error) {
	bucket, key := req.GetBucket(), req.GetKey()
	if err := a.requireBucket(bucket); err != nil {
		return nil, err
	}
	if req.GetVersionId() != "" {
		return a.deleteVersion(req)
	}
	if len(key) > maxObjectKey {
		return &metadatapb.DeleteObjectResponse{}, nil // cannot exist
	}
	set, err := a.st.bucketSettings(bucket)
	if err != nil {
		return nil, err
	}
	if set.versioning != metadatapb.VersioningStatus_VERSIONING_STATUS_UNSET {
		return a.deleteVersioned(req, set.versioning)
	}
	cur, err := a.readObject(bucket, key)
	if err != nil {
		return nil, err
	}
	if err := checkCondition(cur, req.GetCondition(), bucket, key); err != nil {
		return nil, err
	}
	if cur == nil {
		return &metadatapb.DeleteObjectResponse{Deleted: false}, nil
	}
	a.st.del(objectKey(bucket, key))
	if err := a.replaceCounted(bucket, cur, nil, 0); err != nil {
		return nil, err
	}
	if err := a.countObject(bucket, key, -1); err != nil {
		return nil, err
	}
	a.indexRemove(cur.GetSegments())
	if err := a.queueObjectGC(cur); err != nil {
		return nil, err
	}
	return &metadatapb.DeleteObjectResponse{Deleted: true}, nil
}

// ---------------------------------------------------------------- multipart

func (a *applier) readUpload(bucket, key, uploadID string) (*metadatapb.MultipartUpload, error) {
	u := &metadatapb.MultipartUpload{}
	found, err := a.st.get(uploadKey(bucket, key, uploadID), u)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q of %s/%s", uploadID, bucket, key)
	}
	return u, nil
}

type partRecord struct {
	key  []byte
	part *metadatapb.Part
}

// readParts scans all parts of an upload in number order.
func (a *applier) readParts(bucket, key, uploadID string) ([]partRecord, error) {
	var parts []partRecord
	err := a.st.scan(partPrefix(bucket, key, uploadID), func(k, v []byte) error {
		p := &metadatapb.Part{}
		if err := grpcbuf.UnmarshalUnchecked(v, p); err != nil {
			return fmt.Errorf("read part %q: %w", k, err)
		}
		parts = append(parts, partRecord{key: bytes.Clone(k), part: p})
		return nil
	})
	return parts, err
}

func (a *applier) createMultipart(req *metadatapb.CreateMultipartRequest) (proto.Message, error) {
	up := req.GetUpload()
	bucket, key, id := up.GetBucket(), up.GetKey(), up.GetUploadId()
	if err := validKey("create multipart upload", key); err != nil {
		return nil, err
	}
	if id == "" || len(id) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "create multipart upload: upload id must be 1..%d bytes", maxIDLen)
	}
	if err := a.requireBucket(bucket); err != nil {
		return nil, err
	}
	found, err := a.st.get(uploadKey(bucket, key, id), &metadatapb.MultipartUpload{})
	if err != nil {
		return nil, err
	}
	if found {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "create multipart upload: upload id %q already in use", id)
	}
	stored := proto.CloneOf(up)
	stored.InitiatedUnixNano = a.now
	if err := a.st.put(uploadKey(bucket, key, id), stored); err != nil {
		return nil, err
	}
	return &metadatapb.CreateMultipartResponse{Upload: stored}, nil
}

func (a *applier) putPart(req *metadatapb.PutPartRequest) (proto.Message, error) {
	bucket, key, p := req.GetBucket(), req.GetKey(), req.GetPart()
	if n := p.GetNumber(); n < 1 || n > maxPartNumber {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "put part: part number %d not in 1..%d", n, maxPartNumber)
	}
	if len(key) > maxObjectKey || len(p.GetUploadId()) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q", p.GetUploadId())
	}
	if _, err := a.readUpload(bucket, key, p.GetUploadId()); err != nil {
		return nil, err
	}
	pk := partKey(bucket, key, p.GetUploadId(), p.GetNumber())
	old := &metadatapb.Part{}
	replaced, err := a.st.get(pk, old)
	if err != nil {
		return nil, err
	}
	if err := a.checkNewSegments("put part", p.GetSegments()); err != nil {
		return nil, err
	}
	stored := proto.CloneOf(p)
	stored.ModifiedUnixNano = a.now
	if err := a.st.put(pk, stored); err != nil {
		return nil, err
	}
	// A part that replaces one of its number counts the difference; one
	// no bigger always passes.
	d := chunkCount{uploads: stored.GetSize()}
	if replaced {
		d.uploads -= old.GetSize()
	}
	a.st.countBucket(bucket, d)
	if err := a.checkQuota(bucket, d); err != nil {
		return nil, err
	}
	if replaced {
		a.indexRemove(old.GetSegments())
		if err := a.queuePartGC(bucket, key, old); err != nil {
			return nil, err
		}
	}
	if err := a.indexAdd(pk, "", stored.GetSegments()); err != nil {
		return nil, err
	}
	return &metadatapb.PutPartResponse{}, nil
}

// completeMultipart re-checks, inside the state machine, what the gateway
// checked when it built the object: the listed parts still exist with
// those ETags, and the object's segments are exactly theirs, in order (a
// part re-uploaded with the same content has the same ETag but new
// segments, and the old ones are already queued for deletion).
//
// The stored object takes its segments from the part records, not from
// the request: a repair or move may have changed a part's placement since
// the gateway read it, and the request's copy would undo it.
func (a *applier) completeMultipart(req *metadatapb.CompleteMultipartRequest) (proto.Message, error) {
	obj := req.GetObject()
	bucket, key, id := obj.GetBucket(), obj.GetKey(), req.GetUploadId()
	if len(key) > maxObjectKey || len(id) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q", id)
	}
	if _, err := a.readUpload(bucket, key, id); err != nil {
		return nil, err
	}
	if len(req.GetParts()) == 0 {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "complete multipart upload: no parts listed")
	}
	for i, cp := range req.GetParts() {
		if i > 0 && cp.GetNumber() <= req.GetParts()[i-1].GetNumber() {
			return nil, metaerr.Detailed(metaerr.ErrInvalidPartOrder, "part %d listed after part %d", cp.GetNumber(), req.GetParts()[i-1].GetNumber())
		}
	}
	if err := a.requireBucket(bucket); err != nil {
		return nil, err
	}
	parts, err := a.readParts(bucket, key, id)
	if err != nil {
		return nil, err
	}
	byNumber := make(map[int32]*metadatapb.Part, len(parts))
	for _, p := range parts {
		byNumber[p.part.GetNumber()] = p.part
	}
	listed := make(map[int32]bool, len(req.GetParts()))
	var want []*metadatapb.Segment
	for _, cp := range req.GetParts() {
		p := byNumber[cp.GetNumber()]
		if p == nil {
			return nil, metaerr.Detailed(metaerr.ErrInvalidPart, "part %d was not uploaded", cp.GetNumber())
		}
		if trimQuotes(p.GetEtag()) != trimQuotes(cp.GetEtag()) {
			return nil, metaerr.Detailed(metaerr.ErrInvalidPart, "part %d has ETag %q, not %q", cp.GetNumber(), p.GetEtag(), cp.GetEtag())
		}
		listed[cp.GetNumber()] = true
		want = append(want, p.GetSegments()...)
	}
	got := obj.GetSegments()
	if len(got) != len(want) {
		return nil, metaerr.Detailed(metaerr.ErrInvalidPart, "object has %d segments, the listed parts %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].GetId(), want[i].GetId()) {
			return nil, metaerr.Detailed(metaerr.ErrInvalidPart, "object segment %d is not the listed parts' segment (part replaced meanwhile?)", i)
		}
	}
	cur, err := a.readObject(bucket, key)
	if err != nil {
		return nil, err
	}
	if err := checkCondition(cur, req.GetCondition(), bucket, key); err != nil {
		return nil, err
	}
	set, vs, err := a.versioningOf(bucket, key)
	if err != nil {
		return nil, err
	}

	stored := proto.CloneOf(obj)
	stored.ModifiedUnixNano = a.now
	stored.Segments = make([]*metadatapb.Segment, len(want))
	for i, seg := range want {
		stored.Segments[i] = proto.CloneOf(seg)
	}
	a.st.del(uploadKey(bucket, key, id))
	// Every part leaves the upload bytes: the listed ones' bytes are the
	// object's now, the others are deleted. The quota counted them all,
	// so only an object bigger than its parts could grow the bytes.
	var partBytes int64
	for _, p := range parts {
		partBytes += p.part.GetSize()
		a.st.del(p.key)
		if !listed[p.part.GetNumber()] {
			a.indexRemove(p.part.GetSegments())
			if err := a.queuePartGC(bucket, key, p.part); err != nil {
				return nil, err
			}
		}
	}
	objKey := objectKey(bucket, key)
	if err := a.replaceCurrent(objKey, cur, stored, set, vs, -partBytes); err != nil {
		return nil, err
	}
	if err := a.indexMove(objKey, stored.GetVersionId(), stored.GetSegments()); err != nil {
		return nil, err
	}
	return &metadatapb.CompleteMultipartResponse{Object: stored, VersionId: answeredVersionID(stored, set.versioning)}, nil
}

func (a *applier) abortMultipart(req *metadatapb.AbortMultipartRequest) (proto.Message, error) {
	bucket, key, id := req.GetBucket(), req.GetKey(), req.GetUploadId()
	if len(key) > maxObjectKey || len(id) > maxIDLen {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q", id)
	}
	if _, err := a.readUpload(bucket, key, id); err != nil {
		return nil, err
	}
	parts, err := a.readParts(bucket, key, id)
	if err != nil {
		return nil, err
	}
	a.st.del(uploadKey(bucket, key, id))
	for _, p := range parts {
		a.st.del(p.key)
		a.st.countBucket(bucket, chunkCount{uploads: -p.part.GetSize()})
		a.indexRemove(p.part.GetSegments())
		if err := a.queuePartGC(bucket, key, p.part); err != nil {
			return nil, err
		}
	}
	return &metadatapb.AbortMultipartResponse{}, nil
}
