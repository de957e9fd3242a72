// Package mount_test mounts buckets of an in-process Cairn cluster with
// the FUSE tools people use to treat a bucket as a folder — `rclone mount`
// (with --vfs-cache-mode writes) and s3fs — and does ordinary file work
// through them: files of 0 B to 40 MiB (-mount.big-mib) created, read, appended, truncated
// and deleted; directories made, listed, renamed and removed; sizes and
// modification times as `ls -l` shows them; files written by one tool read
// by the other and by the aws CLI; a directory of 1,100 files listed.
// Every result is checked through the mount and through S3.
//
// The tools run as subprocesses in the foreground, each with its own
// temporary HOME and nothing of the test's environment but PATH. Without
// /dev/fuse, fusermount3, rclone or s3fs the tests skip and say which is
// missing (`make test` installs the tools from Debian: scripts/test-deps).
package mount_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/cairnstore/cairn/internal/httpstatus"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cairnstore/cairn/gateway"
	"github.com/cairnstore/cairn/internal/testcluster"
)

const (
	// awaitTimeout bounds every wait for a state to show through S3 or a
	// mount: rclone uploads 1 s after a file is closed, and 200 MiB through
	// a -race gateway on a loaded 2-core machine takes a while.
	awaitTimeout = 4 * time.Minute
	// commandTimeout bounds one helper process (ls, aws, fusermount3).
	commandTimeout = 3 * time.Minute
	// mountTimeout bounds the wait for a tool to mount or to exit.
	mountTimeout = time.Minute
)

// env is the cluster's S3 endpoint as the tests see it.
type env struct {
	url string
	s3  *s3.Client
	rec *recorder

	mu   sync.Mutex
	used map[string]bool // the tools that mounted a bucket
}

// mount mounts bucket with tl (skipping the test when it cannot run here).
func (e *env) mount(t *testing.T, tl tool, bucket string) *mounted {
	t.Helper()
	m := tl.mount(t, e, bucket)
	e.mu.Lock()
	e.used[tl.name] = true
	e.mu.Unlock()
	return m
}

// mounted reports whether tool has mounted a bucket.
func (e *env) mounted(tool string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.used[tool]
}

// requireFUSE skips the test, naming what is missing, unless FUSE and the
// given tools are usable here.
func requireFUSE(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		missing = append(missing, fmt.Sprintf("/dev/fuse (%v)", err))
	} else {
		f.Close()
	}
	for _, name := range append([]string{"fusermount3"}, tools...) {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name+" (not on PATH)")
		}
	}
	if len(missing) > 0 {
		t.Skipf("mount tests need FUSE and the mount tools; missing: %s (scripts/test-deps installs rclone, s3fs and fuse3 from Debian)", strings.Join(missing, ", "))
	}
}

// startEnv boots a cluster with one gateway behind a recorder of answers
// and returns an S3 client for it.
func startEnv(t *testing.T) *env {
	t.Helper()
	// 200 MiB files (-mount.big-mib) rewritten a few times, with the garbage collector's
	// grace keeping the replaced chunks: more than the default 1 GiB a node.
	c := testcluster.New(t, testcluster.Config{Quiet: true, BlobCapacity: 8 << 30})
	srv := c.StartGateway(t, gateway.Config{})
	e := &env{rec: &recorder{}, used: map[string]bool{}}
	e.url = serve(t, e.rec.wrap(srv.Handler()))
	e.s3 = s3.New(s3.Options{
		BaseEndpoint: aws.String(e.url),
		Region:       "us-east-1",
		Credentials:  awscreds.NewStaticCredentialsProvider(testcluster.AccessKey, testcluster.SecretKey, ""),
		UsePathStyle: true,
	})
	return e
}

// serve serves h on a loopback port until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			t.Logf("shut down the recording server: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("recording server: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// answer is what the recorder keeps of one request.
type answer struct {
	method, path, query, userAgent string
	status                         int
}

func (a answer) String() string {
	return fmt.Sprintf("%s %s?%s -> %d (%s)", a.method, a.path, a.query, a.status, a.userAgent)
}

// recorder keeps the answers the gateway gave that a mount tool may have
// papered over: a tool that gets 501 or 400 often falls back to something
// slower or subtly different without telling its user.
type recorder struct {
	mu      sync.Mutex
	answers []answer
}

func (rec *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &httpstatus.Writer{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.answers = append(rec.answers, answer{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, userAgent: r.UserAgent(), status: sw.Code()})
		rec.mu.Unlock()
	})
}

