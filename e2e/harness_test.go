package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/internal/faultnet"
)

// clusterConfig shapes a test cluster: 3 metad members, 6 blob nodes (by
// default) in 3 zones and one gateway. Zero fields take the defaults below.
type clusterConfig struct {
	// Blobs is the number of blob nodes (default 6), spread evenly over 3
	// zones, each node in a rack of its own within its zone.
	Blobs int
	// EC is the erasure-coding scheme recorded at bootstrap.
	EC string
	// SegmentSize is the gateway's --segment-size: small enough that the
	// larger test objects span several segments.
	SegmentSize int64
	// Raft timeouts: short, so an election takes well under a second, yet
	// long enough that a loaded 2-core machine under -race does not see a
	// leader flap without a fault.
	RaftHeartbeat, RaftElection, RaftLease time.Duration
	// BlobHeartbeat is each blob node's --heartbeat-interval.
	BlobHeartbeat time.Duration
	// Capacity is each blob node's --capacity.
	Capacity string
	// SnapshotThreshold and TrailingLogs, when set, make metad snapshot
	// (checked every 100ms) after that many entries and keep that few
	// behind it, so that restarts load snapshots and a member that was
	// down catches up by InstallSnapshot rather than by log replay.
	SnapshotThreshold, TrailingLogs int
	// MetadArgs, BlobArgs and GatewayArgs are appended to every metad,
	// blobd and gatewayd command line (flags the harness does not set, or
	// ones given again to override it: the last occurrence wins).
	MetadArgs, BlobArgs, GatewayArgs []string
	// BlobProxies puts a faultnet.Proxy in front of each blob node's HTTP
	// address, which the node advertises, so the gateway and its peers
	// dial the proxy: cluster.Cut makes the node unreachable while its
	// process runs on. Its own connections to metad are not cut (the
	// metad client follows leader redirects to the members' real
	// addresses): metad keeps seeing it alive. Freeze isolates a node
	// completely.
	BlobProxies bool
}

func (c *clusterConfig) defaults() {
	if c.Blobs == 0 {
		c.Blobs = 6
	}
	if c.EC == "" {
		c.EC = "4+2"
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = 8 << 20
	}
	if c.RaftHeartbeat == 0 {
		c.RaftHeartbeat = 200 * time.Millisecond
	}
	if c.RaftElection == 0 {
		c.RaftElection = 400 * time.Millisecond
	}
	if c.RaftLease == 0 {
		c.RaftLease = 100 * time.Millisecond
	}
	if c.BlobHeartbeat == 0 {
		c.BlobHeartbeat = 250 * time.Millisecond
	}
	if c.Capacity == "" {
		c.Capacity = "8G"
	}
}

const (
	accessKey = "e2e-access"
	secretKey = "e2e-secret-key-0123456789"
	// gatewayName is the gateway's process name.
	gatewayName = "gatewayd"
)

// cluster is a set of real Cairn processes on loopback. Its methods are
// called from the test's goroutine (they may call t.Fatal).
type cluster struct {
	t      *testing.T
	cfg    clusterConfig
	dir    string
	logDir string
	procs  map[string]*process
	order  []string // start order: metad, blobd, gateway

	metads, blobs []string // process names
	blobZone      map[string]string
	metadGRPC     []string
	s3URL         string
	gatewayBase   string // http://host:port of the gateway

	health *http.Client
	born   time.Time

	// proxies are the proxies in front of each blob node's HTTP address
	// when BlobProxies is set.
	proxies map[string][]*faultnet.Proxy
}

// logf logs with the time since the cluster was created, so a -v run shows
// where a test spends its time.
func (c *cluster) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("[%6.2fs] "+format, append([]any{time.Since(c.born).Seconds()}, args...)...)
}

