package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/metadata/metaerr"
	"github.com/cairnstore/cairn/placement"
)

// Repair scheduling.
//
// Queue. Candidates are the segments with a missing shard (the state's
// SegmentsWithMissing index) and those with a chunk on a DOWN or
// DECOMMISSIONED node (SegmentsOnNodes of them all). A scan reads them all,
// every RepairScanInterval and soon after a node goes down or chunks are
// reported bad, and keeps the RepairQueueMax most urgent in memory:
// fewest healthy chunks first. A segment with fewer than k healthy chunks
// cannot be rebuilt: it is not queued but counted and listed as lost by the
// health pass (health.go), by owner, until a returning node or an operator
// changes that. Scan cost: with every node up, one read per degraded
// segment (miss/); with nodes down, one pass over every segment's index
// entry besides (seg/; no index by node, see nodeusage.go), whatever the
// number of nodes down.
//
// Dispatch. Every round (each tick, and after every report) walks the queue
// in priority order and plans the segments that have no task outstanding
// and are not backing off, while the budgets allow: RepairMaxInflight tasks
// in all, RepairPerNode writing to one node, RepairBytesPerSecond read from
// peers (a token bucket charged the segment's size per rebuilt shard, since
// rebuilding a shard reads k chunks of size/k). A segment is re-read before
// planning, so work that is done or moot is dropped.
//
// Targets. Each unhealthy shard gets its own target from placement.Replace,
// which keeps the failure-domain rule (the worst zone, then rack, as light
// as possible). The rule never allows two shards of a segment on one node,
// and a RepairTask stores what it rebuilds on the node that runs it, so a
// segment missing several shards gets one task per shard; each reads the k
// sources itself. When the best target has no budget left, another node is
// used only if it is as good for the failure domains; otherwise that shard
// waits for a later round.
//
// Results. A reported repair commits CommitPlacement{old, target} for each
// shard done: a compare-and-set, so a result that lost a race (the shard
// moved on, the segment was deleted, the target meanwhile got another
// shard of it from a predecessor's task) changes nothing.
// A failed or expired task puts its segment into backoff (RepairBackoff,
// doubling per attempt up to 64x); other segments go on regardless.

// clusterView is the cluster map as planning needs it.
type clusterView struct {
	nodes map[string]*pb.Node
	place []placement.Node
	// candidates is place with SUSPECT nodes as UP: the nodes pickTarget
	// considers, so that a SUSPECT node that would be the best target is
	// waited for like a busy one.
	candidates []placement.Node
}

func newClusterView(cm *pb.ClusterMap) *clusterView {
	v := &clusterView{nodes: make(map[string]*pb.Node, len(cm.GetNodes()))}
	for _, n := range cm.GetNodes() {
		v.nodes[n.GetId()] = n
		pn := toPlacementNode(n)
		v.place = append(v.place, pn)
		if pn.State == placement.StateSuspect {
			pn.State = placement.StateUp
		}
		v.candidates = append(v.candidates, pn)
	}
	return v
}

// suspect reports whether node id is SUSPECT: silent for a moment, not yet
// judged DOWN.
func (v *clusterView) suspect(id string) bool {
	n, ok := v.nodes[id]
	return ok && n.GetState() == pb.NodeState_NODE_STATE_SUSPECT
}

// toPlacementNode converts a cluster map node for the placement package.
func toPlacementNode(n *pb.Node) placement.Node {
	return placement.Node{
		ID:       n.GetId(),
		Zone:     n.GetZone(),
		Rack:     n.GetRack(),
		Capacity: n.GetCapacityBytes(),
		Used:     n.GetUsedBytes(),
		State:    toPlacementState(n.GetState()),
	}
}

func toPlacementState(s pb.NodeState) placement.State {
	switch s {
	case pb.NodeState_NODE_STATE_UP:
		return placement.StateUp
	case pb.NodeState_NODE_STATE_SUSPECT:
		return placement.StateSuspect
	case pb.NodeState_NODE_STATE_DOWN:
		return placement.StateDown
	case pb.NodeState_NODE_STATE_DRAINING:
		return placement.StateDraining
	case pb.NodeState_NODE_STATE_DECOMMISSIONED:
		return placement.StateDecommissioned
	}
	return placement.StateUnknown
}

