package mount_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairnstore/cairn/internal/testcluster"
)

// testCross reads the file each tool wrote (in testRemount) through the
// other tool, with the modification time the writer gave it, and through
// the aws CLI.
func testCross(t *testing.T, e *env) {
	for _, writer := range tools {
		for _, reader := range tools {
			if reader.name == writer.name {
				continue
			}
			t.Run(writer.name+"-to-"+reader.name, func(t *testing.T) {
				requireFUSE(t, writer.name, reader.name)
				bucket := bucketOf(writer)
				size, _, _, ok, err := e.head(t.Context(), bucket, xferKey(writer))
				if err != nil || !ok {
					t.Skipf("%s did not leave s3://%s/%s (its own test failed?): %v", writer.name, bucket, xferKey(writer), err)
				}
				m := e.mount(t, reader, bucket)
				path := filepath.Join(m.dir, xferKey(writer))
				// Reads at offsets first, on a file the reader has not
				// cached: ranged GETs.
				checkReadAt(t, path, xferData(writer))
				checkFile(t, path, xferData(writer))
				// The other tool's stamped file keeps its modification
				// time: both read x-amz-meta-mtime.
				entries := lsl(t, reader, m.dir)
				checkEntry(t, entries, "stamped", 1234, stampTime, stampTime)
				t.Logf("%s read the %d-byte file %s wrote", reader.name, size, writer.name)
			})
		}
		t.Run(writer.name+"-to-awscli", func(t *testing.T) {
			requireFUSE(t, writer.name)
			if _, err := exec.LookPath("aws"); err != nil {
				t.Skipf("aws not found on PATH (%v): skipping the aws CLI read", err)
			}
			bucket := bucketOf(writer)
			if _, _, _, ok, err := e.head(t.Context(), bucket, xferKey(writer)); err != nil || !ok {
				t.Skipf("%s did not leave s3://%s/%s (its own test failed?): %v", writer.name, bucket, xferKey(writer), err)
			}
			out := filepath.Join(t.TempDir(), "copy")
			env := append(baseEnv(t),
				"AWS_ACCESS_KEY_ID="+testcluster.AccessKey,
				"AWS_SECRET_ACCESS_KEY="+testcluster.SecretKey,
				"AWS_DEFAULT_REGION=us-east-1",
				"AWS_CONFIG_FILE="+os.DevNull,
				"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
				"AWS_EC2_METADATA_DISABLED=true",
				"PYTHONDONTWRITEBYTECODE=1")
			res := run(t, env, "aws", "--endpoint-url", e.url, "s3", "cp", "s3://"+bucket+"/"+xferKey(writer), out)
			if res.err != nil {
				t.Fatalf("aws s3 cp: %v\n%s%s", res.err, res.stdout, res.stderr)
			}
			checkFile(t, out, xferData(writer))
		})
	}
}

// checkReadAt reads pieces of path at offsets out of order and compares
// them with want.
func checkReadAt(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	n := len(want)
	for _, r := range [][2]int{{n - 7, 7}, {n / 2, 4096}, {1, 1}, {n / 3, 100000}} {
		off, size := r[0], r[1]
		got := make([]byte, size)
		if _, err := f.ReadAt(got, int64(off)); err != nil {
			t.Fatalf("read %d bytes at %d of %s: %v", size, off, path, err)
		}
		if !bytes.Equal(got, want[off:off+size]) {
			t.Fatalf("%d bytes at %d of %s differ from what was written", size, off, path)
		}
	}
}

// listingFiles is the size of the directory listed: more than one page
// of 1,000 keys. (s3fs's `ls -l` asks for every file's attributes, a
// HEAD each, which sets this test's time.)
const listingFiles = 1100

// testListing puts 1,100 small objects under one prefix through S3 and has
// each tool list the directory on a fresh mount: readdir must return every
// name (more than one page of 1,000 keys), and `ls -l` every size. How long
// the listing took is logged, not asserted.
func testListing(t *testing.T, e *env) {
	if testing.Short() {
		t.Skip("the 1,100-file listing is skipped with -short")
	}
	const bucket = "mnt-listing"
	e.mkBucket(t, bucket)
	want := make([]string, listingFiles)
	for i := range want {
		want[i] = fmt.Sprintf("f%04d", i)
	}
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, listingFiles)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				_, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("many/" + name), Body: strings.NewReader(name)})
				if err != nil {
					errs <- fmt.Errorf("put many/%s: %w", name, err)
				}
			}
		}()
	}
	for _, name := range want {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A subdirectory, so the listing also has a common prefix.
	e.put(t, bucket, "many/sub/x", []byte("x"))
	t.Logf("put %d objects through S3 in %v", listingFiles+1, time.Since(start).Round(time.Millisecond))
	wantNames := append(slices.Clone(want), "sub")
	slices.Sort(wantNames)

	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			m := e.mount(t, tl, bucket)
			dir := filepath.Join(m.dir, "many")
			start := time.Now()
			got := names(t, dir)
			readdir := time.Since(start)
			if !slices.Equal(got, wantNames) {
				t.Fatalf("readdir of %d entries returned %d: %s", len(wantNames), len(got), diffNames(got, wantNames))
			}
			start = time.Now()
			entries := lsl(t, tl, dir)
			lsTook := time.Since(start)
			if len(entries) != len(wantNames) {
				t.Errorf("ls -l listed %d entries, want %d", len(entries), len(wantNames))
			}
			for _, name := range want {
				if en, ok := entries[name]; !ok || en.size != int64(len(name)) || en.dir {
					t.Errorf("ls -l shows %s as %+v (listed: %v), want a file of %d bytes", name, en, ok, len(name))
					break
				}
			}
			if !entries["sub"].dir {
				t.Errorf("ls -l does not show sub as a directory: %+v", entries["sub"])
			}
			t.Logf("%s on a fresh mount: readdir of %d entries took %v; ls -l then took %v", tl.name, len(got), readdir.Round(time.Millisecond), lsTook.Round(time.Millisecond))
		})
	}
}

// diffNames describes how got differs from want (both sorted), briefly.
func diffNames(got, want []string) string {
	var missing, extra []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			extra = append(extra, g)
		}
	}
	cut := func(s []string) []string { return s[:min(len(s), 10)] }
	return fmt.Sprintf("%d missing (first %q), %d unexpected (first %q)", len(missing), cut(missing), len(extra), cut(extra))
}
