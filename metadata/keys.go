package metadata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// The keyspace of the state machine in Badger. Every value is a
// deterministically marshalled protobuf message unless noted.
//
//	b/<bucket>                                       Bucket
//	o/<bucket> 00 <key>                              Object (current version)
//	v/<bucket> 00 <esc key> 00 01 <^index 8><^seq 4><version id>
//	                                                 Object: noncurrent version or
//	                                                 delete marker (versioning.go)
//	u/<bucket> 00 <esc key> 00 01 <upload id>        MultipartUpload
//	p/<bucket> 00 <esc key> 00 01 <esc upload id> 00 01 <part number, 4 bytes BE>
//	                                                 Part
//	n/<node id>                                      Node (cluster map member)
//	m/applied                                        last applied Raft index, 8 bytes BE
//	m/epoch                                          cluster map epoch, 8 bytes BE
//	m/scheme                                         default Scheme (absent until Bootstrap)
//	m/member/<metad id>                              MetadMember (id, grpc_address)
//	k/<access key id>                                AccessKey (accesskeys.go)
//	gc/<nanos 8 BE><raft index 8 BE><seq 4 BE>       GCEntry: segments to delete
//	m/rebalance                                      SetRebalance (absent until first set)
//	ld/<bucket> 00 <depth 2 BE> <dir>                dirCounts: the directory index (dirindex.go)
//	m/dirindex                                       the directory index's version and the
//	                                                 applied index it is current at
//
// Indexes of referenced segments (see apply_index.go), written in the same
// transaction as the records they index (nc/<esc node id> 00 01 <segment
// id><shard>, a key per chunk, was dropped in favour of nu/ counts; a state
// that has them loses them at open, nodeusage.go):
//
//	seg/<segment id, 16 bytes>                       segRef: the owning record's key (o/, v/ or p/),
//	                                                 the segment's position in it, the owner's
//	                                                 version id, and a copy of the Segment
//	nu/<node id>                                     varint chunks, varint bytes: what the
//	                                                 placements put on that node (nodeusage.go)
//	miss/<segment id, 16 bytes>                      empty: the segment has a "" placement entry
//	gcc/<segment id 16><shard 1><node id>            the gc/ key of a queued deletion of that one
//	                                                 chunk of a still-referenced segment
//	bu/<bucket>                                      varint objects, varint bytes[, varint upload
//	                                                 bytes]: what the bucket holds (bucketusage.go)
//	m/bucketusage                                    the bucket counts' version and the applied
//	                                                 index they are current at
//
// A gc/ entry whose seq has its top bit set (chunkGCSeq) deletes single
// chunks of segments that are still referenced (MarkChunks, a rebalance
// CommitPlacement); each of its chunks has a gcc/ guard until AckGC, and
// CommitPlacement refuses to place that shard back on that node while the
// guard exists (the pending delete would remove the new chunk). Entries for
// released segments need no guard: their ids are never referenced again.
//
// Ordering. Bucket names never contain 0x00 (CreateBucket refuses them), so
// in o/ the 0x00 after the bucket ends it and, within a bucket, Badger's
// byte order of o/ keys is exactly the byte order of the object keys (S3
// lists in UTF-8 binary order). Object keys may contain any byte, 0x00 and
// 0xFF included, so where a key is followed by another component (u/, p/)
// it is escaped order-preservingly: 0x00 becomes 00 FF and the key ends
// with 00 01 (the string encoding of CockroachDB and orderedcode). An
// escaped key's encoding sorts exactly as the raw key does and the keys
// that start with a raw prefix P are exactly the encodings that start with
// esc(P), so prefix listing and seeking work on the escaped form too.
//
// Splitting. Everything that belongs to one object key (its versions, its
// uploads, their parts) is ordered by (bucket, key) after its table prefix,
// so the state can later be cut into ranges, one Raft group each: a range
// is a span [(bucket, key) lo, hi) applied to each of o/, v/, u/ and p/ alike;
// b/, n/, m/ and gc/ are small and stay with a root group (or move to a
// per-range gc/ if garbage volume calls for it). No command reads or writes
// across object keys except bucket-level ones (DeleteBucket, listing),
// which work on bucket-prefixed spans.
//
// The segment indexes (seg/, miss/) and the node counts (nu/) are keyed by
// segment id and node id, not by (bucket, key), so they do NOT split by key
// range. Every index entry names (or, for miss/, sits beside a seg/ entry
// that names) the record that owns it, so on a split each range keeps the
// index entries of the segments its records own, and counts of its own
// segments' chunks: the indexes become range-local, queries by segment or
// node (Segment, SegmentsOnNode, NodeUsage summed, ...) fan out to every
// range, and CommitPlacement/MarkChunks go to the range owning the
// segment's record. Segment ids are random, so each range's share of the
// indexes is spread evenly over the id space.
var (
	prefixBucket    = []byte("b/")
	prefixObject    = []byte("o/")
	prefixUpload    = []byte("u/")
	prefixPart      = []byte("p/")
	prefixNode      = []byte("n/")
	prefixMember    = []byte("m/member/")
	prefixAccessKey = []byte("k/")
	prefixGC        = []byte("gc/")
	keyApplied      = []byte("m/applied")
	keyEpoch        = []byte("m/epoch")
	keyScheme       = []byte("m/scheme")
	keyTerminator   = []byte{0x00, 0x01}

	prefixSegment   = []byte("seg/")
	prefixNodeChunk = []byte("nc/")
	prefixMissing   = []byte("miss/")
	prefixChunkGC   = []byte("gcc/")
	keyRebalance    = []byte("m/rebalance")

	prefixDirIndex = []byte("ld/")
	keyDirIndex    = []byte("m/dirindex")
)

