package s3bench

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/pprofhttp"
)

func TestParseProfileTargets(t *testing.T) {
	got, err := ParseProfileTargets("gatewayd=127.0.0.1:7000, metad-1=http://h:1/")
	if err != nil || len(got) != 2 || got[0].URL != "http://127.0.0.1:7000" || got[1].URL != "http://h:1" || got[1].Name != "metad-1" {
		t.Fatalf("ParseProfileTargets = %+v, %v", got, err)
	}
	for _, bad := range []string{"x", "=h:1", "x="} {
		if _, err := ParseProfileTargets(bad); err == nil {
			t.Errorf("ParseProfileTargets(%q) succeeded", bad)
		}
	}
}

func TestProfilesFetched(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := pprofhttp.Start(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	targets := []ProfileTarget{{Name: "d", URL: "http://" + addr.String()}, {Name: "gone", URL: "http://127.0.0.1:1"}}
	p, err := startProfiles(ctx, dir, targets, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	errs := p.finish(ctx)
	for _, f := range []string{"d.cpu.pprof", "d.heap.pprof"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (size %v)", f, err, st)
		}
	}
	if len(errs) != 2 {
		t.Errorf("errors %q, want the unreachable target's cpu and heap", errs)
	}
}
