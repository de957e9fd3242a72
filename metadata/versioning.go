package metadata

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Versioning (S3 bucket versioning, feature level 7).
//
// o/ keeps exactly the current objects, as it always has: listing,
// GET, the directory index and the current-object counts never see
// anything else. A bucket whose versioning is ENABLED or SUSPENDED keeps
// the rest of each key's history in v/:
//
//	v/<bucket> 00 <esc key> 00 01 <^index 8 BE> <^seq 4 BE> <S3 version id>
//	                                                 Object: a noncurrent
//	                                                 version or a delete marker
//
// ^index and ^seq are the bitwise complements of the Raft index of the
// command that made the record and of a sequence within that entry (the
// one gc/ keys use), so a key's records sort newest first. A record is
// made when a version stops being current: a write or a delete pushes the
// current object into v/ (so pushes happen in the order the versions were
// made, and every v/ record of a key is older than its o/ record), and a
// delete adds a marker there. Deleting the current version, or the
// latest marker, by its id makes the newest remaining record current
// again: an object moves back to o/; a marker stays and the key has no
// current object.
//
// The S3 version id is the object's version_id when it was written with
// versioning ENABLED (Object.versioned), else "null": a key has at most one
// null version, which a write or delete with versioning SUSPENDED
// replaces. Objects written before versioning was first enabled are null
// versions too, so they need no rewrite.
//
// Segments of noncurrent versions stay referenced: their seg/ entries
// name the v/ record as owner, so repair, scrub, rebalancing and drains
// treat them like any object's; they go to GC only when their version is
// deleted for good.

var prefixVersion = []byte("v/")

// versioningLevel is the feature level (members.go) of versioning: a
// member below it would apply a versioned bucket's commands as an
// unversioned one's.
const versioningLevel = 7

// nullVersionID is the S3 version id of a key's unversioned version.
const nullVersionID = "null"

// maxVersionID bounds the version ids requests may name.
const maxVersionID = 1024

// versionBase is v/<bucket>\x00: the prefix of all versions of a bucket.
func versionBase(bucket string) []byte { return append(join(prefixVersion, bucket), 0) }

// versionKeyPrefix is v/<bucket>\x00<esc key>\x00\x01: all noncurrent
// versions of one key, newest first.
func versionKeyPrefix(bucket, key string) []byte {
	return append(appendEscaped(versionBase(bucket), key), keyTerminator...)
}

// versionKey is the v/ key of a record made at (index, seq).
func versionKey(bucket, key string, index uint64, seq uint32, id string) []byte {
	b := binary.BigEndian.AppendUint64(versionKeyPrefix(bucket, key), ^index)
	b = binary.BigEndian.AppendUint32(b, ^seq)
	return append(b, id...)
}

// decodeVersionKey splits the part of a v/ key after versionBase into the
// object key and the S3 version id.
func decodeVersionKey(rest []byte) (key, id string, ok bool) {
	k, n, ok := unescape(rest)
	if !ok || len(rest)-n < 12 {
		return "", "", false
	}
	return k, string(rest[n+12:]), true
}

// S3VersionID is o's S3 version id: its version_id when it was written
// with versioning enabled, else "null".
func S3VersionID(o *pb.Object) string {
	if o.GetVersioned() {
		return o.GetVersionId()
	}
	return nullVersionID
}

// answeredVersionID is the version id S3 answers for o in a bucket with
// versioning v: none in a bucket never versioned.
func answeredVersionID(o *pb.Object, v pb.VersioningStatus) string {
	if v == pb.VersioningStatus_VERSIONING_STATUS_UNSET && !o.GetVersioned() {
		return ""
	}
	return S3VersionID(o)
}

// noncurrentCount is what a noncurrent version adds to (sign +1) or takes
// from (-1) its bucket's counts.
func noncurrentCount(o *pb.Object, sign int64) chunkCount {
	return chunkCount{versions: sign, versionBytes: sign * o.GetSize()}
}

