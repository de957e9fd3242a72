package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/cairnstore/cairn/chunk"
	dto "github.com/prometheus/client_model/go"
)

func TestPutGetStatDelete(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	c, addr := n.client, n.Addr()

	for _, payload := range []int{0, 1, 1000, 3<<20 + 7} {
		t.Run(fmt.Sprint(payload), func(t *testing.T) {
			id := randomID(t, 3)
			data := makeChunk(t, id, payload)
			size := len(data)
			if err := c.Put(ctx, addr, id, bytes.NewReader(data), int64(size)); err != nil {
				t.Fatalf("Put: %v", err)
			}
			mustEqualBytes(t, "Get", readAllClose(t, must(c.Get(ctx, addr, id))), data)
			info, err := c.Stat(ctx, addr, id)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if info.Size != int64(size) || info.ID != id || info.ModTime.IsZero() {
				t.Fatalf("Stat = %+v, want size %d", info, size)
			}
			if err := c.Delete(ctx, addr, id); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := c.Delete(ctx, addr, id); err != nil {
				t.Fatalf("second Delete: %v", err)
			}
			if _, err := c.Get(ctx, addr, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
			}
			if _, err := c.Stat(ctx, addr, id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Stat after Delete: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPutUnknownSizeAndOverwrite(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	id := randomID(t, 0)
	first := makeChunk(t, id, 5000)
	// An io.Reader that is not a bytes.Reader: sent chunked, size -1.
	if err := n.client.Put(ctx, n.Addr(), id, iotest.HalfReader(bytes.NewReader(first)), -1); err != nil {
		t.Fatalf("Put unknown size: %v", err)
	}
	mustEqualBytes(t, "Get", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id))), first)
	second := makeChunk(t, id, 30)
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(second), int64(len(second))); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	mustEqualBytes(t, "Get after overwrite", readAllClose(t, must(n.client.Get(ctx, n.Addr(), id))), second)
	if u := n.Store().Usage(); u.Used != int64(len(second)) || u.Chunks != 1 {
		t.Fatalf("usage after overwrite = %+v, want %d bytes in 1 chunk", u, len(second))
	}
}

// A body that fails on the client side must not leave a chunk: the
// transport aborts the request and the server sees a short body.
func TestPutClientBodyError(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	for _, size := range []int64{-1, 100000} {
		id := randomID(t, 1)
		body := io.MultiReader(bytes.NewReader(makeChunk(t, id, 40000)), iotest.ErrReader(errors.New("source broke")))
		if err := n.client.Put(ctx, n.Addr(), id, body, size); err == nil {
			t.Fatalf("Put with failing body (size %d) succeeded", size)
		}
		// However far the server got, the chunk must never appear (the
		// temp file is checked by TestPutConnectionDrop, which can await
		// the handler).
		if _, err := n.Store().Stat(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after failed Put (size %d): Stat err = %v, want ErrNotFound", size, err)
		}
	}
}

func TestGetRange(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	id := randomID(t, 2)
	data := makeChunk(t, id, 9952) // 36 + 9952 + 3*4 = 10000 bytes
	if len(data) != 10000 {
		t.Fatalf("test chunk is %d bytes, want 10000", len(data))
	}
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ off, n int64 }{{0, 1}, {0, 10000}, {9999, 1}, {1234, 5000}} {
		got := readAllClose(t, must(n.client.GetRange(ctx, n.Addr(), id, tc.off, tc.n)))
		mustEqualBytes(t, fmt.Sprintf("GetRange(%d, %d)", tc.off, tc.n), got, data[tc.off:tc.off+tc.n])
	}
	// A range running past the end is cut by the server; GetRange insists
	// on exactly what it asked for.
	if _, err := n.client.GetRange(ctx, n.Addr(), id, 9000, 2000); !errors.Is(err, ErrBadRange) {
		t.Fatalf("GetRange past the end: err = %v, want ErrBadRange", err)
	}
	if _, err := n.client.GetRange(ctx, n.Addr(), id, 10000, 1); !errors.Is(err, ErrBadRange) {
		t.Fatalf("GetRange at the end: err = %v, want ErrBadRange", err)
	}

	// Raw Range headers.
	for _, tc := range []struct {
		rng        string
		status     int
		wantOff, n int
		contentRng string
	}{
		{"bytes=0-0", 206, 0, 1, "bytes 0-0/10000"},
		{"bytes=9990-", 206, 9990, 10, "bytes 9990-9999/10000"},
		{"bytes=-5", 206, 9995, 5, "bytes 9995-9999/10000"},
		{"bytes=-20000", 206, 0, 10000, "bytes 0-9999/10000"},
		{"bytes=9000-20000", 206, 9000, 1000, "bytes 9000-9999/10000"},
		{"bytes=10000-", 416, 0, 0, "bytes */10000"},
		{"bytes=-0", 416, 0, 0, "bytes */10000"},
		{"bytes=5-1", 400, 0, 0, ""},
		{"bytes=0-1,4-5", 400, 0, 0, ""},
		{"lines=0-1", 400, 0, 0, ""},
		{"bytes=+1-2", 400, 0, 0, ""},
	} {
		req, _ := http.NewRequest("GET", chunkURL(n.Addr(), id), nil)
		req.Header.Set("Range", tc.rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("Range %q: status %d, want %d (%s)", tc.rng, resp.StatusCode, tc.status, body)
			continue
		}
		if cr := resp.Header.Get("Content-Range"); cr != tc.contentRng {
			t.Errorf("Range %q: Content-Range %q, want %q", tc.rng, cr, tc.contentRng)
		}
		if tc.status == 206 && !bytes.Equal(body, data[tc.wantOff:tc.wantOff+tc.n]) {
			t.Errorf("Range %q: wrong bytes", tc.rng)
		}
	}
}

