package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairnstore/cairn/chunk"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

var (
	flagChaosDuration = flag.Duration("chaos.duration", 0, "how long TestChaos runs its workload and faults (default 25s; 0 keeps the default)")
	flagChaosSeed     = flag.Uint64("chaos.seed", 0, "seed of TestChaos's workload and fault schedule (0: a random one, printed)")
	flagChaosClients  = flag.Int("chaos.clients", 0, "TestChaos client goroutines (default 4, 8 with a duration of a minute or more)")
	flagChaosBlobs    = flag.Int("chaos.blobs", 6, "TestChaos blob nodes (3 zones; with more than k+m=6, repairs can run while a node is down)")
	flagChaosJSON     = flag.String("chaos.json", "", "write TestChaos's report as JSON to `FILE`")
	flagChaosHeal     = flag.Duration("chaos.heal-timeout", 0, "bound on the return to full redundancy after the faults (default 60s, 5m for long runs)")
)

// chaosReport is what TestChaos found.
type chaosReport struct {
	Seed      uint64                    `json:"seed"`
	Duration  string                    `json:"duration"`
	Clients   int                       `json:"clients"`
	BlobNodes int                       `json:"blob_nodes"`
	Ops       map[string]map[string]int `json:"operations"`
	// Errors counts the failures by operation and message (numbers,
	// ids and addresses stripped).
	Errors          map[string]int `json:"errors"`
	Faults          []faultEvent   `json:"faults"`
	AckedWritesLost int            `json:"acknowledged_writes_lost"`
	BadReads        int            `json:"bad_reads"`
	ListMismatches  int            `json:"list_get_mismatches"`
	// CutReads counts GETs answered 200 whose body then broke off: not a
	// violation (no wrong bytes were accepted), but a read that failed
	// after it began (a gateway killed mid-body, or bug 1 in doc.go).
	CutReads        int          `json:"reads_cut_mid_body"`
	Linearizability linearResult `json:"linearizability"`
	// Versions: the versioned bucket (nil with -chaos.versions=false).
	Versions *versionsReport `json:"versions,omitempty"`
	// Heal: "ok", "timeout", "lost", "unimplemented".
	Heal          string   `json:"heal"`
	HealSeconds   float64  `json:"heal_seconds"`
	MaxDegraded   int64    `json:"max_segments_degraded"`
	MaxLost       int64    `json:"max_segments_lost"`
	RepairsDone   int64    `json:"repairs_done"`
	Violations    []string `json:"violations"`
	violationsAll int
}