// setBucketVersioning sets a bucket's versioning to ENABLED or SUSPENDED.
func (a *applier) setBucketVersioning(req *pb.SetBucketVersioningRequest) (proto.Message, error) {
	switch req.GetStatus() {
	case pb.VersioningStatus_VERSIONING_STATUS_ENABLED, pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED:
	default:
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "set bucket versioning: status must be ENABLED or SUSPENDED, not %v", req.GetStatus())
	}
	var refused error
	b, err := a.updateBucket(req.GetName(), func(b *pb.Bucket) {
		if lockEnabled(b.GetObjectLock()) && req.GetStatus() != pb.VersioningStatus_VERSIONING_STATUS_ENABLED {
			refused = metaerr.Detailed(metaerr.ErrInvalidBucketState, "bucket %q has object lock: its versioning cannot be suspended", b.GetName())
			return
		}
		b.Versioning = req.GetStatus()
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	return &pb.SetBucketVersioningResponse{Bucket: b}, nil
}

// versionRecord is one v/ record of a key, as the command found it.
type versionRecord struct {
	key []byte // the v/ key
	id  string // S3 version id
}

// keyVersions lists the v/ records of bucket/key, newest first, reading
// keys only. Like scan, it must run before the command stages a write.
func (a *applier) keyVersions(bucket, key string) ([]versionRecord, error) {
	if len(a.st.writes) > 0 {
		panic("metadata: keyVersions after staged writes in one command")
	}
	prefix := versionKeyPrefix(bucket, key)
	it := a.st.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var vs []versionRecord
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		k := it.Item().KeyCopy(nil)
		if len(k) < len(prefix)+12 {
			return nil, fmt.Errorf("corrupt version key %q", k)
		}
		vs = append(vs, versionRecord{key: k, id: string(k[len(prefix)+12:])})
	}
	return vs, nil
}

// readVersion reads a v/ record.
func (a *applier) readVersion(key []byte) (*pb.Object, error) {
	o := &pb.Object{}
	found, err := a.st.get(key, o)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("version %q vanished within its command", key)
	}
	return o, nil
}

// newVersionKey is the v/ key for a record this command makes now: newer
// than every record of the key so far.
func (a *applier) newVersionKey(bucket, key, id string) []byte {
	k := versionKey(bucket, key, a.index, a.gcSeq, id)
	a.gcSeq++
	return k
}

// pushNoncurrent keeps cur, the current version of its key, as a
// noncurrent one; the caller replaces or deletes its o/ record.
func (a *applier) pushNoncurrent(cur *pb.Object) (chunkCount, error) {
	cur.NoncurrentSinceUnixNano = a.now
	vk := a.newVersionKey(cur.GetBucket(), cur.GetKey(), S3VersionID(cur))
	if err := a.st.put(vk, cur); err != nil {
		return chunkCount{}, err
	}
	if err := a.indexMove(vk, cur.GetVersionId(), cur.GetSegments()); err != nil {
		return chunkCount{}, err
	}
	d := noncurrentCount(cur, +1)
	a.st.countBucket(cur.GetBucket(), d)
	return d, nil
}

// addDeleteMarker adds a delete marker as bucket/key's latest version.
func (a *applier) addDeleteMarker(bucket, key string, versioned bool) (*pb.Object, error) {
	m := &pb.Object{
		Bucket: bucket, Key: key, Versioned: versioned, DeleteMarker: true,
		ModifiedUnixNano: a.now, NoncurrentSinceUnixNano: a.now,
	}
	// Derived from where the command is in the log: unique and the same
	// on every member, and hashed so that it looks like the objects'
	// random ids (32 hex digits) and says nothing about the log.
	sum := sha256.Sum256(fmt.Appendf(nil, "cairn delete marker %d %d", a.index, a.gcSeq))
	m.VersionId = hex.EncodeToString(sum[:16])
	if err := a.st.put(a.newVersionKey(bucket, key, S3VersionID(m)), m); err != nil {
		return nil, err
	}
	a.st.countBucket(bucket, noncurrentCount(m, +1))
	return m, nil
}

// dropVersion deletes the v/ record v for good: its segments go to GC.
func (a *applier) dropVersion(v versionRecord) (*pb.Object, error) {
	o, err := a.readVersion(v.key)
	if err != nil {
		return nil, err
	}
	a.st.del(v.key)
	a.indexRemove(o.GetSegments())
	if err := a.queueObjectGC(o); err != nil {
		return nil, err
	}
	a.st.countBucket(o.GetBucket(), noncurrentCount(o, -1))
	return o, nil
}

// dropCurrent deletes cur, the current version at objKey, for good.
func (a *applier) dropCurrent(objKey []byte, cur *pb.Object) error {
	a.st.del(objKey)
	a.st.countBucket(cur.GetBucket(), chunkCount{chunks: -1, bytes: -cur.GetSize()})
	if err := a.countObject(cur.GetBucket(), cur.GetKey(), -1); err != nil {
		return err
	}
	a.indexRemove(cur.GetSegments())
	return a.queueObjectGC(cur)
}

