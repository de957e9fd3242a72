package s3bench

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/clitable"
)

// WriteTable prints one run's per-operation figures as an aligned table.
func WriteTable(w io.Writer, r *Result) error {
	label := r.Label
	if label == "" {
		label = r.Endpoint
	}
	var sse string
	if r.SSE != "" {
		sse = ", SSE " + r.SSE
	}
	fmt.Fprintf(w, "%s: %s %s × %d workers%s, %.1fs (load %.2f → %.2f)\n", label, r.Workload, r.SizeLabel, r.Concurrency, sse, r.ElapsedS, r.LoadAvgStart[0], r.LoadAvgEnd[0])
	t := clitable.New("OP", "COUNT", "ERRORS", "MiB/s", "OBJ/s", "MEAN", "P50", "P90", "P99", "MAX")
	for _, o := range r.Ops {
		t.Row(string(o.Op), strconv.FormatInt(o.Count, 10), strconv.FormatInt(o.Errors, 10),
			f1(o.MiBPerSec), f1(o.OpsPerSec), msStr(o.MeanMs), msStr(o.P50Ms), msStr(o.P90Ms), msStr(o.P99Ms), msStr(o.MaxMs))
	}
	if err := t.Render(w); err != nil {
		return err
	}
	for _, o := range r.Ops {
		if o.FirstError != "" {
			fmt.Fprintf(w, "first %s error: %s\n", o.Op, o.FirstError)
		}
	}
	if len(r.Procs) > 0 {
		pt := clitable.New("PROCESS", "PID", "CPU%", "PEAK RSS MiB")
		for _, p := range r.Procs {
			if p.Error != "" {
				pt.Row(p.Name, strconv.Itoa(p.PID), "?", p.Error)
				continue
			}
			pt.Row(p.Name, strconv.Itoa(p.PID), f1(p.CPUPercent), f1(p.PeakRSSMiB))
		}
		return pt.Render(w)
	}
	return nil
}