// startCluster builds the cluster's command lines, starts metad, then the
// blob nodes, then the gateway, and waits until an S3 call succeeds.
func startCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	cfg.defaults()
	c := &cluster{
		t:        t,
		cfg:      cfg,
		dir:      t.TempDir(), // before the Cleanup below, so removed after the processes die
		procs:    make(map[string]*process),
		blobZone: make(map[string]string),
		proxies:  make(map[string][]*faultnet.Proxy),
		health:   &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		born:     time.Now(),
	}
	c.logDir = filepath.Join(c.dir, "logs")
	if *flagLogDir != "" {
		c.logDir = filepath.Join(*flagLogDir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		// A rerun into the same directory starts fresh logs.
		if err := os.RemoveAll(c.logDir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)

	const nMeta = 3
	nBlob := cfg.Blobs
	ports := freePorts(t, 3*nMeta+nBlob+1)
	next := func() string {
		p := ports[0]
		ports = ports[1:]
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}

	var initial []string
	type metaAddrs struct{ raft, grpc, http string }
	ma := make([]metaAddrs, nMeta)
	for i := range ma {
		ma[i] = metaAddrs{raft: next(), grpc: next(), http: next()}
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, ma[i].raft))
		c.metadGRPC = append(c.metadGRPC, ma[i].grpc)
	}
	for i, a := range ma {
		name := fmt.Sprintf("metad-%d", i+1)
		args := []string{
			"--id", fmt.Sprintf("m%d", i+1),
			"--data-dir", c.dataDir(name),
			"--raft-addr", a.raft,
			"--grpc-addr", a.grpc,
			"--http-addr", a.http,
			"--initial-cluster", strings.Join(initial, ","),
			"--ec", cfg.EC,
			"--raft-heartbeat-timeout", cfg.RaftHeartbeat.String(),
			"--raft-election-timeout", cfg.RaftElection.String(),
			"--raft-leader-lease-timeout", cfg.RaftLease.String(),
		}
		if cfg.SnapshotThreshold > 0 {
			args = append(args,
				"--snapshot-threshold", strconv.Itoa(cfg.SnapshotThreshold),
				"--trailing-logs", strconv.Itoa(cfg.TrailingLogs),
				"--snapshot-interval", "100ms")
		}
		args = append(args, cfg.MetadArgs...)
		c.add(&process{name: name, bin: filepath.Join(binDir, "metad"), args: args, base: "http://" + a.http})
		c.metads = append(c.metads, name)
	}
	inZone := make(map[string]int)
	for i := range nBlob {
		name := fmt.Sprintf("blobd-%d", i+1)
		addr := next()
		zone := fmt.Sprintf("z%d", i*3/nBlob+1)
		inZone[zone]++
		advertise := addr
		var local []string
		if cfg.BlobProxies {
			advertise = c.proxy(name, addr)
			// The gateway and the peers would find the node's Unix
			// socket through the proxy and then go around it.
			local = []string{"--local-socket", "off"}
		}
		args := []string{
			"--id", fmt.Sprintf("b%d", i+1),
			"--data-dir", c.dataDir(name),
			"--addr", addr,
			"--advertise-addr", advertise,
			"--metad", strings.Join(c.metadGRPC, ","),
			"--zone", zone,
			"--rack", fmt.Sprintf("%s-r%d", zone, inZone[zone]),
			"--capacity", cfg.Capacity,
			"--heartbeat-interval", cfg.BlobHeartbeat.String(),
		}
		c.add(&process{
			name: name,
			bin:  filepath.Join(binDir, "blobd"),
			args: append(append(args, local...), cfg.BlobArgs...),
			base: "http://" + addr,
		})
		c.blobs = append(c.blobs, name)
		c.blobZone[name] = zone
	}
	gw := next()
	c.gatewayBase = "http://" + gw
	c.s3URL = c.gatewayBase
	c.add(&process{
		name: gatewayName,
		bin:  filepath.Join(binDir, "gatewayd"),
		args: append([]string{
			"--addr", gw,
			"--metad", strings.Join(c.metadGRPC, ","),
			"--segment-size", strconv.FormatInt(cfg.SegmentSize, 10),
			// A loaded CI machine has stalled every process for ~10 s:
			// no upload is given up for that (tests of the budget set
			// their own, later on the line).
			"--write-budget", "60s",
		}, cfg.GatewayArgs...),
		env:        []string{"CAIRN_ACCESS_KEY=" + accessKey, "CAIRN_SECRET_KEY=" + secretKey},
		base:       c.gatewayBase,
		healthPath: "/_cairn/healthz",
	})

	// metad first, so the blob nodes register at once instead of backing
	// off; then the blob nodes, then the gateway.
	start := time.Now()
	c.Restart(c.metads...)
	c.WaitHealthy(30*time.Second, c.metads...)
	c.Restart(c.blobs...)
	c.WaitHealthy(30*time.Second, c.blobs...)
	c.Restart(gatewayName)
	c.WaitGateway(30 * time.Second)
	c.logf("cluster up in %v (3 metad, %d blobd, gateway at %s, logs in %s)", time.Since(start).Round(time.Millisecond), len(c.blobs), c.s3URL, c.logDir)
	return c
}

