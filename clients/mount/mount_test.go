package mount_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// TestMount boots one cluster and runs each tool's file and directory work
// on its own bucket, the tools side by side (an idle in-process cluster
// under -race costs a third of a core, so the package shares one); then
// each tool reads what the other wrote, and each lists a directory of
// 1,100 files.
func TestMount(t *testing.T) {
	requireFUSE(t)
	_, noRclone := exec.LookPath("rclone")
	_, noS3fs := exec.LookPath("s3fs")
	if noRclone != nil && noS3fs != nil {
		// With neither tool the whole test skips, rather than passing
		// with every subtest skipped.
		requireFUSE(t, "rclone", "s3fs")
	}
	e := startEnv(t)
	t.Run("tools", func(t *testing.T) {
		for _, tl := range tools {
			t.Run(tl.name, func(t *testing.T) {
				t.Parallel()
				testTool(t, e, tl)
			})
		}
	})
	t.Run("cross", func(t *testing.T) { testCross(t, e) })
	t.Run("listing", func(t *testing.T) { testListing(t, e) })
	for _, tl := range tools {
		t.Run("answers/"+tl.name, func(t *testing.T) {
			if !e.mounted(tl.name) {
				t.Skipf("%s never mounted (skipped above)", tl.name)
			}
			e.rec.checkAnswers(t, tl.name)
		})
	}
}

// bucketOf is the bucket a tool's own tests use.
func bucketOf(tl tool) string { return "mnt-" + tl.name }

// xferKey is the file each tool writes for the other to read.
func xferKey(tl tool) string { return "xfer/from-" + tl.name + ".bin" }

// xferData is its content.
func xferData(tl tool) []byte { return pattern(mib+7, uint64(len(tl.name))) }

// stampTime is the modification time given to a file, to be seen again
// after a remount and through the other tool.
var stampTime = time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)

func testTool(t *testing.T, e *env, tl tool) {
	bucket := bucketOf(tl)
	e.mkBucket(t, bucket)
	m := e.mount(t, tl, bucket)
	t.Run("files", func(t *testing.T) { testFiles(t, e, tl, bucket, m.dir) })
	t.Run("dirs", func(t *testing.T) { testDirs(t, e, tl, bucket, m.dir) })
	t.Run("remount", func(t *testing.T) { testRemount(t, e, tl, bucket, m) })
}

// testFiles creates, reads, appends to, patches in place, truncates and
// deletes files of 0 B, 1 B, 1 MiB and (without -short) -mount.big-mib,
// the last uploaded in parts, checking each state through the mount and
// through S3.
func testFiles(t *testing.T, e *env, tl tool, bucket, dir string) {
	big := bigFileBytes()
	sizes := []int{0, 1, mib, big}
	for i, n := range sizes {
		name := fmt.Sprintf("file-%d", n)
		t.Run(name, func(t *testing.T) {
			if n == big && testing.Short() {
				t.Skip("the largest file is skipped with -short")
			}
			path := filepath.Join(dir, name)
			data := pattern(n, uint64(i)+100)
			before := time.Now()
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatalf("create %s: %v", path, err)
			}
			checkFile(t, path, data)
			etag := e.awaitObject(t, bucket, name, data)
			if n == big && !strings.Contains(etag, "-") {
				// Both tools upload this size in parts (rclone past its
				// --s3-upload-cutoff, s3fs past its multipart_threshold,
				// 25 MB): a plain MD5 ETag means the multipart path went
				// untested.
				t.Errorf("ETag %s of the %d-byte file is not a multipart ETag", etag, n)
			}
			// The modification time rides in the object's user metadata,
			// given at CreateMultipartUpload for the multipart upload.
			checkMtimeMeta(t, e, bucket, name, before.Truncate(time.Second), time.Now())

			// Append: the tool rewrites the object (s3fs copies the
			// unchanged parts server-side with UploadPartCopy).
			extra := pattern(4*kib+3, uint64(i)+200)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatalf("open %s to append: %v", path, err)
			}
			if _, err := f.Write(extra); err != nil {
				t.Fatalf("append to %s: %v", path, err)
			}
			if err := f.Close(); err != nil {
				t.Fatalf("close %s after appending: %v", path, err)
			}
			data = append(data, extra...)
			checkFile(t, path, data)
			e.awaitObject(t, bucket, name, data)

			// A write in the middle of the file, without truncating it: S3
			// has no partial write, so the tool must upload the whole file
			// again. Once is enough for the largest file's cost.
			if n < big {
				patch := []byte("written in place")
				off := int64(len(data) / 3)
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatalf("open %s to patch: %v", path, err)
				}
				if _, err := f.WriteAt(patch, off); err != nil {
					t.Fatalf("write at %d of %s: %v", off, path, err)
				}
				if err := f.Close(); err != nil {
					t.Fatalf("close %s after patching: %v", path, err)
				}
				copy(data[off:], patch)
				checkFile(t, path, data)
				e.awaitObject(t, bucket, name, data)
			}

			// Truncate down, and (small files) up again, which pads with
			// zeros.
			data = data[:len(data)/2]
			truncate(t, path, int64(len(data)))
			checkFile(t, path, data)
			e.awaitObject(t, bucket, name, data)
			if n < big {
				data = append(data, make([]byte, 3*kib)...)
				truncate(t, path, int64(len(data)))
				checkFile(t, path, data)
				e.awaitObject(t, bucket, name, data)
			}

			if err := os.Remove(path); err != nil {
				t.Fatalf("delete %s: %v", path, err)
			}
			checkMissing(t, path)
			e.awaitGone(t, bucket, name)
		})
	}
}

