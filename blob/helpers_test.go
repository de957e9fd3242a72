package blob

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/chunk"
	"github.com/prometheus/client_golang/prometheus"
)

// testNode is a running blob Server on 127.0.0.1:0 and a client for it.
type testNode struct {
	*Server
	cfg    Config
	client *Client
	reg    *prometheus.Registry
	stop   func() // stops Run and closes the server; idempotent
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startNode boots a node. Fields of cfg left zero get test defaults; a
// DataDir of "" gets a fresh t.TempDir().
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "node-1"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	n := &testNode{Server: s, cfg: cfg, client: NewClient(ClientConfig{}), reg: cfg.Registry}
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		// Idle client connections first: a connection the transport
		// dialed but never used counts as busy for Shutdown for 5s.
		n.client.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of cancel")
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

func randomID(t testing.TB, shard int) chunk.ID {
	return chunk.ID{Segment: chunk.NewSegmentID(), Shard: shard}
}

// randomBytes returns n pseudo-random bytes, the same for the same n.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

func readAllClose(t testing.TB, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d (contents differ: %v)", what, len(got), len(want), len(got) == len(want))
	}
}

// tmpFiles lists the upload temp directory of a data dir.
func tmpFiles(t testing.TB, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, tmpDirName))
	if err != nil {
		t.Fatalf("read tmp dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		// The disk probe's file comes and goes on its own clock.
		if !strings.HasPrefix(e.Name(), healthProbePrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// faultStorage is a Storage with programmed faults and observation points,
// in front of a real store.
type faultStorage struct {
	Storage
	// putErr, when set, fails every Put after reading nothing.
	putErr error
	// putStarted receives the id once a Put has read its first bytes.
	putStarted chan chunk.ID
	// putDone receives each Put's result after it returns.
	putDone chan error
}

func (f *faultStorage) Put(ctx context.Context, id chunk.ID, r io.Reader, size int64) (int64, error) {
	if f.putErr != nil {
		return 0, fmt.Errorf("put chunk %s: %w", id, f.putErr)
	}
	if f.putStarted != nil {
		r = &firstReadSignal{r: r, fn: func() { f.putStarted <- id }}
	}
	n, err := f.Storage.Put(ctx, id, r, size)
	if f.putDone != nil {
		f.putDone <- err
	}
	return n, err
}

type firstReadSignal struct {
	r    io.Reader
	fn   func()
	done bool
}

func (s *firstReadSignal) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && !s.done {
		s.done = true
		s.fn()
	}
	return n, err
}

// await receives from ch within a deadline.
func await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for %s", what)
		panic("unreachable")
	}
}

var errDisk = errors.New("injected disk failure")

// testBlockSize is the block size of test chunks.
const testBlockSize = 4096

// makeChunk builds a valid chunk file for id holding payload block bytes
// (split into 4096-byte blocks, the last one shorter), 16+8 scheme so any
// shard index is valid.
func makeChunk(t testing.TB, id chunk.ID, payload int) []byte {
	t.Helper()
	return makeChunkBlocks(t, id, payload, testBlockSize)
}

// makeChunkBlocks is makeChunk with the given block size.
func makeChunkBlocks(t testing.TB, id chunk.ID, payload, blockSize int) []byte {
	t.Helper()
	h := chunk.Header{Params: chunk.Params{Scheme: chunk.Scheme{K: 16, M: 8}, BlockSize: blockSize}, Segment: id.Segment, Shard: id.Shard}
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatalf("chunk header: %v", err)
	}
	data := randomBytes(payload)
	for off := 0; off < payload; off += blockSize {
		block := data[off:min(off+blockSize, payload)]
		b = append(b, block...)
		b = binary.LittleEndian.AppendUint32(b, chunk.Checksum(block))
	}
	return b
}
