package metadata

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Queries answer from local state at one Badger read timestamp. They are
// not linearizable by themselves: the server confirms leadership (or a
// read index) before calling them. Errors are metaerr conditions or, for
// I/O and corrupt data, other errors.

// defaultMaxList is the page size when a request asks for 0, and the
// largest page served.
const defaultMaxList = 1000

// view runs fn in a read-only transaction, excluded from Restore.
func (s *State) view(fn func(txn *badger.Txn) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

// scanTxn calls fn for every key with prefix, in key order.
func scanTxn(txn *badger.Txn, prefix []byte, fn func(key, val []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return nil
}

// GetBucket returns a bucket, or ErrNoSuchBucket.
func (s *State) GetBucket(req *metadatapb.GetBucketRequest) (*metadatapb.GetBucketResponse, error) {
	b := &metadatapb.Bucket{}
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		if found, err = getProto(txn, bucketKey(req.GetName()), b); err != nil || !found {
			return err
		}
		b.Usage, err = bucketUsageTxn(txn, b.GetName())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get bucket %q: %w", req.GetName(), err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", req.GetName())
	}
	return &metadatapb.GetBucketResponse{Bucket: b}, nil
}

// ListBuckets returns all buckets in name order.
func (s *State) ListBuckets(*metadatapb.ListBucketsRequest) (*metadatapb.ListBucketsResponse, error) {
	resp := &metadatapb.ListBucketsResponse{}
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixBucket, func(k, v []byte) error {
			b := &metadatapb.Bucket{}
			if err := grpcbuf.UnmarshalUnchecked(v, b); err != nil {
				return fmt.Errorf("read %q: %w", k, err)
			}
			var err error
			if b.Usage, err = bucketUsageTxn(txn, b.GetName()); err != nil {
				return err
			}
			resp.Buckets = append(resp.Buckets, b)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return resp, nil
}

// GetObject returns the current version of an object, or the version
// req names, with its segments and inline data, or ErrNoSuchKey
// (ErrNoSuchVersion for a version that does not exist, ErrNoSuchBucket
// when the bucket is gone). A delete marker is answered as an Object with
// delete_marker set: a version asked for by id, or the latest version
// with include_delete_marker.
func (s *State) GetObject(req *metadatapb.GetObjectRequest) (*metadatapb.GetObjectResponse, error) {
	if len(req.GetVersionId()) > maxVersionID {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "get object: version id longer than %d bytes", maxVersionID)
	}
	var o *metadatapb.Object
	var bucketFound bool
	err := s.view(func(txn *badger.Txn) error {
		cur := &metadatapb.Object{}
		found, err := getProto(txn, objectKey(req.GetBucket(), req.GetKey()), cur)
		if err != nil {
			return err
		}
		if !found {
			cur = nil
		}
		if req.GetVersionId() == "" && (cur != nil || !req.GetIncludeDeleteMarker()) {
			o = cur
		} else if o, err = getVersionTxn(txn, req, cur); err != nil {
			return err
		}
		if o != nil {
			return nil
		}
		bucketFound, err = getProto(txn, bucketKey(req.GetBucket()), &metadatapb.Bucket{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get object %s/%s: %w", req.GetBucket(), req.GetKey(), err)
	}
	if o == nil {
		switch {
		case !bucketFound:
			return nil, metaerr.Detailed(metaerr.ErrNoSuchBucket, "bucket %q", req.GetBucket())
		case req.GetVersionId() != "":
			return nil, metaerr.Detailed(metaerr.ErrNoSuchVersion, "%s/%s version %q", req.GetBucket(), req.GetKey(), req.GetVersionId())
		}
		return nil, metaerr.Detailed(metaerr.ErrNoSuchKey, "%s/%s", req.GetBucket(), req.GetKey())
	}
	return &metadatapb.GetObjectResponse{Object: o}, nil
}

// GetMultipart returns an in-progress upload, or ErrNoSuchUpload.
func (s *State) GetMultipart(req *metadatapb.GetMultipartRequest) (*metadatapb.GetMultipartResponse, error) {
	u := &metadatapb.MultipartUpload{}
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getProto(txn, uploadKey(req.GetBucket(), req.GetKey(), req.GetUploadId()), u)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get upload %q: %w", req.GetUploadId(), err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q of %s/%s", req.GetUploadId(), req.GetBucket(), req.GetKey())
	}
	return &metadatapb.GetMultipartResponse{Upload: u}, nil
}

// ListParts lists an upload's parts with numbers above part_number_marker,
// in number order, at most max_parts (0 means 1000; at most 1000). Segments
// and inline data are included only with with_segments.
func (s *State) ListParts(req *metadatapb.ListPartsRequest) (*metadatapb.ListPartsResponse, error) {
	limit, err := pageSize(req.GetMaxParts(), "max_parts")
	if err != nil {
		return nil, err
	}
	resp := &metadatapb.ListPartsResponse{Upload: &metadatapb.MultipartUpload{}}
	var found bool
	err = s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getProto(txn, uploadKey(req.GetBucket(), req.GetKey(), req.GetUploadId()), resp.Upload)
		if err != nil || !found {
			return err
		}
		prefix := partPrefix(req.GetBucket(), req.GetKey(), req.GetUploadId())
		start := prefix
		if m := req.GetPartNumberMarker(); m >= maxPartNumber {
			return nil // no part numbers above
		} else if m > 0 {
			start = partKey(req.GetBucket(), req.GetKey(), req.GetUploadId(), m+1)
		}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
			if len(resp.Parts) == limit {
				resp.IsTruncated = true
				resp.NextPartNumberMarker = resp.Parts[len(resp.Parts)-1].GetNumber()
				return nil
			}
			p := &metadatapb.Part{}
			if err := it.Item().Value(func(v []byte) error { return grpcbuf.UnmarshalUnchecked(v, p) }); err != nil {
				return fmt.Errorf("read part %q: %w", it.Item().Key(), err)
			}
			if !req.GetWithSegments() {
				p.Segments, p.Inline = nil, nil
			}
			resp.Parts = append(resp.Parts, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list parts of %q: %w", req.GetUploadId(), err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchUpload, "upload %q of %s/%s", req.GetUploadId(), req.GetBucket(), req.GetKey())
	}
	return resp, nil
}

// pageSize turns a requested page size into 1..1000.
func pageSize(n int32, what string) (int, error) {
	switch {
	case n < 0:
		return 0, metaerr.Detailed(metaerr.ErrInvalidArgument, "%s %d is negative", what, n)
	case n == 0 || n > defaultMaxList:
		return defaultMaxList, nil
	default:
		return int(n), nil
	}
}

// ClusterMap returns the blob nodes (in id order), the epoch and the
// default scheme (nil until Bootstrap). Last heartbeat times are not part
// of the replicated state and are 0.
func (s *State) ClusterMap() (*metadatapb.ClusterMap, error) {
	var cm *metadatapb.ClusterMap
	err := s.view(func(txn *badger.Txn) error {
		var err error
		cm, err = readClusterMap(txn, func(p []byte, fn func(k, v []byte) error) error { return scanTxn(txn, p, fn) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read cluster map: %w", err)
	}
	return cm, nil
}

func readClusterMap(txn *badger.Txn, scan func([]byte, func(k, v []byte) error) error) (*metadatapb.ClusterMap, error) {
	cm := &metadatapb.ClusterMap{}
	var err error
	if cm.Epoch, err = readU64(txn, keyEpoch); err != nil {
		return nil, err
	}
	sch := &metadatapb.Scheme{}
	found, err := getProto(txn, keyScheme, sch)
	if err != nil {
		return nil, err
	}
	if found {
		cm.DefaultScheme = sch
	}
	err = scan(prefixNode, func(k, v []byte) error {
		n := &metadatapb.Node{}
		if err := grpcbuf.UnmarshalUnchecked(v, n); err != nil {
			return fmt.Errorf("read %q: %w", k, err)
		}
		cm.Nodes = append(cm.Nodes, n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cm, nil
}

// members reads every member record (address and feature level).
func (s *State) members() (map[string]*metadatapb.MetadMember, error) {
	out := make(map[string]*metadatapb.MetadMember)
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixMember, func(k, v []byte) error {
			m := &metadatapb.MetadMember{}
			if err := grpcbuf.UnmarshalUnchecked(v, m); err != nil {
				return fmt.Errorf("read %q: %w", k, err)
			}
			out[m.GetId()] = m
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	return out, nil
}

// MemberAddresses maps each metad member id to its gRPC address, as set
// by SetMemberAddress.
func (s *State) MemberAddresses() (map[string]string, error) {
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	addrs := make(map[string]string, len(ms))
	for id, m := range ms {
		addrs[id] = m.GetGrpcAddress()
	}
	return addrs, nil
}

// MemberFeatureLevels maps each member with a recorded address to the
// feature level it announced.
func (s *State) MemberFeatureLevels() (map[string]uint32, error) {
	ms, err := s.members()
	if err != nil {
		return nil, err
	}
	levels := make(map[string]uint32, len(ms))
	for id, m := range ms {
		levels[id] = m.GetFeatureLevel()
	}
	return levels, nil
}

// Bootstrapped reports whether a Bootstrap command has been applied.
func (s *State) Bootstrapped() (bool, error) {
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		_, err := txn.Get(keyScheme)
		if err == badger.ErrKeyNotFound {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read bootstrap state: %w", err)
	}
	return found, nil
}