func (r *chaosReport) violate(format string, args ...any) {
	r.violationsAll++
	if len(r.Violations) < 100 {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

// TestChaos drives a concurrent S3 workload over a small key space while a
// fault schedule kills, cuts, freezes, fills and damages the cluster's
// nodes (never more than m = 2 blob nodes, never more than one metad
// member), then heals everything, waits for full redundancy and checks the
// whole history: acknowledged writes readable until replaced, no read of
// bytes never written or already replaced, LIST agreeing with GET, and
// every key's history linearizable (porcupine). See doc.go.
func TestChaos(t *testing.T) {
	skipShort(t)
	duration := 25 * time.Second
	if *flagChaosDuration > 0 {
		duration = *flagChaosDuration
	}
	long := duration >= time.Minute
	seed := *flagChaosSeed
	if seed == 0 {
		seed = rand.Uint64N(1 << 31)
	}
	clients := *flagChaosClients
	if clients == 0 {
		clients = 4
		if long {
			clients = 8
		}
	}
	healTimeout := *flagChaosHeal
	if healTimeout == 0 {
		healTimeout = time.Minute
		if long {
			healTimeout = 5 * time.Minute
		}
	}
	t.Logf("chaos: seed %d (rerun with -chaos.seed %d -chaos.duration %v), %d clients, %d blob nodes", seed, seed, duration, clients, *flagChaosBlobs)

	const capacity = "8G"
	cl := startCluster(t, clusterConfig{
		Blobs:       *flagChaosBlobs,
		Capacity:    capacity,
		SegmentSize: 1 << 20,
		BlobProxies: true,
		MetadArgs: []string{
			"--node-suspect-after", "2s", "--node-down-after", "6s",
			"--repair-scan-interval", "1s", "--repair-backoff", "500ms", "--repair-task-timeout", "30s",
			"--gc-interval", "1s", "--health-scan-interval", "500ms",
		},
		BlobArgs: []string{
			"--scrub-interval", "2s", "--scrub-rate", "256M",
			"--reconcile-interval", "5s", "--orphan-grace", "20s", "--task-timeout", "30s",
		},
		// Shorter than a freeze episode, so that uploads to a frozen or
		// cut-off node are given up and their segments written degraded.
		GatewayArgs: append([]string{"--write-budget", "1s"}, sseGatewayArgs(t, t.TempDir())...),
	})
	createBucket(t, cl.S3(), chaosBucket)
	var vkeys []string
	if *flagChaosVersions {
		createVersionedBucket(t, cl.S3(), chaosVersionedBucket)
		vkeys = chaosVersionedKeys(4)
	}

	rep := &chaosReport{Seed: seed, Duration: duration.String(), Clients: clients, BlobNodes: len(cl.blobs)}
	keys := chaosKeys(16)
	hist := &history{}
	reg := newRegistry()
	maxSize := 3 << 20
	w := &workload{
		cl:   cl.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 }),
		hist: hist, reg: reg, keys: keys, maxSize: maxSize,
		multipartBig: long, opTimeout: 30 * time.Second,
		versions: *flagChaosVersions, vkeys: vkeys, ledger: &versionLedger{},
	}

	meta, err := metaclient.New(cl.metadGRPC, metaclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	mon := startHealthMonitor(meta)
	defer mon.stop()

	t0 := time.Now()
	hist.t0 = t0
	w.start(clients, seed)
	t.Cleanup(w.halt) // a failed test must not leave them running
	in := &injector{cl: cl, rng: rand.New(rand.NewPCG(seed, 0x1a7e)), t0: t0, capacity: capacity,
		busy: map[string]int{}, corrupted: map[chunk.SegmentID]bool{}}
	// Faults from 2s in to 3s before the end: the workload starts and
	// ends on a healthy cluster.
	eps := planFaults(seed, 2*time.Second, duration-3*time.Second, long)
	in.run(eps)
	rep.Faults = in.events
	cl.logf("chaos: %d faults injected and healed", len(in.events))
	if rest := duration - time.Since(t0); rest > 0 {
		time.Sleep(rest) // the workload's own length
	}
	w.halt()
	cl.logf("chaos: workload stopped after %v", time.Since(t0).Round(time.Millisecond))

	// Everything runs again (the injector recovered every fault): wait for
	// the processes, then for full redundancy.
	healStart := time.Now()
	cl.WaitReady(60 * time.Second)
	chaosWaitRedundancy(t, cl, meta, healStart, healTimeout, rep)
	rep.MaxDegraded, rep.MaxLost = mon.max()

	// The final reads: every key, whole, each retried until it answers;
	// then every version of the versioned bucket.
	finalReads(t, w, keys, false)
	finalReads(t, w, vkeys, true)
	finalList(t, w)
	var seen *versionsSeen
	writes := w.ledger.snapshot()
	if w.versions {
		seen = finalVersions(t, cl, w, writes)
	}

	ops := hist.snapshot()
	chaosCheck(rep, ops, keys, vkeys)
	if w.versions {
		checkVersions(rep, reg, vkeys, writes, seen, ops)
	}
	rep.Linearizability = checkLinearizable(reg, ops, keys, t0, linearTimeout(long))
	if rep.Linearizability.Illegal > 0 {
		rep.violate("linearizability: %d key histories not linearizable (%s); visualization: %s",
			rep.Linearizability.Illegal, strings.Join(rep.Linearizability.Failed, ", "), rep.Linearizability.Visual)
	}
	rep.Ops = countOps(ops)
	rep.Errors = countErrors(ops)
	for _, o := range ops {
		if o.kind == opGet && o.outcome != acked && strings.Contains(o.err, "read body after") {
			rep.CutReads++
		}
	}

	printReport(t, rep)
	if *flagChaosJSON != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*flagChaosJSON, append(b, '\n'), 0o644); err != nil {
			t.Errorf("write %s: %v", *flagChaosJSON, err)
		}
	}
	for _, v := range rep.Violations {
		t.Errorf("chaos: %s", v)
	}
	if rep.violationsAll > len(rep.Violations) {
		t.Errorf("chaos: ... and %d more violations", rep.violationsAll-len(rep.Violations))
	}
	switch rep.Heal {
	case "unimplemented":
		t.Logf("chaos: HealthStatus is not implemented by metad: the return to full redundancy was not checked")
	case "ok":
	default:
		t.Errorf("chaos: the cluster did not return to full redundancy within %v (%s)", healTimeout, rep.Heal)
	}
	if rep.Linearizability.Unknown > 0 {
		t.Logf("chaos: porcupine timed out on %d keys: their linearizability is unknown", rep.Linearizability.Unknown)
	}
	if len(in.events) == 0 {
		t.Errorf("chaos: no fault was injected")
	}
	if t.Failed() {
		t.Logf("chaos: reproduce with: go test -race -count=1 ./e2e/ -run 'TestChaos$' -chaos.seed %d -chaos.duration %v -chaos.blobs %d -chaos.clients %d",
			seed, duration, len(cl.blobs), clients)
	}
}

