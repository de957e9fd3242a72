package s3bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/internal/clitable"
)

// UploadsConfig is a memory test: many large uploads in flight at once,
// with the store's processes' memory sampled throughout.
//
// All Uploads PUTs start together, each declaring Content-Length Size.
// Complete of them send all Size bytes and must be stored; the others send
// their first Send bytes at full speed and then stall with the connection
// open, until every upload has stalled or finished and Hold has passed;
// then they are cut off. So all Uploads are in flight at once, as a store
// sees them, without the disk ever holding Uploads×Size bytes: a store
// that streams holds only a bounded window of each upload in memory,
// however far the upload got, and must store nothing for the cut-off ones.
//
// Bodies are sent with UNSIGNED-PAYLOAD (SigV4 signs the headers only): a
// signed payload hash would need the client to read every 1 GiB body once
// before sending it, and the SDK refuses bodies it cannot seek.
type UploadsConfig struct {
	ClientConfig
	Label  string
	Bucket string
	// Uploads is how many PUTs are in flight at once.
	Uploads int
	// Size is the Content-Length every upload declares.
	Size int64
	// Send is how much of its body a cut-off upload sends (≤ Size).
	Send int64
	// Complete is how many of the uploads send their whole body.
	Complete int
	// Hold is how long the stalled uploads stay open once every upload
	// has stalled or finished.
	Hold time.Duration
	// Sample is the interval of the memory timeline (default 250ms).
	Sample time.Duration
	// Watch lists the store's processes to sample.
	Watch []Proc
	// Limits are memory targets (MiB) by watched process name: the
	// result says whether each process's peak stayed within its own.
	Limits map[string]float64
	Seed   uint64
	Prefix string
	// Keep leaves the completed objects in the bucket.
	Keep     bool
	Progress io.Writer
}