// checkAnswers fails the test for every answer to a client whose
// User-Agent contains agent that no correct use of S3 by a mount tool
// should get: a 4xx other than 404 (a lookup of a missing name) and 412/304
// (conditions), or a 501. 5xx answers are logged: on a loaded 2-core
// machine metad can lose its leader, and "commit outcome unknown" is an
// honest 500 the tools retry.
func (rec *recorder) checkAnswers(t *testing.T, agent string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, a := range rec.answers {
		if !strings.Contains(strings.ToLower(a.userAgent), agent) {
			continue
		}
		n++
		switch {
		case a.status == http.StatusNotImplemented:
			t.Errorf("%s was answered NotImplemented: %s", agent, a)
		case a.status >= 500:
			t.Logf("%s was answered %d (retried by the tool): %s", agent, a.status, a)
		case a.status >= 400 && a.status != http.StatusNotFound && a.status != http.StatusPreconditionFailed:
			t.Errorf("%s was answered %d: %s", agent, a.status, a)
		}
	}
	if n == 0 {
		t.Errorf("the gateway saw no request from %s", agent)
	}
	t.Logf("%s sent %d requests", agent, n)
}

// ---- S3 side ----

// mkBucket creates a bucket through S3.
func (e *env) mkBucket(t *testing.T, name string) {
	t.Helper()
	// The SDK retries a create whose answer was lost (a 500 while metad
	// elects a leader); the retry then finds the bucket it made itself.
	var owned *types.BucketAlreadyOwnedByYou
	if _, err := e.s3.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil && !errors.As(err, &owned) {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// put stores an object through S3.
func (e *env) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if _, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// head is an object's size and ETag through S3; ok is false when the key
// does not exist.
func (e *env) head(ctx context.Context, bucket, key string) (size int64, etag string, meta map[string]string, ok bool, err error) {
	out, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey") {
			return 0, "", nil, false, nil
		}
		return 0, "", nil, false, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	return aws.ToInt64(out.ContentLength), aws.ToString(out.ETag), out.Metadata, true, nil
}

// digest is the SHA-256 and length of a stream.
func digest(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// getDigest reads an object through S3 and returns its digest.
func (e *env) getDigest(ctx context.Context, bucket, key string) (string, int64, error) {
	out, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", 0, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	d, n, err := digest(out.Body)
	if err != nil {
		return "", 0, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	return d, n, nil
}

// awaitObject waits until S3 serves exactly want at bucket/key (a tool may
// upload after close, rclone 5 s later) and returns its ETag.
func (e *env) awaitObject(t *testing.T, bucket, key string, want []byte) string {
	t.Helper()
	wantSum, wantLen := sum(want), int64(len(want))
	var etag string
	await(t, fmt.Sprintf("s3://%s/%s to hold the %d bytes written", bucket, key, wantLen), func() error {
		size, tag, _, ok, err := e.head(t.Context(), bucket, key)
		switch {
		case err != nil:
			return err
		case !ok:
			return errors.New("no such key")
		case size != wantLen:
			return fmt.Errorf("size %d, want %d", size, wantLen)
		}
		// The size can match an older version (or a half-written file):
		// only the bytes tell.
		d, n, err := e.getDigest(t.Context(), bucket, key)
		if err != nil {
			return err
		}
		if n != wantLen || d != wantSum {
			return fmt.Errorf("GET returned %d bytes with SHA-256 %s, want %d bytes with %s", n, d, wantLen, wantSum)
		}
		etag = tag
		return nil
	})
	return etag
}

// awaitGone waits until S3 has no object at bucket/key.
func (e *env) awaitGone(t *testing.T, bucket, key string) {
	t.Helper()
	await(t, fmt.Sprintf("s3://%s/%s to be deleted", bucket, key), func() error {
		size, _, _, ok, err := e.head(t.Context(), bucket, key)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("still there (%d bytes)", size)
		}
		return nil
	})
}

// keys lists every key under prefix (no delimiter) through S3.
func (e *env) keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out, nil
}

// awaitKeys waits until the keys under prefix are exactly want (sorted).
func (e *env) awaitKeys(t *testing.T, bucket, prefix string, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	await(t, fmt.Sprintf("the keys under s3://%s/%s to be %q", bucket, prefix, want), func() error {
		got, err := e.keys(t.Context(), bucket, prefix)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("keys are %q", got)
		}
		return nil
	})
}

// await polls cond until it returns nil, failing the test with what and
// cond's last error after awaitTimeout.
func await(t *testing.T, what string, cond func() error) {
	t.Helper()
	testcluster.WaitFor(t, awaitTimeout, what, cond)
}

// ---- local side ----

// pattern is n deterministic pseudo-random bytes for seed.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'm', 'o', 'u', 'n', 't'})
	_, _ = r.Read(b)
	return b
}

// checkFile checks that path holds exactly want: its size as stat sees
// it and its bytes as read through the mount.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	if fi.Size() != int64(len(want)) {
		t.Fatalf("stat %s: size %d, want %d", path, fi.Size(), len(want))
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	d, n, err := digest(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if n != int64(len(want)) || d != sum(want) {
		t.Fatalf("read %s: %d bytes with SHA-256 %s, want %d bytes with %s", path, n, d, len(want), sum(want))
	}
}

// checkMissing checks that path does not exist.
func checkMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lstat %s: %v, want it not to exist", path, err)
	}
}