// holds reports whether node id holds healthy chunks: it is known and
// neither DOWN nor DECOMMISSIONED (a SUSPECT or DRAINING node's chunks
// still count).
func (v *clusterView) holds(id string) bool {
	n, ok := v.nodes[id]
	if !ok || id == "" {
		return false
	}
	st := n.GetState()
	return st != pb.NodeState_NODE_STATE_DOWN && st != pb.NodeState_NODE_STATE_DECOMMISSIONED
}

// shards returns k+m of seg (at least len(nodes)).
func segShards(seg *pb.Segment) int {
	return max(int(seg.GetScheme().GetK()+seg.GetScheme().GetM()), len(seg.GetNodes()))
}

// segmentHealth counts seg's healthy chunks and lists its other shards.
func (v *clusterView) segmentHealth(seg *pb.Segment) (healthy int, bad []uint32) {
	nodes := seg.GetNodes()
	for i := range segShards(seg) {
		if i < len(nodes) && v.holds(nodes[i]) {
			healthy++
		} else {
			bad = append(bad, uint32(i))
		}
	}
	return healthy, bad
}

// repairPlan is one shard's repair: from old ("" or an unhealthy node) to
// target.
type repairPlan struct {
	shard       uint32
	old, target string
}

// planRepair picks a target for each of seg's bad shards. busy says a node
// has no repair budget left; unusable says a node may not receive that
// shard (a deletion of that very chunk is still queued there, which
// CommitPlacement would refuse). Shards that cannot be placed now (no
// writable node; or only busy ones would keep the failure domains as even)
// are left out, and why is returned.
func (v *clusterView) planRepair(seg *pb.Segment, bad []uint32, busy func(string) bool, unusable func(shard uint32, node string) bool) (plans []repairPlan, deferred error) {
	n := segShards(seg)
	current := make([]string, n)
	copy(current, seg.GetNodes())
	old := slices.Clone(current)
	for _, sh := range bad {
		current[sh] = "" // it will not stay where it is: counts in no domain
	}
	var errs []error
	for _, sh := range bad {
		target, err := v.pickTarget(seg.GetId(), current, sh, busy, unusable)
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", sh, err))
			continue
		}
		current[sh] = target
		plans = append(plans, repairPlan{shard: sh, old: old[sh], target: target})
	}
	return plans, errors.Join(errs...)
}

// errTargetBusy: the shard's best target cannot take it now (no repair
// budget left, or a deletion of that very chunk is still queued there);
// the shard waits rather than go where the failure domains end up worse.
var errTargetBusy = errors.New("repair target busy")

// pickTries bounds the Replace calls for one shard.
const pickTries = 8

// pickTarget returns the best node for shard by placement.Replace; when
// that one is busy, unusable or SUSPECT, another is taken only if it keeps
// the failure domains as even. A SUSPECT node usually answers its next
// heartbeat (a pause, a loaded machine); going around it would leave the
// segment with more shards in one zone than the rule allows for good,
// where waiting costs a round or two. A DOWN node is not waited for.
func (v *clusterView) pickTarget(segment []byte, current []string, shard uint32, busy func(string) bool, unusable func(uint32, string) bool) (string, error) {
	exclude := map[string]bool{}
	best := "" // the best usable node, busy or not
	for range pickTries {
		nodes := v.candidates
		if len(exclude) > 0 {
			nodes = slices.Clone(v.candidates)
			for i := range nodes {
				if exclude[nodes[i].ID] {
					nodes[i].State = placement.StateUnknown
				}
			}
		}
		t, err := placement.Replace(segment, nodes, current, int(shard), placement.Options{})
		if err != nil {
			if best != "" {
				return "", fmt.Errorf("best target %s: %w, and no other node is writable", best, errTargetBusy)
			}
			return "", err
		}
		switch {
		case busy(t) || unusable(shard, t) || v.suspect(t):
			if best == "" {
				best = t
			}
			exclude[t] = true
		case best == "":
			return t, nil
		case v.asEven(current, int(shard), t, best):
			return t, nil
		default:
			return "", fmt.Errorf("best target %s: %w, and no other node keeps the failure domains as even", best, errTargetBusy)
		}
	}
	return "", fmt.Errorf("no usable target within %d tries", pickTries)
}

