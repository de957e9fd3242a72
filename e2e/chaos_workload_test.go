package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// chaosBucket holds the chaos workload's keys.
const chaosBucket = "chaos"

// workload is N clients running a mix of PUT, GET, DELETE and LIST over a
// small key space, recording every operation in the history.
type workload struct {
	cl      *s3.Client
	hist    *history
	reg     *registry
	keys    []string
	maxSize int
	// multipartBig allows 2-part uploads (a 5 MiB first part).
	multipartBig bool
	opTimeout    time.Duration
	// versions sends a fifth of the writes and reads to the versioned
	// bucket (chaos_versions_test.go), over vkeys, recording its writes in
	// ledger.
	versions bool
	vkeys    []string
	ledger   *versionLedger

	stop chan struct{}
	wg   sync.WaitGroup
}

func chaosKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}

// start runs n clients, client i with a random source seeded by seed and i.
func (w *workload) start(n int, seed uint64) {
	w.stop = make(chan struct{})
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		w.wg.Go(func() { w.client(i, rng) })
	}
}

// halt stops the clients after their operations in flight and waits.
func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// clientCounts counts a client's operations by kind: the versioned
// bucket's share of deletes and reads (and of empty writes, which have no
// value of their own) is chosen by these counts, so that the random
// source draws what it drew before the bucket existed.
type clientCounts struct{ puts, gets, dels int }

func (w *workload) client(id int, rng *rand.Rand) {
	backoff := time.Duration(0)
	var n clientCounts
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		ki := rng.IntN(len(w.keys))
		var o *op
		switch r := rng.IntN(100); {
		case r < 40:
			o = w.put(id, rng, ki, &n)
		case r < 75:
			o = w.get(id, rng, ki, rng.IntN(3) == 0, &n)
		case r < 85:
			o = w.del(id, ki, &n)
		default:
			o = w.list(id)
		}
		// Pace a client whose operations fail (a gateway restarting
		// refuses connections at once).
		if o.outcome == acked {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 20*time.Millisecond), 500*time.Millisecond)
		select {
		case <-time.After(backoff):
		case <-w.stop:
			return
		}
	}
}

// size picks a body size: empty, inline (under 4 KiB), small, or up to
// maxSize (several segments).
func (w *workload) size(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 5:
		return 0
	case r < 30:
		return minBody + rng.IntN(inlineMax)
	case r < 80:
		return inlineMax + rng.IntN(256<<10)
	default:
		return 256<<10 + rng.IntN(w.maxSize-256<<10)
	}
}

func (w *workload) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), w.opTimeout)
}

// vkey is the versioned bucket's key for key index ki: a few keys, so
// that each gets many versions.
func (w *workload) vkey(ki int) string { return w.vkeys[ki%len(w.vkeys)] }

// bucketOf is the bucket o works on.
func bucketOf(o *op) *string {
	if o.versioned {
		return aws.String(chaosVersionedBucket)
	}
	return aws.String(chaosBucket)
}

// putVersioned reports whether the put of value id, a client's n-th, goes
// to the versioned bucket: a fifth, chosen by value as SSE is (and by the
// count for empty bodies, which are all the one value).
func (w *workload) putVersioned(id int64, n int) bool {
	if !w.versions {
		return false
	}
	if id == emptyValue {
		return n%5 == 2
	}
	return id%5 == 2
}

