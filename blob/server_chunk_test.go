package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/iotest"

	"github.com/cairnstore/cairn/chunk"
)

// Uploads are verified as they stream: a chunk that fails any check is
// refused (422, chunk.ErrCorrupt) and leaves nothing behind.
func TestPutVerifies(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	other := randomID(t, 4)
	for _, tc := range []struct {
		name string
		// damage returns the bytes uploaded for id, from a good chunk.
		damage func(id chunk.ID, good []byte) []byte
	}{
		{"flipped data bit", func(_ chunk.ID, b []byte) []byte { b[chunk.HeaderSize+5000] ^= 1; return b }},
		{"flipped checksum bit", func(_ chunk.ID, b []byte) []byte { b[chunk.HeaderSize+testBlockSize+1] ^= 0x80; return b }},
		{"flipped header bit", func(_ chunk.ID, b []byte) []byte { b[20] ^= 4; return b }},
		{"bad magic", func(_ chunk.ID, b []byte) []byte { b[0] = 'X'; return b }},
		{"header of another chunk", func(_ chunk.ID, b []byte) []byte { return makeChunk(t, other, 10000) }},
		{"other shard of the segment", func(id chunk.ID, b []byte) []byte {
			return makeChunk(t, chunk.ID{Segment: id.Segment, Shard: id.Shard + 1}, 10000)
		}},
		{"cut inside a checksum", func(_ chunk.ID, b []byte) []byte { return b[:len(b)-2] }},
		{"cut at a block boundary", func(_ chunk.ID, b []byte) []byte { return b[:chunk.HeaderSize+testBlockSize+2] }},
		{"trailing garbage", func(_ chunk.ID, b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8) }},
		{"header only, truncated", func(_ chunk.ID, b []byte) []byte { return b[:20] }},
		{"empty", func(_ chunk.ID, b []byte) []byte { return nil }},
	} {
		for _, known := range []bool{true, false} {
			id := randomID(t, 3)
			body := tc.damage(id, makeChunk(t, id, 10000))
			size := int64(len(body))
			var r io.Reader = bytes.NewReader(body)
			if !known {
				size, r = -1, iotest.HalfReader(r)
			}
			err := n.client.Put(ctx, n.Addr(), id, r, size)
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Errorf("%s (size known %v): Put err = %v, want chunk.ErrCorrupt", tc.name, known, err)
			}
			var re *ResponseError
			if errors.As(err, &re) && re.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s: status %d, want 422", tc.name, re.Status)
			}
			if _, err := n.Store().Stat(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: refused chunk stored (Stat err %v)", tc.name, err)
			}
			// The store removes its temp file before the handler answers.
			if got := tmpFiles(t, n.cfg.DataDir); len(got) != 0 {
				t.Errorf("%s: temp files left: %v", tc.name, got)
			}
		}
	}
	if u := n.Store().Usage(); u.Chunks != 0 || u.Used != 0 {
		t.Fatalf("usage after refused uploads: %+v", u)
	}
}

func TestGetStripes(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	id := randomID(t, 7)
	// 5 stripes: 4 full blocks and one of 100 bytes.
	data := makeChunk(t, id, 4*testBlockSize+100)
	if err := n.client.Put(ctx, n.Addr(), id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	fr := chunk.Framing{BlockSize: testBlockSize, NumStripes: 5, LastBlockLen: 100}
	for _, r := range [][2]int{{0, 5}, {0, 1}, {1, 3}, {4, 5}, {2, 2}, {5, 5}} {
		got := readAllClose(t, must(n.client.GetStripes(ctx, n.Addr(), id, r[0], r[1])))
		mustEqualBytes(t, "stripes "+formatStripes(r[0], r[1]), got, data[fr.StripeOffset(r[0]):fr.StripeOffset(r[1])])
	}
	// Each served range is a valid framed stream.
	got := readAllClose(t, must(n.client.GetStripes(ctx, n.Addr(), id, 2, 5)))
	if f, err := chunk.VerifyFramed(bytes.NewReader(got), testBlockSize); err != nil || f.NumStripes != 3 {
		t.Fatalf("VerifyFramed of stripes 2-5: %+v, %v", f, err)
	}

	for _, r := range [][2]int{{0, 6}, {5, 6}, {-1, 2}, {3, 2}} {
		if _, err := n.client.GetStripes(ctx, n.Addr(), id, r[0], r[1]); !errors.Is(err, ErrBadRange) {
			t.Errorf("GetStripes(%d, %d): err = %v, want ErrBadRange", r[0], r[1], err)
		}
	}
	if _, err := n.client.GetStripes(ctx, n.Addr(), randomID(t, 0), 0, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetStripes of a missing chunk: err = %v, want ErrNotFound", err)
	}

	// Malformed requests.
	for _, q := range []string{"stripes=a-b", "stripes=1", "stripes=2-1", "stripes=-1-2", "stripes=0-1&stripes=1-2", "stripes="} {
		resp, err := http.Get(chunkURL(n.Addr(), id) + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400", q, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", chunkURL(n.Addr(), id)+"?stripes=0-1", nil)
	req.Header.Set("Range", "bytes=0-1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stripes with Range: %v, %v; want 400", resp.Status, err)
	}
}

// A stored chunk whose header or length went bad is reported corrupt by
// stripe reads (the store itself takes opaque bytes, so one can be planted).
func TestGetStripesCorrupt(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	for name, damage := range map[string]func(id chunk.ID, b []byte) []byte{
		"bad header": func(_ chunk.ID, b []byte) []byte { b[3] ^= 1; return b },
		"short file": func(_ chunk.ID, b []byte) []byte { return b[:10] },
		// A length no framing has: 2 bytes into the second stripe.
		"impossible length": func(_ chunk.ID, b []byte) []byte { return b[:chunk.HeaderSize+testBlockSize+chunk.ChecksumSize+2] },
		"another chunk id":  func(id chunk.ID, _ []byte) []byte { return makeChunk(t, randomID(t, id.Shard), 5000) },
	} {
		id := randomID(t, 1)
		b := damage(id, makeChunk(t, id, 5000))
		if _, err := n.Store().Put(ctx, id, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.GetStripes(ctx, n.Addr(), id, 0, 1); !errors.Is(err, chunk.ErrCorrupt) {
			t.Errorf("%s: GetStripes err = %v, want chunk.ErrCorrupt", name, err)
		}
	}
}