func (c *cluster) add(p *process) {
	p.logPath = filepath.Join(c.logDir, p.name+".log")
	if p.healthPath == "" {
		p.healthPath = "/healthz"
	}
	c.procs[p.name] = p
	c.order = append(c.order, p.name)
}

// proxy starts a proxy to target on node's behalf, closed with the test.
func (c *cluster) proxy(node, target string) string {
	c.t.Helper()
	p, err := faultnet.NewProxy(target)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { p.Close() })
	c.proxies[node] = append(c.proxies[node], p)
	return p.Addr()
}

// Cut closes every connection to a blob node's HTTP API (from the gateway
// and its peers) and refuses new ones until Heal; the process runs on and
// still heartbeats to metad. The cluster must have been started with
// BlobProxies.
func (c *cluster) Cut(name string) {
	c.t.Helper()
	ps := c.proxies[name]
	if len(ps) == 0 {
		c.t.Fatalf("%s: no proxies to cut (start the cluster with BlobProxies)", name)
	}
	for _, p := range ps {
		p.Cut()
	}
}

// Heal lets a cut blob node's traffic through again.
func (c *cluster) Heal(name string) {
	for _, p := range c.proxies[name] {
		p.Heal()
	}
}

// Freeze stops a process with SIGSTOP (it keeps its connections and
// answers nothing) until Thaw sends SIGCONT.
func (c *cluster) Freeze(name string) {
	c.t.Helper()
	if err := c.proc(name).send(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
}

// Thaw resumes a frozen process.
func (c *cluster) Thaw(name string) {
	c.t.Helper()
	if err := c.proc(name).send(syscall.SIGCONT); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
}

// SetFlag changes flag's value on a process's command line (every
// "--flag value" occurrence; appended if there is none), for its next
// start.
func (c *cluster) SetFlag(name, flag, value string) {
	c.t.Helper()
	p := c.proc(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	args, found := slices.Clone(p.args), false
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			args[i+1], found = value, true
		}
	}
	if !found {
		args = append(args, flag, value)
	}
	p.args = args
}

// dataDir is a process's data directory.
func (c *cluster) dataDir(name string) string { return filepath.Join(c.dir, "data", name) }

// all returns every process name in start order.
func (c *cluster) all() []string { return append([]string(nil), c.order...) }

func (c *cluster) proc(name string) *process {
	c.t.Helper()
	p, ok := c.procs[name]
	if !ok {
		c.t.Fatalf("no process named %q", name)
	}
	return p
}

// Kill sends SIGKILL to every named process at once, then waits for each to
// exit.
func (c *cluster) Kill(names ...string) {
	c.t.Helper()
	c.signalAndWait(syscall.SIGKILL, 10*time.Second, names)
}

// Stop sends SIGTERM to the named processes and waits for them to exit
// cleanly (status 0).
func (c *cluster) Stop(names ...string) {
	c.t.Helper()
	for _, p := range c.signalAndWait(syscall.SIGTERM, 30*time.Second, names) {
		if err := p.exitErr(); err != nil {
			c.t.Errorf("%s: stopped with SIGTERM, exited with %v (want status 0)", p.name, err)
		}
	}
}

func (c *cluster) signalAndWait(sig syscall.Signal, timeout time.Duration, names []string) []*process {
	c.t.Helper()
	ps := make([]*process, len(names))
	for i, n := range names {
		ps[i] = c.proc(n)
	}
	// Signal all first: "at once" means no process sees another's death
	// before its own.
	for _, p := range ps {
		if err := p.signal(sig); err != nil {
			c.t.Fatalf("%s: %v", p.name, err)
		}
	}
	deadline := time.After(timeout)
	for _, p := range ps {
		select {
		case <-p.exited():
		case <-deadline:
			c.t.Fatalf("%s: still running %v after %v", p.name, timeout, sig)
		}
	}
	return ps
}

// Restart starts the named processes (which must not be running) with the
// flags and data directories they were first given. It does not wait for
// them to be ready: see WaitHealthy and WaitGateway.
func (c *cluster) Restart(names ...string) {
	c.t.Helper()
	for _, n := range names {
		if err := c.proc(n).start(); err != nil {
			c.t.Fatalf("%s: %v", n, err)
		}
	}
}