func (w *workload) put(client int, rng *rand.Rand, ki int, n *clientCounts) *op {
	multipart := rng.IntN(10) == 0
	var partSizes []int64
	size := w.size(rng)
	if multipart {
		if size == 0 {
			size = minBody
		}
		partSizes = []int64{int64(size)}
		if w.multipartBig && rng.IntN(4) == 0 {
			partSizes = []int64{5 << 20, int64(size)}
			size += 5 << 20
		}
	}
	o := &op{client: client, kind: opPut, key: w.keys[ki], size: int64(size), parts: len(partSizes)}
	o.val = w.reg.allocate(int64(size))
	if w.putVersioned(o.val, n.puts) {
		o.versioned, o.key = true, w.vkey(ki)
	}
	n.puts++
	w.reg.register(o.val, o.key, int64(size), partSizes)
	body := valueBody(o.val, size)
	want, _ := w.reg.info(o.val)
	if o.versioned {
		w.ledger.attempt(o, body)
	}
	// A third of the writes are encrypted (SSE-S3), chosen by value so
	// that a seed's plan stays what it was: the same faults must lose
	// none of them either, and reads of them see only their plaintext.
	var sse types.ServerSideEncryption
	if o.val%3 == 1 {
		sse = types.ServerSideEncryptionAes256
	}
	ctx, cancel := w.ctx()
	defer cancel()
	o.start = time.Now()
	var etag string
	var err error
	if multipart {
		etag, err = w.multipart(ctx, body, partSizes, sse, o)
	} else {
		var out *s3.PutObjectOutput
		out, err = w.cl.PutObject(ctx, &s3.PutObjectInput{
			Bucket: bucketOf(o), Key: aws.String(o.key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(size)),
			ServerSideEncryption: sse,
		})
		if err == nil {
			etag = strings.Trim(aws.ToString(out.ETag), `"`)
			o.version = aws.ToString(out.VersionId)
		}
	}
	o.end = time.Now()
	w.finish(o, err)
	switch {
	case err != nil:
	case etag != want.etag:
		o.err = fmt.Sprintf("acknowledged with ETag %q, want %q", etag, want.etag)
	case o.versioned && !madeVersionID(o.version):
		o.err = fmt.Sprintf("acknowledged in a bucket with versioning enabled with version id %q", o.version)
	case o.versioned:
		w.ledger.acknowledged(o)
	}
	w.hist.add(o)
	return o
}

// multipart uploads body to o's key in parts of partSizes, encrypted as
// sse asks, and sets o's version id. An error before Complete was sent
// marks the operation failedBeforeCommit.
func (w *workload) multipart(ctx context.Context, body []byte, partSizes []int64, sse types.ServerSideEncryption, o *op) (string, error) {
	b, k := bucketOf(o), aws.String(o.key)
	up, err := w.cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k, ServerSideEncryption: sse})
	if err != nil {
		o.outcome = failedBeforeCommit
		return "", err
	}
	abort := func() {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.cl.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: b, Key: k, UploadId: up.UploadId})
	}
	var done []types.CompletedPart
	var off int64
	for i, ps := range partSizes {
		n := aws.Int32(int32(i + 1))
		out, err := w.cl.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: b, Key: k, UploadId: up.UploadId, PartNumber: n,
			Body: bytes.NewReader(body[off : off+ps]), ContentLength: aws.Int64(ps),
		})
		if err != nil {
			o.outcome = failedBeforeCommit
			abort()
			return "", err
		}
		off += ps
		done = append(done, types.CompletedPart{PartNumber: n, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	out, err := w.cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: b, Key: k, UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return "", err
	}
	o.version = aws.ToString(out.VersionId)
	return strings.Trim(aws.ToString(out.ETag), `"`), nil
}

// finish sets the op's outcome from the error of its request.
func (w *workload) finish(o *op, err error) {
	if err == nil {
		return
	}
	o.err = volatile.ReplaceAllString(err.Error(), "…")
	if o.outcome == failedBeforeCommit {
		return
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		o.outcome = failedAnswered
		return
	}
	o.outcome = failedUnanswered
}

// get reads key index ki (whole or a range), a fifth of the time in the
// versioned bucket: half of those read the key, half a version picked
// among those acknowledged so far, by id.
func (w *workload) get(client int, rng *rand.Rand, ki int, ranged bool, n *clientCounts) *op {
	o := &op{client: client, kind: opGet, key: w.keys[ki], rngStart: -1}
	var ref versionRef
	if w.versions {
		switch n.gets % 10 {
		case 2:
			o.versioned, o.key = true, w.vkey(ki)
		case 7:
			if r, ok := w.ledger.pick(n.gets); ok {
				ref = r
				o.versioned, o.key, o.askVersion, o.val = true, r.key, r.id, r.val
			}
		}
	}
	n.gets++
	in := &s3.GetObjectInput{Bucket: bucketOf(o), Key: aws.String(o.key)}
	if o.askVersion != "" {
		in.VersionId = aws.String(o.askVersion)
	}
	if ranged {
		o.rngStart = int64(rng.IntN(64 << 10))
		o.rngEnd = o.rngStart + int64(rng.IntN(256<<10))
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", o.rngStart, o.rngEnd))
	}
	w.read(o, in)
	if o.askVersion != "" {
		checkVersionRead(o, ref)
	}
	w.hist.add(o)
	return o
}

