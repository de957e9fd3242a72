package metadata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// walLog is testLog with another term and payload: what a new leader
// writes over a truncated suffix.
func walLog(i, term uint64, size int) *raft.Log {
	return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i), byte(term)}, size/2)}
}

func storeWAL(t *testing.T, s *LogStore, lo, hi, term uint64, size int) {
	t.Helper()
	var logs []*raft.Log
	for i := lo; i <= hi; i++ {
		logs = append(logs, walLog(i, term, size))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d..%d): %v", lo, hi, err)
	}
}

// assertWAL checks that lo..hi hold walLog(i, term, size).
func assertWAL(t *testing.T, s *LogStore, lo, hi, term uint64, size int) {
	t.Helper()
	for i := lo; i <= hi; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := walLog(i, term, size)
		if got.Index != i || got.Term != term || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("GetLog(%d) = index %d term %d, %d bytes; want term %d, %d bytes", i, got.Index, got.Term, len(got.Data), term, len(want.Data))
		}
	}
}

// TestLogStoreTornTail: a crash during the write of a batch (before its
// fdatasync returned, so before Raft acknowledged any of it) may leave any
// part of the batch on disk. Opening keeps every entry of the batches that
// were synced and none after the first damaged record, even when later
// records of the torn batch are intact, and never lets those stale
// records reappear behind later appends.
func TestLogStoreTornTail(t *testing.T) {
	for _, tear := range []string{"checksum", "zeroed length", "cut short"} {
		t.Run(tear, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestLogStore(t, dir)
			storeWAL(t, s, 1, 10, 1, 300)  // acknowledged
			storeWAL(t, s, 11, 20, 1, 300) // the batch the crash tears
			sg := s.segs[0]
			off15, end := sg.offs[14], sg.end
			path := sg.path
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			switch tear {
			case "checksum":
				damage(t, path, off15+walRecordHead+5, []byte{0xff})
			case "zeroed length":
				damage(t, path, off15, make([]byte, 4))
			case "cut short":
				// 11..14 made it, 15 half, 16..20 never did.
				damage(t, path, off15+walRecordHead+50, make([]byte, end-off15-walRecordHead-50))
			}

			s = openTestLogStore(t, dir)
			assertBounds(t, s, 1, 14)
			assertWAL(t, s, 1, 14, 1, 300)
			// A new leader's shorter entries go where 15 was; the old 16..20
			// (intact in the "checksum" and "zeroed length" cases) must not
			// come back after them.
			storeWAL(t, s, 15, 16, 2, 10)
			s = reopenLogStore(t, s, dir)
			assertBounds(t, s, 1, 16)
			assertWAL(t, s, 1, 14, 1, 300)
			assertWAL(t, s, 15, 16, 2, 10)
		})
	}
}

// TestLogStoreTornFirstRecord: the first record of the last batch damaged,
// the rest of the batch intact: a crash can leave exactly that (the pages
// of one write reach the disk in no set order), so it is a torn tail.
func TestLogStoreTornFirstRecord(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	storeWAL(t, s, 1, 10, 1, 300)
	storeWAL(t, s, 11, 20, 1, 300)
	off11, path := s.segs[0].offs[10], s.segs[0].path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damage(t, path, off11, make([]byte, 4))
	s = openTestLogStore(t, dir)
	defer s.Close()
	assertBounds(t, s, 1, 10)
	assertWAL(t, s, 1, 10, 1, 300)
}

// reopenLogStore closes s and opens the store in dir again, to be closed
// when the test ends.
func reopenLogStore(t *testing.T, s *LogStore, dir string) *LogStore {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	t.Cleanup(func() { s.Close() })
	return s
}