func TestList(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	var want []string
	for i := range 25 {
		id := randomID(t, i%chunk.MaxShards)
		want = append(want, id.String())
		if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(makeChunk(t, id, 1)), -1); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want)

	var got []string
	after := ""
	pages := 0
	for {
		infos, more, err := n.client.List(ctx, n.Addr(), after, 7)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		pages++
		if len(infos) > 7 {
			t.Fatalf("page of %d, limit 7", len(infos))
		}
		for _, in := range infos {
			if in.Size != chunk.HeaderSize+1+chunk.ChecksumSize || in.ModTime.IsZero() {
				t.Fatalf("list entry %+v", in)
			}
			got = append(got, in.ID.String())
		}
		if !more {
			break
		}
		after = got[len(got)-1]
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed\n%v\nwant\n%v", got, want)
	}
	if pages != 4 {
		t.Fatalf("%d pages, want 4", pages)
	}
	// after need not be an id that exists.
	infos, _, err := n.client.List(ctx, n.Addr(), want[10][:5], 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) == 0 || infos[0].ID.String() <= want[10][:5] {
		t.Fatalf("List after a prefix: first %v", infos)
	}
}

func TestConcurrentPuts(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	const workers = 16
	ids := make([]chunk.ID, workers)
	datas := make([][]byte, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		ids[i] = randomID(t, i%chunk.MaxShards)
		datas[i] = makeChunk(t, ids[i], 100000+i)
		wg.Go(func() {
			errs <- n.client.Put(ctx, n.Addr(), ids[i], bytes.NewReader(datas[i]), int64(len(datas[i])))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	var total int64
	for i := range workers {
		mustEqualBytes(t, ids[i].String(), readAllClose(t, must(n.client.Get(ctx, n.Addr(), ids[i]))), datas[i])
		total += int64(len(datas[i]))
	}
	if u := n.Store().Usage(); u.Used != total || u.Chunks != workers {
		t.Fatalf("usage %+v, want %d bytes in %d chunks", u, total, workers)
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	n := startNode(t, Config{ID: "n7"})
	ctx := context.Background()
	resp, err := http.Get("http://" + n.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	id := randomID(t, 0)
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(makeChunk(t, id, 5)), -1); err != nil {
		t.Fatal(err)
	}
	readAllClose(t, must(n.client.Get(ctx, n.Addr(), id)))
	n.client.Stat(ctx, n.Addr(), randomID(t, 0)) // a 404

	resp, err = http.Get("http://" + n.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cairn_blob_requests_total{code="201",node="n7",op="put"} 1`,
		`cairn_blob_requests_total{code="404",node="n7",op="head"} 1`,
		`cairn_blob_written_bytes_total{node="n7"} 45`,
		`cairn_blob_read_bytes_total{node="n7"} 45`,
		`cairn_blob_used_bytes{node="n7"} 45`,
		`cairn_blob_chunks{node="n7"} 1`,
		`cairn_blob_request_duration_seconds_count{node="n7",op="get"} 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A failing disk is a 500 with a server-side error counted, and the
// client gets an error that is not ErrNotFound.
func TestPutDiskError(t *testing.T) {
	n := startNode(t, Config{WrapStorage: func(s Storage) Storage { return &faultStorage{Storage: s, putErr: errDisk} }})
	err := n.client.Put(context.Background(), n.Addr(), randomID(t, 0), strings.NewReader("abc"), 3)
	var re *ResponseError
	if !errors.As(err, &re) || re.Status != 500 || errors.Is(err, ErrNotFound) {
		t.Fatalf("Put on failing disk: err = %v, want a 500 ResponseError", err)
	}
	if v := counterValue(t, n, "cairn_blob_errors_total", "op", "put"); v != 1 {
		t.Fatalf("errors_total{op=put} = %v, want 1", v)
	}
}

func counterValue(t *testing.T, n *testNode, name, label, value string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabel(m, label, value) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestFull(t *testing.T) {
	n := startNode(t, Config{Capacity: 1000})
	ctx := context.Background()
	id := randomID(t, 0)
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(makeChunk(t, id, 560)), 600); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{600, -1} {
		id := randomID(t, 0)
		err := n.client.Put(ctx, n.Addr(), id, iotest.HalfReader(bytes.NewReader(makeChunk(t, id, 560))), size)
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Put past capacity (size %d): err = %v, want ErrFull", size, err)
		}
	}
	if u := n.Store().Usage(); u.Used != 600 || u.Chunks != 1 || u.Capacity != 1000 {
		t.Fatalf("usage %+v", u)
	}
}