func linearTimeout(long bool) time.Duration {
	if long {
		return 2 * time.Minute
	}
	return 20 * time.Second
}

// healthMonitor samples HealthStatus during the run, for the report: the
// gauges must move as faults happen.
type healthMonitor struct {
	cancel               context.CancelFunc
	wg                   sync.WaitGroup
	mu                   sync.Mutex
	maxDegraded, maxLost int64
}

func startHealthMonitor(meta *metaclient.Client) *healthMonitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &healthMonitor{cancel: cancel}
	m.wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			hctx, c := context.WithTimeout(ctx, 2*time.Second)
			hs, err := meta.HealthStatus(hctx, &pb.HealthStatusRequest{})
			c()
			if err != nil {
				continue
			}
			m.mu.Lock()
			m.maxDegraded = max(m.maxDegraded, hs.GetSegmentsDegraded())
			m.maxLost = max(m.maxLost, hs.GetSegmentsLost())
			m.mu.Unlock()
		}
	})
	return m
}

func (m *healthMonitor) stop() { m.cancel(); m.wg.Wait() }

func (m *healthMonitor) max() (int64, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxDegraded, m.maxLost
}

// chaosWaitRedundancy waits until every blob node has finished a scrub
// pass begun after the faults stopped (so a damaged chunk has been found)
// and then until the leader's health figures, computed after that, show
// no degraded and no lost segment.
func chaosWaitRedundancy(t *testing.T, cl *cluster, meta *metaclient.Client, since time.Time, timeout time.Duration, rep *chaosReport) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	scrubbed := time.Time{}
	var last string
	for {
		if scrubbed.IsZero() {
			all := true
			for _, n := range cl.blobs {
				v, err := cl.metricLabelled(cl.proc(n).base+"/metrics", "cairn_scrub_last_full_pass_timestamp_seconds")
				if err != nil || time.Unix(0, int64(v*1e9)).Before(since) {
					all = false
					last = fmt.Sprintf("%s: last full scrub pass at %v (%v)", n, v, err)
					break
				}
			}
			if all {
				scrubbed = time.Now()
				cl.logf("chaos: every blob node scrubbed since the faults stopped (%v)", scrubbed.Sub(since).Round(time.Millisecond))
			}
		}
		if !scrubbed.IsZero() {
			hctx, c := context.WithTimeout(ctx, 2*time.Second)
			asked, callStart := meta.Leader(), time.Now()
			hs, err := meta.HealthStatus(hctx, &pb.HealthStatusRequest{MaxLost: 20})
			c()
			if status.Code(err) == codes.Unimplemented {
				rep.Heal = "unimplemented"
				return
			}
			prev := last
			switch {
			case err != nil && ctx.Err() != nil:
				// Cut off by the overall deadline: keep the reason of the
				// attempts before it, which is what the report needs (the
				// reason used to be this cut-off call's own DeadlineExceeded).
				if last == "" {
					last = fmt.Sprintf("HealthStatus (sent to %s) cut off by the deadline: %v", asked, err)
				}
			case err != nil:
				last = fmt.Sprintf("HealthStatus (sent to %s, %v): %v", asked, time.Since(callStart).Round(time.Millisecond), err)
			case time.Unix(0, hs.GetComputedUnixNano()).Before(scrubbed):
				last = "health figures computed before the scrub passes ended"
			case hs.GetSegmentsLost() > 0:
				last = fmt.Sprintf("%d segments lost: %v", hs.GetSegmentsLost(), hs.GetLost())
			case hs.GetSegmentsDegraded() > 0:
				last = fmt.Sprintf("%d of %d segments degraded (by missing: %v), repair queue %d, in flight %d, done %d, failed %d",
					hs.GetSegmentsDegraded(), hs.GetSegmentsTotal(), hs.GetSegmentsByMissing(), hs.GetRepairQueue(), hs.GetRepairsInFlight(), hs.GetRepairsDone(), hs.GetRepairsFailed())
			default:
				rep.Heal = "ok"
				rep.HealSeconds = time.Since(since).Seconds()
				rep.RepairsDone = hs.GetRepairsDone()
				cl.logf("chaos: full redundancy %v after the faults stopped: %d segments, %d repairs done", time.Since(since).Round(time.Millisecond), hs.GetSegmentsTotal(), hs.GetRepairsDone())
				return
			}
			if reasonKind(last) != reasonKind(prev) {
				cl.logf("chaos: not yet at full redundancy: %s", last)
			}
			if hs != nil && hs.GetSegmentsLost() > 0 {
				rep.violate("%d segments lost after the faults: %v", hs.GetSegmentsLost(), hs.GetLost())
				rep.Heal = "lost"
				return
			}
		}
		if time.Now().After(deadline) {
			rep.Heal = "timeout: " + last
			rep.HealSeconds = time.Since(since).Seconds()
			return
		}
		<-tick.C
	}
}