// asEven reports whether putting shard on alt leaves the placement's worst
// zone and rack no fuller than putting it on best.
func (v *clusterView) asEven(current []string, shard int, alt, best string) bool {
	loss := func(node string) (int, int) {
		c := slices.Clone(current)
		c[shard] = node
		z, r, err := placement.MaxLoss(c, v.place)
		if err != nil {
			return len(c) + 1, len(c) + 1
		}
		return z, r
	}
	az, ar := loss(alt)
	bz, br := loss(best)
	return az < bz || az == bz && ar <= br
}

// sources lists seg's healthy chunks for a repair to read.
func (v *clusterView) sources(seg *pb.Segment) []*pb.PeerChunk {
	var out []*pb.PeerChunk
	for i, id := range seg.GetNodes() {
		if v.holds(id) {
			out = append(out, &pb.PeerChunk{Shard: uint32(i), NodeId: id, Address: v.nodes[id].GetAddress()})
		}
	}
	return out
}

// shardBytes approximates the stored data of one chunk of seg (its share
// of the segment's bytes; framing and padding aside).
func shardBytes(seg *pb.Segment) int64 {
	k := max(int64(seg.GetScheme().GetK()), 1)
	return (seg.GetSize() + k - 1) / k
}

// repairItem is one queued segment.
type repairItem struct {
	id       []byte
	healthy  int
	missing  int
	size     int64
	k        int
	attempts int
	// notBefore: backing off until then after a failure.
	notBefore time.Time
}

// before orders the queue: fewest healthy chunks first, then most
// missing, then by id (so the order is stable).
func (a *repairItem) before(b *repairItem) bool {
	if a.healthy != b.healthy {
		return a.healthy < b.healthy
	}
	if a.missing != b.missing {
		return a.missing > b.missing
	}
	return bytes.Compare(a.id, b.id) < 0
}

// rebuildBytes is what repairing the item writes.
func (a *repairItem) rebuildBytes() int64 {
	k := int64(max(a.k, 1))
	return int64(a.missing) * ((a.size + k - 1) / k)
}

// repairQueue holds the most urgent repair candidates.
type repairQueue struct {
	items map[string]*repairItem
	order []*repairItem
	// beyond counts candidates of the last scan left out for space.
	beyond int
}

// replace installs a new set of candidates, keeping the attempts and
// backoff of segments already queued, and keeps the max most urgent.
func (q *repairQueue) replace(cands []*repairItem, max int) {
	cands = sortUnique(cands)
	q.beyond = 0
	if len(cands) > max {
		q.beyond = len(cands) - max
		cands = cands[:max]
	}
	items := make(map[string]*repairItem, len(cands))
	for _, c := range cands {
		if old, ok := q.items[string(c.id)]; ok {
			c.attempts, c.notBefore = old.attempts, old.notBefore
		}
		items[string(c.id)] = c
	}
	q.items, q.order = items, cands
}

// sortUnique sorts items by urgency and drops repeats of a segment (which
// sort next to each other: same id, same counts).
func sortUnique(items []*repairItem) []*repairItem {
	sort.Slice(items, func(i, j int) bool { return items[i].before(items[j]) })
	return slices.CompactFunc(items, func(a, b *repairItem) bool { return bytes.Equal(a.id, b.id) })
}

func (q *repairQueue) remove(id []byte) {
	if _, ok := q.items[string(id)]; !ok {
		return
	}
	delete(q.items, string(id))
	q.order = slices.DeleteFunc(q.order, func(it *repairItem) bool { return bytes.Equal(it.id, id) })
}

// len is the number of segments waiting for repair, including those left
// out of memory.
func (q *repairQueue) len() int { return len(q.order) + q.beyond }

// retryDelay is the backoff after attempts failures.
func retryDelay(base time.Duration, attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	return base << min(attempts-1, 6)
}

// tokenBucket is the repair bandwidth budget. A task may start while the
// bucket is not empty and is charged in full, so a segment larger than a
// second's budget still goes (the bucket then stays in debt for a while).
type tokenBucket struct {
	rate   float64 // bytes per second; 0: unlimited
	tokens float64
	last   time.Time
}

func (b *tokenBucket) refill(now time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(b.tokens+b.rate*now.Sub(b.last).Seconds(), b.rate)
	} else {
		b.tokens = b.rate
	}
	b.last = now
}

// allow reports whether a task may start now.
func (b *tokenBucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	b.refill(now)
	return b.tokens > 0
}

