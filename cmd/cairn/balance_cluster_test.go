package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/metadata"
	"github.com/cairnstore/cairn/metadata/metaclient"
	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/object"
)

// End-to-end tests of drain, decommission and the balancer: an in-process
// cluster (3 metad, real blob nodes executing the moves over HTTP), driven
// through the CLI as an operator would.

// balanceHeal are metad timings that keep moves quick in tests; liveness
// keeps its defaults so that a loaded machine does not mark nodes down.
func balanceHeal() *metadata.HealConfig {
	h := metadata.DefaultHealConfig()
	h.RepairScanInterval = 200 * time.Millisecond // a dispatch tick of 20ms
	h.RepairTaskTimeout = 20 * time.Second
	h.RepairBackoff = 100 * time.Millisecond
	h.GCInterval = 100 * time.Millisecond
	// Reads in flight keep resolving old placements for a moment after a
	// move commits.
	h.GCGrace = 3 * time.Second
	h.HealthScanInterval = 200 * time.Millisecond
	h.HealthScanRate = 0
	return &h
}

// adminCLI runs the CLI against a cluster.
type adminCLI struct {
	t   *testing.T
	env map[string]string
}

func newAdminCLI(t *testing.T, c *testcluster.Cluster) adminCLI {
	return adminCLI{t: t, env: map[string]string{"CAIRN_METAD": strings.Join(c.MetaAddrs(), ",")}}
}

// run runs the CLI with a per-call timeout that outlasts an election on a
// loaded machine.
func (a adminCLI) run(args ...string) result {
	a.t.Helper()
	return runCLI(a.t, a.env, append(args, "--timeout", "25s")...)
}

// idempotentCommands may be repeated after an unknown outcome, as an
// operator would: their effect does not depend on how often they ran.
var idempotentCommands = map[string]bool{"node drain": true, "node undrain": true, "rebalance stop": true}