// WaitHealthy waits until every named process answers 200 on its health
// endpoint.
func (c *cluster) WaitHealthy(timeout time.Duration, names ...string) {
	c.t.Helper()
	for _, n := range names {
		p := c.proc(n)
		c.waitFor(timeout, n+" healthy ("+p.base+p.healthPath+")", func() error {
			_, err := c.get(p.base + p.healthPath)
			return err
		})
	}
}

var upNodes = regexp.MustCompile(`^ok: (\d+) blob nodes up`)

// WaitGateway waits until the gateway reports every blob node up and an S3
// call (ListBuckets) succeeds.
func (c *cluster) WaitGateway(timeout time.Duration) {
	c.t.Helper()
	p := c.proc(gatewayName)
	c.waitFor(timeout, "gateway to see all blob nodes ("+p.base+p.healthPath+")", func() error {
		body, err := c.get(p.base + p.healthPath)
		if err != nil {
			return err
		}
		m := upNodes.FindStringSubmatch(body)
		if m == nil {
			return fmt.Errorf("unexpected health answer %q", body)
		}
		if n, _ := strconv.Atoi(m[1]); n != len(c.blobs) {
			return fmt.Errorf("%d of %d blob nodes up", n, len(c.blobs))
		}
		return nil
	})
	client := c.S3(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	c.waitFor(timeout, "an S3 ListBuckets through the gateway", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
}

// WaitReady waits for every process (all must be running) to be healthy
// and the gateway to serve S3.
func (c *cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	c.WaitHealthy(timeout, c.metads...)
	c.WaitHealthy(timeout, c.blobs...)
	c.WaitGateway(timeout)
}

// Leader returns the metad member that is Raft leader, waiting until
// exactly one running member says it is.
func (c *cluster) Leader(timeout time.Duration) string {
	c.t.Helper()
	var leader string
	c.waitFor(timeout, "exactly one metad leader", func() error {
		var leaders []string
		for _, n := range c.metads {
			p := c.procs[n]
			if !p.running() {
				continue
			}
			v, err := c.metric(p.base+"/metrics", "cairn_metad_raft_leader")
			if err != nil {
				return err
			}
			if v == 1 {
				leaders = append(leaders, n)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("members reporting leader: %v", leaders)
		}
		leader = leaders[0]
		return nil
	})
	return leader
}

// MetadMetric reads one unlabelled metric of a metad member.
func (c *cluster) MetadMetric(name, metric string) (float64, error) {
	return c.metric(c.proc(name).base+"/metrics", metric)
}

// GatewayMetric reads one unlabelled metric of the gateway.
func (c *cluster) GatewayMetric(metric string) float64 {
	c.t.Helper()
	v, err := c.metric(c.gatewayBase+"/_cairn/metrics", metric)
	if err != nil {
		c.t.Fatalf("gateway metric %s: %v", metric, err)
	}
	return v
}

// metric fetches a Prometheus text page and returns the value of the
// unlabelled sample name; a metric not (yet) exported reads as 0.
func (c *cluster) metric(url, name string) (float64, error) {
	return c.metricMatch(url, name+" ")
}

// metricLabelled is metric for a sample with labels: the first sample of
// name whatever its labels (one node's metrics carry one label set).
func (c *cluster) metricLabelled(url, name string) (float64, error) {
	return c.metricMatch(url, name+"{")
}

func (c *cluster) metricMatch(url, prefix string) (float64, error) {
	name := strings.TrimRight(prefix, " {")
	body, err := c.get(url)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		if strings.HasSuffix(prefix, "{") {
			_, rest, ok = strings.Cut(rest, "} ")
			if !ok {
				continue
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: metric %s: %w", url, name, err)
		}
		return v, nil
	}
	return 0, nil
}

func (c *cluster) get(url string) (string, error) {
	resp, err := c.health.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// S3 returns an aws-sdk-go-v2 client for the gateway: path style, static
// credentials, us-east-1, and the SDK's defaults otherwise (CRC32 request
// checksums, 3 attempts).
func (c *cluster) S3(opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(c.s3URL),
		Region:       "us-east-1",
		Credentials:  awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		UsePathStyle: true,
	}, opts...)
}

// waitFor polls cond until it returns nil, failing the test after timeout
// with the last error. It fails at once if a process died unexpectedly.
func (c *cluster) waitFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if crashed := c.crashed(); crashed != "" {
			c.t.Fatalf("waiting for %s: %s", what, crashed)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s; last: %v", timeout, what, err)
		}
		<-tick.C
	}
}