func f1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func msStr(f float64) string {
	if f == 0 {
		return "-"
	}
	if f < 10 {
		return strconv.FormatFloat(f, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + "ms"
}

// Report gathers a scripts/bench run: the ceilings and every generator
// run, for one Markdown page and one JSON file.
type Report struct {
	Date     time.Time   `json:"date"`
	Host     string      `json:"host,omitempty"`
	CPUs     int         `json:"cpus"`
	Command  string      `json:"command,omitempty"`
	Notes    []string    `json:"notes,omitempty"`
	Ceilings []Ceiling   `json:"ceilings"`
	Runs     []ReportRun `json:"runs"`
}

// ReportRun is one generator run with its throughput as a fraction of
// the ceiling of its path.
type ReportRun struct {
	*Result
	Ceiling *CeilingFraction `json:"ceiling,omitempty"`
	// PathCeiling relates a PUT of 1 MiB or more to put-path-4+2, the
	// ceiling of the whole erasure-coded write path (see PutPathCeiling).
	PathCeiling *CeilingFraction `json:"path_ceiling,omitempty"`
	// UnixCeiling relates a PUT or GET of 1 MiB or more to the ceiling of
	// its path with the gateway ↔ blob node hop over a Unix socket, as
	// when the blob nodes share the gateway's host: put-path-4+2-unix,
	// http-get-2hop-unix.
	UnixCeiling *CeilingFraction `json:"unix_ceiling,omitempty"`
	// DiskCeiling relates a PUT of 1 MiB or more to put-disk-4+2, what
	// the disk can store of a 4+2 PUT (see PutDiskCeiling).
	DiskCeiling *CeilingFraction `json:"disk_ceiling,omitempty"`
}

// CeilingFraction relates an operation's throughput to a ceiling.
type CeilingFraction struct {
	Op          Op      `json:"op"`
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	MiBPerSec   float64 `json:"mib_per_s"`
	Fraction    float64 `json:"fraction"`
}

// NewReport relates every run to its ceiling: PUT to http-put-md5 (a
// store must at least receive the body and compute its MD5), GET to
// http-get-2hop (blob node → gateway → client), at the concurrency
// nearest the run's. Objects smaller than 1 MiB are bound by requests, not
// bytes, and get no fraction.
func NewReport(ceilings []Ceiling, runs []*Result) *Report {
	for _, send := range []struct{ path, send string }{{CeilingPutPath, CeilingHTTPPut}, {CeilingPutPathUnix, CeilingHTTPPutUnix}} {
		if _, ok := highestCeiling(ceilings, send.path); !ok {
			if c, ok := PutPathCeiling(ceilings, send.path, send.send); ok {
				ceilings = append(ceilings, c)
			}
		}
	}
	if _, ok := highestCeiling(ceilings, CeilingPutDisk); !ok {
		if c, ok := PutDiskCeiling(ceilings); ok {
			ceilings = append(ceilings, c)
		}
	}
	r := &Report{Date: time.Now().UTC(), Ceilings: ceilings}
	for _, res := range runs {
		rr := ReportRun{Result: res}
		if o := res.Op(OpPut); o != nil && res.Workload == string(OpPut) && res.Size >= 1<<20 {
			if c, ok := highestCeiling(ceilings, CeilingPutPath); ok && c.MiBPerSec > 0 {
				rr.PathCeiling = fractionOf(OpPut, c, o.MiBPerSec)
			}
			if c, ok := highestCeiling(ceilings, CeilingPutPathUnix); ok && c.MiBPerSec > 0 {
				rr.UnixCeiling = fractionOf(OpPut, c, o.MiBPerSec)
			}
			if c, ok := highestCeiling(ceilings, CeilingPutDisk); ok && c.MiBPerSec > 0 {
				rr.DiskCeiling = fractionOf(OpPut, c, o.MiBPerSec)
			}
		}
		if o := res.Op(OpGet); o != nil && res.Workload == string(OpGet) && res.Size >= 1<<20 {
			if c := nearestCeiling(ceilings, CeilingHTTPGet2Unix, res.Concurrency); c != nil && c.MiBPerSec > 0 {
				rr.UnixCeiling = fractionOf(OpGet, *c, o.MiBPerSec)
			}
		}
		if res.Size >= 1<<20 {
			for _, m := range []struct {
				op   Op
				name string
			}{{OpPut, CeilingHTTPPutMD5}, {OpGet, CeilingHTTPGet2}} {
				o := res.Op(m.op)
				c := nearestCeiling(ceilings, m.name, res.Concurrency)
				if o == nil || c == nil || c.MiBPerSec <= 0 || (res.Workload != string(m.op)) {
					continue
				}
				rr.Ceiling = fractionOf(m.op, *c, o.MiBPerSec)
			}
		}
		if res.CPUs > r.CPUs {
			r.CPUs = res.CPUs
		}
		r.Runs = append(r.Runs, rr)
	}
	return r
}

// fractionOf relates op's throughput of mib MiB/s to ceiling c.
func fractionOf(op Op, c Ceiling, mib float64) *CeilingFraction {
	return &CeilingFraction{Op: op, Name: c.Name, Concurrency: c.Concurrency, MiBPerSec: c.MiBPerSec, Fraction: mib / c.MiBPerSec}
}

// CeilingPutPath names the derived ceiling of the erasure-coded PUT path;
// CeilingPutPathUnix the same with the sends to blob nodes over Unix
// sockets (http-put-unix in place of http-put).
const (
	CeilingPutPath     = "put-path-4+2"
	CeilingPutPathUnix = "put-path-4+2-unix"
)

// PutPathCeiling derives the ceiling of a 4+2 erasure-coded PUT from the
// measured ceilings of its steps: receive the body and compute its MD5
// (http-put-md5), encode it (rs-encode-4+2), send 1.5 times its bytes on
// to the blob nodes over loopback HTTP (http-put). Each is measured with
// the whole machine to itself, at the highest concurrency measured, and on
// a CPU-bound machine their costs per MiB add:
//
//	1 / (1/http-put-md5 + 1/rs-encode-4+2 + 1.5/http-put)
//
// It leaves out what a store adds on top (writing and syncing to disk,
// checksumming blocks, SigV4, the metadata commit), so no store reaches
// it; it is the bound for "the path", where http-put-md5 alone is only
// the bound for receiving a body.
//
// The ceiling is called name; send names the ceiling that sends the
// shards on (http-put, or http-put-unix for put-path-4+2-unix).
func PutPathCeiling(cs []Ceiling, name, send string) (Ceiling, bool) {
	md5, ok1 := highestCeiling(cs, CeilingHTTPPutMD5)
	enc, ok2 := highestCeiling(cs, CeilingRSEncode)
	put, ok3 := highestCeiling(cs, send)
	if !ok1 || !ok2 || !ok3 || md5.MiBPerSec <= 0 || enc.MiBPerSec <= 0 || put.MiBPerSec <= 0 {
		return Ceiling{}, false
	}
	return Ceiling{
		Name: name,
		What: fmt.Sprintf("derived: 1/(1/%s c%d + 1/%s c%d + 1.5/%s c%d), receive + MD5, encode, send 1.5x on",
			md5.Name, md5.Concurrency, enc.Name, enc.Concurrency, put.Name, put.Concurrency),
		Concurrency: md5.Concurrency,
		MiBPerSec:   1 / (1/md5.MiBPerSec + 1/enc.MiBPerSec + 1.5/put.MiBPerSec),
		LoadAvg:     max(md5.LoadAvg, enc.LoadAvg, put.LoadAvg),
	}, true
}

// highestCeiling is the ceiling called name measured at the highest
// concurrency.
func highestCeiling(cs []Ceiling, name string) (Ceiling, bool) {
	var best *Ceiling
	for i := range cs {
		if c := &cs[i]; c.Name == name && (best == nil || c.Concurrency > best.Concurrency) {
			best = c
		}
	}
	if best == nil {
		return Ceiling{}, false
	}
	return *best, true
}

func nearestCeiling(cs []Ceiling, name string, conc int) *Ceiling {
	var best *Ceiling
	for i := range cs {
		c := &cs[i]
		if c.Name != name {
			continue
		}
		if best == nil || abs(c.Concurrency-conc) < abs(best.Concurrency-conc) {
			best = c
		}
	}
	return best
}

func abs(x int) int { return max(x, -x) }

// procGroup is the role of a watched process: "blobd-3" → "blobd".
var procGroupRE = regexp.MustCompile(`[-_.]?[0-9]+$`)

func procGroup(name string) string { return procGroupRE.ReplaceAllString(name, "") }

// Markdown writes the report: throughput and latency per run and
// operation, CPU and peak RSS per daemon role, and the ceilings.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark %s\n\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.Command != "" {
		fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	}
	fmt.Fprintf(&b, "Machine: %s, %d CPUs. Load averages are the 1-minute figure at the start → end of each run. Figures are provisional when the load average is well above the CPU count: other work shares the machine.\n\n", orDash(r.Host), r.CPUs)
	notes := r.Notes
	if n := payloadHashNote(r.Runs); n != "" {
		notes = append(notes[:len(notes):len(notes)], n)
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("## Throughput and latency\n\n")
	b.WriteString("| store | workload | size | conc | op | MiB/s | objects/s | p50 ms | p90 ms | p99 ms | errors | of ceiling | load |\n")
	b.WriteString("|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, run := range r.Runs {
		for _, o := range run.Ops {
			frac := "—"
			if c := run.Ceiling; c != nil && c.Op == o.Op {
				frac = fmt.Sprintf("%.0f%% of %s c%d (%.0f MiB/s)", 100*c.Fraction, c.Name, c.Concurrency, c.MiBPerSec)
			}
			for _, c := range []*CeilingFraction{run.PathCeiling, run.UnixCeiling, run.DiskCeiling} {
				if c != nil && c.Op == o.Op {
					frac += fmt.Sprintf("; %.0f%% of %s (%.0f MiB/s)", 100*c.Fraction, c.Name, c.MiBPerSec)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %.1f | %.1f | %s | %s | %s | %d | %s | %.1f → %.1f |\n",
				orDash(run.Label), run.Workload, run.SizeLabel, run.Concurrency, o.Op, o.MiBPerSec, o.OpsPerSec,
				msCell(o.P50Ms), msCell(o.P90Ms), msCell(o.P99Ms), o.Errors, frac, run.LoadAvgStart[0], run.LoadAvgEnd[0])
		}
	}
	// Process roles in order of first appearance.
	var roles []string
	seen := map[string]int{}
	for _, run := range r.Runs {
		count := map[string]int{}
		for _, p := range run.Procs {
			g := procGroup(p.Name)
			count[g]++
			if _, ok := seen[g]; !ok {
				roles = append(roles, g)
			}
			seen[g] = max(seen[g], count[g])
		}
	}
	if len(roles) > 0 {
		b.WriteString("\n## CPU and memory per process role\n\n")
		b.WriteString("CPU is user+system time over the run's elapsed time, summed over the role's processes (100% = one core). Peak RSS is VmHWM, reset at the start of each run where the kernel allows, the largest of the role's processes.\n\n")
		b.WriteString("| store | workload | size |")
		sep := "|---|---|---|"
		for _, g := range roles {
			n := ""
			if seen[g] > 1 {
				n = fmt.Sprintf(" ×%d", seen[g])
			}
			fmt.Fprintf(&b, " %s%s CPU%% | %s peak RSS MiB |", g, n, g)
			sep += "--:|--:|"
		}
		b.WriteString("\n" + sep + "\n")
		for _, run := range r.Runs {
			fmt.Fprintf(&b, "| %s | %s | %s |", orDash(run.Label), run.Workload, run.SizeLabel)
			for _, g := range roles {
				var cpu, rss float64
				n := 0
				for _, p := range run.Procs {
					if procGroup(p.Name) == g && p.Error == "" {
						cpu += p.CPUPercent
						rss = max(rss, p.PeakRSSMiB)
						n++
					}
				}
				if n == 0 {
					b.WriteString(" — | — |")
					continue
				}
				fmt.Fprintf(&b, " %.0f | %.0f |", cpu, rss)
			}
			b.WriteString("\n")
		}
	}
	if len(roles) > 0 {
		b.WriteString("\n### Every process\n\n")
		b.WriteString("| store | workload | size | process | pid | CPU% | peak RSS MiB | max sampled RSS MiB |\n|---|---|---|---|--:|--:|--:|--:|\n")
		for _, run := range r.Runs {
			for _, p := range run.Procs {
				if p.Error != "" {
					fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | — | — | %s |\n", orDash(run.Label), run.Workload, run.SizeLabel, p.Name, p.PID, p.Error)
					continue
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %.1f | %.1f | %.1f |\n", orDash(run.Label), run.Workload, run.SizeLabel, p.Name, p.PID, p.CPUPercent, p.PeakRSSMiB, p.MaxRSSMiB)
			}
		}
	}
	if len(r.Ceilings) > 0 {
		b.WriteString("\n## Ceilings of this machine\n\n")
		b.WriteString("| ceiling | what | conc | MiB/s | load |\n|---|---|--:|--:|--:|\n")
		for _, c := range r.Ceilings {
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.1f |\n", c.Name, c.What, c.Concurrency, c.MiBPerSec, c.LoadAvg)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func msCell(f float64) string {
	if f == 0 {
		return "—"
	}
	if f < 10 {
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}

// payloadHashNote says how the generator hashed PUT bodies for SigV4 in
// runs that PUT, since that moves the generator's CPU (which shares the
// cores with the store) and so every store's figures.
func payloadHashNote(runs []ReportRun) string {
	modes := map[string]bool{}
	for _, run := range runs {
		if run.Result == nil || run.Op(OpPut) == nil {
			continue
		}
		switch run.PayloadHash {
		case "precomputed":
			modes[fmt.Sprintf("PUT payload SHA-256 computed once per distinct body (%d bodies per size) before the run and handed to the SDK; bodies written to the socket straight from the pattern; the requests on the wire are what the SDK sends by itself", run.BodyVariants)] = true
		case "sdk":
			modes["PUT payload hash left to the SDK for every request (over http it hashes every body; over https it signs none)"] = true
		default:
			modes["PUT payload SHA-256 computed by the SDK for every request (a generator from before payload_hash was reported)"] = true
		}
	}
	if len(modes) == 0 {
		return ""
	}
	keys := make([]string, 0, len(modes))
	for k := range modes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "Generator: " + strings.Join(keys, "; ") + " (docs/performance.md, The generator)."
}
