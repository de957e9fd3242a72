package metadata

import (
	"bytes"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cairnstore/cairn/internal/grpcbuf"
	"github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// Access keys: the credentials of S3 clients other than the gateways' root
// key, each with the buckets it may read, write or own (k/<id>). The state
// machine stores them and keeps their grants consistent with the buckets
// (a deleted bucket's grants go with it, so a new bucket of the same name
// does not inherit them); the gateways decide what a request may do.

func (a *applier) createAccessKey(req *metadatapb.CreateAccessKeyRequest) (proto.Message, error) {
	for _, err := range []error{
		metadatapb.CheckAccessKeyID(req.GetId()),
		metadatapb.CheckAccessKeySecret(req.GetSecret()),
		metadatapb.CheckAccessKeyName(req.GetName()),
	} {
		if err != nil {
			return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "create access key: %v", err)
		}
	}
	old := &metadatapb.AccessKey{}
	found, err := a.st.get(accessKeyKey(req.GetId()), old)
	if err != nil {
		return nil, err
	}
	if found {
		// The same request again (a retry whose answer was lost): it
		// was created, and may have been changed since.
		if old.GetSecret() == req.GetSecret() {
			return &metadatapb.CreateAccessKeyResponse{Key: old}, nil
		}
		return nil, metaerr.Detailed(metaerr.ErrAccessKeyExists, "access key %q", req.GetId())
	}
	if err := checkKeyExpiry(req.GetExpiresUnixNano(), a.now); err != nil {
		return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "create access key: %v", err)
	}
	k := &metadatapb.AccessKey{
		Id: req.GetId(), Secret: req.GetSecret(), Name: req.GetName(),
		CreatedUnixNano: a.now, CreateBuckets: req.GetCreateBuckets(),
		ExpiresUnixNano: req.GetExpiresUnixNano(),
	}
	if err := a.st.put(accessKeyKey(k.Id), k); err != nil {
		return nil, err
	}
	return &metadatapb.CreateAccessKeyResponse{Key: k}, nil
}

func (a *applier) updateAccessKey(req *metadatapb.UpdateAccessKeyRequest) (proto.Message, error) {
	k := &metadatapb.AccessKey{}
	found, err := a.st.get(accessKeyKey(req.GetId()), k)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", req.GetId())
	}
	if req.CreateBuckets != nil {
		k.CreateBuckets = req.GetCreateBuckets()
	}
	if req.ExpiresUnixNano != nil {
		if err := checkKeyExpiry(req.GetExpiresUnixNano(), a.now); err != nil {
			return nil, metaerr.Detailed(metaerr.ErrInvalidArgument, "update access key %q: %v", req.GetId(), err)
		}
		k.ExpiresUnixNano = req.GetExpiresUnixNano()
	}
	if b := req.GetBucket(); b != "" {
		g := k.GetGrants()[b]
		if g == nil {
			g = &metadatapb.BucketGrant{}
		}
		allow, deny := req.GetAllow(), req.GetDeny()
		if allow.GetRead() || allow.GetWrite() || allow.GetOwner() {
			// Granting on a bucket that does not exist would be granting
			// on whoever creates it next.
			if err := a.requireBucket(b); err != nil {
				return nil, err
			}
		}
		g.Read = (g.Read || allow.GetRead()) && !deny.GetRead()
		g.Write = (g.Write || allow.GetWrite()) && !deny.GetWrite()
		g.Owner = (g.Owner || allow.GetOwner()) && !deny.GetOwner()
		if g.Read || g.Write || g.Owner {
			if k.Grants == nil {
				k.Grants = map[string]*metadatapb.BucketGrant{}
			}
			k.Grants[b] = g
		} else {
			delete(k.Grants, b)
		}
	}
	if err := a.st.put(accessKeyKey(k.Id), k); err != nil {
		return nil, err
	}
	return &metadatapb.UpdateAccessKeyResponse{Key: k}, nil
}

