package e2e

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Values. Every PUT of the chaos workload writes a body of its own: byte i
// of value id's body is byte i%16 of block i/16, where block j is the id
// and j (scrambled with the id), both little-endian. So any 16-byte aligned
// block of a GET's answer names the value it came from, and every byte can
// be checked against its offset: bytes of another object, of another
// offset, or of no object at all are told apart from the right ones
// without keeping the bodies. Bodies are empty or at least minBody bytes
// long; all empty bodies are the same value, emptyValue.
const (
	emptyValue  int64 = 0
	absentValue int64 = -1
	minBody           = 16
	blockMix          = 0x9e3779b97f4a7c15
)

// valueBlock is block j of value id's body.
func valueBlock(id int64, j int64) [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(id))
	binary.LittleEndian.PutUint64(b[8:], uint64(j)^(uint64(id)*blockMix))
	return b
}

// fillValue writes the bytes of value id's body from offset off into dst.
func fillValue(dst []byte, id, off int64) {
	for i := 0; i < len(dst); {
		o := off + int64(i)
		blk := valueBlock(id, o/16)
		i += copy(dst[i:], blk[o%16:])
	}
}

// valueBody is the whole body of value id.
func valueBody(id int64, size int) []byte {
	b := make([]byte, size)
	fillValue(b, id, 0)
	return b
}

// decodeValue returns the value id named by the first aligned block's id
// half found in b, the bytes of a body from offset off.
func decodeValue(b []byte, off int64) (int64, bool) {
	first := (off + 15) / 16 * 16
	if first+8 > off+int64(len(b)) {
		return 0, false
	}
	rel := first - off
	return int64(binary.LittleEndian.Uint64(b[rel : rel+8])), true
}

// matchesValue reports whether b is exactly the bytes of value id's body
// from offset off.
func matchesValue(b []byte, id, off int64) bool {
	var want [4096]byte
	for i := 0; i < len(b); i += len(want) {
		n := min(len(want), len(b)-i)
		fillValue(want[:n], id, off+int64(i))
		if string(want[:n]) != string(b[i:i+n]) {
			return false
		}
	}
	return true
}

// valueInfo is what the registry knows of a value: the key it was written
// to, its size and the ETag S3 must give it.
type valueInfo struct {
	key  string
	size int64
	etag string
}

// registry holds every value ever attempted, registered before its PUT is
// sent, so a concurrent GET can name what it read.
type registry struct {
	mu     sync.Mutex
	next   int64
	byID   map[int64]valueInfo
	byETag map[string]int64
	byKey  map[string][]int64
}

func newRegistry() *registry {
	return &registry{next: 1, byID: map[int64]valueInfo{}, byETag: map[string]int64{}, byKey: map[string][]int64{}}
}

// newValue allocates a value for key and returns its id; size 0 is always
// emptyValue. parts, when > 0, is the part sizes of a multipart upload (for
// its ETag).
func (r *registry) newValue(key string, size int64, partSizes []int64) int64 {
	id := r.allocate(size)
	r.register(id, key, size, partSizes)
	return id
}

// allocate reserves the id of a new value of size bytes (emptyValue for
// 0), for a write that chooses its key by the id; register then names
// the key, before the write is sent.
func (r *registry) allocate(size int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if size == 0 {
		return emptyValue
	}
	id := r.next
	r.next++
	return id
}

// register records value id, allocated for a write of size bytes to key
// (multipart with partSizes, as in newValue).
func (r *registry) register(id int64, key string, size int64, partSizes []int64) {
	var etag string
	if len(partSizes) == 0 {
		etag = md5hex(valueBody(id, int(size)))
	} else {
		// The multipart ETag: the MD5 of the parts' binary MD5s, "-N".
		h := md5.New()
		var off int64
		for _, ps := range partSizes {
			b := make([]byte, ps)
			fillValue(b, id, off)
			off += ps
			s := md5.Sum(b)
			h.Write(s[:])
		}
		etag = fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(partSizes))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byID[id]; !ok {
		r.byID[id] = valueInfo{key: key, size: size, etag: etag}
	}
	r.byETag[etag] = id
	if id != emptyValue {
		r.byKey[key] = append(r.byKey[key], id)
	}
}

