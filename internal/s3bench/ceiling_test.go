package s3bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The MD5 ceiling server answers the body's MD5 whichever hash it picks
// (the MD5 lanes once several bodies are in flight).
func TestCeilingMD5Server(t *testing.T) {
	body := NewPattern(3, 4<<20).Bytes()[:4<<20]
	srv, err := startCeilingServers(body)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			b := body[i*1000:]
			for _, path := range []string{"/md5", "/crypto-md5"} {
				req, _ := http.NewRequest(http.MethodPut, srv.origin+path, bytes.NewReader(b))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if got, want := resp.Header.Get("ETag"), fmt.Sprintf("%q", fmt.Sprintf("%x", md5.Sum(b))); got != want {
					t.Errorf("PUT %s of %d bytes: ETag %s, want %s", path, len(b), got, want)
				}
			}
		})
	}
	wg.Wait()
}

func TestCeilingsNames(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for a few seconds")
	}
	dir := t.TempDir()
	cs, err := Ceilings(context.Background(), CeilingConfig{Size: 1 << 20, Concurrency: 4, Duration: 50 * time.Millisecond, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, c := range cs {
		if c.MiBPerSec <= 0 {
			t.Errorf("%s c%d: %v MiB/s", c.Name, c.Concurrency, c.MiBPerSec)
		}
		got[fmt.Sprintf("%s c%d", c.Name, c.Concurrency)] = true
	}
	for _, want := range []string{"http-put c1", "http-put c4", "http-put-md5 c1", "http-put-md5 c4", "http-put-crypto-md5 c4",
		"http-get-2hop c4", "rs-encode-4+2 c1", "md5 c1", "md5-simd c4", "md5-lanes c4", "http-put-unix c4", "http-get-2hop-unix c4", "disk-write c4"} {
		if strings.HasSuffix(strings.Fields(want)[0], "-unix") && runtime.GOOS != "linux" {
			continue
		}
		if !got[want] {
			t.Errorf("no ceiling %s among %v", want, got)
		}
	}
}

// The disk ceiling's files are synced and removed, and a run that cannot
// write says so.
func TestDiskWriteCeiling(t *testing.T) {
	dir := t.TempDir()
	mib, _, err := measureDiskWrite(context.Background(), dir, 1<<20+100, 2, 20*time.Millisecond)
	if err != nil || mib <= 0 {
		t.Fatalf("disk-write: %v MiB/s, %v", mib, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("disk-write left %d files behind", len(left))
	}
	if _, _, err := measureDiskWrite(context.Background(), filepath.Join(dir, "absent"), 1<<20, 1, time.Millisecond); err == nil {
		t.Error("disk-write into a missing directory: no error")
	}
}
