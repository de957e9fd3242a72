package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// makeBody returns size pseudo-random bytes determined by key and salt, so a
// body can be regenerated instead of kept.
func makeBody(key string, salt, size int) []byte {
	seed := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", key, salt))
	r := rand.NewChaCha8(seed)
	b := make([]byte, size)
	_, _ = r.Read(b) // never fails
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// multipartETag is S3's ETag of a completed multipart upload: the MD5 of the
// parts' MD5s, then "-" and the number of parts.
func multipartETag(parts [][]byte) string {
	var all []byte
	for _, p := range parts {
		s := md5.Sum(p)
		all = append(all, s[:]...)
	}
	return fmt.Sprintf("%s-%d", md5hex(all), len(parts))
}

// version is one body written (or attempted) under a key.
type version struct {
	md5  string // hex MD5 of the body
	size int64
	etag string // the ETag S3 must report for it
}

// ledger records what was attempted and what was acknowledged, per key.
// An acknowledged key must read back exactly; a key attempted but never
// acknowledged may be absent or hold exactly one of its attempted bodies.
type ledger struct {
	mu      sync.Mutex
	acked   map[string]version
	tried   map[string][]version
	deleted map[string]bool // acknowledged deletes of keys not written since
	order   []string        // acknowledged keys, in order of acknowledgement
}

func newLedger() *ledger {
	return &ledger{acked: make(map[string]version), tried: make(map[string][]version), deleted: make(map[string]bool)}
}

func (l *ledger) attempt(key string, v version) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.tried[key], v) {
		l.tried[key] = append(l.tried[key], v)
	}
}

func (l *ledger) ack(key string, v version) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[key]; !ok {
		l.order = append(l.order, key)
	}
	l.acked[key] = v
	delete(l.deleted, key)
}

// merge adds what o recorded to l.
func (l *ledger) merge(o *ledger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range o.order {
		if v, ok := o.acked[k]; ok {
			l.ack(k, v)
		}
	}
	for k, vs := range o.tried {
		for _, v := range vs {
			l.attempt(k, v)
		}
	}
	for k := range o.deleted {
		l.ackDelete(k)
	}
}

// randomAcked returns an acknowledged key and its version, false if none.
func (l *ledger) randomAcked() (string, version, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range 10 {
		if len(l.order) == 0 {
			return "", version{}, false
		}
		k := l.order[rand.IntN(len(l.order))]
		if v, ok := l.acked[k]; ok {
			return k, v, true
		}
	}
	return "", version{}, false
}

func (l *ledger) ackDelete(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.acked, key)
	delete(l.tried, key)
	l.deleted[key] = true
}

func (l *ledger) nAcked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// ackedBytes is the size of every acknowledged object together.
func (l *ledger) ackedBytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, v := range l.acked {
		n += v.size
	}
	return n
}

// putObject PUTs body under key and records the attempt and, on success,
// the acknowledgement.
func putObject(ctx context.Context, c *s3.Client, led *ledger, bucket, key string, body []byte) error {
	v := version{md5: md5hex(body), size: int64(len(body)), etag: md5hex(body)}
	led.attempt(key, v)
	out, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("put %s (%d bytes): %w", key, len(body), err)
	}
	if got := strings.Trim(aws.ToString(out.ETag), `"`); got != v.etag {
		return fmt.Errorf("put %s: ETag %q, want %q (the MD5 of the body)", key, got, v.etag)
	}
	led.ack(key, v)
	return nil
}

// putMultipart uploads parts as one multipart upload and records it.
func putMultipart(ctx context.Context, c *s3.Client, led *ledger, bucket, key string, parts [][]byte) error {
	whole := bytes.Join(parts, nil)
	v := version{md5: md5hex(whole), size: int64(len(whole)), etag: multipartETag(parts)}
	led.attempt(key, v)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("create multipart %s: %w", key, err)
	}
	var done []types.CompletedPart
	for i, p := range parts {
		n := int32(i + 1)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      up.UploadId,
			PartNumber:    aws.Int32(n),
			Body:          bytes.NewReader(p),
			ContentLength: aws.Int64(int64(len(p))),
		})
		if err != nil {
			return fmt.Errorf("upload part %d of %s: %w", n, key, err)
		}
		done = append(done, types.CompletedPart{
			PartNumber: aws.Int32(n), ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256,
		})
	}
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return fmt.Errorf("complete multipart %s: %w", key, err)
	}
	if got := strings.Trim(aws.ToString(out.ETag), `"`); got != v.etag {
		return fmt.Errorf("complete multipart %s: ETag %q, want %q", key, got, v.etag)
	}
	led.ack(key, v)
	return nil
}

