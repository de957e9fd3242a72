package metadata

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

func smCreateKey(id, secret string, createBuckets bool) *pb.Command {
	return &pb.Command{Op: &pb.Command_CreateAccessKey{CreateAccessKey: &pb.CreateAccessKeyRequest{
		Id: id, Secret: secret, Name: "app " + id, CreateBuckets: createBuckets}}}
}

func smUpdateKey(req *pb.UpdateAccessKeyRequest) *pb.Command {
	return &pb.Command{Op: &pb.Command_UpdateAccessKey{UpdateAccessKey: req}}
}

// TestAccessKeys: keys are created (a repeat of the same request is
// answered as created, another secret for the id refused), granted and
// denied permissions bucket by bucket, own the buckets they create, lose a
// deleted bucket's grants, and are deleted; bad ids and secrets are
// refused and change nothing.
func TestAccessKeys(t *testing.T) {
	h := smNew(t)
	h.must(smCreateBucket("b1"), smCreateKey("APPKEY1", "secret-one", false))
	get := func(id string) *pb.AccessKey {
		t.Helper()
		r, err := h.s.GetAccessKey(&pb.GetAccessKeyRequest{Id: id})
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		return r.GetKey()
	}
	if k := get("APPKEY1"); k.GetSecret() != "secret-one" || k.GetName() != "app APPKEY1" || k.GetCreatedUnixNano() == 0 || k.GetCreateBuckets() {
		t.Fatalf("stored key %v", k)
	}

	// Creation: retries and conflicts.
	for _, tc := range []struct {
		name string
		cmd  *pb.Command
		want error
	}{
		{"the same request again", smCreateKey("APPKEY1", "secret-one", false), nil},
		{"another secret", smCreateKey("APPKEY1", "secret-two", false), metaerr.ErrAccessKeyExists},
		{"short id", smCreateKey("AB", "secret-one", false), metaerr.ErrInvalidArgument},
		{"id with a slash", smCreateKey("AB/CD", "secret-one", false), metaerr.ErrInvalidArgument},
		{"short secret", smCreateKey("APPKEY2", "short", false), metaerr.ErrInvalidArgument},
		{"secret with a space", smCreateKey("APPKEY2", "secret one", false), metaerr.ErrInvalidArgument},
	} {
		if err := h.do(tc.cmd).Err; !smIsCond(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := h.s.GetAccessKey(&pb.GetAccessKeyRequest{Id: "APPKEY2"}); !smIsCond(err, metaerr.ErrNoSuchAccessKey) {
		t.Fatalf("a refused key was stored: %v", err)
	}
	if k := get("APPKEY1"); k.GetSecret() != "secret-one" {
		t.Fatalf("a conflicting create changed the key: %v", k)
	}

	// Grants on one bucket: allow adds, deny takes away, none left drops it.
	grant := func(read, write, owner bool) *pb.BucketGrant {
		return &pb.BucketGrant{Read: read, Write: write, Owner: owner}
	}
	for _, tc := range []struct {
		name string
		req  *pb.UpdateAccessKeyRequest
		want error
		b1   *pb.BucketGrant // nil: no entry for b1
	}{
		{"allow read", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", Bucket: "b1", Allow: grant(true, false, false)}, nil, grant(true, false, false)},
		{"allow write too", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", Bucket: "b1", Allow: grant(false, true, false)}, nil, grant(true, true, false)},
		{"deny read", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", Bucket: "b1", Deny: grant(true, false, false)}, nil, grant(false, true, false)},
		{"a missing bucket", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", Bucket: "nope", Allow: grant(true, false, false)}, metaerr.ErrNoSuchBucket, grant(false, true, false)},
		{"a missing key", &pb.UpdateAccessKeyRequest{Id: "NOKEY", Bucket: "b1", Allow: grant(true, false, false)}, metaerr.ErrNoSuchAccessKey, grant(false, true, false)},
		{"deny everything", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", Bucket: "b1", Deny: grant(true, true, true)}, nil, nil},
		{"may create buckets", &pb.UpdateAccessKeyRequest{Id: "APPKEY1", CreateBuckets: proto.Bool(true)}, nil, nil},
	} {
		if err := h.do(smUpdateKey(tc.req)).Err; !smIsCond(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := get("APPKEY1").GetGrants()["b1"]; !proto.Equal(got, tc.b1) {
			t.Fatalf("after %s: b1 grant %v, want %v", tc.name, got, tc.b1)
		}
	}
	if k := get("APPKEY1"); !k.GetCreateBuckets() || len(k.GetGrants()) != 0 {
		t.Fatalf("key after the updates: %v", k)
	}

	// A bucket created for a key is owned by it; a key that may not
	// create buckets, or a missing one, creates nothing.
	h.must(smCreateKey("APPKEY3", "secret-three", false))
	create := func(bucket, owner string) error {
		return h.do(&pb.Command{Op: &pb.Command_CreateBucket{CreateBucket: &pb.CreateBucketRequest{Name: bucket, OwnerKey: owner}}}).Err
	}
	if err := create("b2", "APPKEY1"); err != nil {
		t.Fatal(err)
	}
	if got := get("APPKEY1").GetGrants()["b2"]; !proto.Equal(got, grant(true, true, true)) {
		t.Fatalf("creator's grant on b2: %v", got)
	}
	for _, owner := range []string{"APPKEY3", "NOKEY"} {
		if err := create("b3", owner); err == nil {
			t.Fatalf("bucket created for %s", owner)
		}
		if _, err := h.s.GetBucket(&pb.GetBucketRequest{Name: "b3"}); !smIsCond(err, metaerr.ErrNoSuchBucket) {
			t.Fatalf("refused create for %s left a bucket: %v", owner, err)
		}
	}

	// Deleting a bucket drops its grants: a new bucket of the same name
	// does not inherit them.
	h.must(smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY3", Bucket: "b2", Allow: grant(true, false, false)}),
		smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY3", Bucket: "b1", Allow: grant(true, false, false)}),
		smDeleteBucket("b2"), smCreateBucket("b2"))
	for _, id := range []string{"APPKEY1", "APPKEY3"} {
		if g, ok := get(id).GetGrants()["b2"]; ok {
			t.Fatalf("%s kept a grant on the deleted b2: %v", id, g)
		}
	}
	if !get("APPKEY3").GetGrants()["b1"].GetRead() {
		t.Fatal("deleting b2 dropped a grant on b1")
	}

	// Listing has no secrets; deleting a key removes it.
	l, err := h.s.ListAccessKeys(&pb.ListAccessKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.GetKeys()) != 2 || l.GetKeys()[0].GetId() != "APPKEY1" || l.GetKeys()[1].GetId() != "APPKEY3" {
		t.Fatalf("list: %v", l.GetKeys())
	}
	for _, k := range l.GetKeys() {
		if k.GetSecret() != "" {
			t.Fatalf("list shows the secret of %s", k.GetId())
		}
	}
	h.must(&pb.Command{Op: &pb.Command_DeleteAccessKey{DeleteAccessKey: &pb.DeleteAccessKeyRequest{Id: "APPKEY1"}}})
	if err := h.do(&pb.Command{Op: &pb.Command_DeleteAccessKey{DeleteAccessKey: &pb.DeleteAccessKeyRequest{Id: "APPKEY1"}}}).Err; !smIsCond(err, metaerr.ErrNoSuchAccessKey) {
		t.Fatalf("deleting a deleted key: %v", err)
	}
	if _, err := h.s.GetAccessKey(&pb.GetAccessKeyRequest{Id: "APPKEY1"}); !smIsCond(err, metaerr.ErrNoSuchAccessKey) {
		t.Fatalf("deleted key still read: %v", err)
	}
}

// TestAccessKeyExpiry: a key is created with an expiry and keeps it, an
// update sets or clears it (0: never) and leaves it alone when absent; an
// expiry not after the command's proposal is refused and changes nothing.
func TestAccessKeyExpiry(t *testing.T) {
	h := smNew(t)
	at := func(now int64, cmd *pb.Command) *pb.Command {
		cmd.ProposedUnixNano = now
		return cmd
	}
	create := func(id string, expires int64) *pb.Command {
		return &pb.Command{Op: &pb.Command_CreateAccessKey{CreateAccessKey: &pb.CreateAccessKeyRequest{
			Id: id, Secret: "secret-" + id, ExpiresUnixNano: expires}}}
	}
	expiry := func(id string) int64 {
		t.Helper()
		r, err := h.s.GetAccessKey(&pb.GetAccessKeyRequest{Id: id})
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		return r.GetKey().GetExpiresUnixNano()
	}
	for _, tc := range []struct {
		name    string
		cmd     *pb.Command
		want    error
		expires int64 // APPKEY1's afterwards
	}{
		{"create with an expiry", at(1000, create("APPKEY1", 5000)), nil, 5000},
		{"an update of something else", at(2000, smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY1", CreateBuckets: proto.Bool(true)})), nil, 5000},
		{"a later expiry", at(2000, smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY1", ExpiresUnixNano: proto.Int64(9000)})), nil, 9000},
		{"an expiry already past", at(3000, smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY1", ExpiresUnixNano: proto.Int64(3000)})), metaerr.ErrInvalidArgument, 9000},
		{"a negative expiry", at(3000, smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY1", ExpiresUnixNano: proto.Int64(-1)})), metaerr.ErrInvalidArgument, 9000},
		{"never", at(3000, smUpdateKey(&pb.UpdateAccessKeyRequest{Id: "APPKEY1", ExpiresUnixNano: proto.Int64(0)})), nil, 0},
	} {
		if err := h.do(tc.cmd).Err; !smIsCond(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := expiry("APPKEY1"); got != tc.expires {
			t.Fatalf("after %s: expires %d, want %d", tc.name, got, tc.expires)
		}
	}
	if err := h.do(at(4000, create("APPKEY2", 4000))).Err; !smIsCond(err, metaerr.ErrInvalidArgument) {
		t.Fatalf("create with an expiry already past: %v, want InvalidArgument", err)
	}
	if _, err := h.s.GetAccessKey(&pb.GetAccessKeyRequest{Id: "APPKEY2"}); !smIsCond(err, metaerr.ErrNoSuchAccessKey) {
		t.Fatalf("a refused key was stored: %v", err)
	}
}
