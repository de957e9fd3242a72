package e2e

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// The fault schedule. Faults come in episodes (inject, hold, recover) on
// three lanes that run side by side: two blob lanes, each faulting at most
// one blob node at a time (so never more than m = 2 blob nodes are out at
// once), and a control lane faulting one metad member (a minority of 3:
// killed, or the leader frozen) or the gateway. Each lane's kinds, holds and pauses are drawn from the
// seed; the targets are drawn from it too, among the nodes no other lane
// holds, and the metad leader is whichever member leads at that moment.

type faultKind string

const (
	faultKillLeader   faultKind = "kill-metad-leader"
	faultFreezeLeader faultKind = "freeze-metad-leader"
	faultKillFollower faultKind = "kill-metad-follower"
	faultKillGateway  faultKind = "kill-gateway"
	faultKillBlob     faultKind = "kill-blob"
	faultCutBlob      faultKind = "cut-blob"
	faultFreezeBlob   faultKind = "freeze-blob"
	faultFullBlob     faultKind = "full-blob"
	faultCorrupt      faultKind = "corrupt-chunk"
)

var (
	blobFaults    = []faultKind{faultKillBlob, faultCutBlob, faultFreezeBlob, faultFullBlob, faultCorrupt}
	controlFaults = []faultKind{faultKillLeader, faultFreezeLeader, faultKillFollower, faultKillGateway}
)

// episode is one planned fault.
type episode struct {
	lane     int
	kind     faultKind
	at, hold time.Duration // since the workload started
}

// faultEvent is an injected fault, for the report.
type faultEvent struct {
	Kind   faultKind `json:"kind"`
	Target string    `json:"target"`
	// Seconds since the workload started.
	At      float64 `json:"at"`
	Healed  float64 `json:"healed"`
	Details string  `json:"details,omitempty"`
}