// truncate sets the size of path as `truncate -s` does: open, then
// ftruncate. (s3fs 1.90 mishandles truncate(2) by path of a file nothing
// has open — it uploads zeros for the bytes kept, s3fs-fuse PR 2931 — which
// the README warns about.)
func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("open %s to truncate: %v", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Fatalf("truncate %s to %d: %v", path, size, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s after truncating: %v", path, err)
	}
}

// testDirs makes a tree with mkdir -p, lists it, renames a file and the
// whole tree (copy + delete underneath) and removes it with rm -r.
func testDirs(t *testing.T, e *env, tl tool, bucket, dir string) {
	at := func(p string) string { return filepath.Join(dir, p) }
	if err := os.MkdirAll(at("a/b/c"), 0o755); err != nil {
		t.Fatalf("mkdir -p a/b/c: %v", err)
	}
	f1, f2 := pattern(3000, 1), pattern(5000, 2)
	for p, data := range map[string][]byte{"a/b/f1": f1, "a/b/c/f2": f2} {
		if err := os.WriteFile(at(p), data, 0o644); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	checkNames(t, at("a"), "b")
	checkNames(t, at("a/b"), "c", "f1")
	checkNames(t, at("a/b/c"), "f2")
	// Waiting for the uploads before renaming the tree also steps around
	// rclone 1.60's VFS losing track of a file renamed with its directory
	// before its upload (rclone issue 6809: the file is uploaded under the
	// new name after rm -r).
	e.awaitObject(t, bucket, "a/b/f1", f1)
	e.awaitObject(t, bucket, "a/b/c/f2", f2)
	e.awaitKeys(t, bucket, "a/", withMarkers(tl, []string{"a/b/f1", "a/b/c/f2"}, "a/", "a/b/", "a/b/c/"))

	if err := os.Rename(at("a/b/f1"), at("a/f1")); err != nil {
		t.Fatalf("mv a/b/f1 a/f1: %v", err)
	}
	checkMissing(t, at("a/b/f1"))
	checkFile(t, at("a/f1"), f1)
	checkNames(t, at("a"), "b", "f1")
	e.awaitObject(t, bucket, "a/f1", f1)
	e.awaitGone(t, bucket, "a/b/f1")

	if err := os.Rename(at("a"), at("z")); err != nil {
		t.Fatalf("mv a z: %v", err)
	}
	checkMissing(t, at("a"))
	checkNames(t, at("z"), "b", "f1")
	checkNames(t, at("z/b"), "c")
	checkFile(t, at("z/f1"), f1)
	checkFile(t, at("z/b/c/f2"), f2)
	e.awaitKeys(t, bucket, "a/", nil)
	e.awaitKeys(t, bucket, "z/", withMarkers(tl, []string{"z/f1", "z/b/c/f2"}, "z/", "z/b/", "z/b/c/"))
	e.awaitObject(t, bucket, "z/b/c/f2", f2)

	if err := os.RemoveAll(at("z")); err != nil {
		t.Fatalf("rm -r z: %v", err)
	}
	checkMissing(t, at("z"))
	e.awaitKeys(t, bucket, "z/", nil)
}

// withMarkers adds the directory markers to keys when the tool writes them.
func withMarkers(tl tool, keys []string, markers ...string) []string {
	if tl.writesMarkers {
		return append(keys, markers...)
	}
	return keys
}

// checkNames checks the entries of a directory as readdir sees them.
func checkNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
}

