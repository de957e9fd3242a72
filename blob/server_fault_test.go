package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/chunk"
)

// A PUT whose connection drops halfway through the body leaves no chunk
// and no temp file once the handler is done.
func TestPutConnectionDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		// request returns the head and the first half of the body of an
		// upload of the chunk file c.
		request func(id chunk.ID, c []byte) []byte
	}{
		{
			name: "content-length",
			request: func(id chunk.ID, c []byte) []byte {
				b := fmt.Appendf(nil, "PUT /chunks/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", id, len(c))
				return append(b, c[:len(c)/2]...)
			},
		},
		{
			name: "chunked",
			// One complete HTTP chunk, then half of the next.
			request: func(id chunk.ID, c []byte) []byte {
				b := fmt.Appendf(nil, "PUT /chunks/%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", id)
				q := len(c) / 4
				b = fmt.Appendf(b, "%x\r\n", q)
				b = append(b, c[:q]...)
				b = fmt.Appendf(b, "\r\n%x\r\n", len(c)-q)
				return append(b, c[q:2*q]...)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := &faultStorage{putStarted: make(chan chunk.ID, 1), putDone: make(chan error, 1)}
			n := startNode(t, Config{WrapStorage: func(s Storage) Storage { fs.Storage = s; return fs }})
			id := randomID(t, 5)

			conn, err := net.Dial("tcp", n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(tc.request(id, makeChunk(t, id, 200000))); err != nil {
				t.Fatal(err)
			}
			// The store is writing the temp file: drop the connection.
			await(t, fs.putStarted, "the store to start reading the body")
			if got := tmpFiles(t, n.cfg.DataDir); len(got) != 1 {
				t.Fatalf("temp files during the upload: %v, want one", got)
			}
			conn.Close()

			err = await(t, fs.putDone, "the PUT handler's store call to return")
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Put of a dropped upload: err = %v, want ErrIncomplete", err)
			}
			if got := tmpFiles(t, n.cfg.DataDir); len(got) != 0 {
				t.Fatalf("temp files left: %v", got)
			}
			if _, err := n.Store().Stat(context.Background(), id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Stat after dropped upload: err = %v, want ErrNotFound", err)
			}
			if u := n.Store().Usage(); u.Used != 0 || u.Chunks != 0 {
				t.Fatalf("usage after dropped upload: %+v", u)
			}
		})
	}
}