// crashed describes the processes that exited without being told to.
func (c *cluster) crashed() string {
	var out []string
	for _, n := range c.order {
		out = append(out, c.procs[n].crashes()...)
	}
	return strings.Join(out, "; ")
}

// problemLine matches what a daemon prints when it has a bug: a race report,
// a panic, a runtime fatal error.
var problemLine = regexp.MustCompile(`^(WARNING: DATA RACE|panic: |fatal error: )`)

// cleanup kills every process, then reports unexpected exits and races or
// panics in the logs, and on failure prints the tail of every log.
func (c *cluster) cleanup() {
	var running []*process
	for _, n := range c.order {
		p := c.procs[n]
		if p.running() {
			_ = p.signal(syscall.SIGKILL)
			running = append(running, p)
		}
	}
	for _, p := range running {
		select {
		case <-p.exited():
		case <-time.After(10 * time.Second):
			c.t.Errorf("%s (pid %d): still running 10s after SIGKILL", p.name, p.pid())
		}
	}
	if crashed := c.crashed(); crashed != "" {
		c.t.Errorf("processes exited without being killed or stopped: %s", crashed)
	}
	for _, n := range c.order {
		p := c.procs[n]
		if lines := grepLog(p.logPath, problemLine, 30); len(lines) > 0 {
			c.t.Errorf("%s log (%s) reports a bug:\n%s", p.name, p.logPath, strings.Join(lines, "\n"))
		}
	}
	if c.t.Failed() {
		for _, n := range c.order {
			p := c.procs[n]
			c.t.Logf("---- last lines of %s (%s):\n%s", p.name, p.logPath, tailFile(p.logPath, 40))
		}
	}
}

// grepLog returns the lines of path matching re, each with the after lines
// that follow it (the stack of a race report or panic), at most 200 lines.
func grepLog(path string, re *regexp.Regexp, after int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	left := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < 200 {
		line := sc.Text()
		if re.MatchString(line) {
			left = after + 1
		}
		if left > 0 {
			out = append(out, line)
			left--
		}
	}
	return out
}

// tailFile returns the last n lines of path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago, chosen below the kernel's ephemeral range: a port from that range,
// released when its daemon is killed, could meanwhile become the source
// port of some outgoing connection and stop the daemon from restarting on
// it.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		t.Fatalf("no room for test ports below the ephemeral range (starts at %d)", hi)
	}
	var (
		ports []int
		held  []net.Listener
	)
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("found only %d free ports in [%d, %d)", len(ports), lo, hi)
		}
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // taken (also by one we hold)
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	return ports
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				return v
			}
		}
	}
	return 32768
}

// process is one daemon: its command line, and its current run if any.
type process struct {
	name, bin  string
	args, env  []string
	logPath    string
	base       string // http://host:port serving healthPath
	healthPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current run has exited
	waitErr  error
	intended bool // the current run was signalled on purpose
	starts   int
	crashed  []string
}

// start runs the process, its output appended to its log file.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return errors.New("already running")
	}
	if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
		return err
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own copy
	p.starts++
	fmt.Fprintf(log, "==== e2e: start #%d at %s: %s %s\n", p.starts, time.Now().Format(time.StampMilli), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies (a -timeout panic skips t.Cleanup), the
	// kernel kills the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.waitErr, p.intended = cmd, done, nil, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.waitErr = err
		if !p.intended {
			p.crashed = append(p.crashed, fmt.Sprintf("%s (pid %d, run #%d) exited on its own: %v", p.name, cmd.Process.Pid, p.starts, err))
		}
		close(done)
	}()
	return nil
}

// signal sends sig to the current run and marks its exit as intended.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return errors.New("not running")
	}
	p.intended = true
	if log, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(log, "==== e2e: %v at %s\n", sig, time.Now().Format(time.StampMilli))
		log.Close()
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v: %w", sig, err)
	}
	return nil
}

// send sends sig to the current run without marking an exit as intended
// (SIGSTOP, SIGCONT).
func (p *process) send(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return errors.New("not running")
	}
	if log, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(log, "==== e2e: %v at %s\n", sig, time.Now().Format(time.StampMilli))
		log.Close()
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("send %v: %w", sig, err)
	}
	return nil
}

// exited is closed when the current run has exited (at once if none).
func (p *process) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *process) crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashed...)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
