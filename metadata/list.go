package metadata

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Listing walks Badger in key order. With a delimiter, the first key found
// under a common prefix emits the prefix and the iterator then seeks past
// every key that starts with it (to prefixEnd of the prefix), so a page
// costs about max_keys seeks however many keys sit under each prefix.
//
// Paging: start_after (or key_marker) names the last entry of the previous
// page. When it is itself a common prefix for this prefix and delimiter
// (it starts with the prefix and the first delimiter after the prefix ends
// it), the listing resumes after every key under it, so the prefix is not
// emitted again. Any other value resumes at the first key above it.

// isCommonPrefix reports whether marker is a common prefix that a listing
// with prefix and delim would emit.
func isCommonPrefix(marker, prefix, delim string) bool {
	if delim == "" || !strings.HasPrefix(marker, prefix) {
		return false
	}
	rest := marker[len(prefix):]
	i := strings.Index(rest, delim)
	return i >= 0 && i+len(delim) == len(rest)
}

// stripForListing drops what a listing never needs and can be large.
func stripForListing(o *metadatapb.Object) {
	o.Segments, o.Inline, o.Parts = nil, nil, nil
}

// listDropped are the Object fields stripForListing drops. A page of a
// thousand objects spent most of its decoding time and allocations on
// segments (a Segment, its Scheme and every node id per segment), so
// unmarshalForListing leaves them out of the bytes it decodes.
var listDropped = func() map[protowire.Number]bool {
	fields := (&metadatapb.Object{}).ProtoReflect().Descriptor().Fields()
	m := make(map[protowire.Number]bool)
	for _, name := range []protoreflect.Name{"segments", "inline", "parts"} {
		m[fields.ByName(name).Number()] = true
	}
	return m
}()

// unmarshalForListing decodes a stored Object without the fields
// stripForListing drops, copying the rest through scratch (returned for
// reuse).
func unmarshalForListing(v, scratch []byte, o *metadatapb.Object) ([]byte, error) {
	out := scratch[:0]
	for b := v; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return out, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return out, protowire.ParseError(m)
		}
		if !listDropped[num] {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out, grpcbuf.UnmarshalUnchecked(out, o)
}

// ListObjects lists a bucket's objects in UTF-8 binary key order: those
// with the prefix and above start_after, with keys that contain the
// delimiter after the prefix rolled up into common prefixes, at most
// max_keys entries (0 means 1000; at most 1000; a common prefix counts
// once). next_start_after is set when the page is truncated and is the last
// key or common prefix returned. Objects come without segments, inline data
// and part boundaries. ErrNoSuchBucket if the bucket does not exist.
//
// With delimiter "/" the common prefixes come from the directory index
// (dirindex.go) and o/ is read only for the objects directly under the
// prefix's directory; any other delimiter walks o/ (listScan).
func (s *State) ListObjects(req *metadatapb.ListObjectsRequest) (*metadatapb.ListObjectsResponse, error) {
	return s.listObjects(req, true)
}

// listPage is one ListObjects call's input and output, as the two ways
// of listing share them.
type listPage struct {
	txn           *badger.Txn
	bucket        string
	prefix, delim string
	base          []byte // o/<bucket>\x00
	lo            []byte // base + prefix
	start         []byte // the first o/ key the page may hold
	limit         int
	resp          *metadatapb.ListObjectsResponse
}