// damage writes b at off in the file at path.
func damage(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestLogStoreCorruptNotTorn: a damaged record followed by anything that a
// torn last batch cannot explain (a record of a later batch, or bytes past
// the end of the damaged record's batch) is damage to acknowledged
// entries: opening fails, naming the segment and the offset, and leaves
// the files as they were, instead of cutting the log there.
func TestLogStoreCorruptNotTorn(t *testing.T) {
	type layout struct {
		batches [][2]uint64 // each stored with one StoreLogs
		bad     uint64      // the damaged entry
	}
	tests := []struct {
		name   string
		layout layout
		// how: "checksum" flips a payload byte, "length" zeroes the
		// length; "garbage" also writes bytes past the last batch.
		how string
	}{
		{"checksum in an earlier batch", layout{[][2]uint64{{1, 10}, {11, 20}}, 5}, "checksum"},
		{"last record of an earlier batch", layout{[][2]uint64{{1, 10}, {11, 20}}, 10}, "checksum"},
		{"first record of an earlier batch", layout{[][2]uint64{{1, 10}, {11, 20}, {21, 30}}, 11}, "length"},
		{"one-entry batch before another", layout{[][2]uint64{{1, 10}, {11, 11}, {12, 12}}, 11}, "checksum"},
		{"one-entry batch, length zeroed", layout{[][2]uint64{{1, 10}, {11, 11}, {12, 12}}, 11}, "length"},
		{"data past the last batch", layout{[][2]uint64{{1, 10}, {11, 20}}, 15}, "garbage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestLogStore(t, dir)
			for _, b := range tc.layout.batches {
				storeWAL(t, s, b[0], b[1], 1, 300)
			}
			sg := s.segs[0]
			off, end, path := sg.offs[tc.layout.bad-1], sg.end, sg.path
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			switch tc.how {
			case "checksum":
				damage(t, path, off+walRecordHead+5, []byte{0xff})
			case "length":
				damage(t, path, off, make([]byte, 4))
			case "garbage":
				damage(t, path, off+walRecordHead+5, []byte{0xff})
				damage(t, path, end+4096, []byte("stale"))
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err = OpenLogStore(dir, nil)
			if err == nil {
				last, _ := s.LastIndex()
				s.Close()
				t.Fatalf("OpenLogStore succeeded with the log cut to %d; want an error", last)
			}
			if !errors.Is(err, ErrCorruptLog) {
				t.Errorf("OpenLogStore: %v; want ErrCorruptLog", err)
			}
			for _, want := range []string{filepath.Base(path), fmt.Sprintf("offset %d", off), "re-add this member empty"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("OpenLogStore: %v; want it to name %q", err, want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("the failed open changed the segment")
			}
		})
	}
}

// TestLogStoreReadsVersion1: a segment written before records carried
// their batch (version 1) is read, a damaged record at its tail is taken
// for a torn write as before, and appends go to a new segment.
func TestLogStoreReadsVersion1(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir) // the guard and stable files
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	copy(buf, walMagic)
	binary.BigEndian.PutUint32(buf[8:], 1)
	off := walHeaderSize
	var offs []int
	for i := uint64(1); i <= 8; i++ {
		offs = append(offs, off)
		p := encodeLog(walLog(i, 1, 300))
		binary.BigEndian.PutUint32(buf[off:], uint32(len(p)))
		binary.BigEndian.PutUint32(buf[off+4:], crc32.Update(crc32.Checksum(buf[off:off+4], walCRC), walCRC, p))
		copy(buf[off+walRecordHeadV1:], p)
		off += walRecordHeadV1 + len(p)
	}
	buf[offs[6]+walRecordHeadV1+3] ^= 0xff // 7 damaged, 8 intact
	path := filepath.Join(dir, segmentName(1))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	assertBounds(t, s, 1, 6)
	assertWAL(t, s, 1, 6, 1, 300)
	storeWAL(t, s, 7, 9, 2, 100)
	if n := len(s.segs); n != 2 || s.segs[1].version != walVersion {
		t.Fatalf("%d segments after appending to a version 1 tail, want a new version %d one", n, walVersion)
	}
	s = reopenLogStore(t, s, dir)
	assertBounds(t, s, 1, 9)
	assertWAL(t, s, 1, 6, 1, 300)
	assertWAL(t, s, 7, 9, 2, 100)
}

// TestLogStoreTruncateLeavesNoStaleRecords: a suffix truncation followed
// by shorter entries must not let the old entries behind them be read
// back after a reopen.
func TestLogStoreTruncateLeavesNoStaleRecords(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	storeWAL(t, s, 1, 30, 1, 500)
	if err := s.DeleteRange(11, 30); err != nil {
		t.Fatal(err)
	}
	storeWAL(t, s, 11, 12, 3, 20)
	// Storing at or below the last index replaces from there, as Raft's
	// overwrite of a conflicting suffix does.
	storeWAL(t, s, 12, 13, 4, 20)
	s = reopenLogStore(t, s, dir)
	assertBounds(t, s, 1, 13)
	assertWAL(t, s, 1, 10, 1, 500)
	assertWAL(t, s, 11, 11, 3, 20)
	assertWAL(t, s, 12, 13, 4, 20)
}

// TestLogStoreSegments runs the log over several segment files: rolling
// over, a batch bigger than a segment, compaction removing whole segments,
// a truncation reaching back into an earlier segment, and reopening.
func TestLogStoreSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~100 MiB")
	}
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	const size = 64 << 10
	for lo := uint64(1); lo <= 600; lo += 50 {
		storeWAL(t, s, lo, lo+49, 1, size) // ~37 MiB: three segments
	}
	storeWAL(t, s, 601, 900, 1, size) // ~19 MiB in one batch: a segment of its own
	if n := len(s.segs); n < 4 {
		t.Fatalf("%d segments, want at least 4", n)
	}
	segFiles := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+walSuffix))
		return len(m)
	}
	before := segFiles()
	if err := s.DeleteRange(1, 400); err != nil {
		t.Fatal(err)
	}
	if after := segFiles(); after >= before {
		t.Fatalf("compaction left %d segment files of %d", after, before)
	}
	assertBounds(t, s, 401, 900)
	// Back into the segment that holds 450: the later ones go.
	if err := s.DeleteRange(450, 900); err != nil {
		t.Fatal(err)
	}
	storeWAL(t, s, 450, 460, 2, 100)
	s = reopenLogStore(t, s, dir)
	assertBounds(t, s, 401, 460)
	assertWAL(t, s, 401, 449, 1, size)
	assertWAL(t, s, 450, 460, 2, 100)
	assertHas(t, s, nil, []uint64{400, 461})
}