func (b *tokenBucket) charge(now time.Time, cost int64) {
	if b.rate <= 0 {
		return
	}
	b.refill(now)
	b.tokens -= float64(cost)
}

// rateMeter measures bytes per second over a sliding window.
type rateMeter struct {
	window time.Duration
	events []rateEvent
	start  time.Time // when measuring began (a young meter divides by less)
}

type rateEvent struct {
	at    time.Time
	bytes int64
}

func (r *rateMeter) add(now time.Time, n int64) {
	r.events = append(r.events, rateEvent{now, n})
	r.trim(now)
}

func (r *rateMeter) trim(now time.Time) {
	i := 0
	for i < len(r.events) && now.Sub(r.events[i].at) > r.window {
		i++
	}
	r.events = r.events[i:]
}

// rate returns bytes per second over the window (0 before any event).
func (r *rateMeter) rate(now time.Time) float64 {
	r.trim(now)
	if len(r.events) == 0 {
		return 0
	}
	var sum int64
	for _, e := range r.events {
		sum += e.bytes
	}
	span := min(now.Sub(r.start), r.window)
	return float64(sum) / max(span.Seconds(), 1)
}

// sum returns the bytes recorded since t (within the window).
func (r *rateMeter) since(t time.Time) int64 {
	var sum int64
	for _, e := range r.events {
		if e.at.After(t) {
			sum += e.bytes
		}
	}
	return sum
}

// dispatchTick is how often the repair loop dispatches and expires tasks.
func dispatchTick(c HealConfig) time.Duration {
	return min(max(c.RepairScanInterval/10, 10*time.Millisecond), time.Second)
}

