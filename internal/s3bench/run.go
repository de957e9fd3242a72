// Package s3bench is an S3 load generator: it drives any S3 endpoint with
// PUT, GET, mixed, LIST or DELETE requests of one object size from a number
// of concurrent workers for a duration, and reports throughput and latency
// percentiles per operation, with the CPU time and peak memory of processes
// it is told to watch. It also measures the machine's ceilings for the
// paths an object store takes (see Ceilings). cmd/s3bench is its command
// line and scripts/bench drives both against a cluster.
package s3bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Config is one benchmark run.
type Config struct {
	ClientConfig
	// Label names the system under test in reports ("cairn", "minio").
	Label  string
	Bucket string
	// Workload is one of the Workload* constants.
	Workload    string
	Size        int64
	Concurrency int
	Duration    time.Duration
	// Count, when positive, ends the run after that many requests (or at
	// Duration, whichever comes first): a fixed amount of work, such as a
	// number of objects stored.
	Count int64
	// Objects is how many objects are prepared for get, mixed, list and
	// delete (0: DefaultObjects).
	Objects int
	// Seed fixes the bodies and the mixed workload's choices.
	Seed uint64
	// Verify checks every GET body against what was written.
	Verify bool
	// SDKPayloadHash lets the SDK read and hash every PUT body for its
	// signature, as it does by itself. By default the generator hashes
	// each of the pattern's BodyVariants bodies once before the run and
	// hands the SDK the hash: the same request on the wire, less of the
	// generator's CPU on cores it shares with the store. An HTTPS
	// endpoint always gets the SDK's own way (it hashes no body there).
	SDKPayloadHash bool
	// Prefix is the key prefix of everything the run writes (default
	// s3bench/<start time>); Keep leaves the objects in place afterwards.
	Prefix string
	Keep   bool
	// SSE is the server-side encryption to ask for: SSENone, SSES3 or
	// SSEC. With SSEC, SSECustomerKey is the key (nil: a random one,
	// drawn by Validate, so one per run).
	SSE            string
	SSECustomerKey []byte
	// Mix weighs the mixed workload (zero: DefaultMix).
	Mix Mix
	// Watch lists processes (the daemons) whose CPU and memory to sample;
	// the generator itself is always sampled.
	Watch []Proc
	// Profile lists pprof servers to profile during the measured part of
	// the run (not while preparing): CPU for the run's duration, heap at
	// its end, written to ProfileDir.
	Profile    []ProfileTarget
	ProfileDir string
	// Progress receives a status line once a second (nil: none); with
	// ProgressCR each line overwrites the previous one (a terminal).
	Progress   io.Writer
	ProgressCR bool
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	switch c.Workload {
	case WorkloadPut, WorkloadGet, WorkloadMixed, WorkloadList, WorkloadDelete:
	default:
		return fmt.Errorf("unknown workload %q (put, get, mixed, list, delete)", c.Workload)
	}
	if c.Endpoint == "" || c.Bucket == "" {
		return errors.New("an endpoint and a bucket are required")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("an access key and a secret key are required")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Size < 0 || (c.Size == 0 && c.Workload != WorkloadList && c.Workload != WorkloadDelete) {
		return fmt.Errorf("object size %d: must be positive", c.Size)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("duration %v: must be positive", c.Duration)
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if err := c.Mix.Validate(); err != nil {
		return err
	}
	if len(c.Profile) > 0 && c.ProfileDir == "" {
		return errors.New("profiling needs a directory for the profiles")
	}
	if c.Count < 0 {
		return fmt.Errorf("count %d: must not be negative", c.Count)
	}
	if err := c.checkSSE(); err != nil {
		return err
	}
	if c.Objects < 0 {
		return fmt.Errorf("objects %d: must not be negative", c.Objects)
	}
	if c.Objects == 0 {
		c.Objects = DefaultObjects(c.Workload, c.Size, c.Concurrency)
	}
	if c.Prefix == "" {
		c.Prefix = "s3bench/" + time.Now().UTC().Format("20060102T150405.000")
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	return nil
}

// DefaultObjects is how many objects a workload prepares: none for put;
// for the others about 512 MiB worth, at least one per worker (at least
// 1,000 to list, since one LIST page is 1,000 keys), at most 1,000.
func DefaultObjects(workload string, size int64, concurrency int) int {
	switch workload {
	case WorkloadPut:
		return 0
	case WorkloadList:
		return 1000
	}
	n := int64(1000)
	if size > 0 {
		n = min(n, (512<<20)/size)
	}
	return int(max(n, int64(concurrency)))
}

// Result is one run's report.
type Result struct {
	Label       string `json:"label,omitempty"`
	Endpoint    string `json:"endpoint"`
	Bucket      string `json:"bucket"`
	Workload    string `json:"workload"`
	Size        int64  `json:"size"`
	SizeLabel   string `json:"size_label"`
	Concurrency int    `json:"concurrency"`
	Objects     int    `json:"objects_prepared"`
	Checksums   bool   `json:"sdk_checksums"`
	// SSE is the server-side encryption asked for: "", "AES256" or
	// "SSE-C".
	SSE string `json:"sse,omitempty"`
	// PayloadHash says who hashed PUT bodies for SigV4: "sdk" (every
	// request, as an unmodified SDK does; always over HTTPS, where it
	// hashes none) or "precomputed" (each of BodyVariants distinct bodies
	// once, before the run). Figures of the
	// generator's CPU before 2026-11-26 08:30 UTC are "sdk" with bodies
	// at any offset of the pattern (no body_variants).
	PayloadHash  string    `json:"payload_hash"`
	BodyVariants int       `json:"body_variants"`
	Start        time.Time `json:"start"`
	// DurationS is the configured duration; ElapsedS runs from the first
	// request to the last response (requests in flight at the deadline
	// finish and count).
	DurationS    float64     `json:"duration_s"`
	ElapsedS     float64     `json:"elapsed_s"`
	PrepareS     float64     `json:"prepare_s"`
	LoadAvgStart [3]float64  `json:"loadavg_start"`
	LoadAvgEnd   [3]float64  `json:"loadavg_end"`
	CPUs         int         `json:"cpus"`
	Ops          []OpStats   `json:"ops"`
	Procs        []ProcStats `json:"procs,omitempty"`
	// Profiles is the directory of the run's pprof profiles, if taken;
	// ProfileErrors lists those that could not be fetched.
	Profiles      string   `json:"profiles,omitempty"`
	ProfileErrors []string `json:"profile_errors,omitempty"`
}

// Op returns the statistics of op, or nil.
func (r *Result) Op(op Op) *OpStats {
	for i := range r.Ops {
		if r.Ops[i].Op == op {
			return &r.Ops[i]
		}
	}
	return nil
}

// Run prepares the objects the workload needs, runs it, and cleans up
// (unless cfg.Keep). Requests that fail are counted, not fatal; a failure
// to prepare is.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.ToLower(cfg.Endpoint), "https://") {
		// Over TLS the SDK signs no payload hash (UNSIGNED-PAYLOAD, or a
		// trailing checksum): there is nothing to save, and a hash handed
		// to it would be signed, a request it does not send by itself.
		cfg.SDKPayloadHash = true
	}
	cl, tr := NewClient(cfg.ClientConfig)
	defer tr.CloseIdleConnections()
	r := &runner{cfg: cfg, cl: cl, pat: NewPattern(cfg.Seed, cfg.Size), enc: newEncryption(cfg.SSE, cfg.SSECustomerKey)}
	res := &Result{
		Label: cfg.Label, Endpoint: cfg.Endpoint, Bucket: cfg.Bucket, Workload: cfg.Workload,
		Size: cfg.Size, SizeLabel: SizeLabel(cfg.Size), Concurrency: cfg.Concurrency,
		Checksums: !cfg.NoChecksum, SSE: cfg.SSE, DurationS: cfg.Duration.Seconds(), CPUs: runtime.NumCPU(),
		PayloadHash: "precomputed", BodyVariants: BodyVariants,
	}
	if cfg.SDKPayloadHash {
		res.PayloadHash = "sdk"
	} else if cfg.Workload == WorkloadPut || cfg.Workload == WorkloadMixed {
		r.pat.HashBodies(cfg.Size)
	}
	if err := r.ensureBucket(ctx); err != nil {
		return nil, err
	}
	if cfg.Workload != WorkloadPut {
		t0 := time.Now()
		if err := r.prepare(ctx, cfg.Objects); err != nil {
			r.cleanup(context.WithoutCancel(ctx))
			return nil, err
		}
		res.Objects = len(r.keys)
		res.PrepareS = time.Since(t0).Seconds()
	}
	procs := append([]Proc{{Name: "s3bench", PID: os.Getpid()}}, cfg.Watch...)
	res.LoadAvgStart = LoadAvg()
	res.Start = time.Now().UTC()
	w := watch(procs)
	var prof *profiler
	if len(cfg.Profile) > 0 {
		var err error
		if prof, err = startProfiles(ctx, cfg.ProfileDir, cfg.Profile, cfg.Duration); err != nil {
			return nil, err
		}
		res.Profiles = cfg.ProfileDir
	}
	recs, elapsed := r.run(ctx)
	res.Procs = w.finish()
	if prof != nil {
		res.ProfileErrors = prof.finish(context.WithoutCancel(ctx))
	}
	res.LoadAvgEnd = LoadAvg()
	res.ElapsedS = elapsed.Seconds()
	ops := []Op{OpGet, OpPut, OpStat, OpDelete, OpList}
	res.Ops = summarize(recs, elapsed, ops)
	if res.Workload == WorkloadMixed && len(res.Ops) > 1 {
		res.Ops = append(res.Ops, total(res.Ops, elapsed))
	}
	if !cfg.Keep {
		r.cleanup(context.WithoutCancel(ctx))
	}
	return res, ctx.Err()
}

// total sums the operations of a mixed run (latency percentiles are not
// meaningful across kinds and are left zero).
func total(ops []OpStats, elapsed time.Duration) OpStats {
	t := OpStats{Op: "total"}
	for _, o := range ops {
		t.Count += o.Count
		t.Errors += o.Errors
		t.Bytes += o.Bytes
	}
	if s := elapsed.Seconds(); s > 0 {
		t.MiBPerSec = float64(t.Bytes) / (1 << 20) / s
		t.OpsPerSec = float64(t.Count) / s
	}
	return t
}

type runner struct {
	cfg  Config
	cl   *s3.Client
	pat  *Pattern
	enc  encryption
	keys []string // prepared objects; read-only once the run starts

	phase   atomic.Value // string, for the progress line
	live    live
	nextDel atomic.Int64 // delete workload: next prepared key to delete
	putSeq  atomic.Int64
	issued  atomic.Int64 // requests started, against Count
}

func (r *runner) ensureBucket(ctx context.Context) error {
	b := aws.String(r.cfg.Bucket)
	if _, err := r.cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); err == nil {
		return nil
	}
	_, err := r.cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", r.cfg.Bucket, err)
	}
	return nil
}

