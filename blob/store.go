// Package blob is a blob node: a store of chunk files on one local disk, the
// HTTP API that serves it, the client gateways and other blob nodes use to
// reach it, and the daemon (Server) that registers the node with metad and
// heartbeats its usage.
package blob

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairnstore/cairn/chunk"
)

// Errors a caller of the store (or of the Client) can tell apart.
var (
	// ErrNotFound: no chunk of that id on this node.
	ErrNotFound = errors.New("chunk not found")
	// ErrFull: the chunk does not fit in the node's capacity, or the disk
	// is full.
	ErrFull = errors.New("blob node full")
	// ErrIncomplete: a chunk upload ended before its declared size, or ran
	// past it. Nothing was stored.
	ErrIncomplete = errors.New("incomplete chunk upload")
	// ErrBadRange: a byte or stripe range outside the chunk, or malformed.
	ErrBadRange = errors.New("range outside the chunk")
)

// Layout of the data directory:
//
//	<dir>/LOCK                  flock held while a Store has the directory open
//	<dir>/chunks/<xx>/<id>      one file per chunk, xx = first 2 hex digits of id
//	<dir>/tmp/                  uploads in progress; emptied at open
const (
	chunksDirName = "chunks"
	tmpDirName    = "tmp"
	lockFileName  = "LOCK"
)

// Info describes a stored chunk.
type Info struct {
	ID      chunk.ID
	Size    int64
	ModTime time.Time
}

// Usage is a node's disk usage.
type Usage struct {
	// Capacity is the configured capacity, or the size of the filesystem.
	Capacity int64
	// Used is the bytes of stored chunks (file sizes, not blocks).
	Used int64
	// Chunks is the number of stored chunks.
	Chunks int64
}

// File is an open chunk: sequential and random access. The Store hands out
// *os.File, so sequential copies to a socket can use sendfile.
type File interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// Dir is the data directory; created if missing.
	Dir string
	// Capacity in bytes; 0 means the size of the filesystem holding Dir.
	Capacity int64
	// Logger; nil discards.
	Logger *slog.Logger
}

// Store keeps chunks as files on a local disk. It is safe for concurrent
// use. Every write is durable when it returns: the data is fsynced, renamed
// into place and the directory fsynced.
type Store struct {
	dir, chunksDir, tmpDir string
	capacity               int64
	log                    *slog.Logger
	lock                   *os.File

	used, count atomic.Int64
	// noDirect is set once the filesystem has refused O_DIRECT.
	noDirect atomic.Bool

	// idLocks serialize the rename/remove and usage bookkeeping of one id
	// (striped by id), so that racing PUTs and DELETEs of the same chunk
	// keep the usage counters exact.
	idLocks [64]sync.Mutex
}

// OpenStore opens (creating if needed) the data directory, takes its lock,
// removes uploads a crash left behind and counts the stored chunks.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open chunk store: no data directory")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		dir:       cfg.Dir,
		chunksDir: filepath.Join(cfg.Dir, chunksDirName),
		tmpDir:    filepath.Join(cfg.Dir, tmpDirName),
		log:       log,
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open chunk store: %w", err)
	}
	lock, err := lockDir(filepath.Join(cfg.Dir, lockFileName))
	if err != nil {
		return nil, fmt.Errorf("open chunk store %s: %w", cfg.Dir, err)
	}
	s.lock = lock
	if err := s.init(cfg.Capacity); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open chunk store %s: %w", cfg.Dir, err)
	}
	return s, nil
}

func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s (is another blobd using it?): %w", path, err)
	}
	return f, nil
}

