package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
)

// TestUploadExpiry: a pass aborts the uploads initiated more than
// UploadExpiry ago, in every bucket, and queues their parts' chunks for
// GC; younger uploads stay until they are old enough themselves.
func TestUploadExpiry(t *testing.T) {
	r := newBalanceRig(t, rigLayout{}, func(c *HealConfig) { c.UploadExpiry = 24 * time.Hour })
	r.must(smCreateBucket("other"))
	r.must(smCreateUpload("bk", "a/x", "old1"))
	r.must(smPutPart("bk", "a/x", "old1", 1, "e1", smSegN(1, "n0", "n1")))
	r.must(smCreateUpload("other", "z", "old2"))
	r.clock.add(12 * time.Hour)
	r.must(smCreateUpload("bk", "a/x", "young"))
	r.must(smPutPart("bk", "a/x", "young", 1, "e2", smSegN(2, "n1", "n2")))

	exists := func(bucket, key, id string) bool {
		t.Helper()
		_, err := r.st.GetMultipart(&pb.GetMultipartRequest{Bucket: bucket, Key: key, UploadId: id})
		if errors.Is(err, metaerr.ErrNoSuchUpload) {
			return false
		}
		if err != nil {
			t.Fatalf("get upload %s: %v", id, err)
		}
		return true
	}
	pass := func() {
		t.Helper()
		if err := r.h.expiryPass(context.Background()); err != nil {
			t.Fatalf("expiry pass: %v", err)
		}
	}

	uploadBytes := func(bucket string) int64 {
		t.Helper()
		return smBucketUsage(t, r.st, bucket).uploads
	}
	if got := uploadBytes("bk"); got != 20 {
		t.Fatalf("bucket bk counts %d upload bytes, want its two parts' 20", got)
	}

	r.clock.add(11*time.Hour + 59*time.Minute) // old1 and old2 are 23h59m old
	pass()
	if !exists("bk", "a/x", "old1") || !exists("other", "z", "old2") || len(smGC(t, r.st)) != 0 {
		t.Fatal("uploads younger than the expiry were aborted")
	}

	r.clock.add(2 * time.Minute)
	pass()
	if exists("bk", "a/x", "old1") || exists("other", "z", "old2") {
		t.Fatal("uploads older than the expiry were kept")
	}
	if !exists("bk", "a/x", "young") {
		t.Fatal("an upload 12 hours old was aborted")
	}
	if got := uploadBytes("bk"); got != 10 {
		t.Fatalf("after the expiry, bucket bk counts %d upload bytes, want the young part's 10", got)
	}
	if got := smGCSegments(t, r.st); !slices.Equal(got, smSegN(1).Id[:1]) {
		t.Fatalf("GC holds segments %x, want the expired part's", got)
	}
	if got := counterValue(t, r.h.m.uploadsExpired); got != 2 {
		t.Fatalf("cairn_multipart_uploads_expired_total = %v, want 2", got)
	}

	r.clock.add(12 * time.Hour)
	pass()
	if exists("bk", "a/x", "young") {
		t.Fatal("the younger upload was kept once it was old enough")
	}
	if n := smCount(t, r.st, prefixUpload) + smCount(t, r.st, prefixPart); n != 0 {
		t.Fatalf("%d upload and part keys left", n)
	}
	if got := uploadBytes("bk"); got != 0 {
		t.Fatalf("every upload expired, bucket bk still counts %d upload bytes", got)
	}
}

// TestUploadsPages: the scan reads at most limit uploads per call, with
// their bucket, key and id, and its cursor visits every upload once.
func TestUploadsPages(t *testing.T) {
	r := newBalanceRig(t, rigLayout{}, nil)
	r.must(smCreateBucket("other"))
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("u%d", i)
		bucket := "bk"
		if i%3 == 0 {
			bucket = "other"
		}
		// Keys in the reverse order of the ids: the scan goes by key.
		r.must(smCreateUpload(bucket, fmt.Sprintf("k%d", 6-i), id))
		want = append(want, bucket+"/"+fmt.Sprintf("k%d", 6-i)+"/"+id)
	}
	var got []string
	var after []byte
	for calls := 1; ; calls++ {
		ups, next, err := r.st.Uploads(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) > 2 {
			t.Fatalf("call %d returned %d uploads, limit 2", calls, len(ups))
		}
		for _, u := range ups {
			got = append(got, u.GetBucket()+"/"+u.GetKey()+"/"+u.GetUploadId())
		}
		if next == nil {
			break
		}
		if calls > 4 {
			t.Fatal("the cursor does not end")
		}
		after = next
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("uploads %v, want %v", got, want)
	}
}