func (r *runner) preparedKey(i int) string { return fmt.Sprintf("%s/obj-%08d", r.cfg.Prefix, i) }

// prepare writes n objects with cfg.Concurrency workers.
func (r *runner) prepare(ctx context.Context, n int) error {
	r.keys = make([]string, n)
	for i := range r.keys {
		r.keys[i] = r.preparedKey(i)
	}
	r.phase.Store(fmt.Sprintf("prepare %d×%s", n, SizeLabel(r.cfg.Size)))
	stop := r.startProgress(time.Time{})
	defer stop()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := r.put(ctx, r.keys[i]); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("prepare %s: %w", r.keys[i], err) })
					cancel()
					return
				}
				r.live.ops.Add(1)
				r.live.bytes.Add(r.cfg.Size)
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func (r *runner) put(ctx context.Context, key string) error {
	if !r.cfg.SDKPayloadHash {
		ctx = withPayloadHash(ctx, r.pat.PayloadHash(key, r.cfg.Size))
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(r.cfg.Bucket),
		Key:           aws.String(key),
		Body:          r.pat.Body(key, r.cfg.Size),
		ContentLength: aws.Int64(r.cfg.Size),
	}
	r.enc.put(in)
	_, err := r.cl.PutObject(ctx, in)
	return err
}