// ok runs a command that must succeed. A command that may be repeated is
// run again when its commit's outcome was unknown (a leader lost its
// lease mid-commit, which a loaded machine makes likely).
func (a adminCLI) ok(args ...string) result {
	a.t.Helper()
	r := a.run(args...)
	for try := 0; try < 3 && r.code != 0 && len(args) >= 2 && idempotentCommands[args[0]+" "+args[1]] && strings.Contains(r.stderr, "commit outcome unknown"); try++ {
		r = a.run(args...)
	}
	if r.code != 0 {
		a.t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// json runs a command with --json that must succeed and decodes its output.
func (a adminCLI) json(v any, args ...string) {
	a.t.Helper()
	r := a.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		a.t.Fatalf("cairn %s --json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// fails runs a command that must fail with exit code 1 and one line on
// stderr.
func (a adminCLI) fails(args ...string) result {
	a.t.Helper()
	r := a.run(args...)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "cairn: ") {
		a.t.Fatalf("cairn %s: exit %d, stderr %q; want exit 1 and one error line", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// tryJSON runs a command with --json and decodes its output; a failed
// command is an error, not a test failure (an election may be under way).
func (a adminCLI) tryJSON(v any, args ...string) error {
	r := a.run(append(args, "--json")...)
	if r.code != 0 {
		return fmt.Errorf("cairn %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		a.t.Fatalf("cairn %s --json: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	return nil
}

func (a adminCLI) rebalanceStatus() *rebalanceView {
	a.t.Helper()
	var v rebalanceView
	a.json(&v, "rebalance", "status")
	return &v
}

// waitRebalanceDone waits until the rebalance is no longer running and
// returns its last status; it fails unless it ended "done".
func (a adminCLI) waitRebalanceDone(timeout time.Duration) *rebalanceView {
	a.t.Helper()
	var v *rebalanceView
	testcluster.WaitFor(a.t, timeout, "the rebalance to finish", func() error {
		v = a.rebalanceStatus()
		if v.Running {
			return fmt.Errorf("running: %d of %d bytes moved, %d of %d moves", v.BytesMoved, v.BytesTotal, v.MovesDone, v.MovesTotal)
		}
		return nil
	})
	if v.Outcome != "done" {
		a.t.Fatalf("rebalance ended %q, want done: %+v", v.Outcome, v)
	}
	return v
}

// putObjects stores n objects of 1-3 segments each and returns their
// contents by key.
func putObjects(t *testing.T, ctx context.Context, s *object.Store, bucket, prefix string, n int, rng *rand.Rand) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	for i := range n {
		data := make([]byte, 60<<10+rng.IntN(400<<10))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		key := fmt.Sprintf("%s%03d", prefix, i)
		if err := retry(t, ctx, "put "+key, func() error {
			_, err := s.Put(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), object.PutOptions{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want[key] = data
	}
	return want
}

// retry runs op until it succeeds, a few times: on this loaded machine an
// election can cut a write short ("commit outcome unknown"). Every op
// retried here is idempotent (a PUT of the same bytes, a DELETE, a GET),
// so its outcome is known once it succeeds; what it returns is still
// checked by the caller.
func retry(t *testing.T, ctx context.Context, what string, op func() error) error {
	var err error
	for attempt := range 5 {
		if err = op(); err == nil {
			return nil
		}
		t.Logf("%s (attempt %d): %v", what, attempt+1, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond): // backoff between attempts
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// readBack checks that every object reads back byte-exact.
func readBack(t *testing.T, ctx context.Context, s *object.Store, bucket string, want map[string][]byte) {
	t.Helper()
	for key, data := range want {
		var got []byte
		err := retry(t, ctx, "get "+key, func() (err error) {
			got, err = getObject(ctx, s, bucket, key)
			return err
		})
		if err != nil {
			t.Errorf("read %s: %v", key, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("read %s: %d bytes, not the %d stored", key, len(got), len(data))
		}
	}
}

func getObject(ctx context.Context, s *object.Store, bucket, key string) ([]byte, error) {
	o, err := s.Head(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	rc, err := s.Open(ctx, o, 0, o.Size)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// placements returns every segment's placement of the given objects, by
// segment id.
func placements(t *testing.T, ctx context.Context, mc *metaclient.Client, bucket string, keys []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, key := range keys {
		resp, err := mc.GetObject(ctx, &pb.GetObjectRequest{Bucket: bucket, Key: key})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		for _, seg := range resp.GetObject().GetSegments() {
			out[fmt.Sprintf("%x", seg.GetId())] = slices.Clone(seg.GetNodes())
		}
	}
	return out
}

// changedShards counts the shards placed differently in after than in
// before.
func changedShards(before, after map[string][]string) int {
	n := 0
	for id, nodes := range after {
		for sh, node := range nodes {
			if sh >= len(before[id]) || before[id][sh] != node {
				n++
			}
		}
	}
	return n
}

// leaderCounters reads the balancer counters of whichever member leads
// now, with that member. The counters are the leader's own (they start at
// zero on each new leader), so a comparison of two readings means
// something only when both come from the same member while it led.
func leaderCounters(c *testcluster.Cluster) (*metadata.Server, metadata.BalancerCounters, error) {
	for _, m := range c.Metas {
		if srv := m.Server(); srv != nil && srv.IsLeader() {
			b, err := srv.BalancerCounters()
			if err != nil {
				return nil, b, fmt.Errorf("balancer counters of the leader: %w", err)
			}
			return srv, b, nil
		}
	}
	return nil, metadata.BalancerCounters{}, fmt.Errorf("no member is leader")
}

// handedOutOverRounds waits until the leader's balancer loop has run
// rounds more rounds and returns how many moves it handed out meanwhile,
// and the leader it watched. On a loaded machine leadership can move while
// it waits; the new leader's counters are not comparable with the old
// one's, so the observation starts again on the new leader.
func handedOutOverRounds(t *testing.T, c *testcluster.Cluster, rounds uint64) (*metadata.Server, uint64) {
	t.Helper()
	var (
		watched *metadata.Server
		from    metadata.BalancerCounters
		handed  uint64
	)
	testcluster.WaitFor(t, 2*time.Minute, fmt.Sprintf("%d balancer rounds on one leader", rounds), func() error {
		srv, b, err := leaderCounters(c)
		if err != nil {
			return err
		}
		if srv != watched {
			if watched != nil {
				t.Logf("leadership moved while watching the balancer; watching the new leader from now")
			}
			watched, from = srv, b
		}
		if b.Rounds < from.Rounds+rounds {
			return fmt.Errorf("%d rounds so far", b.Rounds-from.Rounds)
		}
		handed = b.MovesHandedOut - from.MovesHandedOut
		return nil
	})
	return watched, handed
}

// usageByNode is each UP node's bytes and capacity as the plan shows them
// (the node index: what placements reference).
func usageByNode(p *planView) (used, capacity map[string]int64) {
	used, capacity = map[string]int64{}, map[string]int64{}
	for _, u := range p.Before {
		used[u.ID], capacity[u.ID] = u.UsedBytes, u.CapacityBytes
	}
	return used, capacity
}

// withinBand checks every UP node's utilisation is within threshold
// percentage points of the mean.
func withinBand(t *testing.T, p *planView, threshold float64) {
	t.Helper()
	var sumUsed, sumCap int64
	for _, u := range p.Before {
		sumUsed += u.UsedBytes
		sumCap += u.CapacityBytes
	}
	mean := float64(sumUsed) / float64(sumCap)
	for _, u := range p.Before {
		if d := (u.Utilization - mean) * 100; d > threshold || d < -threshold {
			t.Errorf("%s at %.2f%% is %.2f points off the mean %.2f%% (threshold %g)", u.ID, u.Utilization*100, d, mean*100, threshold)
		}
	}
}

// Add a 7th blob node and rebalance: about 1/7 of the data moves, onto
// it, and no more. Add an 8th (its own zone, less capacity) and rebalance
// at a low rate: stop halts movement (nothing handed out or committed
// after stop returns and the moves in flight end); start again and kill
// the metad leader mid-way: the new leader resumes and finishes without
// counting a move twice or losing one. Utilisation ends within the
// threshold and every object reads back byte-exact.
func TestRebalanceOntoNewNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and moves data")
	}
	const capacity = 32 << 20
	const threshold = 1.0 // percentage points: 1% of 32 MiB is a few chunks
	th := fmt.Sprint(threshold)
	c := testcluster.New(t, testcluster.Config{Quiet: true, BlobCapacity: capacity, Heal: balanceHeal()})
	cli := newAdminCLI(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mc := c.MetaClient(t)
	cli.ok("bucket", "create", "b")
	s := c.ObjectStore(t, object.Config{SegmentSize: 256 << 10})
	want := putObjects(t, ctx, s, "b", "obj", 30, rand.New(rand.NewPCG(1, 2)))
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}

	// One new node.
	c.AddBlob(t, testcluster.BlobSpec{Zone: "zone-4", Rack: "rack-7", Capacity: capacity})
	var plan planView
	cli.json(&plan, "rebalance", "plan", "--threshold", th)
	used, caps := usageByNode(&plan)
	if len(used) != 7 || used["blobd-7"] != 0 {
		t.Fatalf("plan before: %+v", plan.Before)
	}
	var total, totalCap int64
	for id := range used {
		total += used[id]
		totalCap += caps[id]
	}
	// The new node's fair share is total/(N+1) with equal capacities; the
	// balancer stops once it is within the threshold band of the mean, and
	// one chunk is the granularity of a move.
	fair := total * caps["blobd-7"] / totalCap
	band := int64(threshold / 100 * float64(caps["blobd-7"]))
	chunk := int64(0)
	for _, m := range plan.Moves {
		chunk = max(chunk, m.Bytes)
	}
	if plan.MovesTotal == 0 || chunk == 0 {
		t.Fatalf("nothing to move onto the new node: %+v", plan)
	}
	before := placements(t, ctx, mc, "b", keys)
	var st rebalanceView
	cli.json(&st, "rebalance", "start", "--threshold", th, "--rate", "1GiB/s")
	if !st.Running || st.BytesTotal != plan.BytesTotal || st.MovesTotal != plan.MovesTotal {
		t.Fatalf("start = %+v, want running with the plan's %d bytes in %d moves", st, plan.BytesTotal, plan.MovesTotal)
	}
	done := cli.waitRebalanceDone(2 * time.Minute)
	cli.json(&plan, "rebalance", "plan", "--threshold", th)
	used, _ = usageByNode(&plan)
	t.Logf("one node added: %d of %d bytes moved (%.1f%%; fair share %.1f%%), %d moves; blobd-7 holds %d bytes",
		done.BytesMoved, total, 100*float64(done.BytesMoved)/float64(total), 100*float64(fair)/float64(total), done.MovesDone, used["blobd-7"])
	if lo := fair - band - chunk; used["blobd-7"] < lo {
		t.Errorf("blobd-7 holds %d bytes, want at least its share %d less the band %d and a chunk %d", used["blobd-7"], fair, band, chunk)
	}
	if hi := fair + band + chunk; done.BytesMoved > hi {
		t.Errorf("%d bytes moved, want at most the share %d plus the band %d and a chunk %d", done.BytesMoved, fair, band, chunk)
	}
	if done.BytesMoved < used["blobd-7"] {
		t.Errorf("%d bytes moved, but blobd-7 holds %d: all of it came by a move", done.BytesMoved, used["blobd-7"])
	}
	after := placements(t, ctx, mc, "b", keys)
	if n := changedShards(before, after); int64(n) != done.MovesDone {
		t.Errorf("%d shards changed place, status counts %d moves", n, done.MovesDone)
	}
	if plan.MovesTotal != 0 {
		t.Errorf("plan after the rebalance still has %d moves", plan.MovesTotal)
	}
	withinBand(t, &plan, threshold)

	// An 8th node, in a zone of its own, with less capacity (a node holds
	// at most one chunk of a segment, so its share must stay under one
	// chunk per segment: 6*0.75/7.75 here); a slow rebalance, stopped part
	// way.
	c.AddBlob(t, testcluster.BlobSpec{Zone: "zone-5", Rack: "rack-8", Capacity: capacity * 3 / 4})
	cli.json(&plan, "rebalance", "plan", "--threshold", th)
	if plan.MovesTotal < 6 {
		t.Fatalf("plan onto blobd-8 has %d moves; the test needs more", plan.MovesTotal)
	}
	before = placements(t, ctx, mc, "b", keys)
	// A few chunks a second.
	rate := fmt.Sprintf("%dB/s", 3*chunk)
	cli.json(&st, "rebalance", "start", "--threshold", th, "--rate", rate)
	testcluster.WaitFor(t, time.Minute, "a few moves", func() error {
		if v := cli.rebalanceStatus(); v.MovesDone < 2 {
			return fmt.Errorf("%d moves done", v.MovesDone)
		}
		return nil
	})
	stopAt := time.Now()
	cli.json(&st, "rebalance", "stop")
	stopTook := time.Since(stopAt)
	if st.Running || st.Outcome != "stopped" {
		t.Fatalf("stop = %+v", st)
	}
	var (
		srv    *metadata.Server
		atStop metadata.BalancerCounters
	)
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "the leader's balancer counters", func() (err error) {
		srv, atStop, err = leaderCounters(c)
		return err
	})
	// Stop returns after the balancer's last round: nothing is handed out
	// from now on. Let the moves in flight end, then nothing changes.
	testcluster.WaitFor(t, time.Minute, "the moves in flight to end", func() error {
		// Unfinished covers a result between the task table and its
		// placement commit.
		_, b, err := leaderCounters(c)
		if err != nil {
			return err
		}
		if b.MovesInFlight > 0 || b.MovesUnfinished > 0 {
			return fmt.Errorf("%d moves in flight, %d results not handled", b.MovesInFlight, b.MovesUnfinished)
		}
		return nil
	})
	t.Logf("rebalance stop returned in %v; the moves in flight ended %v after it was called", stopTook.Round(time.Millisecond), time.Since(stopAt).Round(time.Millisecond))
	frozen := placements(t, ctx, mc, "b", keys)
	stopped := cli.rebalanceStatus()
	watched, n := handedOutOverRounds(t, c, 20)
	if n != 0 {
		t.Errorf("%d moves handed out in 20 balancer rounds after stop", n)
	}
	// The same member led from before stop to now: nothing was handed out
	// since stop returned either.
	if _, b, err := leaderCounters(c); err == nil && watched == srv && b.MovesHandedOut != atStop.MovesHandedOut {
		t.Errorf("%d moves handed out after stop returned", b.MovesHandedOut-atStop.MovesHandedOut)
	}
	if n := changedShards(frozen, placements(t, ctx, mc, "b", keys)); n != 0 {
		t.Errorf("%d shards moved after stop and the moves in flight ended", n)
	}
	if v := cli.rebalanceStatus(); v.Running || v.Outcome != "stopped" || v.MovesDone != stopped.MovesDone || v.BytesMoved != stopped.BytesMoved {
		t.Errorf("status changed after stop: %+v, then %+v", stopped, v)
	}
	if stopped.MovesDone == 0 || stopped.MovesDone >= st.MovesTotal {
		t.Errorf("stopped with %d of %d moves done; want part way", stopped.MovesDone, st.MovesTotal)
	}
	if n := changedShards(before, frozen); int64(n) != stopped.MovesDone {
		t.Errorf("%d shards changed place before the stop, status counts %d moves", n, stopped.MovesDone)
	}

	// Start again, kill the leader part way.
	before = frozen
	var restart rebalanceView
	cli.json(&restart, "rebalance", "start", "--threshold", th, "--rate", rate)
	testcluster.WaitFor(t, time.Minute, "a move of the second run", func() error {
		if v := cli.rebalanceStatus(); v.MovesDone < 2 {
			return fmt.Errorf("%d moves done", v.MovesDone)
		}
		return nil
	})
	old := c.Leader(t)
	r, err := c.Metas[old].Server().RebalanceState()
	if err != nil {
		t.Fatal(err)
	}
	var pendingBytes int64
	for _, p := range r.GetPending() {
		pendingBytes += p.GetBytes()
	}
	atKill := cli.rebalanceStatus()
	c.KillMeta(t, old)
	testcluster.WaitFor(t, testcluster.ReadyTimeout, "a new leader", func() error {
		for i, m := range c.Metas {
			if i != old && m.Server() != nil && m.Server().IsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no new leader yet")
	})
	// Progress never goes back, and the run finishes under the new leader.
	var last int64
	testcluster.WaitFor(t, 2*time.Minute, "the resumed rebalance to finish", func() error {
		var v rebalanceView
		if err := cli.tryJSON(&v, "rebalance", "status"); err != nil {
			return err // no leader yet
		}
		if v.BytesMoved < atKill.BytesMoved || v.BytesMoved < last {
			t.Fatalf("progress went back: %d bytes moved at the kill, %d before, %d now", atKill.BytesMoved, last, v.BytesMoved)
		}
		last = v.BytesMoved
		if v.Running {
			return fmt.Errorf("running: %d of %d bytes", v.BytesMoved, v.BytesTotal)
		}
		return nil
	})
	c.RestartMeta(t, old)
	final := cli.rebalanceStatus()
	if final.Outcome != "done" {
		t.Fatalf("resumed rebalance ended %q", final.Outcome)
	}
	after = placements(t, ctx, mc, "b", keys)
	t.Logf("after the leader kill: %d of %d planned bytes moved, %d moves; %d bytes were pending at the kill", final.BytesMoved, restart.BytesTotal, final.MovesDone, pendingBytes)
	// Nothing counted twice, nothing lost: every shard that changed place
	// is one move counted.
	if n := changedShards(before, after); int64(n) != final.MovesDone {
		t.Errorf("%d shards changed place in the resumed run, status counts %d moves", n, final.MovesDone)
	}
	// The new leader moves what is left of the plan; only moves pending at
	// the kill (handed out, not committed) may be planned again, elsewhere.
	if final.BytesMoved > restart.BytesTotal+pendingBytes {
		t.Errorf("%d bytes moved, more than the plan's %d plus the %d pending at the kill", final.BytesMoved, restart.BytesTotal, pendingBytes)
	}
	cli.json(&plan, "rebalance", "plan", "--threshold", th)
	if plan.MovesTotal != 0 {
		t.Errorf("plan after the resumed rebalance still has %d moves", plan.MovesTotal)
	}
	withinBand(t, &plan, threshold)
	used, _ = usageByNode(&plan)
	if used["blobd-8"] == 0 {
		t.Errorf("blobd-8 got nothing: %v", used)
	}
	readBack(t, ctx, s, "b", want)
}

// Drain a node while clients write, overwrite, read and delete: it
// empties, new chunks avoid it, it can then be decommissioned, and every
// acknowledged object reads back byte-exact.
func TestDrainUnderWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and moves data")
	}
	// Eight nodes in four zones: every chunk of the drained node has a
	// target that keeps a 4+2 segment within two chunks per zone.
	c := testcluster.New(t, testcluster.Config{Quiet: true, Blob: 8, Zones: 4, BlobCapacity: 64 << 20, Heal: balanceHeal()})
	cli := newAdminCLI(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mc := c.MetaClient(t)
	cli.ok("bucket", "create", "b")
	s := c.ObjectStore(t, object.Config{SegmentSize: 256 << 10, MapMaxAge: 100 * time.Millisecond})
	base := putObjects(t, ctx, s, "b", "base", 24, rand.New(rand.NewPCG(3, 4)))

	const victim = "blobd-1"
	var dec decommissionView
	cli.json(&dec, "node", "decommission", "--status", victim)
	if dec.ChunksRemaining == 0 {
		t.Fatalf("%s holds nothing; the test needs it to hold chunks", victim)
	}
	held := dec.ChunksRemaining

	// The workload: each worker owns its keys, so the last acknowledged
	// write of a key is what it must read.
	stop := make(chan struct{})
	var mu sync.Mutex
	acked := map[string][]byte{} // nil: deleted
	var ops [4]int
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, rng.IntN(4))
				mu.Lock()
				cur, known := acked[key]
				mu.Unlock()
				switch op := rng.IntN(10); {
				case op < 5: // put or overwrite
					data := make([]byte, 20<<10+rng.IntN(200<<10))
					for j := range data {
						data[j] = byte(rng.Uint32())
					}
					if err := retry(t, ctx, "put "+key, func() error {
						_, err := s.Put(ctx, "b", key, bytes.NewReader(data), int64(len(data)), object.PutOptions{})
						return err
					}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked[key] = data
					mu.Unlock()
				case op < 8: // get
					if !known || cur == nil {
						continue
					}
					var got []byte
					err := retry(t, ctx, "get "+key, func() (err error) {
						got, err = getObject(ctx, s, "b", key)
						return err
					})
					if err != nil || !bytes.Equal(got, cur) {
						t.Errorf("get %s during the drain: %d bytes (want %d), %v", key, len(got), len(cur), err)
						return
					}
				default: // delete
					if err := retry(t, ctx, "delete "+key, func() error {
						_, err := mc.DeleteObject(ctx, &pb.DeleteObjectRequest{Bucket: "b", Key: key})
						if errors.Is(err, metaerr.ErrNoSuchKey) {
							return nil // deleted by an attempt whose answer was lost
						}
						return err
					}); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					acked[key] = nil
					mu.Unlock()
				}
				mu.Lock()
				ops[w]++
				mu.Unlock()
			}
		})
	}
	stopWorkload := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkload()

	var dr drainView
	cli.json(&dr, "node", "drain", victim)
	if dr.Node.State != "draining" {
		t.Fatalf("drain: %+v", dr)
	}
	testcluster.WaitFor(t, 2*time.Minute, victim+" to empty", func() error {
		if t.Failed() {
			t.FailNow()
		}
		var d decommissionView
		cli.json(&d, "node", "decommission", "--status", victim)
		if d.ChunksRemaining > 0 || len(d.Blockers) > 0 {
			return fmt.Errorf("%d chunks left, blockers %q", d.ChunksRemaining, d.Blockers)
		}
		return nil
	})
	// Keep the workload going a little past the drain: new chunks must
	// not land on the draining node.
	mu.Lock()
	mark := ops
	mu.Unlock()
	testcluster.WaitFor(t, time.Minute, "more client operations after the drain", func() error {
		mu.Lock()
		defer mu.Unlock()
		for w := range ops {
			if ops[w] < mark[w]+2 {
				return fmt.Errorf("worker %d did %d ops since", w, ops[w]-mark[w])
			}
		}
		return nil
	})
	stopWorkload()
	if t.Failed() {
		return
	}
	cli.json(&dec, "node", "decommission", "--status", victim)
	if dec.ChunksRemaining != 0 || len(dec.Blockers) != 0 {
		t.Fatalf("after the workload %s still holds %d chunks, blockers %q", victim, dec.ChunksRemaining, dec.Blockers)
	}
	r := cli.ok("node", "decommission", victim)
	if r.stdout != victim+" is decommissioned\n" {
		t.Errorf("decommission: %q", r.stdout)
	}
	var n nodeView
	cli.json(&n, "node", "show", victim)
	if n.State != "decommissioned" {
		t.Errorf("%s is %s after decommission", victim, n.State)
	}
	t.Logf("drained %d chunks off %s while the workload did %v operations", held, victim, ops)

	// Nothing lost: the objects written before, and the last acknowledged
	// state of every workload key; and no placement names the victim.
	readBack(t, ctx, s, "b", base)
	for key, data := range acked {
		if data == nil {
			if _, err := s.Head(ctx, "b", key); err == nil {
				t.Errorf("%s: deleted but present", key)
			}
			continue
		}
		var got []byte
		err := retry(t, ctx, "get "+key, func() (err error) {
			got, err = getObject(ctx, s, "b", key)
			return err
		})
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes (want %d), %v", key, len(got), len(data), err)
		}
	}
	var keys []string
	for k := range base {
		keys = append(keys, k)
	}
	for k, data := range acked {
		if data != nil {
			keys = append(keys, k)
		}
	}
	for id, nodes := range placements(t, ctx, mc, "b", keys) {
		if slices.Contains(nodes, victim) || slices.Contains(nodes, "") {
			t.Errorf("segment %s placed on %v after the decommission", id, nodes)
		}
	}
}

// maskStatus replaces what varies between runs of `cairn status` against
// a fresh cluster: which member leads, the term, the Raft indices, the map
// epoch and the used bytes (heartbeats report them as they come).
func maskStatus(out string) string {
	for _, m := range []struct{ re, with string }{
		{`leader metad-\d+, term \d+`, "leader metad-N, term T"},
		{`applied \d+ of \d+`, "applied A of C"},
		{`metad-\d+ \(leader\)`, "metad-N (leader)"},
		{`metad-\d+`, "metad-N"},
		{`map epoch \d+`, "map epoch E"},
		{`capacity    [0-9.]+ [KMGT]?i?B used of`, "capacity    U used of"},
		{`raw \([0-9.]+%\)`, "raw (P%)"},
	} {
		out = regexp.MustCompile(m.re).ReplaceAllString(out, m.with)
	}
	return out
}

// Against a real cluster: the golden output of `cairn status`;
// decommission refuses, saying why, while the node holds chunks, is not
// draining, or has no target that keeps the failure-domain rule; and the
// --json output of every command parses as JSON.
func TestStatusGoldenAndJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.New(t, testcluster.Config{Quiet: true, BlobCapacity: 64 << 20, Heal: balanceHeal()})
	cli := newAdminCLI(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli.ok("bucket", "create", "b")
	s := c.ObjectStore(t, object.Config{SegmentSize: 256 << 10})
	want := putObjects(t, ctx, s, "b", "obj", 4, rand.New(rand.NewPCG(5, 6)))
	var segments int64
	for _, data := range want {
		segments += (int64(len(data)) + 256<<10 - 1) / (256 << 10)
	}
	testcluster.WaitFor(t, time.Minute, "the health pass to count every segment", func() error {
		var h healthView
		if err := cli.tryJSON(&h, "repair", "status"); err != nil {
			return err
		}
		if h.SegmentsTotal != segments {
			return fmt.Errorf("%d of %d segments counted", h.SegmentsTotal, segments)
		}
		return nil
	})

	golden := fmt.Sprintf(`metad       leader metad-N, term T, 3 members (3 voters), applied A of C
members     metad-N, metad-N, metad-N (leader)
blob nodes  6: 6 up (map epoch E)
capacity    U used of 384.0 MiB raw (P%%)
segments    %d: %d full, 0 lost
repair      idle
rebalance   idle
`, segments, segments)
	r := cli.ok("status")
	t.Logf("cairn status:\n%s", r.stdout)
	// Which member leads varies: sort the members line's names so the
	// leader's mark lands last.
	got := maskStatus(r.stdout)
	lines := strings.Split(got, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "members     "); ok {
			names := strings.Split(rest, ", ")
			slices.SortFunc(names, func(a, b string) int { return strings.Compare(a, b) })
			lines[i] = "members     " + strings.Join(names, ", ")
		}
	}
	if got = strings.Join(lines, "\n"); got != golden {
		t.Errorf("cairn status (masked):\n%s\nwant:\n%s\nunmasked:\n%s", got, golden, r.stdout)
	}

	// Decommission refuses: the node is not draining, holds chunks (the
	// only ones of their shards: removing it would lose them), and none of
	// them has a target that keeps the failure-domain rule.
	victim := "blobd-1"
	r = cli.fails("node", "decommission", victim)
	for _, want := range []string{
		"blobd-1: 3 blocker(s); " + fmt.Sprint(segments) + " chunks",
		"  - node is not draining: run `cairn node drain blobd-1` first\n",
		"  - node holds " + fmt.Sprint(segments) + " chunks",
		"have not moved yet",
		"failure-domain rule",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("decommission of an undrained node lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "blobd-1 cannot be decommissioned yet: 3 blocker(s)") {
		t.Errorf("decommission error: %q", r.stderr)
	}
	// Drained, it still cannot go: six nodes in three zones hold a 4+2
	// segment two chunks per zone, one per node, so no node can take the
	// victim's chunk without breaking the failure-domain rule.
	cli.ok("node", "drain", victim)
	var dec decommissionView
	testcluster.WaitFor(t, time.Minute, "decommission to name the failure-domain rule", func() error {
		r := cli.run("node", "decommission", victim, "--json")
		if r.code != 1 {
			t.Fatalf("decommission of a drained node that cannot empty: exit %d: %s", r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), &dec); err != nil {
			t.Fatalf("decommission --json: %v\n%s", err, r.stdout)
		}
		for _, b := range dec.Blockers {
			if strings.Contains(b, "failure-domain rule") {
				return nil
			}
		}
		return fmt.Errorf("blockers %q", dec.Blockers)
	})
	if dec.Decommissioned || dec.ChunksRemaining != segments || dec.Node.State != "draining" {
		t.Errorf("refused decommission: %+v", dec)
	}
	if st := cli.ok("node", "show", victim); !strings.Contains(st.stdout, "state      draining\n") {
		t.Errorf("after the refused decommission:\n%s", st.stdout)
	}
	cli.ok("node", "undrain", victim)

	// --json of every command parses (and --watch prints one object per
	// line).
	for _, args := range [][]string{
		{"status"},
		{"node", "list"},
		{"node", "show", victim},
		{"node", "drain", victim, "--dry-run"},
		{"node", "drain", victim},
		{"node", "undrain", victim},
		{"node", "decommission", "--status", victim},
		{"rebalance", "plan"},
		{"rebalance", "start", "--dry-run"},
		{"rebalance", "start"},
		{"rebalance", "status"},
		{"rebalance", "stop"},
		{"repair", "status"},
		{"metad", "members"},
		{"bucket", "create", "json"},
		{"bucket", "list"},
		{"bucket", "delete", "json"},
	} {
		var v any
		cli.json(&v, args...)
		if v == nil {
			t.Errorf("cairn %s --json printed null", strings.Join(args, " "))
		}
	}
	for _, args := range [][]string{
		{"node", "decommission", victim},
		{"node", "decommission", victim, "--dry-run"},
	} {
		r := cli.run(append(args, "--json")...)
		var v decommissionView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 1 || len(v.Blockers) == 0 {
			t.Errorf("cairn %s --json: exit %d, %v:\n%s", strings.Join(args, " "), r.code, err, r.stdout)
		}
	}
	r = cli.ok("rebalance", "status", "--watch", "--json", "--interval", "50ms")
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("rebalance status --watch --json line %q is not JSON", line)
		}
	}
	readBack(t, ctx, s, "b", want)
}