// segmentIDLen is the length of every segment id the state accepts
// (chunk.SegmentID); index keys rely on it being fixed.
const segmentIDLen = 16

// gcKeyLen is the length of every gc/ key.
const gcKeyLen = 3 + 8 + 8 + 4

// chunkGCSeq is the bit of a gc/ key's seq that marks an entry deleting
// single chunks of still-referenced segments (guarded by gcc/ keys).
const chunkGCSeq = 1 << 31

// chunkGCKey is gcc/<segment id><shard><node id>.
func chunkGCKey(id []byte, shard int, node string) []byte {
	b := make([]byte, 0, len(prefixChunkGC)+len(id)+1+len(node))
	b = append(append(append(b, prefixChunkGC...), id...), byte(shard))
	return append(b, node...)
}

// bucketKey is b/<bucket>.
func bucketKey(bucket string) []byte { return join(prefixBucket, bucket) }

// objectBase is o/<bucket>\x00: the prefix of all objects of a bucket.
func objectBase(bucket string) []byte { return append(join(prefixObject, bucket), 0) }

// objectKey is o/<bucket>\x00<key>.
func objectKey(bucket, key string) []byte { return append(objectBase(bucket), key...) }

// uploadBase is u/<bucket>\x00: the prefix of all uploads of a bucket.
func uploadBase(bucket string) []byte { return append(join(prefixUpload, bucket), 0) }

// uploadKeyPrefix is u/<bucket>\x00<esc key>\x00\x01: all uploads of one key.
func uploadKeyPrefix(bucket, key string) []byte {
	return append(appendEscaped(uploadBase(bucket), key), keyTerminator...)
}

// uploadKey is u/<bucket>\x00<esc key>\x00\x01<upload id>.
func uploadKey(bucket, key, uploadID string) []byte {
	return append(uploadKeyPrefix(bucket, key), uploadID...)
}

// decodeUploadKey splits the part of an upload key after uploadBase into
// the object key and the upload id.
func decodeUploadKey(rest []byte) (key, uploadID string, ok bool) {
	k, n, ok := unescape(rest)
	if !ok {
		return "", "", false
	}
	return k, string(rest[n:]), true
}

// partPrefix is p/<bucket>\x00<esc key>\x00\x01<esc upload id>\x00\x01: all
// parts of one upload, in part number order.
func partPrefix(bucket, key, uploadID string) []byte {
	b := append(join(prefixPart, bucket), 0)
	b = append(appendEscaped(b, key), keyTerminator...)
	return append(appendEscaped(b, uploadID), keyTerminator...)
}

// partKey is partPrefix followed by the part number, 4 bytes big-endian
// (numbers are ≥ 1, so byte order is numeric order).
func partKey(bucket, key, uploadID string, number int32) []byte {
	return binary.BigEndian.AppendUint32(partPrefix(bucket, key, uploadID), uint32(number))
}

