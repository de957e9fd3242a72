package s3bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ProfileTarget is a process serving net/http/pprof (a daemon started with
// --pprof-addr).
type ProfileTarget struct {
	Name string
	// URL is the pprof server's base, e.g. http://127.0.0.1:6060.
	URL string
}

// ParseProfileTargets parses "name=host:port,..." (or name=URL).
func ParseProfileTargets(s string) ([]ProfileTarget, error) {
	var out []ProfileTarget
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("pprof target %q: want NAME=HOST:PORT", item)
		}
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		out = append(out, ProfileTarget{Name: name, URL: strings.TrimSuffix(addr, "/")})
	}
	return out, nil
}

// profiler collects a CPU profile from every target over the measured
// part of a run and a heap profile at its end, into dir as
// NAME.cpu.pprof and NAME.heap.pprof.
type profiler struct {
	dir     string
	targets []ProfileTarget
	client  *http.Client
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []string
}

// startProfiles asks every target for a CPU profile of d (whole seconds,
// at least 1).
func startProfiles(ctx context.Context, dir string, targets []ProfileTarget, d time.Duration) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile dir: %w", err)
	}
	p := &profiler{dir: dir, targets: targets, client: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	secs := max(1, int(math.Ceil(d.Seconds())))
	for _, t := range targets {
		p.wg.Go(func() {
			p.fetch(ctx, t, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), t.Name+".cpu.pprof", d+time.Minute)
		})
	}
	return p, nil
}

// finish fetches the heap profiles, waits for the CPU profiles and returns
// what failed.
func (p *profiler) finish(ctx context.Context) []string {
	for _, t := range p.targets {
		p.wg.Go(func() { p.fetch(ctx, t, "/debug/pprof/heap", t.Name+".heap.pprof", time.Minute) })
	}
	p.wg.Wait()
	return p.errs
}

func (p *profiler) fetch(ctx context.Context, t ProfileTarget, path, file string, timeout time.Duration) {
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+path, nil)
		if err != nil {
			return err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		f, err := os.Create(filepath.Join(p.dir, file))
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	if err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, fmt.Sprintf("%s %s: %v", t.Name, path, err))
		p.mu.Unlock()
	}
}