// reasonKind is a reason of chaosWaitRedundancy without its figures, so
// that the log shows when the reason changes, not every new count.
func reasonKind(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '.' {
			return -1
		}
		return r
	}, s)
}

// finalReads GETs every key (of the versioned bucket when versioned) once
// the cluster is healthy, retrying a read that fails (it must end with an
// answer).
func finalReads(t *testing.T, w *workload, keys []string, versioned bool) {
	t.Helper()
	for _, k := range keys {
		deadline := time.Now().Add(30 * time.Second)
		for {
			o := &op{client: -1, kind: opGet, key: k, rngStart: -1, final: true, versioned: versioned}
			w.read(o, &s3.GetObjectInput{Bucket: bucketOf(o), Key: aws.String(k)})
			w.hist.add(o)
			if o.outcome == acked {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("chaos: final GET %s still fails after 30s: %s", k, o.err)
				break
			}
			time.Sleep(200 * time.Millisecond) // retry pace
		}
	}
}

func finalList(t *testing.T, w *workload) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := w.list(-1)
		o.final = true
		if o.outcome == acked {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("chaos: final LIST still fails after 30s: %s", o.err)
			return
		}
		time.Sleep(200 * time.Millisecond) // retry pace
	}
}

// chaosCheck runs the history checks other than linearizability, on the
// keys of both buckets (vkeys: the versioned bucket's, which no LIST
// reads).
func chaosCheck(rep *chaosReport, ops []*op, keys, vkeys []string) {
	per := byKey(ops, keys)
	listedKeys := keys
	keys = append(append([]string(nil), keys...), vkeys...)
	// Reads of wrong bytes, and writes acknowledged with a wrong ETag.
	for _, o := range ops {
		if o.outcome != acked || o.err == "" {
			continue
		}
		rep.BadReads += b2i(o.kind == opGet || o.kind == opList)
		rep.violate("op %d (%s %s by client %d at %s): %s", o.id, o.kind, o.key, o.client, o.start.Format("15:04:05.000"), o.err)
	}
	// (b) no read of a value already replaced.
	for _, k := range keys {
		for _, r := range per[k] {
			if r.kind != opGet || r.outcome != acked || r.unsat || r.got < emptyValue {
				continue
			}
			if why := staleRead(per[k], r); why != "" {
				rep.BadReads++
				rep.violate("op %d (%s %s at %s): %s", r.id, readKind(r), k, r.start.Format("15:04:05.000"), why)
			}
		}
	}
	// (a) the final reads: the key holds a value the history allows.
	var finalList *op
	finalGet := map[string]*op{}
	for _, o := range ops {
		switch {
		case o.final && o.kind == opList && o.outcome == acked:
			finalList = o
		case o.final && o.kind == opGet && o.outcome == acked:
			finalGet[o.key] = o
		}
	}
	for _, k := range keys {
		g := finalGet[k]
		if g == nil {
			continue // reported by finalReads
		}
		allowed, ackedPut := finalAllowed(per[k])
		if allowed[g.got] {
			continue
		}
		var vs []string
		for v := range allowed {
			vs = append(vs, valueName(v))
		}
		sort.Strings(vs)
		if ackedPut {
			rep.AckedWritesLost++
		}
		rep.violate("final GET %s: %s, but the history allows only %s", k, valueName(g.got), strings.Join(vs, ", "))
	}
	// (c) LIST agrees with GET at the end.
	if finalList != nil {
		for _, k := range listedKeys {
			g := finalGet[k]
			if g == nil {
				continue
			}
			l, ok := finalList.listed[k]
			if !ok {
				l = absentValue
			}
			if l != g.got {
				rep.ListMismatches++
				rep.violate("final LIST shows %s as %s, final GET as %s", k, valueName(l), valueName(g.got))
			}
		}
		for k := range finalList.listed {
			if _, ok := per[k]; !ok {
				rep.ListMismatches++
				rep.violate("final LIST shows %s, a key the workload never wrote", k)
			}
		}
	}
}