// Ids that are not chunk ids are refused with 400 by every method, and
// nothing outside the data directory is touched.
func TestBadIDs(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	// Bait: files an escaping path could reach.
	for _, name := range []string{"x", "etc", "passwd"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("bait"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, Config{DataDir: dataDir, ScrubRate: ScrubOff}) // the scrubber keeps a cursor file
	before := snapshotTree(t, root)

	valid := randomID(t, 1).String()
	for _, raw := range []string{
		"",
		"../x",
		"..%2fx",
		"..%2f..%2fetc",
		"..%2F..%2F..%2Fetc%2Fpasswd",
		"%2e%2e%2fx",
		"%2e%2e",
		"..",
		".",
		"/etc/passwd",
		"%2Fetc%2Fpasswd",
		"chunks/../../x",
		strings.ToUpper(valid[:32]) + ".1",
		valid[:32] + ".24",        // shard out of range
		valid[:32] + ".01",        // leading zero
		valid[:32] + "1.1",        // 33 hex digits
		valid[:31] + ".1",         // 31 hex digits
		valid + "/x",              // extra segment
		valid + "%2fx",            // escaped extra segment
		valid[:32] + ".1.tmp",     // temp-like
		strings.Repeat("a", 5000), // over-long
		valid[:32] + "%00.1",      // NUL
		valid[:32] + ".-1",        // negative shard
		valid[:32] + ".1%20",      // trailing space
		"%20" + valid,             // leading space
		valid[:2] + "%2f" + valid, // fan-out dir prefix
		"..%5c..%5cx",             // backslashes
	} {
		for _, method := range []string{"PUT", "GET", "HEAD", "DELETE"} {
			var body io.Reader
			if method == "PUT" {
				body = strings.NewReader("evil")
			}
			req, err := http.NewRequest(method, "http://"+n.Addr()+"/chunks/"+raw, body)
			if err != nil {
				t.Fatalf("NewRequest %q: %v", raw, err)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatalf("%s %q: %v", method, raw, err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s /chunks/%s: status %d, want 400 (%s)", method, raw, resp.StatusCode, msg)
				continue
			}
			if got := resp.Header.Get(errorCodeHeader); got != "BadID" {
				t.Errorf("%s /chunks/%s: error code %q, want BadID", method, raw, got)
			}
			if method == "GET" && !strings.Contains(string(msg), "malformed chunk id") {
				t.Errorf("GET /chunks/%s: message %q does not say the id is malformed", raw, msg)
			}
		}
	}
	// Only the data directory's own bookkeeping may differ (nothing should).
	after := snapshotTree(t, root)
	if !slices.Equal(before, after) {
		t.Fatalf("tree changed:\nbefore %v\nafter  %v", before, after)
	}
	if u := n.Store().Usage(); u.Chunks != 0 {
		t.Fatalf("usage after bad PUTs: %+v", u)
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// snapshotTree lists every file under root with its size and content hash
// stand-in (size + mode), directories included.
func snapshotTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The disk watch's probe file comes and goes every heartbeat
		// interval (Store.CheckWritable): not part of what is compared,
		// and gone by the time it is stat-ed at times.
		if strings.HasPrefix(d.Name(), healthProbePrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size())
		if !d.IsDir() && !strings.HasPrefix(rel, "data") {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Chunks survive closing and reopening the node, and the usage counted at
// open matches.
func TestRestart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, Config{DataDir: dataDir})
	ctx := context.Background()
	ids := []chunk.ID{randomID(t, 0), randomID(t, 1), randomID(t, 2)}
	datas := [][]byte{makeChunk(t, ids[0], 10), makeChunk(t, ids[1], 70000), makeChunk(t, ids[2], 0)}
	for i, id := range ids {
		if err := n.client.Put(ctx, n.Addr(), id, strings.NewReader(string(datas[i])), int64(len(datas[i]))); err != nil {
			t.Fatal(err)
		}
	}
	want := n.Store().Usage()
	n.stop()

	// A crash mid-upload leaves a temp file; the restart removes it.
	leftover := filepath.Join(dataDir, tmpDirName, ids[0].String()+".123456")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// So does a stray file in the chunk tree, which is not a chunk.
	stray := filepath.Join(dataDir, chunksDirName, "ab", "notachunk")
	if err := os.WriteFile(stray, []byte("?"), 0o644); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, Config{DataDir: dataDir})
	if got := n2.Store().Usage(); got != want {
		t.Fatalf("usage after restart %+v, want %+v", got, want)
	}
	if got := tmpFiles(t, dataDir); len(got) != 0 {
		t.Fatalf("temp files after restart: %v", got)
	}
	for i, id := range ids {
		mustEqualBytes(t, id.String(), readAllClose(t, must(n2.client.Get(ctx, n2.Addr(), id))), datas[i])
	}
	infos, more, err := n2.client.List(ctx, n2.Addr(), "", 0)
	if err != nil || more || len(infos) != 3 {
		t.Fatalf("List after restart: %d entries, more %v, err %v", len(infos), more, err)
	}
}

// Two stores cannot share a data directory.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(StoreConfig{Dir: dir}); err == nil {
		t.Fatal("second OpenStore of the same directory succeeded")
	}
	s.Close()
	s2, err := OpenStore(StoreConfig{Dir: dir})
	if err != nil {
		t.Fatalf("OpenStore after Close: %v", err)
	}
	s2.Close()
}