// listObjects is ListObjects; useDirIndex false lists delimiter "/" by
// walking o/ as other delimiters do (tests compare the two).
func (s *State) listObjects(req *metadatapb.ListObjectsRequest, useDirIndex bool) (*metadatapb.ListObjectsResponse, error) {
	limit, err := pageSize(req.GetMaxKeys(), "max_keys")
	if err != nil {
		return nil, err
	}
	bucket, prefix, delim, after := req.GetBucket(), req.GetPrefix(), req.GetDelimiter(), req.GetStartAfter()
	resp := &metadatapb.ListObjectsResponse{}
	var found bool
	err = s.view(func(txn *badger.Txn) error {
		var err error
		if found, err = getProto(txn, bucketKey(bucket), &metadatapb.Bucket{}); err != nil || !found {
			return err
		}
		base := objectBase(bucket)
		lo := append(bytes.Clone(base), prefix...)
		start := lo
		if after != "" {
			var from []byte
			if isCommonPrefix(after, prefix, delim) {
				end := prefixEnd([]byte(after))
				if end == nil {
					return nil // nothing sorts after this prefix
				}
				from = append(bytes.Clone(base), end...)
			} else {
				from = append(append(bytes.Clone(base), after...), 0)
			}
			if bytes.Compare(from, start) > 0 {
				start = from
			}
		}
		p := &listPage{txn: txn, bucket: bucket, prefix: prefix, delim: delim, base: base, lo: lo, start: start, limit: limit, resp: resp}
		if useDirIndex && delim == "/" {
			return s.listDirs(p)
		}
		return s.listScan(p)
	})
	if err != nil {
		return nil, fmt.Errorf("list objects in %q: %w", bucket, err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", bucket)
	}
	return resp, nil
}

// appendListed decodes the object at the iterator into the page.
func appendListed(p *listPage, item *badger.Item, key []byte, scratch []byte) ([]byte, error) {
	o := &metadatapb.Object{}
	err := item.Value(func(v []byte) error {
		var err error
		scratch, err = unmarshalForListing(v, scratch, o)
		return err
	})
	if err != nil {
		return scratch, fmt.Errorf("read object %q: %w", key, err)
	}
	o.Key = string(key) // as stored; the Badger key is authoritative
	p.resp.Objects = append(p.resp.Objects, o)
	return scratch, nil
}

// listScan lists by walking o/ from start: the first key found under a
// common prefix emits it, and the walk then gets past every key under it.
func (s *State) listScan(p *listPage) error {
	base, lo, prefix, delim, resp := p.base, p.lo, p.prefix, p.delim, p.resp
	it := p.txn.NewIterator(badger.IteratorOptions{Prefix: lo})
	defer it.Close()
	n := 0
	last := ""
	var scratch, seekKey []byte
	s.listSteps.Add(1)
	for it.Seek(p.start); it.ValidForPrefix(lo); {
		key := it.Item().Key()[len(base):]
		if delim != "" {
			if i := bytes.Index(key[len(prefix):], []byte(delim)); i >= 0 {
				if n == p.limit {
					resp.IsTruncated = true
					break
				}
				cp := string(key[:len(prefix)+i+len(delim)])
				resp.CommonPrefixes = append(resp.CommonPrefixes, cp)
				last = cp
				n++
				// A Seek repositions every level of the tree; when
				// the prefix holds a single key, one Next gets past
				// it for much less.
				s.listSteps.Add(1)
				it.Next()
				if !it.ValidForPrefix(lo) || !bytes.HasPrefix(it.Item().Key()[len(base):], []byte(cp)) {
					continue
				}
				end := prefixEnd([]byte(cp))
				if end == nil {
					break
				}
				s.listSteps.Add(1)
				seekKey = append(append(seekKey[:0], base...), end...)
				it.Seek(seekKey)
				continue
			}
		}
		if n == p.limit {
			resp.IsTruncated = true
			break
		}
		var err error
		if scratch, err = appendListed(p, it.Item(), key, scratch); err != nil {
			return err
		}
		last = string(key)
		n++
		s.listSteps.Add(1)
		it.Next()
	}
	if resp.IsTruncated {
		resp.NextStartAfter = last
	}
	return nil
}

// skipByNext is the most keys of a listed directory that the o/ walk of
// listDirs passes with Next rather than one Seek to its end: a Seek costs
// about 14 Nexts on 10M keys (Badger binary-searches each level's block
// index), less on smaller trees.
const skipByNext = 16

// listDirs lists with delimiter "/" from the directory index. The prefix
// is a directory D followed by a name start r without "/"; the page merges,
// in key order,
//
//   - the common prefixes: D's subdirectories whose names start with r, a
//     range of the index read with Next, and
//   - the objects: keys in D starting with r with no "/" after the prefix,
//     from o/, read only when the index counts objects directly in D. The
//     walk passes each subdirectory it meets (always one already listed)
//     with as many Nexts as it holds keys when it has no subdirectories of
//     its own and few keys (the index's direct count), else with one Seek;
//     it never runs ahead of the next common prefix, so a page costs at
//     most one skip per common prefix on it.
//
// Paging is exactly listScan's: start is computed the same way, and a
// subdirectory that start falls inside (start_after a key in it) is listed
// when it holds a key at or after start.
func (s *State) listDirs(p *listPage) error {
	base, lo, prefix, resp := p.base, p.lo, p.prefix, p.resp
	sk := p.start[len(base):]
	if !bytes.HasPrefix(sk, []byte(prefix)) {
		return nil // start is past every key with the prefix
	}
	dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	depth := strings.Count(dir, "/")
	dbase := dirBase(p.bucket)
	s.listSteps.Add(1)
	dc, err := readDirCounts(p.txn, appendDirKey(bytes.Clone(dbase), depth, dir))
	if err != nil {
		return fmt.Errorf("read directory %q: %w", dir, err)
	}

	// c0: the subdirectory start falls inside, if any.
	var c0 string
	if i := bytes.IndexByte(sk[len(prefix):], '/'); i >= 0 && len(prefix)+i+1 < len(sk) {
		c0 = string(sk[:len(prefix)+i+1])
	}
	walk := dc.direct > 0
	// remaining counts the direct objects not yet passed when the walk
	// starts at D's first key; once they are all listed o/ has nothing
	// more for this page.
	remaining := ^uint64(0)
	if string(sk) == dir {
		remaining = dc.direct
	}
	var objs *badger.Iterator
	if walk || c0 != "" {
		objs = p.txn.NewIterator(badger.IteratorOptions{Prefix: lo})
		defer objs.Close()
		s.listSteps.Add(1)
		objs.Seek(p.start)
	}
	pendingC0 := c0 != "" && objs.ValidForPrefix(lo) && strings.HasPrefix(string(objs.Item().Key()[len(base):]), c0)

	// The subdirectories' range, unless D has none (a page of objects).
	childBase := appendDirKey(dbase, depth+1, "")
	childLo := append(bytes.Clone(childBase), prefix...)
	var dirs *badger.Iterator
	if dc.children > 0 {
		dirs = p.txn.NewIterator(badger.IteratorOptions{Prefix: childLo})
		defer dirs.Close()
		s.listSteps.Add(1)
		dirs.Seek(append(bytes.Clone(childBase), sk...))
	}

	// cp is the next common prefix (haveCP false when none is left) and
	// cpKeys the number of keys under it, or ^0 when the walk must seek
	// past it: it has subdirectories (the index counts those, not their
	// keys), or it is c0 (start is inside it).
	var cp string
	var cpKeys uint64
	haveCP := false
	nextCP := func() error {
		if pendingC0 {
			cp, cpKeys, haveCP, pendingC0 = c0, ^uint64(0), true, false
			return nil
		}
		if dirs == nil || !dirs.ValidForPrefix(childLo) {
			haveCP = false
			return nil
		}
		item := dirs.Item()
		cp, haveCP = string(item.Key()[len(childBase):]), true
		err := item.Value(func(v []byte) error {
			c, err := decodeDirCounts(v)
			if n, ok := c.keys(); ok {
				cpKeys = n
			} else {
				cpKeys = ^uint64(0) // has subdirectories: seek past it
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("read directory %q: %w", cp, err)
		}
		s.listSteps.Add(1)
		dirs.Next()
		return nil
	}
	if err := nextCP(); err != nil {
		return err
	}

	n := 0
	last := ""
	var lastCP []byte // the last common prefix listed
	var lastKeys uint64
	var scratch, seekKey []byte
	for {
		if n == p.limit && haveCP {
			resp.IsTruncated = true // without walking o/ to the next object
			break
		}
		// Bring the walk to the next object directly in D, unless the
		// next common prefix comes first.
		var obj []byte
		haveObj := false
		for walk && remaining > 0 && objs.ValidForPrefix(lo) {
			k := objs.Item().Key()[len(base):]
			if haveCP && string(k) >= cp {
				break
			}
			i := bytes.IndexByte(k[len(prefix):], '/')
			if i < 0 {
				obj, haveObj = k, true
				break
			}
			// k is in a subdirectory before cp: one listed already,
			// normally lastCP, whose first key k is (or c0).
			g := k[:len(prefix)+i+1]
			if bytes.Equal(g, lastCP) && lastKeys <= skipByNext {
				left := false
				for range lastKeys {
					s.listSteps.Add(1)
					objs.Next()
					if !objs.ValidForPrefix(lo) || !bytes.HasPrefix(objs.Item().Key()[len(base):], lastCP) {
						left = true
						break
					}
				}
				if left {
					continue
				}
				g = lastCP // the counted Nexts fell short: seek
			}
			end := prefixEnd(g)
			if end == nil {
				walk = false // nothing sorts after g
				break
			}
			seekKey = append(append(seekKey[:0], base...), end...)
			s.listSteps.Add(1)
			objs.Seek(seekKey)
		}
		if !haveObj && !haveCP {
			break
		}
		if n == p.limit {
			resp.IsTruncated = true
			break
		}
		if haveObj {
			if scratch, err = appendListed(p, objs.Item(), obj, scratch); err != nil {
				return err
			}
			last = string(obj)
			remaining--
			s.listSteps.Add(1)
			objs.Next()
		} else {
			resp.CommonPrefixes = append(resp.CommonPrefixes, cp)
			last = cp
			lastCP, lastKeys = append(lastCP[:0], cp...), cpKeys
			if err := nextCP(); err != nil {
				return err
			}
		}
		n++
	}
	if resp.IsTruncated {
		resp.NextStartAfter = last
	}
	return nil
}

// ListMultipartUploads lists a bucket's in-progress uploads ordered by key,
// then by upload id (S3 orders uploads of one key by initiation time; ids
// are what we can seek by). key_marker and upload_id_marker follow S3:
// without upload_id_marker, uploads of keys above key_marker; with it, also
// uploads of key_marker itself with ids above upload_id_marker. Prefix,
// delimiter, max_uploads (0 means 1000; at most 1000) and the common prefix
// marker rule work as in ListObjects. When truncated, next_key_marker and
// next_upload_id_marker name the last entry returned (upload id "" for a
// common prefix). ErrNoSuchBucket if the bucket does not exist.
func (s *State) ListMultipartUploads(req *metadatapb.ListMultipartUploadsRequest) (*metadatapb.ListMultipartUploadsResponse, error) {
	limit, err := pageSize(req.GetMaxUploads(), "max_uploads")
	if err != nil {
		return nil, err
	}
	bucket, prefix, delim := req.GetBucket(), req.GetPrefix(), req.GetDelimiter()
	keyMarker, idMarker := req.GetKeyMarker(), req.GetUploadIdMarker()
	resp := &metadatapb.ListMultipartUploadsResponse{}
	var found bool
	err = s.view(func(txn *badger.Txn) error {
		var err error
		if found, err = getProto(txn, bucketKey(bucket), &metadatapb.Bucket{}); err != nil || !found {
			return err
		}
		base := uploadBase(bucket)
		lo := appendEscaped(bytes.Clone(base), prefix)
		start := lo
		if keyMarker != "" {
			var from []byte
			switch {
			case isCommonPrefix(keyMarker, prefix, delim):
				end := prefixEnd(appendEscaped(nil, keyMarker))
				if end == nil {
					return nil
				}
				from = append(bytes.Clone(base), end...)
			case idMarker == "":
				// Past every upload of keyMarker: its terminator is 00 01.
				from = append(appendEscaped(bytes.Clone(base), keyMarker), 0x00, 0x02)
			default:
				from = append(append(append(appendEscaped(bytes.Clone(base), keyMarker), keyTerminator...), idMarker...), 0)
			}
			if bytes.Compare(from, start) > 0 {
				start = from
			}
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: lo})
		defer it.Close()
		n := 0
		var lastKey, lastID string
		s.listSteps.Add(1)
		for it.Seek(start); it.ValidForPrefix(lo); {
			bkey := it.Item().Key()
			key, id, ok := decodeUploadKey(bkey[len(base):])
			if !ok {
				return fmt.Errorf("corrupt upload key %q", bkey)
			}
			if delim != "" {
				if i := strings.Index(key[len(prefix):], delim); i >= 0 {
					if n == limit {
						resp.IsTruncated = true
						break
					}
					cp := key[:len(prefix)+i+len(delim)]
					resp.CommonPrefixes = append(resp.CommonPrefixes, cp)
					lastKey, lastID = cp, ""
					n++
					end := prefixEnd(appendEscaped(nil, cp))
					if end == nil {
						break
					}
					s.listSteps.Add(1)
					it.Seek(append(bytes.Clone(base), end...))
					continue
				}
			}
			if n == limit {
				resp.IsTruncated = true
				break
			}
			u := &metadatapb.MultipartUpload{}
			if err := it.Item().Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, u) }); err != nil {
				return fmt.Errorf("read upload %q: %w", bkey, err)
			}
			u.Key, u.UploadId = key, id
			resp.Uploads = append(resp.Uploads, u)
			lastKey, lastID = key, id
			n++
			s.listSteps.Add(1)
			it.Next()
		}
		if resp.IsTruncated {
			resp.NextKeyMarker, resp.NextUploadIdMarker = lastKey, lastID
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list multipart uploads in %q: %w", bucket, err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", bucket)
	}
	return resp, nil
}
