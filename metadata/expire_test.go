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
		if err := r.h.expireUploads(context.Background()); err != nil {
			t.Fatalf("expiry pass: %v", err)
		}
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
}

// TestStaleUploadsPages: the scan reads at most limit uploads per call,
// returns the stale ones among them, and its cursor visits every upload
// once.
func TestStaleUploadsPages(t *testing.T) {
	r := newBalanceRig(t, rigLayout{}, nil)
	var want []string
	var cutoff time.Time
	for i := range 7 {
		id := fmt.Sprintf("u%d", i)
		if i == 4 {
			cutoff = r.clock.now() // u4 and later are not older than it
		}
		if i < 4 {
			want = append(want, id)
		}
		// Keys in the reverse order of the ids: the scan goes by key.
		r.must(smCreateUpload("bk", fmt.Sprintf("k%d", 6-i), id))
		r.clock.add(time.Minute)
	}
	var got []string
	var after []byte
	for calls := 1; ; calls++ {
		stale, next, err := r.st.StaleUploads(cutoff, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) > 2 {
			t.Fatalf("call %d returned %d uploads, limit 2", calls, len(stale))
		}
		for _, u := range stale {
			if u.GetBucket() != "bk" || u.GetKey() == "" {
				t.Fatalf("upload %q without its bucket or key: %q %q", u.GetUploadId(), u.GetBucket(), u.GetKey())
			}
			got = append(got, u.GetUploadId())
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
	if !slices.Equal(got, want) {
		t.Fatalf("stale uploads %v, want %v", got, want)
	}
	// A cutoff before them all finds none.
	stale, _, err := r.st.StaleUploads(time.Unix(0, 0), nil, 100)
	if err != nil || len(stale) != 0 {
		t.Fatalf("cutoff at the epoch: %d stale, %v", len(stale), err)
	}
}