func (r *registry) info(id int64) (valueInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.byID[id]
	return v, ok
}

func (r *registry) byEtag(etag string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.byETag[etag]
	return id, ok
}

func (r *registry) sizeOf(id int64) int64 {
	v, _ := r.info(id)
	return v.size
}

// identify names the value b came from: b is the answer to a GET of key
// starting at offset off, of an object total bytes long. It returns an
// explanation when b is not the bytes of any value written to key.
func (r *registry) identify(key string, b []byte, off, total int64) (int64, error) {
	if total == 0 {
		return emptyValue, nil
	}
	if id, ok := decodeValue(b, off); ok {
		v, known := r.info(id)
		switch {
		case !known || id == emptyValue:
			return 0, fmt.Errorf("%d bytes at offset %d name value %d, never written", len(b), off, id)
		case v.key != key:
			return 0, fmt.Errorf("%d bytes at offset %d are of value %d, written to key %q, not this key", len(b), off, id, v.key)
		case v.size != total:
			return 0, fmt.Errorf("value %d is %d bytes, the answer says the object is %d", id, v.size, total)
		case !matchesValue(b, id, off):
			return 0, fmt.Errorf("%d bytes at offset %d start like value %d but differ from it", len(b), off, id)
		}
		return id, nil
	}
	// Too short to hold an aligned block: try every value of the key.
	r.mu.Lock()
	cands := append([]int64(nil), r.byKey[key]...)
	r.mu.Unlock()
	for _, id := range cands {
		if r.sizeOf(id) == total && matchesValue(b, id, off) {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%d bytes at offset %d of a %d-byte object match no value written to the key", len(b), off, total)
}

// History.

type opKind uint8

const (
	opPut opKind = iota
	opGet
	opDelete
	opList
)

func (k opKind) String() string {
	return [...]string{"put", "get", "delete", "list"}[k]
}

// outcome is how an operation ended.
type outcome uint8

const (
	// acked: the gateway answered success.
	acked outcome = iota
	// failedAnswered: the gateway answered an error. A write that failed so
	// may or may not have taken effect, but not after the answer: the
	// gateway's metadata commit was over by then, and Raft orders a
	// commit that surfaces later before anything proposed afterwards.
	failedAnswered
	// failedUnanswered: no answer (connection refused or cut, timeout):
	// the write may take effect at any later time.
	failedUnanswered
	// failedBeforeCommit: certainly not applied (a multipart upload that
	// failed before its Complete was sent).
	failedBeforeCommit
)

func (o outcome) String() string {
	return [...]string{"ok", "failed (answered)", "failed (no answer)", "failed (not committed)"}[o]
}

// op is one operation of the history.
type op struct {
	id, client int
	kind       opKind
	key        string // "" for list
	// put: the value written and its size; multipart with how many parts.
	val   int64
	size  int64
	parts int
	// get: the range asked for, rngStart < 0 for the whole object.
	rngStart, rngEnd int64
	start, end       time.Time
	outcome          outcome
	// get results: the value read (absentValue for NoSuchKey), or an
	// unsatisfiable range (416).
	got   int64
	unsat bool
	// list result: key -> value (resolved by ETag).
	listed map[string]int64
	err    string
	final  bool // a read of the final check, after the faults
	// versioned: an operation on the versioned bucket (chaosVersionedBucket,
	// chaos_versions_test.go), whose keys are its own.
	versioned bool
	// version: the version id answered (x-amz-version-id): a put's new
	// version, a delete's marker, the version a get read (or the marker a
	// 404 named).
	version string
	// askVersion: a get of that version by id (versionId=). Such a read is
	// no read of the key's register: byKey leaves it out, and val is the
	// value the version holds.
	askVersion string
}

// isWrite reports whether the op is a put or delete that may have taken
// effect.
func (o *op) isWrite() bool {
	return (o.kind == opPut || o.kind == opDelete) && o.outcome != failedBeforeCommit
}

// writeValue is the value a write leaves behind.
func (o *op) writeValue() int64 {
	if o.kind == opDelete {
		return absentValue
	}
	return o.val
}

// latestEffect is the latest time a write may take effect; the zero time
// for no bound.
func (o *op) latestEffect() (time.Time, bool) {
	if o.outcome == failedUnanswered {
		return time.Time{}, false
	}
	return o.end, true
}

// history is every operation, appended concurrently.
type history struct {
	mu  sync.Mutex
	ops []*op
	t0  time.Time
}

func (h *history) add(o *op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	o.id = len(h.ops)
	h.ops = append(h.ops, o)
}

func (h *history) snapshot() []*op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*op(nil), h.ops...)
}