func (s *Store) init(capacity int64) error {
	created := false
	for _, d := range []string{s.chunksDir, s.tmpDir} {
		if err := os.Mkdir(d, 0o755); err == nil {
			created = true
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// All 256 fan-out directories exist from the start, so a PUT never
	// has to make (and fsync) a directory entry besides its own.
	for i := range 256 {
		d := filepath.Join(s.chunksDir, hex.EncodeToString([]byte{byte(i)}))
		if err := os.Mkdir(d, 0o755); err == nil {
			created = true
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if created {
		if err := syncDir(s.chunksDir); err != nil {
			return err
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	if err := s.removeTemps(); err != nil {
		return err
	}
	if capacity <= 0 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(s.dir, &st); err != nil {
			return fmt.Errorf("statfs: %w", err)
		}
		capacity = int64(st.Blocks) * int64(st.Bsize)
	}
	s.capacity = capacity
	var used, n int64
	for i := range 256 {
		for info, err := range s.walkDir(hex.EncodeToString([]byte{byte(i)}), "") {
			if err != nil {
				return err
			}
			used += info.Size
			n++
		}
	}
	s.used.Store(used)
	s.count.Store(n)
	return nil
}

// removeTemps deletes uploads that were in progress when the process died.
func (s *Store) removeTemps() error {
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		s.log.Info("removed unfinished uploads", "count", len(ents))
	}
	return nil
}

// Close releases the data directory. Reads of files opened before stay
// valid until they are closed.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing the descriptor drops the flock
	s.lock = nil
	return err
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id chunk.ID) (dir, file string) {
	name := id.String()
	dir = filepath.Join(s.chunksDir, name[:2])
	return dir, filepath.Join(dir, name)
}

func (s *Store) idLock(id chunk.ID) *sync.Mutex {
	h := uint(id.Segment[0]) ^ uint(id.Segment[15])<<1 ^ uint(id.Shard)
	return &s.idLocks[h%uint(len(s.idLocks))]
}

// Put stores the chunk read from r. size is the length the caller declared,
// or -1 if unknown; a body that ends before it (or runs past it) is
// ErrIncomplete. A body that fails leaves nothing behind. Put returns once
// the chunk is durable; an existing chunk of the same id is replaced.
func (s *Store) Put(ctx context.Context, id chunk.ID, r io.Reader, size int64) (int64, error) {
	n, err := s.put(ctx, id, r, size)
	if err != nil {
		return n, fmt.Errorf("put chunk %s: %w", id, err)
	}
	return n, nil
}

func (s *Store) put(ctx context.Context, id chunk.ID, r io.Reader, size int64) (n int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	room := s.capacity - s.used.Load()
	if size > room {
		return 0, fmt.Errorf("%d bytes, %d free: %w", size, max(room, 0), ErrFull)
	}
	cf, refused, err := createTempChunk(s.tmpDir, id, size, s.noDirect.Load())
	if refused && s.noDirect.CompareAndSwap(false, true) {
		s.log.Info("the filesystem refuses direct I/O; chunks are written through the page cache", "dir", s.tmpDir)
	}
	if err != nil {
		return 0, mapNoSpace(err)
	}
	defer cf.release()
	f := cf.f
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	src := &ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		n, err = cf.readFrom(io.LimitReader(src, size))
		if err == nil && n < size {
			err = fmt.Errorf("got %d of %d bytes: %w", n, size, ErrIncomplete)
		}
		if err == nil {
			// The reader must end here. Reading on to its EOF also lets a
			// checking reader (see verifyingReader) report its verdict.
			var one [1]byte
			m, rerr := io.ReadFull(src, one[:])
			switch {
			case m > 0:
				err = fmt.Errorf("body longer than %d bytes: %w", size, ErrIncomplete)
			case rerr != io.EOF:
				err = rerr
			}
		}
	} else {
		n, err = cf.readFrom(io.LimitReader(src, room+1))
		if err == nil && n > room {
			err = fmt.Errorf("more than the %d bytes free: %w", max(room, 0), ErrFull)
		}
	}
	if err != nil {
		return n, mapNoSpace(err)
	}
	if err := cf.finish(); err != nil {
		return n, mapNoSpace(err)
	}
	if err := f.Close(); err != nil {
		return n, mapNoSpace(err)
	}

	dir, final := s.path(id)
	mu := s.idLock(id)
	mu.Lock()
	old, statErr := os.Lstat(final)
	if err := os.Rename(tmp, final); err != nil {
		mu.Unlock()
		return n, err
	}
	if statErr == nil {
		s.used.Add(n - old.Size())
	} else {
		s.used.Add(n)
		s.count.Add(1)
	}
	mu.Unlock()
	// The rename is durable once the directory is synced. A failure here
	// leaves the chunk in place but unacknowledged, which is safe: the
	// writer will not record it, and orphan reconciliation removes it.
	if err := syncDir(dir); err != nil {
		return n, fmt.Errorf("fsync directory: %w", err)
	}
	return n, nil
}

func mapNoSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// ctxReader fails reads once ctx is done, so a stalled upload stops when its
// caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open opens a stored chunk for reading.
func (s *Store) Open(ctx context.Context, id chunk.ID) (File, Info, error) {
	_, name := s.path(id)
	f, err := os.Open(name)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open chunk %s: %w", id, notFound(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, fmt.Errorf("open chunk %s: %w", id, err)
	}
	return f, Info{ID: id, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Stat describes a stored chunk.
func (s *Store) Stat(ctx context.Context, id chunk.ID) (Info, error) {
	_, name := s.path(id)
	st, err := os.Stat(name)
	if err != nil {
		return Info{}, fmt.Errorf("stat chunk %s: %w", id, notFound(err))
	}
	return Info{ID: id, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// Delete removes a chunk; deleting a missing chunk is not an error. It
// returns once the removal is durable.
func (s *Store) Delete(ctx context.Context, id chunk.ID) error {
	dir, name := s.path(id)
	mu := s.idLock(id)
	mu.Lock()
	st, err := os.Lstat(name)
	if err == nil {
		err = os.Remove(name)
		if err == nil {
			s.used.Add(-st.Size())
			s.count.Add(-1)
		}
	}
	mu.Unlock()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete chunk %s: %w", id, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("delete chunk %s: fsync directory: %w", id, err)
	}
	return nil
}

// DeleteIfUnchanged removes a chunk only if its modification time is still
// modTime (as List or Stat reported it), and reports whether it did. A
// chunk stored again since (a repair writing it anew) is kept: the check
// and the removal hold the id's lock, as Put's rename does. A missing chunk
// is not an error. It returns once the removal is durable.
func (s *Store) DeleteIfUnchanged(ctx context.Context, id chunk.ID, modTime time.Time) (bool, error) {
	dir, name := s.path(id)
	mu := s.idLock(id)
	mu.Lock()
	removed := false
	st, err := os.Lstat(name)
	if err == nil && st.ModTime().Equal(modTime) {
		err = os.Remove(name)
		if err == nil {
			removed = true
			s.used.Add(-st.Size())
			s.count.Add(-1)
		}
	}
	mu.Unlock()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("delete chunk %s: %w", id, err)
	}
	if removed {
		if err := syncDir(dir); err != nil {
			return true, fmt.Errorf("delete chunk %s: fsync directory: %w", id, err)
		}
	}
	return removed, nil
}

// MaxListLimit bounds one page of List.
const MaxListLimit = 10000

// List returns up to limit chunks whose ids sort (as strings) after after,
// in that order, and whether more follow. after may be "" or any string;
// limit ≤ 0 or above MaxListLimit means MaxListLimit.
func (s *Store) List(ctx context.Context, after string, limit int) ([]Info, bool, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	var out []Info
	for i := range 256 {
		prefix := hex.EncodeToString([]byte{byte(i)})
		// Every id in this directory starts with prefix; skip directories
		// that sort wholly at or before after.
		if after != "" && prefix < after[:min(2, len(after))] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		for info, err := range s.walkDir(prefix, after) {
			if err != nil {
				return nil, false, fmt.Errorf("list chunks: %w", err)
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, info)
		}
	}
	return out, false, nil
}

// walkDir yields the chunks in one fan-out directory whose names sort after
// after, in name order. Files that are not chunks (or chunks in the wrong
// directory) are skipped; a chunk removed during the walk is skipped.
func (s *Store) walkDir(prefix, after string) func(yield func(Info, error) bool) {
	return func(yield func(Info, error) bool) {
		ents, err := os.ReadDir(filepath.Join(s.chunksDir, prefix))
		if err != nil {
			yield(Info{}, err)
			return
		}
		// os.ReadDir sorts by name.
		start, _ := slices.BinarySearchFunc(ents, after, func(e fs.DirEntry, t string) int {
			if e.Name() <= t {
				return -1
			}
			return 1
		})
		for _, e := range ents[start:] {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			id, err := chunk.ParseID(e.Name())
			if err != nil {
				continue
			}
			st, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				yield(Info{}, err)
				return
			}
			if !yield(Info{ID: id, Size: st.Size(), ModTime: st.ModTime()}, nil) {
				return
			}
		}
	}
}

// Usage reports capacity and the bytes and count of stored chunks, kept in
// memory (counted at open, updated by Put and Delete).
func (s *Store) Usage() Usage {
	return Usage{Capacity: s.capacity, Used: s.used.Load(), Chunks: s.count.Load()}
}

// healthProbePrefix starts the name of CheckWritable's file.
const healthProbePrefix = "health."

// CheckWritable creates, writes, syncs and removes a small file in the
// data directory: the health check, and the probe of a stalled disk
// (diskwatch.go), which the sync makes reach the device.
func (s *Store) CheckWritable(ctx context.Context) error {
	f, err := os.CreateTemp(s.tmpDir, healthProbePrefix+"*")
	if err != nil {
		return fmt.Errorf("data directory not writable: %w", err)
	}
	_, werr := f.Write([]byte("ok"))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("data directory not writable: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