// promote makes the v/ record v current again when it is an object; a
// delete marker stays where it is (the key then has no current object).
func (a *applier) promote(v versionRecord) error {
	o, err := a.readVersion(v.key)
	if err != nil || o.GetDeleteMarker() {
		return err
	}
	a.st.del(v.key)
	a.st.countBucket(o.GetBucket(), noncurrentCount(o, -1))
	o.NoncurrentSinceUnixNano = 0
	objKey := objectKey(o.GetBucket(), o.GetKey())
	if err := a.st.put(objKey, o); err != nil {
		return err
	}
	a.st.countBucket(o.GetBucket(), chunkCount{chunks: 1, bytes: o.GetSize()})
	if err := a.countObject(o.GetBucket(), o.GetKey(), +1); err != nil {
		return err
	}
	return a.indexMove(objKey, o.GetVersionId(), o.GetSegments())
}

// nullVersion returns the index in vs of the key's noncurrent null
// version, -1 if none.
func nullVersion(vs []versionRecord) int {
	for i, v := range vs {
		if v.id == nullVersionID {
			return i
		}
	}
	return -1
}

// retireCurrent handles cur, the current version a commit to a bucket
// with versioning v replaces (nil: none), and the null version a
// SUSPENDED bucket's commit replaces, and returns the change to the
// bucket's counts beyond the current object's. vs are the key's v/
// records, read when v is SUSPENDED.
func (a *applier) retireCurrent(cur *pb.Object, v pb.VersioningStatus, vs []versionRecord) (chunkCount, error) {
	var d chunkCount
	if v == pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED {
		if i := nullVersion(vs); i >= 0 {
			o, err := a.dropVersion(vs[i])
			if err != nil {
				return d, err
			}
			d.add(noncurrentCount(o, -1))
		}
	}
	if cur == nil {
		return d, nil
	}
	if v == pb.VersioningStatus_VERSIONING_STATUS_ENABLED || cur.GetVersioned() {
		pushed, err := a.pushNoncurrent(cur)
		d.add(pushed)
		return d, err
	}
	a.indexRemove(cur.GetSegments())
	return d, a.queueObjectGC(cur)
}

// deleteVersioned is DeleteObject without a version id in a bucket with
// versioning v (ENABLED or SUSPENDED): the current object, if any, stays
// as a noncurrent version (or, a null version in a SUSPENDED bucket, goes
// with any other null version) and a delete marker becomes the latest
// version, whether or not there was a current object.
func (a *applier) deleteVersioned(req *pb.DeleteObjectRequest, v pb.VersioningStatus) (proto.Message, error) {
	bucket, key := req.GetBucket(), req.GetKey()
	if err := validKey("delete object", key); err != nil {
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
	var vs []versionRecord
	if v == pb.VersioningStatus_VERSIONING_STATUS_SUSPENDED {
		if vs, err = a.keyVersions(bucket, key); err != nil {
			return nil, err
		}
	}
	if cur != nil {
		a.st.del(objKey)
		a.st.countBucket(bucket, chunkCount{chunks: -1, bytes: -cur.GetSize()})
		if err := a.countObject(bucket, key, -1); err != nil {
			return nil, err
		}
	}
	// No quota check: a delete moves the current object's bytes to the
	// noncurrent ones (or frees them) and adds a marker of no bytes, and
	// quotas never refuse a delete.
	if _, err := a.retireCurrent(cur, v, vs); err != nil {
		return nil, err
	}
	m, err := a.addDeleteMarker(bucket, key, v == pb.VersioningStatus_VERSIONING_STATUS_ENABLED)
	if err != nil {
		return nil, err
	}
	return &pb.DeleteObjectResponse{Deleted: true, DeleteMarker: true, VersionId: S3VersionID(m)}, nil
}

// deleteVersion is DeleteObject with a version id: that version goes for
// good, and when it was the latest, the newest remaining one becomes
// current (an object; a marker leaves the key without a current object).
// A version that does not exist deletes nothing, as on S3. With
// if_noncurrent_version_id (lifecycle expiry) only a v/ record with that
// internal version id goes, and only when that leaves the key's current
// object as it is: the S3 id may name the current object by now (promoted
// when a newer version was deleted, or "null" reused by a SUSPENDED
// bucket's write), or the latest marker, whose removal would make an
// older version current.
func (a *applier) deleteVersion(req *pb.DeleteObjectRequest) (proto.Message, error) {
	bucket, key, id := req.GetBucket(), req.GetKey(), req.GetVersionId()
	if len(id) > maxVersionID {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "delete object: version id longer than %d bytes", maxVersionID)
	}
	if len(key) > maxObjectKey {
		return &pb.DeleteObjectResponse{}, nil // cannot exist
	}
	objKey := objectKey(bucket, key)
	cur, err := a.readObjectAt(objKey)
	if err != nil {
		return nil, err
	}
	vs, err := a.keyVersions(bucket, key)
	if err != nil {
		return nil, err
	}
	if cur != nil && S3VersionID(cur) == id {
		if req.GetIfNoncurrentVersionId() != "" {
			return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s: version %q is the current object", bucket, key, id)
		}
		if err := checkCondition(cur, req.GetCondition(), bucket, key); err != nil {
			return nil, err
		}
		if err := checkDeletable(cur, a.now, req.GetBypassGovernance()); err != nil {
			return nil, err
		}
		if err := a.dropCurrent(objKey, cur); err != nil {
			return nil, err
		}
		if len(vs) > 0 {
			if err := a.promote(vs[0]); err != nil {
				return nil, err
			}
		}
		return &pb.DeleteObjectResponse{Deleted: true, VersionId: id}, nil
	}
	if req.GetCondition() != nil {
		// Conditions are on the current object (lifecycle expiry's own
		// deletes), which this is not.
		return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s: version %q is not the current object", bucket, key, id)
	}
	i := -1
	for j, v := range vs {
		if v.id == id {
			i = j
			break
		}
	}
	if i < 0 {
		return &pb.DeleteObjectResponse{}, nil
	}
	if want := req.GetIfNoncurrentVersionId(); want != "" {
		if cur == nil && i == 0 && len(vs) > 1 {
			return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s: version %q is the latest, with older versions", bucket, key, id)
		}
		o, err := a.readVersion(vs[i].key)
		if err != nil {
			return nil, err
		}
		if o.GetVersionId() != want {
			return nil, metaerr.Detailed(metaerr.ErrPreconditionFailed, "%s/%s: version %q is another version now (%q, not %q)", bucket, key, id, o.GetVersionId(), want)
		}
	}
	locked, err := a.readVersion(vs[i].key)
	if err != nil {
		return nil, err
	}
	if err := checkDeletable(locked, a.now, req.GetBypassGovernance()); err != nil {
		return nil, err
	}
	o, err := a.dropVersion(vs[i])
	if err != nil {
		return nil, err
	}
	if cur == nil && i == 0 && len(vs) > 1 {
		if err := a.promote(vs[1]); err != nil {
			return nil, err
		}
	}
	return &pb.DeleteObjectResponse{Deleted: true, DeleteMarker: o.GetDeleteMarker(), VersionId: id}, nil
}