// nodeKey is n/<node id>.
func nodeKey(id string) []byte { return join(prefixNode, id) }

// accessKeyKey is k/<access key id>.
func accessKeyKey(id string) []byte { return join(prefixAccessKey, id) }

// memberKey is m/member/<metad id>.
func memberKey(id string) []byte { return join(prefixMember, id) }

// gcKey is gc/<nanos><raft index><seq>: ordered by the time the segments
// were released (for non-negative times), unique per Raft entry and per
// record within it.
func gcKey(nanos int64, index uint64, seq uint32) []byte {
	b := append([]byte(nil), prefixGC...)
	b = binary.BigEndian.AppendUint64(b, uint64(nanos))
	b = binary.BigEndian.AppendUint64(b, index)
	return binary.BigEndian.AppendUint32(b, seq)
}

func join(prefix []byte, s string) []byte {
	b := make([]byte, 0, len(prefix)+len(s)+24)
	return append(append(b, prefix...), s...)
}

// appendEscaped appends s with each 0x00 written as 00 FF. The result sorts
// as s does and esc(P) is a prefix of esc(S) exactly when P is a prefix of S.
func appendEscaped(b []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return append(b, s...)
		}
		b = append(append(b, s[:i]...), 0x00, 0xFF)
		s = s[i+1:]
	}
}

// unescape decodes an escaped string ending with 00 01 at the start of b; n
// is how many bytes of b it used, terminator included.
func unescape(b []byte) (s string, n int, ok bool) {
	var out []byte
	for {
		i := bytes.IndexByte(b[n:], 0)
		if i < 0 || n+i+1 >= len(b) {
			return "", 0, false
		}
		out = append(out, b[n:n+i]...)
		switch b[n+i+1] {
		case 0x01:
			return string(out), n + i + 2, true
		case 0xFF:
			out = append(out, 0)
			n += i + 2
		default:
			return "", 0, false
		}
	}
}

// prefixEnd returns the smallest byte string greater than every string that
// starts with p (p with trailing 0xFF bytes dropped and its last byte
// incremented), or nil when there is none (p is empty or all 0xFF). Working
// on bytes makes it independent of UTF-8 and of the delimiter's length.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("corrupt state: %d-byte counter, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// segmentKey is seg/<segment id>.
func segmentKey(id []byte) []byte {
	return appendSegmentKey(make([]byte, 0, len(prefixSegment)+len(id)), id)
}

func appendSegmentKey(b, id []byte) []byte { return append(append(b, prefixSegment...), id...) }

// missingKey is miss/<segment id>.
func missingKey(id []byte) []byte {
	return append(append(make([]byte, 0, len(prefixMissing)+len(id)), prefixMissing...), id...)
}

// ownerFromKey names the owner of segments from its record's key: an
// object (o/), a noncurrent version (v/) or a part (p/). versionID comes from elsewhere (the key does
// not hold it).
func ownerFromKey(k []byte) (SegmentOwner, bool) {
	switch {
	case bytes.HasPrefix(k, prefixObject):
		rest := k[len(prefixObject):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return SegmentOwner{}, false
		}
		return SegmentOwner{Bucket: string(rest[:i]), Key: string(rest[i+1:])}, true
	case bytes.HasPrefix(k, prefixVersion):
		rest := k[len(prefixVersion):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return SegmentOwner{}, false
		}
		key, _, ok := decodeVersionKey(rest[i+1:])
		if !ok {
			return SegmentOwner{}, false
		}
		return SegmentOwner{Bucket: string(rest[:i]), Key: key}, true
	case bytes.HasPrefix(k, prefixPart):
		rest := k[len(prefixPart):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return SegmentOwner{}, false
		}
		o := SegmentOwner{Bucket: string(rest[:i])}
		rest = rest[i+1:]
		key, n, ok := unescape(rest)
		if !ok {
			return SegmentOwner{}, false
		}
		rest = rest[n:]
		id, n, ok := unescape(rest)
		if !ok || len(rest[n:]) != 4 {
			return SegmentOwner{}, false
		}
		o.Key, o.UploadID, o.PartNumber = key, id, int32(binary.BigEndian.Uint32(rest[n:]))
		return o, true
	}
	return SegmentOwner{}, false
}