// Validate checks the configuration and fills defaults.
func (c *UploadsConfig) Validate() error {
	if c.Endpoint == "" || c.Bucket == "" {
		return errors.New("an endpoint and a bucket are required")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("an access key and a secret key are required")
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Uploads < 1 {
		return fmt.Errorf("uploads %d: must be at least 1", c.Uploads)
	}
	if c.Size < 1 {
		return fmt.Errorf("size %d: must be positive", c.Size)
	}
	if c.Send < 0 || c.Send > c.Size {
		return fmt.Errorf("send %d: must be between 0 and the size %d", c.Send, c.Size)
	}
	if c.Complete < 0 || c.Complete > c.Uploads {
		return fmt.Errorf("complete %d: must be between 0 and the uploads %d", c.Complete, c.Uploads)
	}
	if c.Hold < 0 {
		return fmt.Errorf("hold %v: must not be negative", c.Hold)
	}
	if c.Sample <= 0 {
		c.Sample = 250 * time.Millisecond
	}
	if c.Prefix == "" {
		c.Prefix = "s3bench-uploads/" + time.Now().UTC().Format("20060102T150405.000")
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	return nil
}

// UploadsResult is what an uploads run measured.
type UploadsResult struct {
	Label     string    `json:"label,omitempty"`
	Endpoint  string    `json:"endpoint"`
	Uploads   int       `json:"uploads"`
	Size      int64     `json:"size"`
	SizeLabel string    `json:"size_label"`
	Send      int64     `json:"send"`
	Complete  int       `json:"complete"`
	Start     time.Time `json:"start"`
	// InFlightS is when every upload had stalled or finished; ElapsedS
	// when the stalled ones were cut off.
	InFlightS float64 `json:"all_in_flight_s"`
	ElapsedS  float64 `json:"elapsed_s"`
	// SentBytes is the body bytes the uploads handed to the connection.
	SentBytes int64 `json:"sent_bytes"`
	// Completed counts complete uploads the store accepted;
	// CompleteErrors says why the others failed.
	Completed      int      `json:"completed"`
	CompleteErrors []string `json:"complete_errors,omitempty"`
	// Stalled counts cut-off uploads that were open when cut off;
	// EarlyEnds says why the others ended before that (the store
	// answered or closed the connection first).
	Stalled   int      `json:"stalled"`
	EarlyEnds []string `json:"early_ends,omitempty"`
	// Leftover lists the keys of cut-off uploads found in the bucket
	// afterwards: a store must not keep any of them.
	Leftover     []string   `json:"leftover,omitempty"`
	LoadAvgStart [3]float64 `json:"loadavg_start"`
	LoadAvgEnd   [3]float64 `json:"loadavg_end"`
	// Before and After are each watched process's VmRSS in MiB before
	// the uploads and a few seconds after the cut-off.
	Before map[string]float64 `json:"rss_before_mib"`
	After  map[string]float64 `json:"rss_after_mib"`
	// Procs is CPU and peak RSS (VmHWM, reset at the start) over the
	// uploads, up to the cut-off.
	Procs   []ProcStats `json:"procs"`
	Samples []MemSample `json:"samples"`
	// Verdicts compare peaks with UploadsConfig.Limits.
	Verdicts []MemVerdict `json:"verdicts,omitempty"`
}

// MemVerdict is one process's peak against its memory target.
type MemVerdict struct {
	Name     string  `json:"name"`
	PeakMiB  float64 `json:"peak_mib"`
	LimitMiB float64 `json:"limit_mib"`
	Within   bool    `json:"within"`
}

// Peak is proc's highest RSS over the uploads: VmHWM (which the kernel
// keeps exactly) or, if higher or VmHWM could not be reset, the largest
// sample of the timeline.
func (r *UploadsResult) Peak(proc string) float64 {
	peak := 0.0
	for _, p := range r.Procs {
		if p.Name == proc && p.Error == "" {
			if p.PeakReset {
				peak = p.PeakRSSMiB
			}
			peak = max(peak, p.MaxRSSMiB)
		}
	}
	for _, s := range r.Samples {
		if s.T <= r.ElapsedS {
			peak = max(peak, s.RSSMiB[proc])
		}
	}
	return peak
}

// MemSample is one point of the memory timeline.
type MemSample struct {
	T        float64            `json:"t_s"`
	SentMiB  float64            `json:"sent_mib"`
	Stalled  int                `json:"stalled"`
	Finished int                `json:"finished"`
	RSSMiB   map[string]float64 `json:"rss_mib"`
}

// PerUploadMiB is proc's peak RSS above its RSS before the uploads,
// divided by the uploads (0 if proc was not watched).
func (r *UploadsResult) PerUploadMiB(proc string) float64 {
	if r.Uploads == 0 {
		return 0
	}
	return round2((r.Peak(proc) - r.Before[proc]) / float64(r.Uploads))
}

// errCutOff ends a stalled upload's body.
var errCutOff = errors.New("upload cut off by s3bench")

type uploads struct {
	cfg     UploadsConfig
	pat     *Pattern
	hc      *http.Client
	signer  *v4.Signer
	sent    atomic.Int64
	stalled atomic.Int64
	done    atomic.Int64 // uploads whose request returned
	release chan struct{}
}

// Uploads runs the memory test described at UploadsConfig.
func Uploads(ctx context.Context, cfg UploadsConfig) (*UploadsResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl, ctr := NewClient(cfg.ClientConfig)
	defer ctr.CloseIdleConnections()
	rr := &runner{cfg: Config{ClientConfig: cfg.ClientConfig, Bucket: cfg.Bucket, Prefix: cfg.Prefix, Progress: cfg.Progress, Concurrency: 4}, cl: cl}
	if err := rr.ensureBucket(ctx); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		WriteBufferSize:   256 << 10,
		ReadBufferSize:    64 << 10,
		DisableKeepAlives: true, // every upload on its own connection, closed when cut off
	}
	defer tr.CloseIdleConnections()
	u := &uploads{
		cfg:     cfg,
		pat:     NewPattern(cfg.Seed, min(cfg.Size, MaxPatternSize)),
		hc:      &http.Client{Transport: tr},
		signer:  v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
		release: make(chan struct{}),
	}
	res := &UploadsResult{
		Label: cfg.Label, Endpoint: cfg.Endpoint, Uploads: cfg.Uploads, Size: cfg.Size,
		SizeLabel: SizeLabel(cfg.Size), Send: cfg.Send, Complete: cfg.Complete,
		Before: rssNow(cfg.Watch),
	}
	procs := append([]Proc{{Name: "s3bench", PID: os.Getpid()}}, cfg.Watch...)
	res.LoadAvgStart = LoadAvg()
	start := time.Now()
	res.Start = start.UTC()
	w := watch(procs)

	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	var samplesMu sync.Mutex
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(cfg.Sample)
		defer t.Stop()
		lastPrint := time.Time{}
		for {
			s := MemSample{
				T: time.Since(start).Seconds(), SentMiB: float64(u.sent.Load()) / (1 << 20),
				Stalled: int(u.stalled.Load()), Finished: int(u.done.Load()), RSSMiB: rssNow(cfg.Watch),
			}
			samplesMu.Lock()
			res.Samples = append(res.Samples, s)
			samplesMu.Unlock()
			if cfg.Progress != nil && time.Since(lastPrint) >= time.Second {
				lastPrint = time.Now()
				fmt.Fprintf(cfg.Progress, "uploads %s: sent %.0f MiB, stalled %d/%d, finished %d, rss %s, load %.2f\n",
					time.Since(start).Truncate(time.Second), s.SentMiB, s.Stalled, cfg.Uploads-cfg.Complete,
					s.Finished, fmtRSS(cfg.Watch, s.RSSMiB), LoadAvg()[0])
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	type outcome struct {
		key string
		err error
	}
	outcomes := make([]outcome, cfg.Uploads)
	// allIn is closed when every upload has stalled or returned.
	allIn := make(chan struct{})
	var inFlight sync.WaitGroup
	inFlight.Add(cfg.Uploads)
	go func() { inFlight.Wait(); close(allIn) }()
	var wg sync.WaitGroup
	for i := range cfg.Uploads {
		complete := i < cfg.Complete
		key := fmt.Sprintf("%s/up-%03d", cfg.Prefix, i)
		wg.Go(func() {
			var once sync.Once
			arrived := func() { once.Do(inFlight.Done) }
			err := u.upload(ctx, key, complete, arrived)
			arrived()
			u.done.Add(1)
			outcomes[i] = outcome{key, err}
		})
	}
	select {
	case <-allIn:
		res.InFlightS = time.Since(start).Seconds()
		hold := time.NewTimer(cfg.Hold)
		select {
		case <-hold.C:
		case <-ctx.Done():
			hold.Stop()
		}
	case <-ctx.Done():
	}
	res.ElapsedS = time.Since(start).Seconds()
	res.Procs = w.finish()
	close(u.release)
	wg.Wait()
	res.SentBytes = u.sent.Load()
	// Give the store a moment to release what the cut-off uploads held.
	after := time.NewTimer(3 * time.Second)
	select {
	case <-after.C:
	case <-ctx.Done():
		after.Stop()
	}
	close(stopSampling)
	<-sampleDone
	res.After = rssNow(cfg.Watch)
	res.LoadAvgEnd = LoadAvg()

	cutOff := map[string]bool{}
	for i, o := range outcomes {
		if i < cfg.Complete {
			if o.err == nil {
				res.Completed++
			} else {
				res.CompleteErrors = append(res.CompleteErrors, o.err.Error())
			}
			continue
		}
		cutOff[o.key] = true
		if errors.Is(o.err, errCutOff) {
			res.Stalled++
		} else {
			res.EarlyEnds = append(res.EarlyEnds, fmt.Sprintf("%s: %v", o.key, o.err))
		}
	}
	for _, p := range cfg.Watch {
		if lim, ok := cfg.Limits[p.Name]; ok {
			peak := res.Peak(p.Name)
			res.Verdicts = append(res.Verdicts, MemVerdict{Name: p.Name, PeakMiB: peak, LimitMiB: lim, Within: peak <= lim})
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err := u.checkLeftovers(ctx, cl, cutOff, res); err != nil {
		return res, err
	}
	if !cfg.Keep {
		rr.cleanup(context.WithoutCancel(ctx))
	}
	return res, nil
}

// upload sends one PUT. A complete upload returns the store's verdict; a
// cut-off one returns errCutOff when it was open until released, or what
// ended it first.
func (u *uploads) upload(ctx context.Context, key string, complete bool, arrived func()) error {
	limit := u.cfg.Send
	if complete {
		limit = u.cfg.Size
	}
	body := &uploadBody{
		src: u.pat.Body(key, u.cfg.Size), left: limit, sent: &u.sent,
		release: u.release, ctx: ctx,
	}
	if !complete {
		body.stall = func() { u.stalled.Add(1); arrived() }
	}
	ep := strings.TrimSuffix(u.cfg.Endpoint, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, ep+"/"+u.cfg.Bucket+"/"+escapeKey(key), body)
	if err != nil {
		return err
	}
	req.ContentLength = u.cfg.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
	creds := aws.Credentials{AccessKeyID: u.cfg.AccessKey, SecretAccessKey: u.cfg.SecretKey}
	if err := u.signer.SignHTTP(ctx, creds, req, unsignedPayload, "s3", u.cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("sign PUT %s: %w", key, err)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		if body.cut.Load() {
			return errCutOff
		}
		return fmt.Errorf("PUT %s after %d bytes: %w", key, body.n.Load(), err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	switch {
	case body.cut.Load():
		return errCutOff
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("PUT %s after %d bytes: %s: %s", key, body.n.Load(), resp.Status, strings.TrimSpace(string(msg)))
	case !complete:
		return fmt.Errorf("PUT %s: accepted after %d of %d bytes", key, body.n.Load(), u.cfg.Size)
	}
	return nil
}

// checkLeftovers lists the run's prefix: only complete uploads may be
// there, each with its whole size.
func (u *uploads) checkLeftovers(ctx context.Context, cl *s3.Client, cutOff map[string]bool, res *UploadsResult) error {
	p := s3.NewListObjectsV2Paginator(cl, &s3.ListObjectsV2Input{Bucket: aws.String(u.cfg.Bucket), Prefix: aws.String(u.cfg.Prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %s/ after the uploads: %w", u.cfg.Prefix, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if cutOff[k] {
				res.Leftover = append(res.Leftover, k)
			} else if aws.ToInt64(o.Size) != u.cfg.Size {
				res.CompleteErrors = append(res.CompleteErrors, fmt.Sprintf("%s: stored %d bytes, want %d", k, aws.ToInt64(o.Size), u.cfg.Size))
			}
		}
	}
	slices.Sort(res.Leftover)
	return nil
}

// uploadBody sends left bytes of src; a cut-off body then stalls until
// release and fails, which makes the HTTP client drop the connection.
type uploadBody struct {
	src     io.Reader
	left    int64
	n       atomic.Int64
	sent    *atomic.Int64
	stall   func() // nil: never stalls (a complete upload)
	release <-chan struct{}
	ctx     context.Context
	cut     atomic.Bool
}

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		if b.stall == nil {
			return 0, io.EOF
		}
		b.stall()
		b.stall = func() {}
		select {
		case <-b.release:
		case <-b.ctx.Done():
		}
		b.cut.Store(true)
		return 0, errCutOff
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.src.Read(p)
	b.left -= int64(n)
	b.n.Add(int64(n))
	b.sent.Add(int64(n))
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// escapeKey escapes each segment of a key for a path-style URL.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// rssNow reads each process's VmRSS in MiB (absent if unreadable).
func rssNow(procs []Proc) map[string]float64 {
	out := make(map[string]float64, len(procs))
	for _, p := range procs {
		if rss, _, err := memKiB(p.PID); err == nil {
			out[p.Name] = round2(float64(rss) / 1024)
		}
	}
	return out
}

func fmtRSS(procs []Proc, m map[string]float64) string {
	var parts []string
	for _, p := range procs {
		if v, ok := m[p.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", p.Name, v))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// WriteUploadsTable prints an uploads run: what was measured, and each
// watched process's memory.
func WriteUploadsTable(w io.Writer, r *UploadsResult) error {
	label := r.Label
	if label == "" {
		label = r.Endpoint
	}
	fmt.Fprintf(w, "%s: %d concurrent PUTs, each declaring Content-Length %s (%d bytes); %d sent all of it, %d sent %s and stalled with the connection open until all %d were in flight (after %.1fs), %.1fs in all, then were cut off. %.0f MiB sent in all. Load %.2f → %.2f.\n",
		label, r.Uploads, r.SizeLabel, r.Size, r.Complete, r.Uploads-r.Complete, SizeLabel(r.Send), r.Uploads,
		r.InFlightS, r.ElapsedS, float64(r.SentBytes)/(1<<20), r.LoadAvgStart[0], r.LoadAvgEnd[0])
	fmt.Fprintf(w, "complete uploads stored: %d of %d; cut-off uploads open until the cut: %d of %d; cut-off uploads left in the bucket: %d\n",
		r.Completed, r.Complete, r.Stalled, r.Uploads-r.Complete, len(r.Leftover))
	for _, e := range r.CompleteErrors {
		fmt.Fprintf(w, "complete upload failed: %s\n", e)
	}
	for _, e := range firstN(r.EarlyEnds, 5) {
		fmt.Fprintf(w, "cut-off upload ended early: %s\n", e)
	}
	for _, k := range firstN(r.Leftover, 5) {
		fmt.Fprintf(w, "cut-off upload left an object: %s\n", k)
	}
	t := clitable.New("PROCESS", "CPU%", "RSS BEFORE MiB", "PEAK VmHWM MiB", "MAX SAMPLED MiB", "RSS AFTER MiB", "PEAK-BEFORE PER UPLOAD MiB")
	for _, p := range r.Procs {
		if p.Error != "" {
			t.Row(p.Name, "?", "?", "?", "?", "?", p.Error)
			continue
		}
		per := "-"
		if p.Name != "s3bench" {
			per = f1(r.PerUploadMiB(p.Name))
		}
		t.Row(p.Name, f1(p.CPUPercent), f1(r.Before[p.Name]), f1(p.PeakRSSMiB), f1(p.MaxRSSMiB), f1(r.After[p.Name]), per)
	}
	if err := t.Render(w); err != nil {
		return err
	}
	for _, v := range r.Verdicts {
		word := "within"
		if !v.Within {
			word = "OVER"
		}
		fmt.Fprintf(w, "%s peak RSS %.1f MiB: %s the %.0f MiB target\n", v.Name, v.PeakMiB, word, v.LimitMiB)
	}
	return nil
}

func firstN(s []string, n int) []string { return s[:min(len(s), n)] }

// unsignedPayload is SigV4's x-amz-content-sha256 for a body the
// signature does not cover.
const unsignedPayload = "UNSIGNED-PAYLOAD"