// run starts the workers and waits for them: none starts a request after
// the deadline, and requests in flight then may finish within a grace
// period. It returns the workers' samples and the time from the start to
// the last response.
func (r *runner) run(ctx context.Context) ([]recorder, time.Duration) {
	r.live = live{}
	r.phase.Store(fmt.Sprintf("%s %s c%d", r.cfg.Workload, SizeLabel(r.cfg.Size), r.cfg.Concurrency))
	start := time.Now()
	deadline := start.Add(r.cfg.Duration)
	grace := max(r.cfg.Duration, time.Minute)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(grace))
	defer cancel()
	stop := r.startProgress(deadline)
	recs := make([]recorder, r.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last time.Time
	for i := range recs {
		recs[i] = recorder{}
		wg.Go(func() {
			r.worker(ctx, i, deadline, recs[i])
			mu.Lock()
			if now := time.Now(); now.After(last) {
				last = now
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	stop()
	return recs, last.Sub(start)
}

// worker issues requests one after another until the deadline.
func (r *runner) worker(ctx context.Context, id int, deadline time.Time, rec recorder) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(id)+1))
	buf := make([]byte, 256<<10)
	var own []string // mixed: objects this worker put, which it may delete
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.cfg.Count > 0 && r.issued.Add(1) > r.cfg.Count {
			return
		}
		var op Op
		switch r.cfg.Workload {
		case WorkloadMixed:
			op = r.cfg.Mix.Pick(rng)
			if op == OpDelete && len(own) == 0 {
				r.issued.Add(-1) // no request: the draw does not count
				continue         // nothing of its own to delete yet: draw again
			}
		case WorkloadPut:
			op = OpPut
		case WorkloadGet:
			op = OpGet
		case WorkloadList:
			op = OpList
		case WorkloadDelete:
			op = OpDelete
		}
		var (
			key          string
			bytes, items int64
			err          error
		)
		t0 := time.Now()
		switch op {
		case OpPut:
			key = fmt.Sprintf("%s/put-%03d-%08d", r.cfg.Prefix, id, r.putSeq.Add(1))
			if err = r.put(ctx, key); err == nil {
				bytes = r.cfg.Size
				own = append(own, key)
			}
		case OpGet:
			key = r.keys[rng.IntN(len(r.keys))]
			bytes, err = r.get(ctx, key, buf)
		case OpStat:
			key = r.keys[rng.IntN(len(r.keys))]
			in := &s3.HeadObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key)}
			r.enc.head(in)
			_, err = r.cl.HeadObject(ctx, in)
		case OpDelete:
			if r.cfg.Workload == WorkloadMixed {
				j := rng.IntN(len(own))
				key = own[j]
				own[j] = own[len(own)-1]
				own = own[:len(own)-1]
			} else {
				i := int(r.nextDel.Add(1) - 1)
				if i >= len(r.keys) {
					return // everything prepared is deleted
				}
				key = r.keys[i]
			}
			_, err = r.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key)})
		case OpList:
			var out *s3.ListObjectsV2Output
			out, err = r.cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket: aws.String(r.cfg.Bucket), Prefix: aws.String(r.cfg.Prefix + "/obj-"), MaxKeys: aws.Int32(1000),
			})
			if err == nil {
				items = int64(len(out.Contents))
			}
		}
		d := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted, or cut off at the end of the grace period: not the store's failure
			}
			rec.fail(op, fmt.Errorf("%s %s: %w", op, key, err))
			r.live.errors.Add(1)
			continue
		}
		rec.ok(op, d, bytes, items)
		r.live.ops.Add(1)
		r.live.bytes.Add(bytes)
	}
}

