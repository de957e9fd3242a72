package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// chunkFile is a chunk file found in a blob node's data directory.
type chunkFile struct {
	node string
	path string
	hdr  chunk.Header
	fr   chunk.Framing
}

// chunkFiles returns every chunk file on every blob node (layout:
// <data-dir>/chunks/<2 hex>/<segment hex>.<shard>, see blob/store.go),
// with its parsed header and framing.
func chunkFiles(t *testing.T, cl *cluster) []chunkFile {
	t.Helper()
	var out []chunkFile
	for _, n := range cl.blobs {
		root := filepath.Join(cl.dataDir(n), "chunks")
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if _, err := chunk.ParseID(d.Name()); err != nil {
				return nil // not a chunk
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			hdr, err := chunk.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			fr, err := chunk.FramingFromChunkSize(hdr.Params.BlockSize, int64(len(b)))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			out = append(out, chunkFile{node: n, path: path, hdr: hdr, fr: fr})
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	return out
}

// flipByte inverts the byte in the middle of stripe s's block of a chunk
// file, checking that the byte really changed on disk.
func flipByte(t *testing.T, cl *cluster, cf chunkFile, stripe int) {
	t.Helper()
	off := cf.fr.StripeOffset(stripe) + int64(cf.fr.BlockLen(stripe)/2)
	f, err := os.OpenFile(cf.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	old := b[0]
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(b[:], off); err != nil || b[0] != old^0xff {
		t.Fatalf("flip byte %d of %s: read back %#x (was %#x), %v", off, cf.path, b[0], old, err)
	}
	cl.logf("flipped byte %d (stripe %d of %d) of chunk %s on %s", off, stripe, cf.fr.NumStripes, cf.hdr.ID(), cf.node)
}

// TestCorruptChunkFile damages a data block of a 10 MiB object on disk: the
// GET still returns the exact bytes, reconstructed from parity, and the
// gateway counts the bad chunk. With three of the four data shards of one
// stripe damaged (fewer than k good shards) the GET must fail rather than
// return wrong bytes, while a range outside that stripe still reads.
func TestCorruptChunkFile(t *testing.T) {
	skipShort(t)
	cl := startCluster(t, clusterConfig{})
	client := cl.S3()
	const bucket, key = "rot", "ten-mib"
	createBucket(t, client, bucket)
	if before := chunkFiles(t, cl); len(before) != 0 {
		t.Fatalf("%d chunk files before the first write", len(before))
	}
	led := newLedger()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	body := makeBody(key, 0, 10<<20)
	if err := putObject(ctx, client, led, bucket, key, body); err != nil {
		t.Fatal(err)
	}

	// The object's first segment (8 MiB with the harness's segment size):
	// its data chunks, by shard index.
	files := chunkFiles(t, cl)
	bySeg := make(map[chunk.SegmentID][]chunkFile)
	for _, f := range files {
		bySeg[f.hdr.Segment] = append(bySeg[f.hdr.Segment], f)
	}
	var seg []chunkFile
	for _, fs := range bySeg {
		if seg == nil || fs[0].fr.NumStripes > seg[0].fr.NumStripes {
			seg = fs
		}
	}
	sort.Slice(seg, func(i, j int) bool { return seg[i].hdr.Shard < seg[j].hdr.Shard })
	k, m := seg[0].hdr.Params.Scheme.K, seg[0].hdr.Params.Scheme.M
	if len(seg) != k+m {
		t.Fatalf("segment %s has %d chunk files, want %d (k=%d, m=%d); all files: %d", seg[0].hdr.Segment, len(seg), k+m, k, m, len(files))
	}
	stripes := seg[0].fr.NumStripes
	if stripes < 3 {
		t.Fatalf("segment %s has %d stripes; the test needs a middle one", seg[0].hdr.Segment, stripes)
	}
	mid := stripes / 2
	// The bytes of stripe mid, and a range well before it.
	stripeData := int64(k * seg[0].hdr.Params.BlockSize)
	inMid := fmt.Sprintf("bytes=%d-%d", int64(mid)*stripeData, int64(mid+1)*stripeData-1)
	early := fmt.Sprintf("bytes=0-%d", stripeData-1)

	check := func(what, rng string, lo, hi int64) {
		t.Helper()
		sum, n, _, err := readObject(ctx, client, bucket, key, rng)
		if err != nil {
			t.Fatalf("%s: GET %s %s: %v", what, key, rng, err)
		}
		if want := md5hex(body[lo:hi]); sum != want || n != hi-lo {
			t.Fatalf("%s: GET %s %s: %d bytes, MD5 %s; want %d bytes, MD5 %s", what, key, rng, n, sum, hi-lo, want)
		}
	}
	check("intact", "", 0, int64(len(body)))

	// One data shard damaged: read around it.
	bad0 := cl.GatewayMetric("cairn_object_bad_chunk_reads_total")
	flipByte(t, cl, seg[0], mid)
	check("shard 0 damaged", "", 0, int64(len(body)))
	check("shard 0 damaged", inMid, int64(mid)*stripeData, int64(mid+1)*stripeData)
	bad1 := cl.GatewayMetric("cairn_object_bad_chunk_reads_total")
	if bad1 <= bad0 {
		t.Errorf("the reads crossed a damaged block, but cairn_object_bad_chunk_reads_total went from %v to %v", bad0, bad1)
	}

	// Three of k=4 data shards damaged in one stripe: unrecoverable there.
	if k != 4 || m != 2 {
		t.Fatalf("scheme %d+%d: the rest of the test assumes 4+2", k, m)
	}
	flipByte(t, cl, seg[1], mid)
	flipByte(t, cl, seg[2], mid)
	for _, rng := range []string{"", inMid} {
		sum, n, _, err := readObject(ctx, client, bucket, key, rng)
		if err == nil {
			t.Errorf("GET %s %q with 3 of 4 data shards of a stripe damaged: succeeded with %d bytes, MD5 %s (wrong bytes served)", key, rng, n, sum)
		} else {
			cl.logf("GET %q with 3 data shards damaged fails as it must: %v", rng, err)
		}
	}
	check("3 shards damaged in another stripe", early, 0, stripeData)
}