func readKind(o *op) string {
	switch {
	case o.listed != nil || o.kind == opList:
		return "list"
	case o.rngStart >= 0:
		return fmt.Sprintf("get range %d-%d", o.rngStart, o.rngEnd)
	}
	return "get"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func countOps(ops []*op) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, o := range ops {
		var tags []string
		if o.versioned {
			tags = append(tags, "versioned")
		}
		if o.askVersion != "" {
			tags = append(tags, "by id")
		}
		if o.kind == opPut && o.parts > 0 {
			tags = append(tags, "multipart")
		}
		if o.kind == opGet && o.rngStart >= 0 {
			tags = append(tags, "range")
		}
		k := o.kind.String()
		if len(tags) > 0 {
			k += " (" + strings.Join(tags, ", ") + ")"
		}
		if out[k] == nil {
			out[k] = map[string]int{}
		}
		res := o.outcome.String()
		if o.outcome == acked && o.kind == opGet {
			switch {
			case o.unsat:
				res = "ok (416)"
			case o.got == absentValue:
				res = "ok (absent)"
			}
		}
		out[k][res]++
	}
	return out
}

func countErrors(ops []*op) map[string]int {
	out := map[string]int{}
	for _, o := range ops {
		if o.outcome == acked {
			continue
		}
		msg := o.err
		if i := strings.LastIndex(msg, "api error "); i >= 0 {
			msg = msg[i+len("api error "):]
		} else if i := strings.Index(msg, "): "); i >= 0 {
			msg = msg[i+3:]
		}
		if len(msg) > 160 {
			msg = msg[:160]
		}
		out[o.kind.String()+": "+msg]++
	}
	return out
}

func printReport(t *testing.T, r *chaosReport) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos report — seed %d, %s, %d clients, %d blob nodes\n", r.Seed, r.Duration, r.Clients, r.BlobNodes)
	fmt.Fprintf(&b, "operations:\n")
	var kinds []string
	for k := range r.Ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		var outs []string
		for o, n := range r.Ops[k] {
			outs = append(outs, fmt.Sprintf("%s %d", o, n))
		}
		sort.Strings(outs)
		fmt.Fprintf(&b, "  %-30s %s\n", k, strings.Join(outs, ", "))
	}
	var errs []string
	for e := range r.Errors {
		errs = append(errs, e)
	}
	sort.Slice(errs, func(i, j int) bool { return r.Errors[errs[i]] > r.Errors[errs[j]] })
	for i, e := range errs {
		if i == 12 {
			fmt.Fprintf(&b, "  ... %d more kinds of failure\n", len(errs)-i)
			break
		}
		fmt.Fprintf(&b, "  %5d× %s\n", r.Errors[e], e)
	}
	fmt.Fprintf(&b, "faults injected: %d\n", len(r.Faults))
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "  %7.2fs–%7.2fs  %-20s %s %s\n", f.At, f.Healed, f.Kind, f.Target, f.Details)
	}
	fmt.Fprintf(&b, "acknowledged writes lost:      %d\n", r.AckedWritesLost)
	fmt.Fprintf(&b, "bad reads (wrong/stale bytes): %d\n", r.BadReads)
	fmt.Fprintf(&b, "LIST/GET mismatches:           %d\n", r.ListMismatches)
	fmt.Fprintf(&b, "GETs cut mid-body (failed):    %d\n", r.CutReads)
	fmt.Fprintf(&b, "linearizability violations:    %d (keys %d: %d ok, %d unknown)\n", r.Linearizability.Illegal, r.Linearizability.Keys, r.Linearizability.Ok, r.Linearizability.Unknown)
	fmt.Fprintf(&b, "segments degraded at most:     %d (lost at most %d)\n", r.MaxDegraded, r.MaxLost)
	fmt.Fprintf(&b, "back to full redundancy:       %s after %.1fs (%d repairs)\n", r.Heal, r.HealSeconds, r.RepairsDone)
	if r.Versions != nil {
		printVersions(&b, r.Versions)
	}
	if r.violationsAll > 0 {
		fmt.Fprintf(&b, "violations: %d\n", r.violationsAll)
	}
	t.Log(b.String())
}
