package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// checkUsage compares metad's counts of bucket with what the ledger says
// was acknowledged.
func checkUsage(t *testing.T, meta *metaclient.Client, led *ledger, bucket, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := meta.GetBucket(ctx, &pb.GetBucketRequest{Name: bucket})
	if err != nil {
		t.Fatalf("%s: read bucket %s: %v", when, bucket, err)
	}
	u := resp.GetBucket().GetUsage()
	if u.GetObjects() != int64(led.nAcked()) || u.GetBytes() != led.ackedBytes() {
		t.Fatalf("%s: bucket %s counted %d objects of %d bytes; %d objects of %d bytes were acknowledged",
			when, bucket, u.GetObjects(), u.GetBytes(), led.nAcked(), led.ackedBytes())
	}
}

// TestKillNineEverything writes objects of every size class (empty, inline,
// one stripe, several segments, multipart), an overwrite and a delete,
// then SIGKILLs every process at once and restarts them all: whatever was
// acknowledged must have been durable (fsync before ack on the blob nodes,
// the Raft log synced on metad) and must read back exactly; nothing else
// may be listed. An access key and the bucket's counts survive too, and
// so do objects written with server-side encryption (SSE-S3 and SSE-C),
// whose plaintext is on no blob node's disk.
func TestKillNineEverything(t *testing.T) {
	skipShort(t)
	// Small snapshot settings: metad restarts from a snapshot plus the
	// log after it, not from the log alone. The gateway holds an SSE-S3
	// master key (from a file, so the restarted gateway has it too) and
	// takes SSE-C keys over plain http.
	cl := startCluster(t, clusterConfig{SnapshotThreshold: 32, TrailingLogs: 16, GatewayArgs: sseGatewayArgs(t, t.TempDir())})
	client := cl.S3()
	const bucket = "kill9"
	createBucket(t, client, bucket)
	led := newLedger()

	sizes := []int{0, 1, 4 << 10, 4<<10 + 1, 100 << 10, 5 << 20, 20 << 20}
	rounds := 2
	if *flagLong {
		rounds = 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var total int64
	for r := range rounds {
		for _, size := range sizes {
			key := fmt.Sprintf("r%d/obj-%d", r, size)
			if err := putObject(ctx, client, led, bucket, key, makeBody(key, 0, size)); err != nil {
				t.Fatal(err)
			}
			total += int64(size)
		}
	}
	// A multipart upload: two parts of the 5 MiB minimum and a short last
	// one, so the object spans parts and segments unevenly.
	mpKey := "multi/part object"
	parts := [][]byte{makeBody(mpKey, 1, 5<<20), makeBody(mpKey, 2, 5<<20+17), makeBody(mpKey, 3, 1<<20+3)}
	if err := putMultipart(ctx, client, led, bucket, mpKey, parts); err != nil {
		t.Fatal(err)
	}
	// An overwrite (the old version's chunks go to the GC queue: the new
	// ones must not) and a delete.
	over := "r0/obj-102400"
	if err := putObject(ctx, client, led, bucket, over, makeBody(over, 7, 300<<10)); err != nil {
		t.Fatal(err)
	}
	// Many small (inline) objects, each written twice: enough Raft entries
	// for several snapshots.
	for i := range 60 {
		for v := range 2 {
			key := fmt.Sprintf("small/%03d", i)
			if err := putObject(ctx, client, led, bucket, key, makeBody(key, v, i*50)); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone := fmt.Sprintf("r0/obj-%d", 5<<20)
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(gone)}); err != nil {
		t.Fatalf("delete %s: %v", gone, err)
	}
	led.ackDelete(gone)
	cl.logf("wrote %d objects (%.1f MiB) in %v", led.nAcked(), float64(total)/(1<<20), time.Since(start).Round(time.Millisecond))
	// Encrypted objects, in a bucket of their own: the SSE-C one cannot be
	// read without its key, so it is not the ledger's.
	start = time.Now()
	enc := writeEncrypted(ctx, t, client, "kill9-sse", cl.cfg.SegmentSize)
	cl.logf("wrote an SSE-S3, an SSE-C and a control object in %v", time.Since(start).Round(time.Millisecond))
	// A versioned key's history: its noncurrent versions and its delete
	// marker must survive as its current objects do.
	vers := writeVersioned(ctx, t, client, "kill9-versions", cl.cfg.SegmentSize)

	// Check before the crash too: a failure here is not about durability.
	verify(t, client, led, bucket, "", true)
	enc.check(ctx, t, client, "before the crash")
	vers.check(ctx, t, client, "before the crash")
	if t.Failed() {
		t.FailNow()
	}
	// What metad keeps beside the objects must survive too: an access
	// key with its grant, and the bucket's counts of objects and bytes.
	meta, err := metaclient.New(cl.metadGRPC, metaclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const keyID, keySecret = "E2EREADER", "e2e-reader-secret"
	if _, err := meta.CreateAccessKey(ctx, &pb.CreateAccessKeyRequest{Id: keyID, Secret: keySecret}); err != nil {
		t.Fatal(err)
	}
	if _, err := meta.UpdateAccessKey(ctx, &pb.UpdateAccessKeyRequest{Id: keyID, Bucket: bucket, Allow: &pb.BucketGrant{Read: true}}); err != nil {
		t.Fatal(err)
	}
	checkUsage(t, meta, led, bucket, "before the crash")
	meta.Close()

	cl.Kill(cl.all()...)
	cl.logf("SIGKILLed all %d processes", len(cl.all()))
	// Nothing runs now: the blob nodes' files hold all they will.
	var blobDirs []string
	for _, b := range cl.blobs {
		blobDirs = append(blobDirs, cl.dataDir(b))
	}
	scan := time.Now()
	enc.checkAtRest(t, blobDirs)
	cl.logf("scanned the blob nodes' files for plaintext in %v", time.Since(scan).Round(time.Millisecond))
	restart := time.Now()
	cl.Restart(cl.all()...)
	cl.WaitReady(60 * time.Second)
	cl.logf("all processes back and serving S3 %v after the restart", time.Since(restart).Round(time.Millisecond))

	n := verify(t, cl.S3(), led, bucket, "", true)
	cl.logf("after kill -9 of everything: %d objects checked", n)
	enc.check(ctx, t, cl.S3(), "after kill -9 of everything")
	vers.check(ctx, t, cl.S3(), "after kill -9 of everything")
	if t.Failed() {
		return
	}
	meta, err = metaclient.New(cl.metadGRPC, metaclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkUsage(t, meta, led, bucket, "after kill -9 of everything")
	meta.Close()
	reader := cl.S3(func(o *s3.Options) {
		o.Credentials = awscreds.NewStaticCredentialsProvider(keyID, keySecret, "")
		o.RetryMaxAttempts = 1
	})
	if n := verify(t, reader, led, bucket, "", true); n == 0 {
		t.Fatal("the access key read nothing back")
	}
	_, err = reader.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("by-reader"), Body: strings.NewReader("x")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("a PUT with the read-only key after the restart: %v, want AccessDenied", err)
	}

	// Again, with writes in flight: what was acknowledged survives; a
	// write cut off may or may not have happened, but not halfway.
	w := startWriters(t, cl, led, bucket, "inflight", 4, []int{10, 3000, 200 << 10, 2 << 20})
	w.waitAcks(t, cl, 30, 30*time.Second, "before killing everything again")
	cl.Kill(cl.all()...)
	w.stop()
	w.report(cl)
	cl.Restart(cl.all()...)
	cl.WaitReady(60 * time.Second)
	n = verify(t, cl.S3(), led, bucket, "", false)
	cl.logf("after kill -9 of everything during writes: %d objects checked", n)
}
