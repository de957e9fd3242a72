package s3bench

import (
	"math"
	"os"
	"strings"
	"testing"
)

func TestSizeLabel(t *testing.T) {
	for n, want := range map[int64]string{4096: "4KiB", 1 << 20: "1MiB", 64 << 20: "64MiB", 1 << 30: "1GiB", 1000: "1000B", 1536: "1536B", 0: "0B"} {
		if got := SizeLabel(n); got != want {
			t.Errorf("SizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseProcs(t *testing.T) {
	got, err := ParseProcs("metad-1=10, blobd-2=20,")
	if err != nil || len(got) != 2 || got[0] != (Proc{"metad-1", 10}) || got[1] != (Proc{"blobd-2", 20}) {
		t.Fatalf("ParseProcs = %v, %v", got, err)
	}
	for _, bad := range []string{"x", "x=", "=1", "x=0", "x=abc"} {
		if _, err := ParseProcs(bad); err == nil {
			t.Errorf("ParseProcs(%q) succeeded", bad)
		}
	}
}

func TestProcGroup(t *testing.T) {
	for in, want := range map[string]string{"metad-1": "metad", "blobd-12": "blobd", "gatewayd": "gatewayd", "minio": "minio", "s3bench": "s3bench", "node2": "node"} {
		if got := procGroup(in); got != want {
			t.Errorf("procGroup(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWatchSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	w := watch([]Proc{{"self", os.Getpid()}, {"gone", 1 << 30}})
	// Burn a little CPU so the figure can be non-zero.
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	_ = x
	st := w.finish()
	if st[0].Error != "" || st[0].PeakRSSMiB <= 0 || st[0].MaxRSSMiB <= 0 || st[0].CPUSeconds < 0 {
		t.Errorf("self: %+v", st[0])
	}
	if st[1].Error == "" {
		t.Errorf("a process that does not exist has no error: %+v", st[1])
	}
}

func TestReportFractionsAndMarkdown(t *testing.T) {
	ceilings := []Ceiling{
		{Name: CeilingHTTPPutMD5, Concurrency: 1, MiBPerSec: 500},
		{Name: CeilingHTTPPutMD5, Concurrency: 16, MiBPerSec: 800},
		{Name: CeilingHTTPGet2, Concurrency: 16, MiBPerSec: 1600},
		{Name: CeilingHTTPPut, Concurrency: 16, MiBPerSec: 3000},
		{Name: CeilingRSEncode, Concurrency: 1, MiBPerSec: 2000},
		{Name: CeilingRSEncode, Concurrency: 2, MiBPerSec: 4000},
		{Name: CeilingHTTPPutUnix, Concurrency: 16, MiBPerSec: 6000},
		{Name: CeilingHTTPGet2Unix, Concurrency: 16, MiBPerSec: 3200},
		{Name: CeilingDiskWrite, Concurrency: 16, MiBPerSec: 750},
	}
	runs := []*Result{
		{Label: "cairn", Workload: "put", SizeLabel: "64MiB", Size: 64 << 20, Concurrency: 16,
			Ops:   []OpStats{{Op: OpPut, Count: 10, MiBPerSec: 400, OpsPerSec: 6.25, P50Ms: 2000, P90Ms: 2500, P99Ms: 3000}},
			Procs: []ProcStats{{Name: "metad-1", CPUPercent: 5, PeakRSSMiB: 100}, {Name: "metad-2", CPUPercent: 3, PeakRSSMiB: 120}, {Name: "gatewayd", CPUPercent: 90, PeakRSSMiB: 200}}},
		{Label: "cairn", Workload: "get", SizeLabel: "64MiB", Size: 64 << 20, Concurrency: 16,
			Ops: []OpStats{{Op: OpGet, Count: 10, MiBPerSec: 400}}},
		{Label: "cairn", Workload: "put", SizeLabel: "4KiB", Size: 4096, Concurrency: 16,
			Ops: []OpStats{{Op: OpPut, Count: 10, OpsPerSec: 300, P50Ms: 5}}},
	}
	rep := NewReport(ceilings, runs)
	if c := rep.Runs[0].Ceiling; c == nil || c.Concurrency != 16 || c.Fraction != 0.5 {
		t.Errorf("64 MiB put ceiling = %+v, want half of the c16 http-put-md5", c)
	}
	if c := rep.Runs[1].Ceiling; c == nil || c.Name != CeilingHTTPGet2 || c.Fraction != 0.25 {
		t.Errorf("64 MiB get ceiling = %+v, want a quarter of http-get-2hop", c)
	}
	if c := rep.Runs[2].Ceiling; c != nil {
		t.Errorf("4 KiB put has a ceiling fraction %+v", c)
	}
	// 1/(1/800 + 1/4000 + 1.5/3000) = 500 MiB/s: the c16 and c2 figures,
	// not the c1 ones.
	if c := rep.Runs[0].PathCeiling; c == nil || c.Name != CeilingPutPath || math.Abs(c.MiBPerSec-500) > 1e-9 || math.Abs(c.Fraction-0.8) > 1e-9 {
		t.Errorf("64 MiB put path ceiling = %+v, want 80%% of 500 MiB/s", c)
	}
	if c := rep.Runs[1].PathCeiling; c != nil {
		t.Errorf("get has a put path ceiling %+v", c)
	}
	if c := rep.Runs[2].PathCeiling; c != nil {
		t.Errorf("4 KiB put has a path ceiling fraction %+v", c)
	}
	// 1/(1/800 + 1/4000 + 1.5/6000) = 4000/7 MiB/s.
	if c := rep.Runs[0].UnixCeiling; c == nil || c.Name != CeilingPutPathUnix || math.Abs(c.MiBPerSec-4000.0/7) > 1e-9 || math.Abs(c.Fraction-0.7) > 1e-9 {
		t.Errorf("64 MiB put unix path ceiling = %+v, want 70%% of 571.4 MiB/s", c)
	}
	if c := rep.Runs[1].UnixCeiling; c == nil || c.Name != CeilingHTTPGet2Unix || c.Fraction != 0.125 {
		t.Errorf("64 MiB get unix ceiling = %+v, want an eighth of http-get-2hop-unix", c)
	}
	if c := rep.Runs[2].UnixCeiling; c != nil {
		t.Errorf("4 KiB put has a unix ceiling fraction %+v", c)
	}
	// 750 / 1.5 = 500 MiB/s of objects.
	if c := rep.Runs[0].DiskCeiling; c == nil || c.Name != CeilingPutDisk || math.Abs(c.MiBPerSec-500) > 1e-9 || math.Abs(c.Fraction-0.8) > 1e-9 {
		t.Errorf("64 MiB put disk ceiling = %+v, want 80%% of 500 MiB/s", c)
	}
	if c := rep.Runs[1].DiskCeiling; c != nil {
		t.Errorf("get has a disk ceiling %+v", c)
	}
	if c := rep.Runs[2].DiskCeiling; c != nil {
		t.Errorf("4 KiB put has a disk ceiling fraction %+v", c)
	}
	if n := len(NewReport(ceilings[:3], runs).Ceilings); n != 3 {
		t.Errorf("without an encode ceiling the report derived a path ceiling anyway (%d ceilings)", n)
	}
	var b strings.Builder
	if err := rep.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| cairn | put | 64MiB | 16 | put | 400.0 | 6.2 | 2000 | 2500 | 3000 | 0 | 50% of http-put-md5 c16 (800 MiB/s); 80% of put-path-4+2 (500 MiB/s); 70% of put-path-4+2-unix (571 MiB/s); 80% of put-disk-4+2 (500 MiB/s) |",
		"| put-disk-4+2 | derived: disk-write c16 / 1.5",
		"| 25% of http-get-2hop c16 (1600 MiB/s); 12% of http-get-2hop-unix (3200 MiB/s) |",
		"| put-path-4+2 | derived: 1/(1/http-put-md5 c16 + 1/rs-encode-4+2 c2 + 1.5/http-put c16)",
		"metad ×2 CPU% | metad peak RSS MiB | gatewayd CPU% |",
		"| cairn | put | 64MiB | 8 | 120 | 90 | 200 |",
		"| cairn | put | 64MiB | metad-2 | 0 | 3.0 | 120.0 | 0.0 |",
		"| http-get-2hop |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportSaysHowPUTBodiesWereHashed(t *testing.T) {
	put := func(mode string) *Result {
		return &Result{Label: "cairn", Workload: "put", SizeLabel: "64MiB", Size: 64 << 20, Concurrency: 16,
			PayloadHash: mode, BodyVariants: BodyVariants, Ops: []OpStats{{Op: OpPut, Count: 1, MiBPerSec: 1}}}
	}
	get := &Result{Label: "cairn", Workload: "get", SizeLabel: "64MiB", Size: 64 << 20, Concurrency: 16,
		PayloadHash: "precomputed", Ops: []OpStats{{Op: OpGet, Count: 1, MiBPerSec: 1}}}
	for _, tc := range []struct {
		runs    []*Result
		want    []string
		notWant []string
	}{
		{[]*Result{put("precomputed"), get}, []string{"computed once per distinct body (16 bodies per size)"}, []string{"left to the SDK"}},
		{[]*Result{put("sdk")}, []string{"left to the SDK for every request"}, []string{"once per distinct body"}},
		{[]*Result{put("sdk"), put("precomputed")}, []string{"left to the SDK", "once per distinct body"}, nil},
		{[]*Result{get}, nil, []string{"Generator:"}},
	} {
		var b strings.Builder
		if err := NewReport(nil, tc.runs).Markdown(&b); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("report lacks %q:\n%s", w, b.String())
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(b.String(), w) {
				t.Errorf("report has %q:\n%s", w, b.String())
			}
		}
	}
}
