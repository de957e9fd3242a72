package metadata

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// ListObjectVersions lists every version of a bucket's keys with the
// prefix: key by key in UTF-8 binary order, the current object (o/) first,
// then the key's noncurrent versions and delete markers (v/) newest first;
// keys that contain the delimiter after the prefix roll up into common
// prefixes as in ListObjects. A page holds at most max_keys versions and
// common prefixes and resumes after (key_marker, version_id_marker): after
// every version of key_marker when version_id_marker is empty (after every
// key under it when it is a common prefix), else after that version of it.
// Versions come without segments, inline data and part boundaries, with
// is_latest set. ErrNoSuchBucket if the bucket does not exist.
//
// It walks o/ and v/ side by side, each from the same position, so a page
// costs about max_keys steps (plus a seek per common prefix) however many
// versions the bucket holds.
func (s *State) ListObjectVersions(req *metadatapb.ListObjectVersionsRequest) (*metadatapb.ListObjectVersionsResponse, error) {
	limit, err := pageSize(req.GetMaxKeys(), "max_keys")
	if err != nil {
		return nil, err
	}
	bucket := req.GetBucket()
	resp := &metadatapb.ListObjectVersionsResponse{}
	var found bool
	err = s.view(func(txn *badger.Txn) error {
		var err error
		if found, err = getProto(txn, bucketKey(bucket), &metadatapb.Bucket{}); err != nil || !found {
			return err
		}
		w := newVersionWalk(txn, bucket, req.GetPrefix(), req.GetDelimiter(), limit, resp)
		defer w.close()
		return w.run(req.GetKeyMarker(), req.GetVersionIdMarker())
	})
	if err != nil {
		return nil, fmt.Errorf("list object versions in %q: %w", bucket, err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", bucket)
	}
	return resp, nil
}

// versionWalk is one ListObjectVersions page being built.
type versionWalk struct {
	prefix, delim  string
	oBase, vBase   []byte // o/<bucket>\x00 and v/<bucket>\x00
	oLo, vLo       []byte // the bases with the (escaped) prefix
	oIt, vIt       *badger.Iterator
	limit, n       int
	resp           *metadatapb.ListObjectVersionsResponse
	scratch        []byte
	lastKey, lastV string
}

func newVersionWalk(txn *badger.Txn, bucket, prefix, delim string, limit int, resp *metadatapb.ListObjectVersionsResponse) *versionWalk {
	w := &versionWalk{prefix: prefix, delim: delim, oBase: objectBase(bucket), vBase: versionBase(bucket), limit: limit, resp: resp}
	w.oLo = append(bytes.Clone(w.oBase), prefix...)
	w.vLo = appendEscaped(bytes.Clone(w.vBase), prefix)
	w.oIt = txn.NewIterator(badger.IteratorOptions{Prefix: w.oLo, PrefetchValues: true, PrefetchSize: 16})
	w.vIt = txn.NewIterator(badger.IteratorOptions{Prefix: w.vLo, PrefetchValues: true, PrefetchSize: 16})
	return w
}

func (w *versionWalk) close() {
	w.oIt.Close()
	w.vIt.Close()
}

// seekPast positions both walks after every record of key: at the first
// records of the keys above it.
func (w *versionWalk) seekPast(key string) {
	w.oIt.Seek(append(append(bytes.Clone(w.oBase), key...), 0))
	w.vIt.Seek(append(appendEscaped(bytes.Clone(w.vBase), key), 0x00, 0x02))
}

// seekPrefixEnd positions both walks after every key that starts with p;
// false when nothing sorts after them.
func (w *versionWalk) seekPrefixEnd(p string) bool {
	oEnd := prefixEnd([]byte(p))
	vEnd := prefixEnd(appendEscaped(nil, p))
	if oEnd == nil || vEnd == nil {
		return false
	}
	w.oIt.Seek(append(bytes.Clone(w.oBase), oEnd...))
	w.vIt.Seek(append(bytes.Clone(w.vBase), vEnd...))
	return true
}

// oKey and vKey are the object keys the walks are at; ok false at the
// end.
func (w *versionWalk) oKey() (string, bool) {
	if !w.oIt.ValidForPrefix(w.oLo) {
		return "", false
	}
	return string(w.oIt.Item().Key()[len(w.oBase):]), true
}

func (w *versionWalk) vKey() (key, id string, ok bool, err error) {
	if !w.vIt.ValidForPrefix(w.vLo) {
		return "", "", false, nil
	}
	k := w.vIt.Item().Key()
	key, id, ok = decodeVersionKey(k[len(w.vBase):])
	if !ok {
		return "", "", false, fmt.Errorf("corrupt version key %q", k)
	}
	return key, id, true, nil
}

// decode reads the record the iterator is at, for listing.
func (w *versionWalk) decode(it *badger.Iterator, key string) (*metadatapb.Object, error) {
	o := &metadatapb.Object{}
	item := it.Item()
	err := item.Value(func(v []byte) error {
		var err error
		w.scratch, err = unmarshalForListing(v, w.scratch, o)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read version %q: %w", item.Key(), err)
	}
	o.Key = key
	return o, nil
}

// full reports whether the page has no room left, marking it truncated
// (it is only asked when there is more to list).
func (w *versionWalk) full() bool {
	if w.n < w.limit {
		return false
	}
	w.resp.IsTruncated = true
	w.resp.NextKeyMarker, w.resp.NextVersionIdMarker = w.lastKey, w.lastV
	return true
}

func (w *versionWalk) emit(o *metadatapb.Object) {
	w.resp.Versions = append(w.resp.Versions, o)
	w.n++
	w.lastKey, w.lastV = o.GetKey(), S3VersionID(o)
}

// run lists from the markers on.
func (w *versionWalk) run(keyMarker, versionMarker string) error {
	switch {
	case keyMarker == "":
		w.oIt.Seek(w.oLo)
		w.vIt.Seek(w.vLo)
	case isCommonPrefix(keyMarker, w.prefix, w.delim):
		if !w.seekPrefixEnd(keyMarker) {
			return nil
		}
	case versionMarker == "":
		w.seekPast(keyMarker)
	default:
		if done, err := w.resumeWithin(keyMarker, versionMarker); err != nil || done {
			return err
		}
		w.seekPast(keyMarker)
	}
	for {
		oKey, oOK := w.oKey()
		vKey, _, vOK, err := w.vKey()
		if err != nil {
			return err
		}
		if !oOK && !vOK {
			return nil
		}
		key := oKey
		if !oOK || (vOK && vKey < oKey) {
			key = vKey
		}
		if w.delim != "" {
			if i := strings.Index(key[len(w.prefix):], w.delim); i >= 0 {
				if w.full() {
					return nil
				}
				cp := key[:len(w.prefix)+i+len(w.delim)]
				w.resp.CommonPrefixes = append(w.resp.CommonPrefixes, cp)
				w.n++
				w.lastKey, w.lastV = cp, ""
				if !w.seekPrefixEnd(cp) {
					return nil
				}
				continue
			}
		}
		latest := true
		if oOK && oKey == key {
			if w.full() {
				return nil
			}
			o, err := w.decode(w.oIt, key)
			if err != nil {
				return err
			}
			o.IsLatest = true
			w.emit(o)
			latest = false
			w.oIt.Next()
		}
		if done, err := w.emitVersionsOf(key, latest, nil); err != nil || done {
			return err
		}
	}
}

// resumeWithin lists the versions of key after the one with S3 version id
// versionMarker (none when it has no such version). done: the page is
// full.
func (w *versionWalk) resumeWithin(key, versionMarker string) (done bool, err error) {
	w.oIt.Seek(append(bytes.Clone(w.oBase), key...))
	w.vIt.Seek(append(appendEscaped(bytes.Clone(w.vBase), key), keyTerminator...))
	if k, ok := w.oKey(); ok && k == key {
		o, err := w.decode(w.oIt, key)
		if err != nil {
			return false, err
		}
		if S3VersionID(o) == versionMarker {
			return w.emitVersionsOf(key, false, nil)
		}
	}
	passed := false
	return w.emitVersionsOf(key, false, func(id string) bool {
		if passed {
			return true
		}
		passed = id == versionMarker
		return false
	})
}

// emitVersionsOf emits the v/ records of key the walk is at for which
// want says so (nil: all), the first of them as the key's latest version
// when latest is set. done: the page is full.
func (w *versionWalk) emitVersionsOf(key string, latest bool, want func(id string) bool) (done bool, err error) {
	for {
		k, id, ok, err := w.vKey()
		if err != nil || !ok || k != key {
			return false, err
		}
		if want == nil || want(id) {
			if w.full() {
				return true, nil
			}
			o, err := w.decode(w.vIt, key)
			if err != nil {
				return false, err
			}
			o.IsLatest, latest = latest, false
			w.emit(o)
		}
		w.vIt.Next()
	}
}