// repairLoop scans, dispatches and expires until ctx ends.
func (h *healer) repairLoop(ctx context.Context) {
	tick := time.NewTicker(dispatchTick(h.cfg))
	defer tick.Stop()
	var nextScan time.Time
	for {
		now := h.now()
		if now.After(nextScan) || h.rescan.Swap(false) {
			if err := h.scan(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				h.log.Warn("repair scan", "err", err)
			}
			nextScan = now.Add(h.cfg.RepairScanInterval)
		}
		h.expire()
		if err := h.dispatch(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("repair dispatch", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-h.wake:
		}
	}
}

// scanPage is how many segments a scan reads per State call.
const scanPage = 256

// scan rebuilds the repair queue from the state.
func (h *healer) scan(ctx context.Context) error {
	cm, err := h.st.ClusterMap()
	if err != nil {
		return err
	}
	v := newClusterView(cm)
	// A segment may come up twice (missing a shard and on a down node):
	// replace drops the repeat. Memory stays under 2*RepairQueueMax items.
	var cands []*repairItem
	limit := 2 * h.cfg.RepairQueueMax
	add := func(infos []SegmentInfo) {
		for _, in := range infos {
			seg := in.Segment
			healthy, bad := v.segmentHealth(seg)
			k := int(seg.GetScheme().GetK())
			if len(bad) == 0 || healthy < k {
				continue // nothing to do, or lost (health.go lists it)
			}
			cands = append(cands, &repairItem{id: seg.GetId(), healthy: healthy, missing: len(bad), size: seg.GetSize(), k: k})
			if len(cands) >= limit {
				// Keep memory bounded: drop the least urgent now.
				cands = sortUnique(cands)
				cands = cands[:min(len(cands), h.cfg.RepairQueueMax)]
			}
		}
	}
	page := func(read func(after []byte) ([]SegmentInfo, []byte, error)) error {
		var after []byte
		for {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			infos, next, err := read(after)
			if err != nil {
				return err
			}
			add(infos)
			if next == nil {
				return nil
			}
			after = next
		}
	}
	if err := page(func(after []byte) ([]SegmentInfo, []byte, error) {
		return h.st.SegmentsWithMissing(after, scanPage)
	}); err != nil {
		return fmt.Errorf("scan segments with missing chunks: %w", err)
	}
	// One pass over the segments finds those on any node that no longer
	// holds its chunks.
	var gone []string
	for _, n := range cm.GetNodes() {
		if !v.holds(n.GetId()) {
			gone = append(gone, n.GetId())
		}
	}
	if len(gone) > 0 {
		if err := page(func(after []byte) ([]SegmentInfo, []byte, error) {
			return h.st.SegmentsOnNodes(gone, after, scanPage)
		}); err != nil {
			return fmt.Errorf("scan segments on nodes %v: %w", gone, err)
		}
	}
	h.mu.Lock()
	h.queue.replace(cands, h.cfg.RepairQueueMax)
	h.mu.Unlock()
	return nil
}

// expire drops tasks past their deadline; their work is planned again
// after a backoff.
func (h *healer) expire() {
	for _, a := range h.tasks.expire(h.now()) {
		h.log.Warn("task expired without a report; planning it again", "task", a.id, "kind", string(a.ref.kind), "node", a.ref.node, "handed_out", a.handedOut)
		h.m.tasks.WithLabelValues(kindName(a.ref.kind), "expired").Inc()
		if a.ref.kind == kindRepair {
			h.m.repairsFailed.Add(1)
		}
		switch a.ref.kind {
		case kindRepair, kindMove:
			h.backoff(a.ref.segment)
			if a.ref.kind == kindMove && len(a.ref.shards) == 1 {
				h.moveFinished(a.ref.segment, a.ref.shards[0], a.ref.node, "no result within the task timeout")
			}
		case kindDelete:
			h.gcFailed(a.ref.gcKey, a.ref.node)
		}
	}
}

// backoff delays the next attempt at a segment.
func (h *healer) backoff(segment []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if it, ok := h.queue.items[string(segment)]; ok {
		it.attempts++
		it.notBefore = h.now().Add(retryDelay(h.cfg.RepairBackoff, it.attempts))
	}
}

// dispatch plans repairs for queued segments while the budgets allow.
func (h *healer) dispatch(ctx context.Context) error {
	cm, err := h.st.ClusterMap()
	if err != nil {
		return err
	}
	v := newClusterView(cm)
	h.mu.Lock()
	order := slices.Clone(h.queue.order)
	h.mu.Unlock()
	// Bound the work of one round when most candidates cannot start.
	budget := 4*h.cfg.RepairMaxInflight + 64
	var errs []error
	for _, it := range order {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if budget--; budget < 0 {
			break
		}
		now := h.now()
		_, total := h.tasks.load("")
		if total >= h.cfg.RepairMaxInflight {
			break
		}
		h.mu.Lock()
		allowed, waiting := h.bucket.allow(now), now.Before(it.notBefore)
		h.mu.Unlock()
		if !allowed {
			break
		}
		if waiting || h.tasks.segmentBusy(it.id) {
			continue
		}
		if err := h.planSegment(v, it, h.cfg.RepairMaxInflight-total); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d segments not planned, first: %w", len(errs), errs[0])
	}
	return nil
}

// moveFinished tells the mover that handed out the move of shard of
// segment to to, the balancer or the drain, that its result was handled
// (or its task expired): committed when why is "", else failed for why.
func (h *healer) moveFinished(segment []byte, shard uint32, to, why string) {
	h.bal.finish(pendingKey(segment, shard, to), why)
	h.bal.drain.finish(h, segment, shard, to, why)
}

// nodeBusy reports whether node has no room for another task
// (RepairPerNode): the busy test of repair's and the drain's targets.
func (h *healer) nodeBusy(node string) bool {
	on, _ := h.tasks.load(node)
	return on >= h.cfg.RepairPerNode
}

// planSegment re-reads one queued segment and hands out up to room of its
// repairs.
func (h *healer) planSegment(v *clusterView, it *repairItem, room int) error {
	info, err := h.st.Segment(it.id)
	if errors.Is(err, metaerr.ErrNoSuchKey) {
		h.dropItem(it.id) // deleted meanwhile
		return nil
	}
	if err != nil {
		return fmt.Errorf("read segment %x: %w", it.id, err)
	}
	seg := info.Segment
	healthy, bad := v.segmentHealth(seg)
	if len(bad) == 0 || healthy < int(seg.GetScheme().GetK()) {
		h.dropItem(it.id) // repaired, or lost (the health pass lists it)
		return nil
	}
	unusable := func(shard uint32, node string) bool {
		pending, err := h.st.ChunkDeletePending(seg.GetId(), int(shard), node)
		return err != nil || pending
	}
	plans, deferred := v.planRepair(seg, bad, h.nodeBusy, unusable)
	if deferred != nil && !errors.Is(deferred, errTargetBusy) {
		// No writable target at all: try again later, not every round.
		h.backoff(it.id)
		if len(plans) == 0 {
			return fmt.Errorf("segment %x: no repair target: %w", it.id, deferred)
		}
	}
	sources := v.sources(seg)
	now := h.now()
	for _, p := range plans[:min(room, len(plans))] {
		ref := taskRef{kind: kindRepair, node: p.target, segment: seg.GetId(), shards: []uint32{p.shard}, old: []string{p.old}, nonce: h.nonce.Add(1)}
		id := ref.id()
		a := &assignment{
			ref: ref, id: id, cost: seg.GetSize(), created: now, deadline: now.Add(h.cfg.RepairTaskTimeout),
			task: &pb.Task{Id: id, Kind: &pb.Task_Repair{Repair: &pb.RepairTask{Segment: seg, Shards: []uint32{p.shard}, Sources: sources}}},
		}
		if err := h.tasks.add(a); err != nil {
			return err
		}
		h.mu.Lock()
		h.bucket.charge(now, a.cost)
		h.mu.Unlock()
		h.log.Debug("repair planned", "segment", fmt.Sprintf("%x", seg.GetId()), "shard", p.shard, "from", p.old, "to", p.target, "healthy", healthy)
	}
	return nil
}

func (h *healer) dropItem(id []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queue.remove(id)
}

// placementResult handles a reported repair or move: it commits each shard
// done and backs the segment off if anything failed. It tries every shard
// before returning the errors that deserve a retry of the report.
func (h *healer) placementResult(ctx context.Context, ref taskRef, res *pb.TaskResult) error {
	done := map[uint32]bool{}
	for _, sh := range res.GetShardsDone() {
		done[sh] = true
	}
	if res.GetOk() && len(done) == 0 {
		for _, sh := range ref.shards {
			done[sh] = true
		}
	}
	reason := "repair"
	if ref.kind == kindMove {
		reason = "rebalance"
	}
	var errs []error
	failed := !res.GetOk()
	for i, sh := range ref.shards {
		if !done[sh] {
			failed = true
			continue
		}
		committed, err := h.commitPlacement(ctx, ref.segment, sh, ref.old[i], ref.node, reason)
		switch {
		case err != nil:
			errs = append(errs, err)
		case committed > 0:
			h.m.repairBytes.Add(float64(committed))
			h.mu.Lock()
			h.meter.add(h.now(), committed)
			h.mu.Unlock()
		}
	}
	if ref.kind == kindMove && len(ref.shards) == 1 && (failed || len(errs) == 0) {
		// The balancer settles its pending move on what the state shows
		// now (see settlePending); a commit that failed is reported again.
		why := ""
		if failed {
			if why = res.GetError(); why == "" {
				why = "the blob node did not move the chunk"
			}
		}
		h.moveFinished(ref.segment, ref.shards[0], ref.node, why)
	}
	if failed {
		h.m.tasks.WithLabelValues(kindName(ref.kind), "failed").Inc()
		if ref.kind == kindRepair {
			h.m.repairsFailed.Add(1)
		}
		h.log.Warn("task failed", "task", res.GetTaskId(), "node", ref.node, "err", res.GetError())
		h.backoff(ref.segment)
	} else if len(errs) == 0 {
		h.m.tasks.WithLabelValues(kindName(ref.kind), "done").Inc()
		if ref.kind == kindRepair {
			h.m.repairsDone.Add(1)
		}
		h.mu.Lock()
		if it, ok := h.queue.items[string(ref.segment)]; ok {
			it.attempts = 0
		}
		h.mu.Unlock()
	}
	h.poke()
	return errors.Join(errs...)
}

// commitPlacement commits shard of segment from old to node, unless it is
// moot; it returns the bytes of the chunk placed (0 when nothing changed).
// The state refuses (PreconditionFailed) a shard no longer on old, a node
// that already holds another shard of the segment, and a node where a
// deletion of that chunk is still queued: the new chunk is then an orphan,
// which reconciliation removes.
func (h *healer) commitPlacement(ctx context.Context, segment []byte, shard uint32, old, node, reason string) (int64, error) {
	info, err := h.st.Segment(segment)
	if errors.Is(err, metaerr.ErrNoSuchKey) {
		h.log.Info("repaired segment no longer referenced; its new chunk is an orphan", "segment", fmt.Sprintf("%x", segment), "shard", shard, "node", node)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read segment %x: %w", segment, err)
	}
	nodes := info.Segment.GetNodes()
	if int(shard) < len(nodes) && nodes[shard] == node {
		return 0, nil // a repeated report
	}
	_, err = h.propose(ctx, &pb.Command{Op: &pb.Command_CommitPlacement{CommitPlacement: &pb.CommitPlacement{
		SegmentId: segment, Shard: shard, OldNode: old, NewNode: node, Reason: reason,
	}}})
	if isPrecondition(err) {
		h.log.Info("placement moved on before the result came; its new chunk is an orphan", "segment", fmt.Sprintf("%x", segment), "shard", shard, "node", node, "err", err)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("commit shard %d of segment %x to %s: %w", shard, segment, node, err)
	}
	return shardBytes(info.Segment), nil
}

func kindName(k byte) string {
	switch k {
	case kindRepair:
		return "repair"
	case kindMove:
		return "move"
	case kindDelete:
		return "delete"
	}
	return "unknown"
}

// addMove hands to a MoveTask that copies shard of segment from the node
// holding it now, within the repair budgets (errTargetBusy when to, or the
// cluster, has none left). Its result commits CommitPlacement{reason
// "rebalance"}, which queues the old chunk for deletion. It is the drain's
// way to move data (the balancer's is addMoveNonce); the caller chooses to
// so that the failure-domain rule holds (placement.Replace), and may not
// move a segment with a repair or move outstanding.
func (h *healer) addMove(segment []byte, shard uint32, to string) (string, error) {
	return h.addMoveNonce(segment, shard, to, h.nonce.Add(1))
}

// addMoveNonce is addMove with the task id's nonce chosen by the caller:
// the balancer's, so that a new leader hands out an earlier leader's move
// under the same task id (see adoptPending).
func (h *healer) addMoveNonce(segment []byte, shard uint32, to string, nonce uint64) (string, error) {
	info, err := h.st.Segment(segment)
	if err != nil {
		return "", err
	}
	seg := info.Segment
	if int(shard) >= len(seg.GetNodes()) || seg.GetNodes()[shard] == "" {
		return "", metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x has no chunk %d to move", segment, shard)
	}
	if h.tasks.segmentBusy(segment) {
		return "", metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x has a repair or move outstanding", segment)
	}
	cm, err := h.st.ClusterMap()
	if err != nil {
		return "", err
	}
	v := newClusterView(cm)
	from := seg.GetNodes()[shard]
	if !v.holds(from) {
		return "", metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x shard %d is on %s, which holds no healthy chunks: repair moves it", segment, shard, from)
	}
	// The caller chose to on the placement it read earlier; another shard
	// may have moved since (a repair committed in between). Check the move
	// against the placement as it is now.
	next := slices.Clone(seg.GetNodes())
	next[shard] = to
	if slices.Contains(seg.GetNodes(), to) || !spreadKept(seg.GetNodes(), next, v.place, int(seg.GetScheme().GetM())) {
		return "", metaerr.Detailed(metaerr.ErrPreconditionFailed, "segment %x shard %d to %s: placement %v changed since the move was planned; it would break the failure-domain rule", segment, shard, to, seg.GetNodes())
	}
	if on, total := h.tasks.load(to); on >= h.cfg.RepairPerNode || total >= h.cfg.RepairMaxInflight {
		return "", fmt.Errorf("move to %s: %w", to, errTargetBusy)
	}
	now := h.now()
	ref := taskRef{kind: kindMove, node: to, segment: seg.GetId(), shards: []uint32{shard}, old: []string{from}, nonce: nonce}
	id := ref.id()
	a := &assignment{
		ref: ref, id: id, cost: shardBytes(seg), created: now, deadline: now.Add(h.cfg.RepairTaskTimeout),
		task: &pb.Task{Id: id, Kind: &pb.Task_Move{Move: &pb.MoveTask{Segment: seg, Shard: shard,
			Source: &pb.PeerChunk{Shard: shard, NodeId: from, Address: v.nodes[from].GetAddress()}}}},
	}
	if err := h.tasks.add(a); err != nil {
		return "", err
	}
	h.mu.Lock()
	h.bucket.charge(now, a.cost)
	h.mu.Unlock()
	return id, nil
}