// planFaults draws the episodes of every lane within [start, stop). Each
// lane goes through its kinds in an order drawn from the seed, so a short
// run sees every kind.
func planFaults(seed uint64, start, stop time.Duration, long bool) []episode {
	rng := rand.New(rand.NewPCG(seed, 0xfa017))
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	holdLo, holdHi, pauseLo, pauseHi := 1500*time.Millisecond, 3*time.Second, 500*time.Millisecond, 2*time.Second
	if long {
		holdLo, holdHi, pauseLo, pauseHi = 2*time.Second, 10*time.Second, time.Second, 8*time.Second
	}
	var out []episode
	lanes := [][]faultKind{blobFaults, blobFaults, controlFaults}
	for lane, kinds := range lanes {
		order := append([]faultKind(nil), kinds...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		at := start + time.Duration(lane)*dur(pauseLo, pauseHi)
		for i := 0; ; i++ {
			ep := episode{lane: lane, kind: order[i%len(order)], at: at, hold: dur(holdLo, holdHi)}
			if ep.kind == faultCorrupt {
				ep.hold = 0
			}
			if ep.at+ep.hold >= stop {
				break
			}
			out = append(out, ep)
			at = ep.at + ep.hold + dur(pauseLo, pauseHi)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// injector runs the episodes against a cluster, on the test's goroutine.
type injector struct {
	cl       *cluster
	rng      *rand.Rand
	t0       time.Time
	capacity string
	// busy: node -> lane faulting it.
	busy map[string]int
	// corrupted: segments with a damaged chunk (one per segment, so a
	// segment written degraded, k+1 chunks, keeps k good ones).
	corrupted map[chunk.SegmentID]bool
	events    []faultEvent
}

// active is an injected fault waiting for its recovery.
type active struct {
	ep     episode
	target string
	event  int // index in events
}

// run plays the schedule until its end, then recovers whatever is still
// injected.
func (in *injector) run(eps []episode) {
	var pending []active // by recovery time
	recoverDue := func(now time.Duration, all bool) {
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].ep.at+pending[i].ep.hold < pending[j].ep.at+pending[j].ep.hold })
		for len(pending) > 0 && (all || pending[0].ep.at+pending[0].ep.hold <= now) {
			a := pending[0]
			pending = pending[1:]
			in.recover(a)
		}
	}
	for _, ep := range eps {
		for {
			now := time.Since(in.t0)
			recoverDue(now, false)
			next := ep.at
			if len(pending) > 0 && pending[0].ep.at+pending[0].ep.hold < next {
				next = pending[0].ep.at + pending[0].ep.hold
			}
			if next > now {
				time.Sleep(next - now) // the schedule's own clock, not a wait for a condition
				continue
			}
			if ep.at <= now {
				break
			}
		}
		if a, ok := in.inject(ep); ok {
			pending = append(pending, a)
		}
	}
	for len(pending) > 0 {
		now := time.Since(in.t0)
		next := pending[0].ep.at + pending[0].ep.hold
		if next > now {
			time.Sleep(next - now)
		}
		recoverDue(time.Since(in.t0), false)
	}
	recoverDue(0, true)
}

func (in *injector) since() float64 { return time.Since(in.t0).Seconds() }

// pick returns a blob node no lane holds, or "".
func (in *injector) pick() string {
	var free []string
	for _, n := range in.cl.blobs {
		if _, ok := in.busy[n]; !ok {
			free = append(free, n)
		}
	}
	if len(free) == 0 {
		return ""
	}
	return free[in.rng.IntN(len(free))]
}

func (in *injector) inject(ep episode) (active, bool) {
	cl := in.cl
	ev := faultEvent{Kind: ep.kind, At: in.since()}
	switch ep.kind {
	case faultKillLeader:
		ev.Target = cl.Leader(30 * time.Second)
		cl.Kill(ev.Target)
	case faultFreezeLeader:
		// SIGSTOP: its sockets stay open, so its clients wait on it (until
		// their keepalive gives up) while the others elect a new leader,
		// and it wakes up believing it still leads.
		ev.Target = cl.Leader(30 * time.Second)
		cl.Freeze(ev.Target)
	case faultKillFollower:
		leader := cl.Leader(30 * time.Second)
		var fs []string
		for _, m := range cl.metads {
			if m != leader {
				fs = append(fs, m)
			}
		}
		ev.Target = fs[in.rng.IntN(len(fs))]
		cl.Kill(ev.Target)
	case faultKillGateway:
		ev.Target = gatewayName
		cl.Kill(gatewayName)
	case faultCorrupt:
		ev.Target, ev.Details = in.corrupt()
		if ev.Target == "" {
			cl.logf("chaos: %s: no chunk to damage (%s)", ep.kind, ev.Details)
			return active{}, false
		}
	default:
		ev.Target = in.pick()
		if ev.Target == "" {
			return active{}, false
		}
		in.busy[ev.Target] = ep.lane
		switch ep.kind {
		case faultKillBlob:
			cl.Kill(ev.Target)
		case faultCutBlob:
			cl.Cut(ev.Target)
		case faultFreezeBlob:
			cl.Freeze(ev.Target)
		case faultFullBlob:
			// A store whose capacity is 1 byte: every chunk write is
			// ErrFull (507), as on a full disk; reads go on.
			cl.Kill(ev.Target)
			cl.SetFlag(ev.Target, "--capacity", "1")
			cl.Restart(ev.Target)
			cl.WaitHealthy(30*time.Second, ev.Target)
		}
	}
	ev.At = in.since()
	ev.Healed = ev.At
	cl.logf("chaos: inject %s %s %s", ep.kind, ev.Target, ev.Details)
	in.events = append(in.events, ev)
	return active{ep: ep, target: ev.Target, event: len(in.events) - 1}, ep.kind != faultCorrupt
}

func (in *injector) recover(a active) {
	cl := in.cl
	switch a.ep.kind {
	case faultKillLeader, faultKillFollower:
		cl.Restart(a.target)
		// Before the next control fault: the member must be back, or a
		// second kill would take the majority.
		cl.WaitHealthy(60*time.Second, a.target)
	case faultFreezeLeader:
		cl.Thaw(a.target)
		cl.WaitHealthy(60*time.Second, a.target)
	case faultKillGateway:
		cl.Restart(a.target)
		p := cl.proc(gatewayName)
		cl.waitFor(30*time.Second, "the gateway to listen again", func() error {
			resp, err := cl.health.Get(p.base + p.healthPath)
			if err == nil {
				resp.Body.Close()
			}
			return err
		})
	case faultKillBlob:
		cl.Restart(a.target)
		cl.WaitHealthy(30*time.Second, a.target)
	case faultCutBlob:
		cl.Heal(a.target)
	case faultFreezeBlob:
		cl.Thaw(a.target)
	case faultFullBlob:
		cl.Kill(a.target)
		cl.SetFlag(a.target, "--capacity", in.capacity)
		cl.Restart(a.target)
		cl.WaitHealthy(30*time.Second, a.target)
	}
	delete(in.busy, a.target)
	in.events[a.event].Healed = in.since()
	cl.logf("chaos: healed %s %s", a.ep.kind, a.target)
}

// corrupt flips one byte inside a data block of a random chunk file on a
// random blob node, at most one chunk per segment.
func (in *injector) corrupt() (node, details string) {
	nodes := append([]string(nil), in.cl.blobs...)
	in.rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	var lastErr error
	for _, n := range nodes {
		var paths []string
		root := filepath.Join(in.cl.dataDir(n), "chunks")
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if _, err := chunk.ParseID(d.Name()); err == nil {
					paths = append(paths, path)
				}
			}
			return nil
		})
		sort.Strings(paths)
		in.rng.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
		for _, p := range paths {
			d, err := in.flip(p)
			if err != nil {
				lastErr = err
				continue
			}
			return n, d
		}
	}
	return "", fmt.Sprint(lastErr)
}

var errSkip = errors.New("segment already damaged")

func (in *injector) flip(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err // deleted meanwhile (GC)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	hdrBuf := make([]byte, chunk.HeaderSize)
	if _, err := io.ReadFull(f, hdrBuf); err != nil {
		return "", err
	}
	hdr, err := chunk.ParseHeader(hdrBuf)
	if err != nil {
		return "", err
	}
	if in.corrupted[hdr.Segment] {
		return "", errSkip
	}
	fr, err := chunk.FramingFromChunkSize(hdr.Params.BlockSize, st.Size())
	if err != nil {
		return "", err
	}
	if fr.NumStripes == 0 {
		return "", errors.New("no stripes")
	}
	stripe := in.rng.IntN(fr.NumStripes)
	blen := fr.BlockLen(stripe)
	if blen == 0 {
		return "", errors.New("empty block")
	}
	off := fr.StripeOffset(stripe) + int64(in.rng.IntN(blen))
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return "", err
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		return "", err
	}
	in.corrupted[hdr.Segment] = true
	return fmt.Sprintf("chunk %s, byte %d (stripe %d of %d)", hdr.ID(), off, stripe, fr.NumStripes), nil
}