// findVersion returns the version of bucket/key with S3 version id id as
// the command sees it, with the key it is stored at: the current object
// or a v/ record. nil when there is none.
func (a *applier) findVersion(bucket, key, id string) (*pb.Object, []byte, error) {
	objKey := objectKey(bucket, key)
	cur, err := a.readObjectAt(objKey)
	if err != nil {
		return nil, nil, err
	}
	if cur != nil && S3VersionID(cur) == id {
		return cur, objKey, nil
	}
	vs, err := a.keyVersions(bucket, key)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range vs {
		if v.id == id {
			o, err := a.readVersion(v.key)
			return o, v.key, err
		}
	}
	return nil, nil, nil
}

// ---------------------------------------------------------------- queries

// versionTxn reads, within txn, the v/ record of bucket/key with S3
// version id id ("": the newest), reading keys only until it finds it;
// newest tells whether it is the key's newest record. nil when there is
// none.
func versionTxn(txn *badger.Txn, bucket, key, id string) (o *pb.Object, newest bool, err error) {
	prefix := versionKeyPrefix(bucket, key)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	first := true
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) < len(prefix)+12 {
			return nil, false, fmt.Errorf("corrupt version key %q", k)
		}
		if id == "" || string(k[len(prefix)+12:]) == id {
			o = &pb.Object{}
			if err := item.Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, o) }); err != nil {
				return nil, false, fmt.Errorf("read version %q: %w", k, err)
			}
			return o, first, nil
		}
		first = false
	}
	return nil, false, nil
}

// getVersionTxn answers GetObject for a version id or for a key whose
// latest version is a delete marker; cur is the current object (nil:
// none).
func getVersionTxn(txn *badger.Txn, req *pb.GetObjectRequest, cur *pb.Object) (*pb.Object, error) {
	id := req.GetVersionId()
	if id == "" {
		if cur != nil || !req.GetIncludeDeleteMarker() {
			return cur, nil
		}
		latest, _, err := versionTxn(txn, req.GetBucket(), req.GetKey(), "")
		if err != nil || !latest.GetDeleteMarker() {
			return nil, err
		}
		latest.IsLatest = true
		return latest, nil
	}
	if cur != nil && S3VersionID(cur) == id {
		cur.IsLatest = true
		return cur, nil
	}
	o, newest, err := versionTxn(txn, req.GetBucket(), req.GetKey(), id)
	if err != nil || o == nil {
		return nil, err
	}
	// A noncurrent record is the latest only when the key has no current
	// object and it is the newest.
	o.IsLatest = cur == nil && newest
	return o, nil
}