func TestLogStoreRefusesHoleAndGap(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	defer s.Close()
	storeRange(t, s, 1, 10)
	if err := s.DeleteRange(4, 6); err == nil {
		t.Fatal("DeleteRange(4, 6) of 1..10 succeeded; the WAL cannot hold a hole")
	}
	if err := s.StoreLogs([]*raft.Log{testLog(12)}); err == nil {
		t.Fatal("storing 12 after 10 succeeded")
	}
	if err := s.StoreLogs([]*raft.Log{testLog(11), testLog(13)}); err == nil {
		t.Fatal("storing a batch with a gap succeeded")
	}
	assertBounds(t, s, 1, 10)
	assertHas(t, s, []uint64{1, 4, 10}, []uint64{11, 12})
}

// TestLogStoreRefusedByBadger: a metad from before the WAL opens its log
// with Badger; on a migrated directory that must fail rather than start
// an empty log (which would let the member vote and bootstrap as new).
func TestLogStoreRefusedByBadger(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	storeRange(t, s, 1, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err == nil {
		db.Close()
		t.Fatal("badger opened the WAL directory")
	}
}

// TestLogStoreKill9 stores batches in a child process, which reports each
// one after StoreLogs returned, and kills it with SIGKILL mid-stream:
// every reported entry must be there after reopening.
func TestLogStoreKill9(t *testing.T) {
	if dir := os.Getenv("CAIRN_WAL_CHILD_DIR"); dir != "" {
		s, err := OpenLogStore(dir, nil)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		w := bufio.NewWriter(os.Stdout)
		for lo := uint64(1); ; lo += 10 {
			var logs []*raft.Log
			for i := lo; i < lo+10; i++ {
				logs = append(logs, walLog(i, 1, 2000))
			}
			if err := s.StoreLogs(logs); err != nil {
				fmt.Println("store:", err)
				os.Exit(1)
			}
			fmt.Fprintln(w, lo+9)
			w.Flush()
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLogStoreKill9$")
	cmd.Env = append(os.Environ(), "CAIRN_WAL_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		acked = n
		// Past a segment's worth, so a rollover is in the run.
		if acked >= 9000 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 9000 {
		t.Fatalf("child stopped after %d entries", acked)
	}
	s := openTestLogStore(t, dir)
	defer s.Close()
	last, _ := s.LastIndex()
	if last < acked {
		t.Fatalf("after kill -9 the log ends at %d; %d was acknowledged", last, acked)
	}
	assertWAL(t, s, 1, last, 1, 2000)
	t.Logf("acknowledged %d, found %d after kill -9", acked, last)
}

// writeBadgerLog fills a log store of the kind metad used before the WAL.
func writeBadgerLog(t *testing.T, dir string, lo, hi uint64) {
	t.Helper()
	b, err := openBadgerLogStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The keys the old store wrote: 'l' + big-endian index → encoded
	// entry; 's' + key → stable value (uint64s big-endian).
	err = b.db.Update(func(txn *badger.Txn) error {
		for i := lo; i <= hi; i++ {
			if err := txn.Set(logKey(i), encodeLog(testLog(i))); err != nil {
				return err
			}
		}
		if err := txn.Set(append([]byte{stableKeyPrefix}, "CurrentTerm"...), binary.BigEndian.AppendUint64(nil, 7)); err != nil {
			return err
		}
		return txn.Set(append([]byte{stableKeyPrefix}, "LastVoteCand"...), []byte("m3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func assertMigrated(t *testing.T, dir string, lo, hi uint64) {
	t.Helper()
	s := openTestLogStore(t, dir)
	defer s.Close()
	assertBounds(t, s, lo, hi)
	assertHas(t, s, []uint64{lo, (lo + hi) / 2, hi}, []uint64{lo - 1, hi + 1})
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "m3" {
		t.Fatalf("LastVoteCand = %q, %v", v, err)
	}
	for _, leftover := range []string{dir + ".wal-migrating", dir + ".badger-migrated"} {
		if exists(leftover) {
			t.Fatalf("%s left behind", leftover)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(m) > 0 {
		t.Fatalf("badger files left in the WAL directory: %v", m)
	}
}

// TestLogStoreMigratesBadger: OpenLogStore on a Badger log directory
// migrates it, and so it does after a crash at each step of the migration.
func TestLogStoreMigratesBadger(t *testing.T) {
	tests := []struct {
		name  string
		crash func(t *testing.T, dir string)
	}{
		{"clean", func(t *testing.T, dir string) {}},
		{"crash while copying", func(t *testing.T, dir string) {
			// A partial copy next to the Badger store.
			w, err := openWAL(dir+".wal-migrating", nil)
			if err != nil {
				t.Fatal(err)
			}
			storeRange(t, w, 5, 9)
			w.Close()
		}},
		{"crash between the renames", func(t *testing.T, dir string) {
			if _, _, err := copyBadgerLog(dir, dir+".wal-migrating", slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dir, dir+".badger-migrated"); err != nil {
				t.Fatal(err)
			}
		}},
		{"crash before removing the badger store", func(t *testing.T, dir string) {
			if _, _, err := copyBadgerLog(dir, dir+".wal-migrating", slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dir, dir+".badger-migrated"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dir+".wal-migrating", dir); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "raft")
			writeBadgerLog(t, dir, 5, 400)
			tt.crash(t, dir)
			assertMigrated(t, dir, 5, 400)
		})
	}
}

// TestLogStoreMigratesOldDataDir boots a member on a data directory written
// by metad at 4b752b7, the last version with the Badger log store
// (testdata: one member, 200 objects committed, a snapshot at index 126
// and the log compacted to 107-206, stopped cleanly), checks that every
// object is there and the log was migrated, commits more, and restarts.
func TestLogStoreMigratesOldDataDir(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "m1")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xzf", "testdata/badger-raft-log-4b752b7.tar.gz", "-C", dataDir).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v: %s", err, out)
	}
	// What the old log holds, read with the old store.
	old, err := openBadgerLogStore(filepath.Join(dataDir, "raft"), nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := old.FirstIndex()
	last, _ := old.LastIndex()
	var want []raft.Log
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := old.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		want = append(want, l)
	}
	stable, err := old.stableEntries()
	if err != nil {
		t.Fatal(err)
	}
	var term uint64
	if v := stable["CurrentTerm"]; len(v) == 8 {
		term = binary.BigEndian.Uint64(v)
	}
	old.Close()
	if first != 107 || last != 206 || term == 0 {
		t.Fatalf("fixture log %d-%d term %d, want 107-206 and a term", first, last, term)
	}

	c := &testCluster{t: t, tune: func(cfg *Config) { cfg.InitialCluster = nil }}
	nd := &testNode{id: "m1", dir: dataDir, raftAddr: "127.0.0.1:0"}
	c.nodes = []*testNode{nd}
	t.Cleanup(c.closeAll)
	boot := func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nd.raftAddr = ln.Addr().String()
		c.start(nd, ln)
		c.waitLeader()
	}
	boot()
	if !isWALDir(filepath.Join(dataDir, "raft")) {
		t.Fatal("the raft directory was not migrated")
	}
	for i, w := range want {
		var got raft.Log
		if err := nd.srv.logs.GetLog(w.Index, &got); err != nil {
			// Raft may have compacted after a snapshot of its own; the
			// entries it kept must match.
			if errors.Is(err, raft.ErrLogNotFound) && i == 0 {
				continue
			}
			t.Fatalf("GetLog(%d) after migration: %v", w.Index, err)
		}
		if got.Term != w.Term || got.Type != w.Type || !bytes.Equal(got.Data, w.Data) || !got.AppendedAt.Equal(w.AppendedAt) {
			t.Fatalf("entry %d changed in migration", w.Index)
		}
	}
	if got, _ := nd.srv.logs.GetUint64([]byte("CurrentTerm")); got < term {
		t.Fatalf("CurrentTerm %d after migration, was %d", got, term)
	}
	ctx := testCtx(t)
	checkObjects := func(prefix string, n int) {
		t.Helper()
		cl := c.client()
		for i := range n {
			key := fmt.Sprintf("%s/%03d", prefix, i)
			resp, err := cl.GetObject(ctx, &pb.GetObjectRequest{Bucket: "old", Key: key})
			if err != nil || resp.GetObject().GetEtag() != "e-"+key {
				t.Fatalf("GetObject(%s) = %v, %v", key, resp, err)
			}
		}
	}
	checkObjects("before-snap", 120)
	checkObjects("after-snap", 80)
	cl := c.client()
	for i := range 30 {
		if _, err := cl.CommitObject(ctx, &pb.CommitObjectRequest{Object: testObject("old", fmt.Sprintf("after-migration/%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	c.kill(nd)
	boot()
	checkObjects("before-snap", 120)
	checkObjects("after-snap", 80)
	checkObjects("after-migration", 30)
	waitFor(t, 10*time.Second, func() bool { return nd.srv.AppliedIndex() > last }, "applied index past the old log's %d", last)
}