// readObject GETs key (or a range of it, when rng is not "") and returns
// the MD5 and length of what came back, and the ETag.
func readObject(ctx context.Context, c *s3.Client, bucket, key, rng string) (sum string, n int64, etag string, err error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != "" {
		in.Range = aws.String(rng)
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return "", 0, "", err
	}
	defer out.Body.Close()
	h := md5.New()
	n, err = io.Copy(h, out.Body)
	if err != nil {
		return "", n, "", fmt.Errorf("read body of %s after %d bytes: %w", key, n, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, strings.Trim(aws.ToString(out.ETag), `"`), nil
}

// listKeys lists every key of bucket with their sizes and ETags, in pages
// of 100 so that listings of a few hundred keys take several pages.
func listKeys(ctx context.Context, c *s3.Client, bucket, prefix string) (map[string]types.Object, error) {
	out := make(map[string]types.Object)
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(100)})
	var last string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if k <= last {
				return nil, fmt.Errorf("list %s: key %q after %q: not in ascending order", bucket, k, last)
			}
			last = k
			out[k] = o
		}
	}
	return out, nil
}

// verify checks the keys of bucket under prefix against the ledger's keys
// under prefix: every acknowledged object
// reads back with its exact bytes and ETag and is listed with its size; a
// listed key that was never acknowledged was at least attempted and holds
// exactly one of the attempted bodies (with exact set, none may exist);
// acknowledged deletes stay deleted. It reports every failure with
// t.Errorf and returns how many objects it read.
func verify(t *testing.T, c *s3.Client, led *ledger, bucket, prefix string, exact bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	led.mu.Lock()
	acked := make(map[string]version, len(led.acked))
	for k, v := range led.acked {
		if strings.HasPrefix(k, prefix) {
			acked[k] = v
		}
	}
	tried := make(map[string][]version, len(led.tried))
	for k, v := range led.tried {
		tried[k] = slices.Clone(v)
	}
	deleted := make([]string, 0, len(led.deleted))
	for k := range led.deleted {
		if strings.HasPrefix(k, prefix) {
			deleted = append(deleted, k)
		}
	}
	led.mu.Unlock()

	var (
		mu   sync.Mutex
		errs []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}

	listed, err := listKeys(ctx, c, bucket, prefix)
	if err != nil {
		t.Errorf("verify: %v", err)
		return 0
	}
	type check struct {
		key  string
		want []version // the read must match one of these
	}
	var checks []check
	for k, v := range acked {
		checks = append(checks, check{k, []version{v}})
		o, ok := listed[k]
		switch {
		case !ok:
			fail("acknowledged %s (%d bytes) missing from the listing", k, v.size)
		case aws.ToInt64(o.Size) != v.size:
			fail("listing: %s has size %d, acknowledged %d", k, aws.ToInt64(o.Size), v.size)
		case strings.Trim(aws.ToString(o.ETag), `"`) != v.etag:
			fail("listing: %s has ETag %s, acknowledged %s", k, aws.ToString(o.ETag), v.etag)
		}
	}
	for k := range listed {
		if _, ok := acked[k]; ok {
			continue
		}
		switch {
		case exact:
			fail("listing has %s, which was never acknowledged (attempted bodies: %d)", k, len(tried[k]))
		case len(tried[k]) == 0:
			fail("listing has %s, which was never even attempted", k)
		default:
			checks = append(checks, check{k, tried[k]})
		}
	}
	for _, k := range deleted {
		if _, ok := listed[k]; ok {
			fail("listing has %s, deleted with an acknowledgement", k)
		}
		_, _, _, err := readObject(ctx, c, bucket, k, "")
		var nsk *types.NoSuchKey
		if !errors.As(err, &nsk) {
			fail("GET of deleted %s: want NoSuchKey, got %v", k, err)
		}
	}

	// Read in parallel: 4 readers keep the gateway busy without swamping
	// two cores.
	work := make(chan check)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ch := range work {
				sum, n, etag, err := readObject(ctx, c, bucket, ch.key, "")
				if err != nil {
					fail("GET %s: %v", ch.key, err)
					continue
				}
				got := version{md5: sum, size: n, etag: etag}
				if !slices.Contains(ch.want, got) {
					fail("GET %s: got %d bytes, MD5 %s, ETag %s; want one of %+v", ch.key, n, sum, etag, ch.want)
				}
			}
		})
	}
	for _, ch := range checks {
		work <- ch
	}
	close(work)
	wg.Wait()

	slices.Sort(errs)
	for i, e := range errs {
		if i == 25 {
			t.Errorf("verify: ... and %d more failures", len(errs)-i)
			break
		}
		t.Errorf("verify: %s", e)
	}
	return len(checks)
}

// createBucket creates a bucket, retrying while the cluster settles.
func createBucket(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}