func smSetLifecycle(bucket, doc string) *pb.Command {
	return &pb.Command{Op: &pb.Command_SetBucketLifecycle{SetBucketLifecycle: &pb.SetBucketLifecycleRequest{Name: bucket, Lifecycle: doc}}}
}

// TestLifecycleExpiry: a pass deletes the objects a bucket's rules have
// made due (Days after the last modification, rounded up to midnight
// UTC), leaves the others and the other buckets alone, and aborts the
// uploads an AbortIncompleteMultipartUpload rule has made due; an object
// overwritten after the pass read it is kept.
func TestLifecycleExpiry(t *testing.T) {
	r := newBalanceRig(t, rigLayout{}, func(c *HealConfig) { c.UploadExpiry = 0 })
	r.must(smCreateBucket("other"))
	r.must(smSetLifecycle("bk", `<LifecycleConfiguration>
<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule>
<Rule><ID>temp</ID><Filter><Tag><Key>temp</Key><Value>yes</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>
<Rule><ID>tmp-uploads</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
</LifecycleConfiguration>`))
	// The rig's clock starts at 1970-01-24 03:33:20 UTC.
	for _, k := range []string{"logs/a", "logs/b", "logs/raced", "keep/c", "t/tagged", "t/untagged"} {
		r.must(smPut("bk", k, "e1"))
	}
	r.must(&pb.Command{Op: &pb.Command_SetObjectTags{SetObjectTags: &pb.SetObjectTagsRequest{Bucket: "bk", Key: "t/tagged", Tags: map[string]string{"temp": "yes"}}}})
	r.must(smPut("other", "logs/a", "e1"))
	r.must(smCreateUpload("bk", "tmp/u", "up1"))
	r.must(smCreateUpload("bk", "final/u", "up2"))

	exists := func(bucket, key string) bool {
		t.Helper()
		resp, err := r.st.ListObjects(&pb.ListObjectsRequest{Bucket: bucket, Prefix: key})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetObjects()) == 1 && resp.GetObjects()[0].GetKey() == key
	}
	pass := func() {
		t.Helper()
		if err := r.h.expiryPass(context.Background()); err != nil {
			t.Fatalf("expiry pass: %v", err)
		}
	}

	// Two days on, it is not yet midnight: nothing is due.
	r.clock.add(48 * time.Hour)
	pass()
	if !exists("bk", "logs/a") {
		t.Fatal("an object was deleted before its expiry midnight")
	}
	// logs/b is overwritten: its modification time starts again.
	r.must(smPut("bk", "logs/b", "e2"))
	// logs/raced is overwritten after the pass read the listing: the
	// pass's conditional delete must leave the new version.
	stale, err := r.st.ListObjects(&pb.ListObjectsRequest{Bucket: "bk"})
	if err != nil {
		t.Fatal(err)
	}
	r.must(smPut("bk", "logs/raced", "e2"))
	h := newHealer(r.h.cfg, r.h.log, staleListing{r.view, stale}, r.propose, r.h.m)
	h.now = r.clock.now

	r.clock.add(21 * time.Hour) // past the midnight after modification + 2 days
	if err := h.expiryPass(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bucket, key string
		want        bool
	}{
		{"bk", "logs/a", false}, {"bk", "logs/b", true}, {"bk", "logs/raced", true},
		{"bk", "keep/c", true}, {"other", "logs/a", true},
		{"bk", "t/tagged", false}, {"bk", "t/untagged", true},
	} {
		if got := exists(tc.bucket, tc.key); got != tc.want {
			t.Errorf("%s/%s exists: %v, want %v", tc.bucket, tc.key, got, tc.want)
		}
	}
	if got := counterValue(t, r.h.m.objectsExpired); got != 2 {
		t.Errorf("cairn_lifecycle_objects_expired_total = %v, want 2", got)
	}
	for _, tc := range []struct {
		key, id string
		want    bool
	}{{"tmp/u", "up1", false}, {"final/u", "up2", true}} {
		_, err := r.st.GetMultipart(&pb.GetMultipartRequest{Bucket: "bk", Key: tc.key, UploadId: tc.id})
		if got := err == nil; got != tc.want {
			t.Errorf("upload %s exists: %v (%v), want %v", tc.id, got, err, tc.want)
		}
	}

	// Deleting the configuration stops the rules.
	r.must(smSetLifecycle("bk", ""))
	r.clock.add(10 * 24 * time.Hour)
	pass()
	if !exists("bk", "logs/b") {
		t.Error("an object was expired after the bucket's lifecycle was deleted")
	}
}

// staleListing answers ListObjects with a listing read earlier.
type staleListing struct {
	*hookedState
	resp *pb.ListObjectsResponse
}

func (s staleListing) ListObjects(*pb.ListObjectsRequest) (*pb.ListObjectsResponse, error) {
	return s.resp, nil
}
