package metadata

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// TestFeatureLevelGatesNewCommands: every member records the feature
// level it announces; while a member of the Raft configuration is at a
// lower level (here a stopped one whose record says 0, as a member that
// predates the field would have), the commands of the higher level are
// refused with UpgradeRequired and nothing changes; once it comes back
// and announces its level, they pass.
func TestFeatureLevelGatesNewCommands(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	ctx := testCtx(t)
	cl := c.client()
	if _, err := cl.CreateBucket(ctx, &pb.CreateBucketRequest{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	allAt := func(level uint32) bool {
		levels, err := leader.srv.state.MemberFeatureLevels()
		if err != nil {
			return false
		}
		for _, nd := range c.nodes {
			if levels[nd.id] != level {
				return false
			}
		}
		return true
	}
	waitFor(t, 15*time.Second, func() bool { return allAt(FeatureLevel) }, "every member to record feature level %d", FeatureLevel)
	policy := func(p string) error {
		_, err := cl.SetBucketPolicy(ctx, &pb.SetBucketPolicyRequest{Name: "b", Policy: p})
		return metaerr.FromStatus(err)
	}
	if err := policy(`{"a":1}`); err != nil {
		t.Fatalf("SetBucketPolicy with every member at level %d: %v", FeatureLevel, err)
	}

	old := c.stopAsLevel(t, leader, 0)
	err := policy(`{"b":2}`)
	if !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("SetBucketPolicy with %s at level 0: %v, want UpgradeRequired", old.id, err)
	}
	_, err = cl.SetObjectTags(ctx, &pb.SetObjectTagsRequest{Bucket: "b", Key: "k", Tags: map[string]string{"a": "1"}})
	if err := metaerr.FromStatus(err); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("SetObjectTags with %s at level 0: %v, want UpgradeRequired", old.id, err)
	}
	_, err = cl.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: "APPKEY", Secret: "app-secret"})
	if err := metaerr.FromStatus(err); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("CreateAccessKey with %s at level 0: %v, want UpgradeRequired", old.id, err)
	}
	_, err = cl.SetBucketEncryption(ctx, &pb.SetBucketEncryptionRequest{Name: "b", DefaultEncryption: "AES256"})
	if err := metaerr.FromStatus(err); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("SetBucketEncryption with %s at level 0: %v, want UpgradeRequired", old.id, err)
	}
	resp, err := cl.GetBucket(ctx, &pb.GetBucketRequest{Name: "b"})
	if err != nil || resp.GetBucket().GetPolicy() != `{"a":1}` {
		t.Fatalf("policy after the refused set: %q, %v", resp.GetBucket().GetPolicy(), err)
	}

	c.start(old, nil)
	waitFor(t, 15*time.Second, func() bool { return policy(`{"c":3}`) == nil }, "SetBucketPolicy to pass once %s announced its level", old.id)
	if _, err := cl.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: "APPKEY", Secret: "app-secret"}); err != nil {
		t.Fatalf("CreateAccessKey once every member is at level %d: %v", FeatureLevel, err)
	}
	if _, err := cl.SetBucketEncryption(ctx, &pb.SetBucketEncryptionRequest{Name: "b", DefaultEncryption: "AES256"}); err != nil {
		t.Fatalf("SetBucketEncryption once every member is at level %d: %v", FeatureLevel, err)
	}
	resp, err = cl.GetBucket(ctx, &pb.GetBucketRequest{Name: "b"})
	if err != nil || resp.GetBucket().GetDefaultEncryption() != "AES256" {
		t.Fatalf("default encryption after the set: %q, %v", resp.GetBucket().GetDefaultEncryption(), err)
	}
}

// TestKeyExpiryNeedsLevel9: while a member is at level 8, an access key
// is still created and updated, but not with an expiry, which that member
// would drop.
func TestKeyExpiryNeedsLevel9(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	c.waitAddresses()
	ctx := testCtx(t)
	cl := c.client()
	old := c.stopAsLevel(t, leader, 8)
	later := time.Now().Add(time.Hour).UnixNano()
	_, err := cl.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: "APPKEY", Secret: "app-secret", ExpiresUnixNano: later})
	if err := metaerr.FromStatus(err); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("CreateAccessKey with an expiry, %s at level 8: %v, want UpgradeRequired", old.id, err)
	}
	if _, err := cl.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: "APPKEY", Secret: "app-secret"}); err != nil {
		t.Fatalf("CreateAccessKey without an expiry, %s at level 8: %v", old.id, err)
	}
	_, err = cl.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: "APPKEY", ExpiresUnixNano: proto.Int64(later)})
	if err := metaerr.FromStatus(err); !errors.Is(err, metaerr.ErrUpgradeRequired) {
		t.Fatalf("UpdateAccessKey setting an expiry, %s at level 8: %v, want UpgradeRequired", old.id, err)
	}
	k, err := cl.GetAccessKey(ctx, &pb.GetAccessKeyRequest{Id: "APPKEY"})
	if err != nil || k.GetKey().GetExpiresUnixNano() != 0 {
		t.Fatalf("key after the refused updates: %v, %v", k.GetKey(), err)
	}
	c.start(old, nil)
	waitFor(t, 15*time.Second, func() bool {
		_, err := cl.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: "APPKEY", ExpiresUnixNano: proto.Int64(later)})
		return err == nil
	}, "UpdateAccessKey with an expiry to pass once %s announced level %d", old.id, FeatureLevel)
}

// stopAsLevel stops a follower and records it at feature level, as a
// member of an older binary would have announced itself; c.start brings
// it back to announce this binary's level.
func (c *testCluster) stopAsLevel(t *testing.T, leader *testNode, level uint32) *testNode {
	t.Helper()
	old := c.followers()[0]
	c.kill(old)
	if _, err := leader.srv.propose(testCtx(t), &pb.Command{Op: &pb.Command_SetMemberAddress{SetMemberAddress: &pb.SetMemberAddress{
		Id: old.id, GrpcAddress: "127.0.0.1:1", FeatureLevel: level}}}); err != nil {
		t.Fatal(err)
	}
	return old
}
