package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"

	"github.com/cairnstore/cairn/gateway/s3err"
	"github.com/cairnstore/cairn/gateway/sigv4"
)

// How long the gateway trusts what it read of an access key. A deleted
// key, or a permission taken away, stops working within the key TTL
// (Config.AccessKeyTTL, DefaultAccessKeyTTL); an unknown key is asked
// about again after at most unknownKeyTTL, so a key created just after a
// client tried it works a moment later, and a client hammering with a bad
// key costs metad one read a second.
const (
	DefaultAccessKeyTTL = 5 * time.Second
	unknownKeyTTL       = time.Second
)

// keyring finds who signed a request: the root key pair from the
// gateway's environment, which may do everything, or an access key stored
// in metad, which may do what its grants say. It is the verifiers'
// CredentialStore and the authorizer's source of grants.
type keyring struct {
	root  Credentials
	meta  AccessKeyMeta
	ttl   time.Duration
	now   func() time.Time
	cache *ttlCache[*pb.AccessKey] // nil: no such key
}

// maxCachedAccessKeys bounds the cache; it is emptied when full (a client
// trying random ids must not grow it without limit).
const maxCachedAccessKeys = 10000

func newKeyring(root Credentials, meta AccessKeyMeta, ttl time.Duration, now func() time.Time) *keyring {
	return &keyring{root: root, meta: meta, ttl: ttl, now: now, cache: newTTLCache[*pb.AccessKey](now, maxCachedAccessKeys)}
}

// isRoot reports whether id is the root access key.
func (k *keyring) isRoot(id string) bool { return id == k.root.AccessKey }

// Secret implements sigv4.CredentialStore. An expired key is refused as
// S3 refuses a key it does not know (InvalidAccessKeyId), saying when it
// expired; its expiry, like its deletion, takes effect within the key
// TTL when set through another gateway.
func (k *keyring) Secret(ctx context.Context, id string) (string, error) {
	if k.isRoot(id) {
		return k.root.SecretKey, nil
	}
	key, err := k.lookup(ctx, id)
	if err != nil {
		return "", err
	}
	if exp := key.GetExpiresUnixNano(); exp != 0 && !k.now().Before(time.Unix(0, exp)) {
		return "", s3err.New(s3err.InvalidAccessKeyID, "The access key %s expired at %s.", id, time.Unix(0, exp).UTC().Format(time.RFC3339)).With("AWSAccessKeyId", id)
	}
	return key.GetSecret(), nil
}

// lookup returns a stored access key, or sigv4.ErrUnknownKey, as read at
// most the key TTL ago (unknownKeyTTL for an unknown key).
func (k *keyring) lookup(ctx context.Context, id string) (*pb.AccessKey, error) {
	return k.lookupNewer(ctx, id, k.ttl)
}

// lookupNewer is lookup of what was read at most maxAge ago (0: read it
// now).
func (k *keyring) lookupNewer(ctx context.Context, id string, maxAge time.Duration) (*pb.AccessKey, error) {
	fresh := func(key *pb.AccessKey, age time.Duration) bool {
		if key == nil {
			return age < min(maxAge, unknownKeyTTL)
		}
		return age < maxAge
	}
	key, err := k.cache.get(ctx, id, fresh, func(ctx context.Context) (*pb.AccessKey, error) { return k.read(ctx, id) })
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, sigv4.ErrUnknownKey
	}
	return key, nil
}

// forget drops what was read of id: it changed through this gateway.
func (k *keyring) forget(id string) { k.cache.forget(id) }

// read asks metad. A metad that predates access keys has none.
func (k *keyring) read(ctx context.Context, id string) (*pb.AccessKey, error) {
	resp, err := k.meta.GetAccessKey(ctx, &pb.GetAccessKeyRequest{Id: id})
	if err != nil {
		if errors.Is(metaerr.FromStatus(err), metaerr.ErrNoSuchAccessKey) || status.Code(err) == codes.Unimplemented {
			return nil, nil
		}
		return nil, fmt.Errorf("read access key %s from metad: %w", id, err)
	}
	return resp.GetKey(), nil
}