// testRemount writes what must outlive the mount — an empty directory, a
// directory marker put through S3, a file with a set modification time, a
// file for the other tool — then mounts the bucket again and checks what
// `ls -l` and readdir show.
func testRemount(t *testing.T, e *env, tl tool, bucket string, m *mounted) {
	at := func(p string) string { return filepath.Join(m.dir, p) }
	if err := os.Mkdir(at("empty"), 0o755); err != nil {
		t.Fatalf("mkdir empty: %v", err)
	}
	// A marker as s3fs, the S3 console and `aws s3api put-object --key
	// dir/` make it.
	e.put(t, bucket, "marker/", nil)

	stamp := pattern(1234, 3)
	if err := os.WriteFile(at("stamped"), stamp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(at("stamped"), stampTime, stampTime); err != nil {
		t.Fatalf("set the modification time of stamped: %v", err)
	}
	before := time.Now()
	fresh := pattern(4321, 4)
	if err := os.WriteFile(at("fresh"), fresh, 0o644); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if err := os.MkdirAll(at("xfer"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(at(xferKey(tl)), xferData(tl), 0o644); err != nil {
		t.Fatal(err)
	}
	e.awaitObject(t, bucket, "fresh", fresh)
	e.awaitObject(t, bucket, xferKey(tl), xferData(tl))
	e.awaitObject(t, bucket, "stamped", stamp)
	checkMtimeMeta(t, e, bucket, "stamped", stampTime, stampTime)
	_, _, _, emptyMarker, err := e.head(t.Context(), bucket, "empty/")
	if err != nil {
		t.Fatal(err)
	}
	if emptyMarker != tl.writesMarkers {
		t.Errorf("after mkdir empty the marker empty/ exists: %v; %s is expected to write markers: %v", emptyMarker, tl.name, tl.writesMarkers)
	}

	m.stop(t)
	m = e.mount(t, tl, bucket)
	at = func(p string) string { return filepath.Join(m.dir, p) }

	// An empty directory is a marker object or nothing: it survives a
	// remount exactly when the tool stored a marker.
	fi, err := os.Stat(at("empty"))
	switch {
	case emptyMarker && err != nil:
		t.Errorf("the empty directory with a marker did not survive the remount: %v", err)
	case emptyMarker && !fi.IsDir():
		t.Errorf("empty is %v after the remount, want a directory", fi.Mode())
	case !emptyMarker && !errors.Is(err, fs.ErrNotExist):
		t.Errorf("the empty directory without a marker: stat says %v, %v; want it gone after the remount", fi, err)
	case !emptyMarker:
		t.Logf("%s stored no marker for an empty directory: it is gone after the remount (documented in the README)", tl.name)
	}
	if fi, err := os.Stat(at("marker")); err != nil || !fi.IsDir() {
		t.Errorf("the marker put through S3 is not a directory on the mount: %v, %v", fi, err)
	} else {
		checkNames(t, at("marker"))
	}

	// ls -l, after the remount, shows what was written: sizes, and the
	// modification time set (or the time of writing).
	entries := lsl(t, tl, m.dir)
	checkEntry(t, entries, "stamped", int64(len(stamp)), stampTime, stampTime)
	checkEntry(t, entries, "fresh", int64(len(fresh)), before.Truncate(time.Second), after)
	if !entries["empty"].dir && emptyMarker {
		t.Errorf("ls -l does not show empty as a directory: %+v", entries["empty"])
	}
	if !entries["marker"].dir {
		t.Errorf("ls -l does not show marker as a directory: %+v", entries["marker"])
	}
	checkFile(t, at("stamped"), stamp)
	checkFile(t, at("fresh"), fresh)

	// rmdir of a marker directory: s3fs deletes the marker; rclone 1.60
	// does not, and the directory is back on the next mount (README).
	if err := os.Remove(at("marker")); err != nil {
		t.Fatalf("rmdir marker: %v", err)
	}
	checkMissing(t, at("marker"))
	if tl.writesMarkers {
		e.awaitGone(t, bucket, "marker/")
	} else if _, _, _, ok, err := e.head(t.Context(), bucket, "marker/"); err == nil && ok {
		t.Logf("%s left the marker marker/ in place after rmdir", tl.name)
	}
}

// checkMtimeMeta waits until the object's x-amz-meta-mtime, where both
// tools keep the modification time (seconds since the epoch; rclone adds a
// fraction), is between lo and hi to the second. Setting the time of a file
// already uploaded is a copy of the object onto itself with new metadata.
func checkMtimeMeta(t *testing.T, e *env, bucket, key string, lo, hi time.Time) {
	t.Helper()
	await(t, fmt.Sprintf("the mtime of s3://%s/%s in its metadata to be in [%v, %v]", bucket, key, lo, hi), func() error {
		_, _, meta, ok, err := e.head(t.Context(), bucket, key)
		if err != nil || !ok {
			return fmt.Errorf("head: exists %v, %v", ok, err)
		}
		sec, _, _ := strings.Cut(meta["mtime"], ".")
		got, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || got < lo.Unix() || got > hi.Unix() {
			return fmt.Errorf("x-amz-meta-mtime %q (metadata %v)", meta["mtime"], meta)
		}
		return nil
	})
}

// lsEntry is one line of `ls -l`.
type lsEntry struct {
	dir   bool
	size  int64
	mtime time.Time
}

// lsl runs `ls -l --time-style=full-iso` on dir and parses its lines.
// rclone 1.60 answers getxattr (which ls calls for its ACL and SELinux
// columns) with EIO, so ls may exit 1 with "Input/output error" for some
// names while printing every line; that is tolerated for rclone only, and
// every line is still checked.
func lsl(t *testing.T, tl tool, dir string) map[string]lsEntry {
	t.Helper()
	res := run(t, baseEnv(t), "ls", "-l", "--time-style=full-iso", dir)
	if res.err != nil {
		tolerated := tl.name == "rclone"
		for _, line := range strings.Split(strings.TrimSpace(res.stderr), "\n") {
			if !strings.HasSuffix(line, "Input/output error") {
				tolerated = false
			}
		}
		if !tolerated {
			t.Fatalf("ls -l %s: %v\n%s", dir, res.err, res.stderr)
		}
		t.Logf("ls -l %s: %v (getxattr answered EIO by rclone)", dir, res.err)
	}
	out := map[string]lsEntry{}
	for _, line := range strings.Split(res.stdout, "\n") {
		// -rw-r--r-- 1 root root 1234 2021-05-06 07:08:09.000000000 +0000 stamped
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		size, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatalf("ls -l line %q: size: %v", line, err)
		}
		mt, err := time.Parse("2006-01-02 15:04:05.999999999 -0700", f[5]+" "+f[6]+" "+f[7])
		if err != nil {
			t.Fatalf("ls -l line %q: time: %v", line, err)
		}
		out[strings.Join(f[8:], " ")] = lsEntry{dir: strings.HasPrefix(f[0], "d"), size: size, mtime: mt}
	}
	return out
}

// checkEntry checks one name of `ls -l`: its size, and its modification
// time between lo and hi (s3fs keeps whole seconds).
func checkEntry(t *testing.T, entries map[string]lsEntry, name string, size int64, lo, hi time.Time) {
	t.Helper()
	e, ok := entries[name]
	if !ok {
		t.Errorf("ls -l does not list %s", name)
		return
	}
	if e.size != size {
		t.Errorf("ls -l shows %s with size %d, want %d", name, e.size, size)
	}
	if mt := e.mtime.Truncate(time.Second); mt.Before(lo.Truncate(time.Second)) || mt.After(hi) {
		t.Errorf("ls -l shows %s modified at %v, want between %v and %v", name, e.mtime, lo, hi)
	}
}