// read runs a GET and resolves what it returned to a value.
func (w *workload) read(o *op, in *s3.GetObjectInput) {
	ctx, cancel := w.ctx()
	defer cancel()
	o.start = time.Now()
	out, err := w.cl.GetObject(ctx, in)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			err = fmt.Errorf("read body after %d bytes: %w", len(body), err)
		}
	}
	o.end = time.Now()
	var nsk *types.NoSuchKey
	var re *smithyhttp.ResponseError
	if err == nil {
		o.version = aws.ToString(out.VersionId)
	} else if errors.As(err, &re) && re.Response != nil {
		o.version = re.Response.Header.Get("x-amz-version-id")
	}
	switch {
	case errors.As(err, &nsk):
		o.got = absentValue
		return
	case o.askVersion != "" && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
		// NoSuchVersion: an answer, which checkVersionRead judges.
		o.got = absentValue
		return
	case o.rngStart >= 0 && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable:
		o.unsat = true
		return
	case err != nil:
		w.finish(o, err)
		return
	}
	off, total := int64(0), int64(len(body))
	if o.rngStart >= 0 {
		var ok bool
		off, total, ok = parseContentRange(aws.ToString(out.ContentRange))
		if !ok || off != o.rngStart || off+int64(len(body)) != min(o.rngEnd+1, total) {
			o.got = -2
			o.err = fmt.Sprintf("range %d-%d answered Content-Range %q with %d bytes", o.rngStart, o.rngEnd, aws.ToString(out.ContentRange), len(body))
			return
		}
	}
	id, err := w.reg.identify(o.key, body, off, total)
	if err != nil {
		o.got = -2
		o.err = err.Error()
		return
	}
	o.got = id
	if v, _ := w.reg.info(id); strings.Trim(aws.ToString(out.ETag), `"`) != v.etag {
		o.err = fmt.Sprintf("value %s served with ETag %s, want %s", valueName(id), aws.ToString(out.ETag), v.etag)
	}
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL".
func parseContentRange(s string) (first, total int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	span, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	f, _, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(f, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	return first, total, err1 == nil && err2 == nil
}

// del deletes key index ki, a fifth of the time in the versioned bucket,
// where it adds a delete marker.
func (w *workload) del(client int, ki int, n *clientCounts) *op {
	o := &op{client: client, kind: opDelete, key: w.keys[ki]}
	if w.versions && n.dels%5 == 2 {
		o.versioned, o.key = true, w.vkey(ki)
		w.ledger.attempt(o, nil)
	}
	n.dels++
	ctx, cancel := w.ctx()
	defer cancel()
	o.start = time.Now()
	out, err := w.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucketOf(o), Key: aws.String(o.key)})
	o.end = time.Now()
	w.finish(o, err)
	if err == nil && o.versioned {
		o.version = aws.ToString(out.VersionId)
		if !aws.ToBool(out.DeleteMarker) || !madeVersionID(o.version) {
			o.err = fmt.Sprintf("acknowledged in a bucket with versioning enabled with x-amz-delete-marker %v, version id %q; want a delete marker's id",
				aws.ToBool(out.DeleteMarker), o.version)
		}
	}
	w.hist.add(o)
	return o
}

func (w *workload) list(client int) *op {
	o := &op{client: client, kind: opList, listed: map[string]int64{}}
	ctx, cancel := w.ctx()
	defer cancel()
	o.start = time.Now()
	out, err := w.cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(chaosBucket), MaxKeys: aws.Int32(1000)})
	o.end = time.Now()
	if err != nil {
		w.finish(o, err)
		w.hist.add(o)
		return o
	}
	if aws.ToBool(out.IsTruncated) {
		o.err = "listing truncated at 1000 keys"
	}
	var bad []string
	for _, e := range out.Contents {
		k, etag := aws.ToString(e.Key), strings.Trim(aws.ToString(e.ETag), `"`)
		id, ok := w.reg.byEtag(etag)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s listed with ETag %s, never written", k, etag))
			id = -2
		} else if v, _ := w.reg.info(id); v.key != k && id != emptyValue || v.size != aws.ToInt64(e.Size) {
			bad = append(bad, fmt.Sprintf("%s listed with ETag %s and size %d: that is value %s of key %s, %d bytes", k, etag, aws.ToInt64(e.Size), valueName(id), v.key, v.size))
			id = -2
		}
		o.listed[k] = id
	}
	if len(bad) > 0 {
		o.err = strings.Join(bad, "; ")
	}
	w.hist.add(o)
	return o
}