// get reads key's body to the end into buf, checking it when asked.
func (r *runner) get(ctx context.Context, key string, buf []byte) (int64, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key)}
	r.enc.get(in)
	out, err := r.cl.GetObject(ctx, in)
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	var v *Verifier
	if r.cfg.Verify {
		v = r.pat.Verifier(key)
	}
	var n int64
	for {
		k, err := out.Body.Read(buf)
		n += int64(k)
		if v != nil {
			_, _ = v.Write(buf[:k])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("read body: %w", err)
		}
	}
	if v != nil {
		return n, v.Check(r.cfg.Size)
	}
	if n != r.cfg.Size {
		return n, fmt.Errorf("body is %d bytes, want %d", n, r.cfg.Size)
	}
	return n, nil
}

// startProgress prints the phase's counters once a second until the
// returned stop is called.
func (r *runner) startProgress(deadline time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastOps, lastBytes int64
		for {
			select {
			case <-done:
				if r.cfg.ProgressCR {
					fmt.Fprintln(r.cfg.Progress)
				}
				return
			case <-t.C:
			}
			ops, bytes, errs := r.live.ops.Load(), r.live.bytes.Load(), r.live.errors.Load()
			el := time.Since(start).Truncate(time.Second)
			when := el.String()
			if !deadline.IsZero() {
				when += "/" + r.cfg.Duration.String()
			}
			line := fmt.Sprintf("%s %s: %d ops, now %d ops/s %.1f MiB/s, errors %d, load %.2f",
				r.phase.Load(), when, ops, ops-lastOps, float64(bytes-lastBytes)/(1<<20), errs, LoadAvg()[0])
			lastOps, lastBytes = ops, bytes
			if r.cfg.ProgressCR {
				fmt.Fprintf(r.cfg.Progress, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(r.cfg.Progress, line)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// cleanup deletes everything under the run's prefix, 1,000 keys per
// request, falling back to single deletes if the store refuses batches.
func (r *runner) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	b := aws.String(r.cfg.Bucket)
	p := s3.NewListObjectsV2Paginator(r.cl, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String(r.cfg.Prefix + "/")})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.note("cleanup: list %s/: %v", r.cfg.Prefix, err)
			break
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) == 0 {
		return
	}
	r.note("cleanup: deleting %d objects under %s/", len(keys), r.cfg.Prefix)
	var batches [][]string
	for i := 0; i < len(keys); i += 1000 {
		batches = append(batches, keys[i:min(i+1000, len(keys))])
	}
	var failed atomic.Int64
	work := make(chan []string)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, 4) {
		wg.Go(func() {
			for batch := range work {
				if err := r.deleteBatch(ctx, batch); err != nil {
					if failed.Add(1) == 1 {
						r.note("cleanup: %v", err)
					}
				}
			}
		})
	}
	for _, batch := range batches {
		work <- batch
	}
	close(work)
	wg.Wait()
}

func (r *runner) deleteBatch(ctx context.Context, keys []string) error {
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := r.cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(r.cfg.Bucket), Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	var api smithy.APIError
	if err != nil && errors.As(err, &api) && api.ErrorCode() == "NotImplemented" {
		for _, k := range keys {
			if _, err := r.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(k)}); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %d objects: %w", len(keys), err)
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		return fmt.Errorf("delete %s: %s %s (and %d more)", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors)-1)
	}
	return nil
}

func (r *runner) note(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// SizeLabel formats a size the way the flags take it: "4KiB", "64MiB",
// "1000" when not a whole number of a binary unit.
func SizeLabel(n int64) string {
	for _, u := range []struct {
		s    string
		mult int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.s)
		}
	}
	return fmt.Sprintf("%dB", n)
}
