package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Tests of TestChaos's checkers on made-up histories: each must accept
// what a correct store may do and reject what it may not. They need no
// cluster and run with -short too.

func TestChaosIdentify(t *testing.T) {
	reg := newRegistry()
	a := reg.newValue("k1", 1000, nil)
	b := reg.newValue("k1", 1000, nil)
	other := reg.newValue("k2", 1000, nil)
	small := reg.newValue("k1", 20, nil)
	body := valueBody(a, 1000)
	flipped := valueBody(a, 1000)
	flipped[500] ^= 1
	cases := []struct {
		name        string
		key         string
		b           []byte
		off, total  int64
		want        int64
		wantErrLike string
	}{
		{"whole", "k1", body, 0, 1000, a, ""},
		{"other value of the key", "k1", valueBody(b, 1000), 0, 1000, b, ""},
		{"unaligned range", "k1", body[37:900], 37, 1000, a, ""},
		{"short range, found by trying the key's values", "k1", body[33:40], 33, 1000, a, ""},
		{"short range of a small value", "k1", valueBody(small, 20)[17:20], 17, 20, small, ""},
		{"empty", "k1", nil, 0, 0, emptyValue, ""},
		{"another key's value", "k1", valueBody(other, 1000), 0, 1000, 0, "written to key"},
		{"flipped byte", "k1", flipped, 0, 1000, 0, "differ"},
		{"bytes from the wrong offset", "k1", body[48:100], 32, 1000, 0, "differ"},
		{"wrong size", "k1", body, 0, 2000, 0, "is 1000 bytes"},
		{"never written", "k1", valueBody(999, 64), 0, 64, 0, "never written"},
		{"short range of nothing", "k1", []byte("garbage"), 3, 1000, 0, "match no value"},
		{"zeros", "k1", make([]byte, 64), 0, 64, 0, "never written"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := reg.identify(c.key, c.b, c.off, c.total)
			if c.wantErrLike != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErrLike) {
					t.Fatalf("identify = %d, %v; want an error like %q", got, err, c.wantErrLike)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("identify = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

func TestChaosMultipartETag(t *testing.T) {
	reg := newRegistry()
	id := reg.newValue("k", 5<<20+100, []int64{5 << 20, 100})
	body := valueBody(id, 5<<20+100)
	want := multipartETag([][]byte{body[:5<<20], body[5<<20:]})
	if v, _ := reg.info(id); v.etag != want {
		t.Fatalf("ETag %s, want %s", v.etag, want)
	}
	if got, ok := reg.byEtag(want); !ok || got != id {
		t.Fatalf("byEtag = %d, %v", got, ok)
	}
}

// hb builds histories on a millisecond clock.
type hb struct {
	t0  time.Time
	ops []*op
}

func (h *hb) at(ms int) time.Time { return h.t0.Add(time.Duration(ms) * time.Millisecond) }

func (h *hb) add(kind opKind, val int64, from, to int, out outcome) *op {
	o := &op{id: len(h.ops), kind: kind, key: "k", val: val, got: val, rngStart: -1, start: h.at(from), end: h.at(to), outcome: out, client: len(h.ops) % 3}
	h.ops = append(h.ops, o)
	return o
}

func (h *hb) put(v int64, from, to int, out outcome) *op { return h.add(opPut, v, from, to, out) }
func (h *hb) del(from, to int, out outcome) *op          { return h.add(opDelete, 0, from, to, out) }
func (h *hb) get(v int64, from, to int) *op              { return h.add(opGet, v, from, to, acked) }

func TestChaosHistoryChecks(t *testing.T) {
	reg := newRegistry()
	for range 5 {
		reg.newValue("k", 100, nil)
	}
	cases := []struct {
		name string
		hist func(h *hb)
		// the final value; whether it is allowed and whether reading
		// something else loses an acknowledged put.
		final     int64
		allowed   bool
		ackedPut  bool
		stale     bool // the last op (a get) is a stale read
		linearOK  bool
		skipFinal bool
	}{
		{"overwrite", func(h *hb) { h.put(1, 0, 10, acked); h.put(2, 20, 30, acked); h.get(2, 40, 50) }, 2, true, true, false, true, false},
		{"lost overwrite", func(h *hb) { h.put(1, 0, 10, acked); h.put(2, 20, 30, acked); h.get(1, 40, 50) }, 1, false, true, true, false, false},
		{"lost write", func(h *hb) { h.put(1, 0, 10, acked); h.get(absentValue, 40, 50) }, absentValue, false, true, false, false, false},
		{"concurrent puts, either wins", func(h *hb) { h.put(1, 0, 30, acked); h.put(2, 10, 20, acked); h.get(1, 40, 50) }, 1, true, true, false, true, false},
		{"deleted", func(h *hb) { h.put(1, 0, 10, acked); h.del(20, 30, acked); h.get(absentValue, 40, 50) }, absentValue, true, false, false, true, false},
		{"resurrected", func(h *hb) { h.put(1, 0, 10, acked); h.del(20, 30, acked); h.get(1, 40, 50) }, 1, false, false, true, false, false},
		{"answered failure may have happened", func(h *hb) { h.put(1, 0, 10, acked); h.put(2, 20, 30, failedAnswered); h.get(2, 40, 50) }, 2, true, true, false, true, false},
		{"answered failure may not have happened", func(h *hb) { h.put(1, 0, 10, acked); h.put(2, 20, 30, failedAnswered); h.get(1, 40, 50) }, 1, true, true, false, true, false},
		{"answered failure cannot surface after a later write", func(h *hb) {
			h.put(2, 0, 10, failedAnswered)
			h.put(1, 20, 30, acked)
			h.get(2, 40, 50)
		}, 2, false, true, true, false, false},
		{"unanswered failure may surface any time", func(h *hb) {
			h.put(2, 0, 10, failedUnanswered)
			h.put(1, 20, 30, acked)
			h.get(1, 35, 38)
			h.get(2, 40, 50)
		}, 2, true, true, false, true, false},
		{"but not go back", func(h *hb) {
			h.put(2, 0, 10, failedUnanswered)
			h.put(1, 20, 30, acked)
			h.get(2, 35, 38)
			h.get(1, 40, 50)
		}, 1, true, true, false, false, false},
		{"multipart never completed", func(h *hb) { h.put(1, 0, 10, acked); h.put(2, 20, 30, failedBeforeCommit); h.get(2, 40, 50) }, 2, false, true, true, false, false},
		{"never written value", func(h *hb) { h.put(1, 0, 10, acked); h.get(3, 40, 50) }, 3, false, true, true, false, false},
		{"read before the write began", func(h *hb) { h.get(1, 0, 5); h.put(1, 10, 20, acked) }, 0, false, false, true, false, true},
		{"read during the write", func(h *hb) { h.put(1, 10, 20, acked); h.get(1, 12, 15) }, 1, true, true, false, true, false},
		{"nothing written", func(h *hb) { h.get(absentValue, 0, 5) }, absentValue, true, false, false, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &hb{t0: time.Now()}
			c.hist(h)
			last := h.ops[len(h.ops)-1]
			if c.skipFinal {
				last = h.ops[0]
			}
			if !c.skipFinal {
				allowed, ackedPut := finalAllowed(h.ops)
				if allowed[c.final] != c.allowed || ackedPut != c.ackedPut {
					t.Errorf("finalAllowed = %v, acknowledged put %v; want %s allowed %v, acknowledged put %v", allowed, ackedPut, valueName(c.final), c.allowed, c.ackedPut)
				}
			}
			if last.got >= emptyValue {
				if why := staleRead(h.ops, last); (why != "") != c.stale {
					t.Errorf("staleRead = %q, want stale %v", why, c.stale)
				}
			}
			res := checkLinearizable(reg, h.ops, []string{"k"}, h.t0, 10*time.Second)
			if ok := res.Illegal == 0 && res.Unknown == 0; ok != c.linearOK {
				t.Errorf("linearizable = %+v, want ok %v", res, c.linearOK)
			}
			if res.Visual != "" {
				os.Remove(res.Visual)
			}
		})
	}
}

func TestChaosLinearizableRange(t *testing.T) {
	reg := newRegistry()
	v := reg.newValue("k", 100, nil)
	for _, c := range []struct {
		start int64
		ok    bool
	}{{100, true}, {99, false}} {
		h := &hb{t0: time.Now()}
		h.put(v, 0, 10, acked)
		g := h.get(0, 20, 30)
		g.rngStart, g.unsat = c.start, true
		res := checkLinearizable(reg, h.ops, []string{"k"}, h.t0, 10*time.Second)
		if ok := res.Illegal == 0; ok != c.ok {
			t.Errorf("416 for a range from %d of a 100-byte object: linearizable %+v, want ok %v", c.start, res, c.ok)
		}
		if res.Visual != "" {
			os.Remove(res.Visual)
		}
	}
}

func TestChaosPlan(t *testing.T) {
	eps := planFaults(7, 2*time.Second, 22*time.Second, false)
	seen := map[faultKind]bool{}
	lanes := map[int]time.Duration{}
	for _, ep := range eps {
		seen[ep.kind] = true
		if ep.at < 2*time.Second || ep.at+ep.hold >= 22*time.Second {
			t.Errorf("episode %+v outside the fault window", ep)
		}
		if end, ok := lanes[ep.lane]; ok && ep.at < end {
			t.Errorf("episode %+v overlaps its lane's previous one (ends at %v)", ep, end)
		}
		lanes[ep.lane] = ep.at + ep.hold
	}
	for _, k := range append(append([]faultKind(nil), blobFaults...), controlFaults...) {
		if !seen[k] {
			t.Errorf("a 20s schedule has no %s", k)
		}
	}
	if again := planFaults(7, 2*time.Second, 22*time.Second, false); len(again) != len(eps) || again[0] != eps[0] {
		t.Errorf("the same seed planned another schedule")
	}
}

// vb builds a versioned bucket's ledger and what the final reads found,
// for checkVersions: puts and deletes of key "ver0" on a millisecond
// clock, and a listing that by default shows what they wrote.
type vb struct {
	t0     time.Time
	reg    *registry
	writes []*versionWrite
	ops    []*op
	seen   *versionsSeen
}

func newVB() *vb {
	return &vb{t0: time.Now(), reg: newRegistry(), seen: &versionsSeen{reads: map[versionName]versionRead{}, current: map[string]listedVersion{}}}
}

func (b *vb) write(kind opKind, id string, from, to int, out outcome) *op {
	o := &op{id: len(b.ops), kind: kind, key: "ver0", versioned: true, rngStart: -1,
		start: b.t0.Add(time.Duration(from) * time.Millisecond), end: b.t0.Add(time.Duration(to) * time.Millisecond), outcome: out}
	w := &versionWrite{op: o}
	if kind == opPut {
		o.size = 100
		o.val = b.reg.newValue("ver0", 100, nil)
		w.sum = md5hex(valueBody(o.val, 100))
	}
	if out == acked {
		o.version = id
	}
	b.writes = append(b.writes, w)
	b.ops = append(b.ops, o)
	return o
}

// list appends a listing entry for o (a put's version or a delete's
// marker) under id, and what a GET of it by id answers.
func (b *vb) list(o *op, id string, latest bool) {
	e := listedVersion{key: "ver0", id: id, latest: latest, marker: o.kind == opDelete}
	r := versionRead{status: http.StatusMethodNotAllowed, marker: true, id: id}
	if o.kind == opPut {
		v, _ := b.reg.info(o.val)
		e.etag, e.size = v.etag, o.size
		r = versionRead{status: http.StatusOK, id: id, size: o.size, sum: md5hex(valueBody(o.val, int(o.size))), val: o.val}
	}
	b.seen.listed = append(b.seen.listed, e)
	b.seen.reads[versionName{"ver0", id}] = r
}

// final adds the final GET of the key: value got, answering version id.
func (b *vb) final(got int64, id string) {
	b.ops = append(b.ops, &op{id: len(b.ops), kind: opGet, key: "ver0", versioned: true, rngStart: -1, final: true, got: got, version: id,
		start: b.t0.Add(time.Second), end: b.t0.Add(time.Second)})
}

func TestChaosVersionChecks(t *testing.T) {
	cases := []struct {
		name string
		// build writes a, b (puts, acknowledged one after the other) and
		// a delete d after them, then lists and reads as it likes.
		build func(b *vb, a, bb, d *op)
		want  versionsReport // the counters compared
	}{
		{"all there", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1}},
		{"noncurrent version not listed", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.seen.reads[versionName{"ver0", "a"}] = versionRead{status: http.StatusOK, id: "a", size: 100, sum: md5hex(valueBody(a.val, 100)), val: a.val}
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Lost: 1}},
		{"noncurrent version gone", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.seen.reads[versionName{"ver0", "a"}] = versionRead{status: http.StatusNotFound}
			b.final(absentValue, "m")
		}, versionsReport{Checked: 1, MarkersChecked: 1, Lost: 1}},
		{"version reads back another's bytes", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.seen.reads[versionName{"ver0", "a"}] = b.seen.reads[versionName{"ver0", "b"}]
			b.final(absentValue, "m")
		}, versionsReport{Checked: 1, MarkersChecked: 1, Lost: 1}},
		{"marker lost", func(b *vb, a, bb, d *op) {
			b.list(bb, "b", true)
			b.list(a, "a", false)
			b.seen.reads[versionName{"ver0", "m"}] = versionRead{status: http.StatusNotFound}
			b.seen.current["ver0"] = listedVersion{etag: b.seen.listed[0].etag, size: 100}
			b.final(bb.val, "b")
		}, versionsReport{Checked: 2, MarkersLost: 1}},
		{"listed twice", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
		{"two latest", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", true)
			b.list(a, "a", false)
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
		{"older write listed as newer", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(a, "a", false)
			b.list(bb, "b", false)
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
		{"GET finds data under the latest marker", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.final(bb.val, "b")
		}, versionsReport{Checked: 2, MarkersChecked: 1, LatestMismatches: 1}},
		{"ListObjectsV2 lists a key under its marker", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.seen.current["ver0"] = listedVersion{etag: b.seen.listed[1].etag, size: 100}
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, LatestMismatches: 1}},
		{"unacknowledged put surfaces", func(b *vb, a, bb, d *op) {
			c := b.write(opPut, "", 100, 110, failedUnanswered)
			b.list(c, "c", true)
			b.list(d, "m", false)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.seen.current["ver0"] = listedVersion{etag: b.seen.listed[0].etag, size: 100}
			b.final(c.val, "c")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Surfaced: 1}},
		{"unacknowledged version of bytes never sent", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			x := b.reg.newValue("ver0", 100, nil) // registered, never sent
			v, _ := b.reg.info(x)
			b.seen.listed = append(b.seen.listed, listedVersion{key: "ver0", id: "x", etag: v.etag, size: 100})
			b.seen.reads[versionName{"ver0", "x"}] = versionRead{status: http.StatusOK, id: "x", size: 100, sum: md5hex(valueBody(x, 100)), val: x}
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
		{"a marker no DELETE made", func(b *vb, a, bb, d *op) {
			b.seen.listed = append(b.seen.listed, listedVersion{key: "ver0", id: "z", marker: true, latest: true})
			b.seen.reads[versionName{"ver0", "z"}] = versionRead{status: http.StatusMethodNotAllowed, marker: true, id: "z"}
			b.list(d, "m", false)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.final(absentValue, "z")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
		{"a marker of an unanswered DELETE", func(b *vb, a, bb, d *op) {
			b.write(opDelete, "", 100, 110, failedUnanswered)
			b.seen.listed = append(b.seen.listed, listedVersion{key: "ver0", id: "z", marker: true, latest: true})
			b.seen.reads[versionName{"ver0", "z"}] = versionRead{status: http.StatusMethodNotAllowed, marker: true, id: "z"}
			b.list(d, "m", false)
			b.list(bb, "b", false)
			b.list(a, "a", false)
			b.final(absentValue, "z")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Surfaced: 1}},
		{"one PUT, two versions", func(b *vb, a, bb, d *op) {
			b.list(d, "m", true)
			b.list(bb, "b", false)
			b.list(bb, "b2", false)
			b.list(a, "a", false)
			b.final(absentValue, "m")
		}, versionsReport{Checked: 2, MarkersChecked: 1, Problems: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newVB()
			a := b.write(opPut, "a", 0, 10, acked)
			bb := b.write(opPut, "b", 20, 30, acked)
			d := b.write(opDelete, "m", 40, 50, acked)
			c.build(b, a, bb, d)
			rep := &chaosReport{}
			checkVersions(rep, b.reg, []string{"ver0"}, b.writes, b.seen, b.ops)
			got := *rep.Versions
			got.Keys, got.Written, got.Markers, got.Unacked, got.Listed, got.Pages, got.ReadsByID = 0, 0, 0, 0, 0, 0, 0
			if got != c.want {
				t.Errorf("counts %+v, want %+v; violations:\n%s", got, c.want, strings.Join(rep.Violations, "\n"))
			}
			if wantViolations := c.want.Lost + c.want.MarkersLost + c.want.Problems + c.want.LatestMismatches; rep.violationsAll != wantViolations {
				t.Errorf("%d violations, want %d:\n%s", rep.violationsAll, wantViolations, strings.Join(rep.Violations, "\n"))
			}
		})
	}
}
