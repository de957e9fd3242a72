package metadata

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

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
	return out, proto.Unmarshal(out, o)
}

// ListObjects lists a bucket's objects in UTF-8 binary key order: those
// with the prefix and above start_after, with keys that contain the
// delimiter after the prefix rolled up into common prefixes, at most
// max_keys entries (0 means 1000; at most 1000; a common prefix counts
// once). next_start_after is set when the page is truncated and is the last
// key or common prefix returned. Objects come without segments, inline data
// and part boundaries. ErrNoSuchBucket if the bucket does not exist.
func (s *State) ListObjects(req *metadatapb.ListObjectsRequest) (*metadatapb.ListObjectsResponse, error) {
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
		it := txn.NewIterator(badger.IteratorOptions{Prefix: lo})
		defer it.Close()
		n := 0
		last := ""
		var scratch, seekKey []byte
		s.listSteps.Add(1)
		for it.Seek(start); it.ValidForPrefix(lo); {
			key := it.Item().Key()[len(base):]
			if delim != "" {
				if i := bytes.Index(key[len(prefix):], []byte(delim)); i >= 0 {
					if n == limit {
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
			if n == limit {
				resp.IsTruncated = true
				break
			}
			o := &metadatapb.Object{}
			err := it.Item().Value(func(v []byte) error {
				var err error
				scratch, err = unmarshalForListing(v, scratch, o)
				return err
			})
			if err != nil {
				return fmt.Errorf("read object %q: %w", key, err)
			}
			o.Key = string(key) // as stored; the Badger key is authoritative
			resp.Objects = append(resp.Objects, o)
			last = string(key)
			n++
			s.listSteps.Add(1)
			it.Next()
		}
		if resp.IsTruncated {
			resp.NextStartAfter = last
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list objects in %q: %w", bucket, err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", bucket)
	}
	return resp, nil
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
			if err := it.Item().Value(func(v []byte) error { return proto.Unmarshal(v, u) }); err != nil {
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
