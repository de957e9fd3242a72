package clients_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testAWSCLI drives the aws CLI (v1, default settings) through the S3
// commands people use — mb, cp (single and multipart), ls, sync, rm, rb,
// presign — and the s3api calls behind them, over http and https.
func testAWSCLI(t *testing.T, eps []*endpoint) {
	requireTool(t, "aws")
	for _, ep := range eps {
		t.Run(ep.scheme, func(t *testing.T) {
			t.Parallel()
			testAWSCLIOn(t, ep)
		})
	}
}

// cli runs aws commands against one endpoint.
type cli struct {
	ep   *endpoint
	home string // HOME of the process: empty but for the config files
	dir  string // working directory, where local files live
}

func newCLI(t *testing.T, ep *endpoint) *cli {
	return &cli{ep: ep, home: t.TempDir(), dir: t.TempDir()}
}

// run runs `aws --endpoint-url URL args...` with the clean environment
// plus env.
func (c *cli) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	res := run(t, c.dir, c.ep.clientEnv(t, c.home, env...), "aws", append([]string{"--endpoint-url", c.ep.url}, args...)...)
	t.Logf("aws %s (%v, %v CPU)", strings.Join(args, " "), res.took.Round(time.Millisecond), res.cpu.Round(time.Millisecond))
	return res
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(t *testing.T, args ...string) string {
	t.Helper()
	res := c.run(t, nil, args...)
	if res.err != nil {
		t.Fatalf("aws %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), res.err, res.stderr, res.stdout)
	}
	return res.stdout
}

// fails runs a command that must fail (non-zero exit) and returns its
// stderr.
func (c *cli) fails(t *testing.T, args ...string) string {
	t.Helper()
	res := c.run(t, nil, args...)
	if res.err == nil {
		t.Fatalf("aws %s succeeded, want a failure\nstdout:\n%s", strings.Join(args, " "), res.stdout)
	}
	var ee *exec.ExitError
	if !errors.As(res.err, &ee) || ee.ExitCode() <= 0 {
		t.Fatalf("aws %s did not exit with an error status: %v\nstderr:\n%s", strings.Join(args, " "), res.err, res.stderr)
	}
	return res.stderr
}

// json runs a command that must succeed and decodes its JSON output.
func (c *cli) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out := c.ok(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("aws %s: decode output: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// path is a local path under the working directory.
func (c *cli) path(name string) string { return filepath.Join(c.dir, filepath.FromSlash(name)) }

// headObject is what `s3api head-object` prints (the fields checked).
type headObject struct {
	ContentLength int64
	ETag          string
	ChecksumCRC32 string
	ChecksumType  string
	ContentRange  string
}

// listV2 is what `s3api list-objects-v2` prints (the fields checked).
type listV2 struct {
	Contents []struct {
		Key  string
		Size int64
		ETag string
	}
	CommonPrefixes []struct{ Prefix string }
}

func (l listV2) keys() []string {
	var ks []string
	for _, o := range l.Contents {
		ks = append(ks, o.Key)
	}
	return ks
}

func testAWSCLIOn(t *testing.T, ep *endpoint) {
	c := newCLI(t, ep)
	bucket := "cli-" + ep.scheme
	s3url := func(key string) string { return "s3://" + bucket + "/" + key }
	small := pattern(1500, 1)

	if !t.Run("mb", func(t *testing.T) {
		out := c.ok(t, "s3", "mb", "s3://"+bucket)
		if !strings.Contains(out, "make_bucket: "+bucket) {
			t.Errorf("s3 mb printed %q", out)
		}
		if out := c.ok(t, "s3", "ls"); !strings.Contains(out, " "+bucket+"\n") {
			t.Errorf("s3 ls does not list the new bucket:\n%s", out)
		}
	}) {
		return
	}

	t.Run("cp small", func(t *testing.T) {
		writeFile(t, c.path("small.txt"), small)
		c.ok(t, "s3", "cp", "small.txt", s3url("cp/small.txt"))
		checkUploadFraming(t, ep, "/"+bucket+"/cp/small.txt")
		c.ok(t, "s3", "cp", s3url("cp/small.txt"), "small.out")
		if got := readFile(t, c.path("small.out")); !bytes.Equal(got, small) {
			t.Fatalf("downloaded %d bytes differ from the %d uploaded", len(got), len(small))
		}
		var h headObject
		c.json(t, &h, "s3api", "head-object", "--bucket", bucket, "--key", "cp/small.txt", "--checksum-mode", "ENABLED")
		if h.ContentLength != int64(len(small)) || h.ETag != quotedMD5(small) {
			t.Errorf("head-object: length %d ETag %s, want %d %s", h.ContentLength, h.ETag, len(small), quotedMD5(small))
		}
		if h.ChecksumCRC32 != crc32Base64(small) {
			t.Errorf("head-object ChecksumCRC32 %q, want %q (the CLI's default CRC32)", h.ChecksumCRC32, crc32Base64(small))
		}
	})

	t.Run("cp multipart", func(t *testing.T) {
		const size, partSize = 40 << 20, 8 << 20 // the CLI's multipart threshold and part size are 8 MiB
		big := pattern(size, 2)
		writeFile(t, c.path("big.bin"), big)
		c.ok(t, "s3", "cp", "big.bin", s3url("cp/big.bin"))
		path := "/" + bucket + "/cp/big.bin"
		if n := len(ep.rec.find(http.MethodPost, path)); n < 2 {
			t.Errorf("the gateway saw %d POSTs to %s; a multipart upload has two (create, complete)", n, path)
		}
		if n := ep.rec.uploads(path); n != size/partSize {
			t.Errorf("the gateway saw %d part uploads, want %d:%s", n, size/partSize, describe(ep.rec.find(http.MethodPut, path)))
		}
		checkUploadFraming(t, ep, path)
		c.ok(t, "s3", "cp", s3url("cp/big.bin"), "big.out")
		if got := readFile(t, c.path("big.out")); sha256Hex(got) != sha256Hex(big) {
			t.Fatalf("downloaded %d bytes (sha256 %s) differ from the %d uploaded (%s)", len(got), sha256Hex(got), len(big), sha256Hex(big))
		}
		var h headObject
		c.json(t, &h, "s3api", "head-object", "--bucket", bucket, "--key", "cp/big.bin", "--checksum-mode", "ENABLED")
		if h.ContentLength != size || !strings.HasSuffix(h.ETag, "-5\"") {
			t.Errorf("head-object: length %d ETag %s, want %d and a 5-part ETag", h.ContentLength, h.ETag, size)
		}
		t.Logf("multipart checksum: %s %s", h.ChecksumType, h.ChecksumCRC32)
		switch want := map[string]string{"COMPOSITE": compositeCRC32(big, partSize), "FULL_OBJECT": crc32Base64(big)}[h.ChecksumType]; {
		case want == "":
			t.Errorf("head-object ChecksumType %q, CRC32 %q: want COMPOSITE or FULL_OBJECT", h.ChecksumType, h.ChecksumCRC32)
		case h.ChecksumCRC32 != want:
			t.Errorf("head-object %s ChecksumCRC32 %q, want %q", h.ChecksumType, h.ChecksumCRC32, want)
		}
	})

	t.Run("ls", func(t *testing.T) {
		files := map[string][]byte{
			"ls/a.txt": pattern(10, 3), "ls/b/c.txt": pattern(20, 4), "ls/b/d.txt": pattern(30, 5),
			"ls/e/f.txt": pattern(40, 6), "lsx.txt": pattern(50, 7),
		}
		for name, data := range files {
			writeFile(t, c.path(filepath.Join("lstree", name)), data)
		}
		c.ok(t, "s3", "cp", "lstree", "s3://"+bucket+"/", "--recursive")

		// A prefix that is not a "directory": one common prefix, one object.
		got := lsLines(c.ok(t, "s3", "ls", s3url("ls")))
		if want := []string{"PRE ls/", "50 lsx.txt"}; !slices.Equal(got, want) {
			t.Errorf("s3 ls %s:\n got %q\nwant %q", s3url("ls"), got, want)
		}
		got = lsLines(c.ok(t, "s3", "ls", s3url("ls/")))
		if want := []string{"PRE b/", "PRE e/", "10 a.txt"}; !slices.Equal(got, want) {
			t.Errorf("s3 ls %s:\n got %q\nwant %q", s3url("ls/"), got, want)
		}
		got = lsLines(c.ok(t, "s3", "ls", s3url("ls/"), "--recursive"))
		if want := []string{"10 ls/a.txt", "20 ls/b/c.txt", "30 ls/b/d.txt", "40 ls/e/f.txt"}; !slices.Equal(got, want) {
			t.Errorf("s3 ls %s --recursive:\n got %q\nwant %q", s3url("ls/"), got, want)
		}

		var l listV2
		c.json(t, &l, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "ls/", "--delimiter", "/")
		var prefixes []string
		for _, p := range l.CommonPrefixes {
			prefixes = append(prefixes, p.Prefix)
		}
		if !slices.Equal(l.keys(), []string{"ls/a.txt"}) || !slices.Equal(prefixes, []string{"ls/b/", "ls/e/"}) {
			t.Errorf("list-objects-v2 --prefix ls/ --delimiter /: keys %q, common prefixes %q; want [ls/a.txt] and [ls/b/ ls/e/]", l.keys(), prefixes)
		}
	})

	t.Run("sync", func(t *testing.T) {
		tree := c.path("synctree")
		for name, data := range map[string][]byte{
			"a.txt": pattern(100, 8), "sub/b.txt": pattern(200, 9), "sub/deeper/c.txt": pattern(300, 10), "d.bin": pattern(200<<10, 11),
		} {
			writeFile(t, filepath.Join(tree, name), data)
		}
		c.ok(t, "s3", "sync", "synctree", s3url("sync/"))
		c.checkMirror(t, bucket, "sync/", tree)

		// Change one file (a new size, so sync cannot miss it), delete
		// one, add one.
		writeFile(t, filepath.Join(tree, "sub/b.txt"), pattern(250, 12))
		if err := os.Remove(filepath.Join(tree, "d.bin")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(tree, "sub/new.txt"), pattern(5, 13))
		out := c.ok(t, "s3", "sync", "synctree", s3url("sync/"), "--delete")
		for _, want := range []string{"delete: " + s3url("sync/d.bin"), "upload: synctree/sub/b.txt to " + s3url("sync/sub/b.txt"), "upload: synctree/sub/new.txt to " + s3url("sync/sub/new.txt")} {
			if !strings.Contains(out, want) {
				t.Errorf("s3 sync --delete output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "a.txt") || strings.Contains(out, "c.txt") {
			t.Errorf("s3 sync --delete copied unchanged files:\n%s", out)
		}
		c.checkMirror(t, bucket, "sync/", tree)

		// Nothing changed: a third sync must transfer nothing (it compares
		// sizes and the listing's LastModified).
		if out := c.ok(t, "s3", "sync", "synctree", s3url("sync/"), "--delete"); strings.TrimSpace(out) != "" {
			t.Errorf("s3 sync of an unchanged tree did something:\n%s", out)
		}
	})

	t.Run("rm recursive", func(t *testing.T) {
		out := c.ok(t, "s3", "rm", s3url("ls/"), "--recursive")
		if n := strings.Count(out, "delete: "); n != 4 {
			t.Errorf("s3 rm --recursive deleted %d objects, want 4:\n%s", n, out)
		}
		var l listV2
		c.json(t, &l, "s3api", "list-objects-v2", "--bucket", bucket)
		for _, k := range l.keys() {
			if strings.HasPrefix(k, "ls/") {
				t.Errorf("%s survived s3 rm --recursive", k)
			}
		}
		if !slices.Contains(l.keys(), "lsx.txt") {
			t.Errorf("s3 rm %s --recursive removed lsx.txt too; keys left %q", s3url("ls/"), l.keys())
		}
	})

	t.Run("s3api", func(t *testing.T) {
		data := pattern(100<<10, 14)
		writeFile(t, c.path("api.bin"), data)
		var put struct{ ETag string }
		c.json(t, &put, "s3api", "put-object", "--bucket", bucket, "--key", "api/obj.bin", "--body", "api.bin")
		if put.ETag != quotedMD5(data) {
			t.Errorf("put-object ETag %s, want %s", put.ETag, quotedMD5(data))
		}
		checkUploadFraming(t, ep, "/"+bucket+"/api/obj.bin")
		var h headObject
		c.json(t, &h, "s3api", "head-object", "--bucket", bucket, "--key", "api/obj.bin", "--checksum-mode", "ENABLED")
		if h.ContentLength != int64(len(data)) || h.ETag != put.ETag || h.ChecksumCRC32 != crc32Base64(data) {
			t.Errorf("head-object: %+v, want length %d, ETag %s, CRC32 %s", h, len(data), put.ETag, crc32Base64(data))
		}
		var g headObject
		c.json(t, &g, "s3api", "get-object", "--bucket", bucket, "--key", "api/obj.bin", "--range", "bytes=1000-1999", "range.out")
		if want := "bytes 1000-1999/" + strconv.Itoa(len(data)); g.ContentRange != want || g.ContentLength != 1000 {
			t.Errorf("get-object --range: Content-Range %q, length %d; want %q, 1000", g.ContentRange, g.ContentLength, want)
		}
		if got := readFile(t, c.path("range.out")); !bytes.Equal(got, data[1000:2000]) {
			t.Errorf("get-object --range wrote %d bytes that differ from bytes 1000-1999", len(got))
		}
	})

	t.Run("presign", func(t *testing.T) {
		// Uses cp/small.txt from "cp small".
		t.Run("sigv4", func(t *testing.T) {
			cfg := filepath.Join(c.home, "aws-config-s3v4")
			writeFile(t, cfg, []byte("[default]\ns3 =\n    signature_version = s3v4\n"))
			res := c.run(t, []string{"AWS_CONFIG_FILE=" + cfg}, "s3", "presign", s3url("cp/small.txt"), "--region", "us-east-1", "--expires-in", "600")
			if res.err != nil {
				t.Fatalf("s3 presign: %v\n%s", res.err, res.stderr)
			}
			u := strings.TrimSpace(res.stdout)
			if !strings.Contains(u, "X-Amz-Algorithm=AWS4-HMAC-SHA256") {
				t.Fatalf("not a SigV4 presigned URL: %s", u)
			}
			status, body := fetch(t, ep, u)
			if status != http.StatusOK || !bytes.Equal(body, small) {
				t.Fatalf("GET %s: %d, %d bytes (want 200 and the %d bytes uploaded): %.300s", u, status, len(body), len(small), body)
			}
		})
		t.Run("sigv2", func(t *testing.T) {
			// The CLI v1 default: SigV2 query parameters.
			u := strings.TrimSpace(c.ok(t, "s3", "presign", s3url("cp/small.txt"), "--expires-in", "600"))
			if !strings.Contains(u, "AWSAccessKeyId=") || !strings.Contains(u, "Signature=") {
				t.Fatalf("not a SigV2 presigned URL: %s", u)
			}
			// The gateway accepts SigV2 since ccf1a9f.
			status, body := fetch(t, ep, u)
			if status != http.StatusOK || !bytes.Equal(body, small) {
				t.Fatalf("GET %s: %d, %d bytes (want 200 and the %d bytes uploaded): %.300s", u, status, len(body), len(small), body)
			}
		})
	})

	t.Run("errors", func(t *testing.T) {
		stderr := c.fails(t, "s3", "cp", s3url("no/such/key"), "missing.out")
		if !strings.Contains(stderr, "Not Found") && !strings.Contains(stderr, "404") {
			t.Errorf("s3 cp of a missing key: stderr lacks Not Found/404:\n%s", stderr)
		}
		if _, err := os.Stat(c.path("missing.out")); err == nil {
			t.Errorf("s3 cp of a missing key left a local file")
		}

		// An upload refused before its body is read. The CLI sends it
		// with "Expect: 100-continue"; over https, on a fresh
		// connection, it used to wait for an answer the gateway never
		// gave until commandTimeout (see TestExpectContinueEarlyError in gateway).
		stderr = c.fails(t, "s3", "cp", "small.txt", "s3://no-such-bucket-"+ep.scheme+"/x")
		if !strings.Contains(stderr, "NoSuchBucket") {
			t.Errorf("s3 cp to a missing bucket: stderr lacks NoSuchBucket:\n%s", stderr)
		}

		rb := "cli-rb-" + ep.scheme
		c.ok(t, "s3", "mb", "s3://"+rb)
		c.ok(t, "s3", "cp", "small.txt", "s3://"+rb+"/x")
		stderr = c.fails(t, "s3", "rb", "s3://"+rb)
		if !strings.Contains(stderr, "BucketNotEmpty") {
			t.Errorf("s3 rb of a non-empty bucket: stderr lacks BucketNotEmpty:\n%s", stderr)
		}
		c.ok(t, "s3", "rb", "s3://"+rb, "--force")
		stderr = c.fails(t, "s3api", "head-bucket", "--bucket", rb)
		if !strings.Contains(stderr, "Not Found") && !strings.Contains(stderr, "404") {
			t.Errorf("head-bucket after s3 rb --force: stderr lacks Not Found/404:\n%s", stderr)
		}
	})
}

// checkMirror checks that the objects under prefix are exactly the files
// under dir: same names, sizes and MD5 ETags (single-part uploads).
func (c *cli) checkMirror(t *testing.T, bucket, prefix, dir string) {
	t.Helper()
	want := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		want[prefix+filepath.ToSlash(rel)] = strconv.Itoa(len(b)) + " " + quotedMD5(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var l listV2
	c.json(t, &l, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix)
	got := map[string]string{}
	for _, o := range l.Contents {
		got[o.Key] = strconv.FormatInt(o.Size, 10) + " " + o.ETag
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: listed as %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is listed but is not in the local tree", k)
		}
	}
}

// lsLines reduces `aws s3 ls` output to "PRE prefix" and "size name"
// lines (dropping dates).
func lsLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "PRE":
			lines = append(lines, "PRE "+f[1])
		case len(f) >= 4:
			lines = append(lines, f[2]+" "+strings.Join(f[3:], " "))
		case len(f) > 0:
			lines = append(lines, "?? "+l)
		}
	}
	return lines
}

func quotedMD5(b []byte) string {
	s := md5.Sum(b)
	return `"` + hex.EncodeToString(s[:]) + `"`
}

// fetch GETs u with Go's net/http (trusting the endpoint's certificate).
func fetch(t *testing.T, ep *endpoint, u string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ep.httpClient(t).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, body
}