// checkKeyExpiry refuses an expiry (0: never) that is not after now, the
// command's proposal time: a key that would never have worked is a
// mistake of the caller's (a duration's sign, a date's year).
func checkKeyExpiry(expires, now int64) error {
	if expires < 0 || (expires != 0 && expires <= now) {
		return fmt.Errorf("expiry %s is not in the future", time.Unix(0, expires).UTC().Format(time.RFC3339))
	}
	return nil
}

func (a *applier) deleteAccessKey(req *metadatapb.DeleteAccessKeyRequest) (proto.Message, error) {
	found, err := a.st.has(accessKeyKey(req.GetId()))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", req.GetId())
	}
	a.st.del(accessKeyKey(req.GetId()))
	return &metadatapb.DeleteAccessKeyResponse{}, nil
}

// grantOwner gives key every permission on a bucket it creates. The key
// must exist and be allowed to create buckets: the gateway checked, but a
// key deleted or changed since must not end up owning a bucket.
func (a *applier) grantOwner(keyID, bucket string) error {
	k := &metadatapb.AccessKey{}
	found, err := a.st.get(accessKeyKey(keyID), k)
	if err != nil {
		return err
	}
	if !found {
		return metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "create bucket %q: access key %q", bucket, keyID)
	}
	if !k.GetCreateBuckets() {
		return metaerr.Detailed(metaerr.ErrInvalidArgument, "create bucket %q: access key %q may not create buckets", bucket, keyID)
	}
	if k.Grants == nil {
		k.Grants = map[string]*metadatapb.BucketGrant{}
	}
	k.Grants[bucket] = &metadatapb.BucketGrant{Read: true, Write: true, Owner: true}
	return a.st.put(accessKeyKey(keyID), k)
}

// keysGranting reads the keys with a grant on bucket (a scan: call before
// staging writes).
func (a *applier) keysGranting(bucket string) ([]*metadatapb.AccessKey, error) {
	var ks []*metadatapb.AccessKey
	err := a.st.scan(prefixAccessKey, func(k, v []byte) error {
		ak := &metadatapb.AccessKey{}
		if err := grpcbuf.UnmarshalUnchecked(v, ak); err != nil {
			return fmt.Errorf("read access key %q: %w", bytes.Clone(k), err)
		}
		if _, ok := ak.GetGrants()[bucket]; ok {
			ks = append(ks, ak)
		}
		return nil
	})
	return ks, err
}

// dropGrants removes bucket's grants from ks (read by keysGranting).
func (a *applier) dropGrants(bucket string, ks []*metadatapb.AccessKey) error {
	for _, k := range ks {
		delete(k.Grants, bucket)
		if err := a.st.put(accessKeyKey(k.GetId()), k); err != nil {
			return err
		}
	}
	return nil
}

// GetAccessKey returns one key with its secret, or ErrNoSuchAccessKey.
func (s *State) GetAccessKey(req *metadatapb.GetAccessKeyRequest) (*metadatapb.GetAccessKeyResponse, error) {
	k := &metadatapb.AccessKey{}
	var found bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		found, err = getProto(txn, accessKeyKey(req.GetId()), k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get access key %q: %w", req.GetId(), err)
	}
	if !found {
		return nil, metaerr.Detailed(metaerr.ErrNoSuchAccessKey, "access key %q", req.GetId())
	}
	return &metadatapb.GetAccessKeyResponse{Key: k}, nil
}

// ListAccessKeys returns every key in id order, without secrets.
func (s *State) ListAccessKeys(*metadatapb.ListAccessKeysRequest) (*metadatapb.ListAccessKeysResponse, error) {
	resp := &metadatapb.ListAccessKeysResponse{}
	err := s.view(func(txn *badger.Txn) error {
		return scanTxn(txn, prefixAccessKey, func(k, v []byte) error {
			ak := &metadatapb.AccessKey{}
			if err := grpcbuf.UnmarshalUnchecked(v, ak); err != nil {
				return fmt.Errorf("read %q: %w", k, err)
			}
			ak.Secret = ""
			resp.Keys = append(resp.Keys, ak)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list access keys: %w", err)
	}
	return resp, nil
}
