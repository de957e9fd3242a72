package object_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/testcluster"
	"github.com/cairnstore/cairn/object"
)

// Concurrent PUTs share the md5-simd server and the pooled body readers:
// every ETag is the MD5 of its own body and every body reads back intact,
// whichever MD5 each PUT was given.
func TestConcurrentPutsETags(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	s := c.ObjectStore(t, object.Config{})
	createBucket(t, c, "b")
	const n = 8
	datas := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		datas[i] = randomData(uint64(100+i), 1<<20+i*300000+i)
		wg.Go(func() {
			size := int64(len(datas[i]))
			if i%2 == 1 {
				size = -1
			}
			o, err := s.Put(testCtx(t), "b", fmt.Sprintf("k%d", i), bytes.NewReader(datas[i]), size, object.PutOptions{})
			if err != nil {
				t.Errorf("put k%d: %v", i, err)
				return
			}
			if sum := md5.Sum(datas[i]); o.Etag != hex.EncodeToString(sum[:]) {
				t.Errorf("k%d: etag %s, want %x", i, o.Etag, sum)
			}
		})
	}
	wg.Wait()
	for i, data := range datas {
		got, err := readAll(t, s, "b", fmt.Sprintf("k%d", i), 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("k%d: read back %d bytes (err %v), want %d identical", i, len(got), err, len(data))
		}
	}
}

// An InlineMax larger than the pooled body reader's buffer still peeks
// the whole body: at the limit it is inline, one byte more it is not.
func TestPutLargeInlineMax(t *testing.T) {
	c := testcluster.New(t, testcluster.Config{Quiet: true})
	const inline = 64 << 10
	s := c.ObjectStore(t, object.Config{InlineMax: inline})
	createBucket(t, c, "b")
	for _, size := range []int{inline, inline + 1} {
		for _, known := range []bool{true, false} {
			data := randomData(uint64(size), size)
			declared := int64(size)
			if !known {
				declared = -1
			}
			key := fmt.Sprintf("s%d-%v", size, known)
			o := put(t, s, "b", key, data, declared)
			if wantInline := size <= inline; (len(o.Inline) > 0) != wantInline || (len(o.Segments) > 0) == wantInline {
				t.Errorf("%s: %d inline bytes, %d segments; want inline %v", key, len(o.Inline), len(o.Segments), wantInline)
			}
			if sum := md5.Sum(data); o.Etag != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: etag %s, want %x", key, o.Etag, sum)
			}
			got, err := readAll(t, s, "b", key, 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: read back %d bytes (err %v)", key, len(got), err)
			}
		}
	}
}