// byKey groups the per-key operations of the history: puts, deletes and
// gets, and a projection of every LIST onto each key of the key space (the
// LIST read the key as the value it listed, or as absent).
func byKey(ops []*op, keys []string) map[string][]*op {
	out := make(map[string][]*op)
	for _, o := range ops {
		switch o.kind {
		case opList:
			if o.outcome != acked {
				continue
			}
			for _, k := range keys {
				v, ok := o.listed[k]
				if !ok {
					v = absentValue
				}
				p := *o
				p.kind, p.key, p.got, p.rngStart, p.listed = opGet, k, v, -1, nil
				out[k] = append(out[k], &p)
			}
		default:
			if o.askVersion != "" {
				continue // a read of a version, not of the key
			}
			out[o.key] = append(out[o.key], o)
		}
	}
	for _, os := range out {
		sort.SliceStable(os, func(i, j int) bool { return os[i].start.Before(os[j].start) })
	}
	return out
}

// finalAllowed returns the values a key may hold once every operation has
// ended: those of the writes that no acknowledged write certainly
// followed (began after the write's latest effect), and absent when no
// write was acknowledged. ackedPut reports whether one of those writes is
// an acknowledged put (a read of anything else lost it).
func finalAllowed(ops []*op) (allowed map[int64]bool, ackedPut bool) {
	allowed = make(map[int64]bool)
	var ackedWrites []*op
	for _, o := range ops {
		if o.isWrite() && o.outcome == acked {
			ackedWrites = append(ackedWrites, o)
		}
	}
	if len(ackedWrites) == 0 {
		allowed[absentValue] = true
	}
	for _, w := range ops {
		if !w.isWrite() {
			continue
		}
		latest, bounded := w.latestEffect()
		followed := false
		for _, a := range ackedWrites {
			if a != w && bounded && a.start.After(latest) {
				followed = true
				break
			}
		}
		if !followed {
			allowed[w.writeValue()] = true
			if w.outcome == acked && w.kind == opPut {
				ackedPut = true
			}
		}
	}
	return allowed, ackedPut
}

// staleRead explains why read r of value v (present) could not be right:
// no write of v began before r ended, or every write of v was certainly
// replaced (an acknowledged write of another value began after it could
// last take effect and ended before r began). "" if it could be right.
func staleRead(ops []*op, r *op) string {
	var writes []*op
	for _, w := range ops {
		if w.isWrite() && w.writeValue() == r.got && w.start.Before(r.end) {
			writes = append(writes, w)
		}
	}
	if len(writes) == 0 {
		return fmt.Sprintf("read value %s, which no write had begun to write before the read ended", valueName(r.got))
	}
	var replacedBy []*op
	for _, w := range writes {
		latest, bounded := w.latestEffect()
		var by *op
		for _, a := range ops {
			if a.isWrite() && a.outcome == acked && a.writeValue() != r.got && bounded &&
				a.start.After(latest) && a.end.Before(r.start) {
				by = a
				break
			}
		}
		if by == nil {
			return ""
		}
		replacedBy = append(replacedBy, by)
	}
	return fmt.Sprintf("read value %s, already replaced before the read began (by op %d, %s of %s, acknowledged)",
		valueName(r.got), replacedBy[0].id, replacedBy[0].kind, valueName(replacedBy[0].writeValue()))
}

func valueName(v int64) string {
	switch v {
	case absentValue:
		return "absent"
	case emptyValue:
		return "empty"
	}
	return fmt.Sprintf("v%d", v)
}