// names is the sorted names in dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read directory %s: %v", dir, err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// result is how a helper process ended.
type result struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

// run runs a helper process (ls, aws...) with exactly env, under a
// deadline.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	return runCtx(t.Context(), env, name, args...)
}

// runCtx is run under ctx: cleanups, which run after t.Context() is
// cancelled, pass their own.
func runCtx(ctx context.Context, env []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, took: time.Since(start)}
}

// baseEnv is the environment of every subprocess: PATH, a private HOME,
// UTC and the C locale (ls's output is parsed).
func baseEnv(t *testing.T) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TZ=UTC", "LC_ALL=C"}
}

// isMounted reports whether dir is a mount point of a FUSE file system.
func isMounted(dir string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// id parent major:minor root mountpoint options ... - fstype source
		f := strings.Fields(line)
		if len(f) < 5 || unescapeMountinfo(f[4]) != dir {
			continue
		}
		if i := slices.Index(f, "-"); i >= 0 && i+1 < len(f) && strings.HasPrefix(f[i+1], "fuse") {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmount detaches dir: fusermount3 -u, and when the mount is busy a lazy
// -uz so that no mount outlives the test.
func unmount(t *testing.T, dir string) error {
	t.Helper()
	// Called from cleanups, when t.Context() is already cancelled.
	ctx := context.Background()
	env := []string{"PATH=" + os.Getenv("PATH")}
	res := runCtx(ctx, env, "fusermount3", "-u", dir)
	if res.err == nil {
		return nil
	}
	lazy := runCtx(ctx, env, "fusermount3", "-uz", dir)
	if lazy.err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v (%s); -uz: %v (%s)", dir, res.err, strings.TrimSpace(res.stderr), lazy.err, strings.TrimSpace(lazy.stderr))
	}
	t.Logf("fusermount3 -u %s failed (%v: %s); unmounted lazily", dir, res.err, strings.TrimSpace(res.stderr))
	return nil
}

// mountDir makes an empty directory to mount on. It is not a t.TempDir:
// removing that recursively while a mount is still attached would delete
// the bucket's objects through it; this one is removed (not recursively)
// only once nothing is mounted on it.
func mountDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-mount-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m, err := isMounted(dir); err != nil || m {
			t.Errorf("%s is still mounted (%v); not removing it", dir, err)
			return
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove mount point: %v", err)
		}
	})
	return dir
}

// mounted is a running mount tool.
type mounted struct {
	tool    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error         // valid once exited is closed
	log     string        // the tool's log file
	output  *bytes.Buffer // its stdout and stderr
	done    bool
}

// start runs a mount tool in the foreground and waits until dir is
// mounted. Stop (registered with t.Cleanup) unmounts and ends it.
func start(t *testing.T, tool, dir, logFile string, env []string, name string, args ...string) *mounted {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a signal to the test's group (Ctrl-C) must
	// not kill the tool before it is unmounted.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	m := &mounted{tool: tool, dir: dir, cmd: cmd, exited: make(chan struct{}), log: logFile, output: &out.buf}
	go func() {
		m.waitErr = cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() { m.stop(t) })
	deadline := time.Now().Add(mountTimeout)
	for {
		ok, err := isMounted(dir)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return m
		}
		select {
		case <-m.exited:
			t.Fatalf("%s exited before mounting %s: %v\n%s", tool, dir, m.waitErr, m.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not mount %s within %v\n%s", tool, dir, mountTimeout, m.logs())
		}
		time.Sleep(20 * time.Millisecond) // poll interval of a condition wait
	}
}

// lockedBuffer is a bytes.Buffer the tool's output goroutines can share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// logs is the tail of the tool's log and output, for failure messages.
func (m *mounted) logs() string {
	var b strings.Builder
	if m.log != "" {
		if data, err := os.ReadFile(m.log); err == nil {
			b.WriteString("--- " + m.tool + " log (tail):\n" + tail(string(data), 60))
		}
	}
	select {
	case <-m.exited:
		b.WriteString("--- " + m.tool + " output (tail):\n" + tail(m.output.String(), 30))
	default:
	}
	return b.String()
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n") + "\n"
}

// stop unmounts and waits for the tool to exit, killing it if it does not.
// Tests wait for their writes to show in S3 before they unmount: what a
// tool still holds when it is stopped is not part of what is tested.
func (m *mounted) stop(t *testing.T) {
	t.Helper()
	if m.done {
		return
	}
	m.done = true
	if t.Failed() {
		t.Logf("%s on %s:\n%s", m.tool, m.dir, m.logs())
	}
	if err := unmount(t, m.dir); err != nil {
		t.Errorf("unmount %s: %v", m.dir, err)
	}
	select {
	case <-m.exited:
	case <-time.After(mountTimeout):
		t.Errorf("%s did not exit within %v of the unmount; killing it", m.tool, mountTimeout)
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}
