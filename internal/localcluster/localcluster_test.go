package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
	"github.com/cairnstore/cairn/object"
)

// With LocalSockets the object layer reaches the blob nodes over their
// Unix sockets (as `cairn dev` runs); without, over TCP only.
func TestLocalSocketsCarryObjectTraffic(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("blob nodes serve local sockets on Linux only")
	}
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := Start(ctx, Config{
				Dir: t.TempDir(), Meta: 1, Blob: 6, Zones: 3, BlobCapacity: 1 << 30, Fast: true,
				Logger: slog.New(slog.DiscardHandler), LocalSockets: local,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Shutdown()
			if err := c.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			meta, err := c.Client()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := meta.CreateBucket(ctx, &pb.CreateBucketRequest{Name: "b"}); err != nil {
				t.Fatal(err)
			}
			s, err := c.ObjectStore(object.Config{})
			if err != nil {
				t.Fatal(err)
			}
			body := bytes.Repeat([]byte("cairn local socket "), 300_000) // ~5.7 MiB: erasure-coded
			o, err := s.Put(ctx, "b", "k", bytes.NewReader(body), int64(len(body)), object.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, o, 0, int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(body))
			}
			var unix float64
			for _, b := range c.Blobs {
				unix += acceptedConns(t, b.Addr, "unix")
			}
			if local && unix == 0 {
				t.Error("no blob node accepted a Unix socket connection")
			}
			if !local && unix != 0 {
				t.Errorf("blob nodes accepted %v Unix socket connections with LocalSockets off", unix)
			}
		})
	}
}

// acceptedConns reads cairn_blob_connections_total for transport from the
// node's /metrics.
func acceptedConns(t *testing.T, addr, transport string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cairn_blob_connections_total{") || !strings.Contains(line, `transport="`+transport+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		n += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
