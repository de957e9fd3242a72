package metadata

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openTestLogStore(t *testing.T, dir string) *LogStore {
	t.Helper()
	s, err := OpenLogStore(dir, nil)
	if err != nil {
		t.Fatalf("OpenLogStore: %v", err)
	}
	return s
}

func testLog(i uint64) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       i/10 + 1,
		Type:       raft.LogCommand,
		Data:       []byte{byte(i), byte(i >> 8), 'x'},
		AppendedAt: time.Unix(1700000000, int64(i)),
	}
}

func storeRange(t *testing.T, s *LogStore, lo, hi uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := lo; i <= hi; i++ {
		logs = append(logs, testLog(i))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d..%d): %v", lo, hi, err)
	}
}

func assertBounds(t *testing.T, s *LogStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if f != first || l != last {
		t.Fatalf("bounds = [%d, %d], want [%d, %d]", f, l, first, last)
	}
}

func assertHas(t *testing.T, s *LogStore, present []uint64, absent []uint64) {
	t.Helper()
	for _, i := range present {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		want := testLog(i)
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
			!bytes.Equal(got.Data, want.Data) || !got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, got, *want)
		}
	}
	for _, i := range absent {
		var got raft.Log
		if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) error = %v, want ErrLogNotFound", i, err)
		}
	}
}

// TestLogStore follows the expectations hashicorp/raft's own store tests
// (raft-boltdb, raft-wal) put on a LogStore.
func TestLogStore(t *testing.T) {
	type op struct {
		store      [2]uint64 // inclusive range to store, zero to skip
		deleteFrom uint64
		deleteTo   uint64
	}
	tests := []struct {
		name        string
		ops         []op
		first, last uint64
		present     []uint64
		absent      []uint64
	}{
		{
			name:    "empty",
			absent:  []uint64{0, 1, 2},
			first:   0,
			last:    0,
			present: nil,
		},
		{
			name:    "store batch",
			ops:     []op{{store: [2]uint64{1, 10}}},
			first:   1,
			last:    10,
			present: []uint64{1, 5, 10},
			absent:  []uint64{0, 11},
		},
		{
			name:    "store after snapshot gap",
			ops:     []op{{store: [2]uint64{100, 105}}},
			first:   100,
			last:    105,
			present: []uint64{100, 105},
			absent:  []uint64{1, 99, 106},
		},
		{
			name: "compact prefix",
			ops: []op{
				{store: [2]uint64{1, 20}},
				{deleteFrom: 1, deleteTo: 15},
			},
			first:   16,
			last:    20,
			present: []uint64{16, 20},
			absent:  []uint64{1, 15},
		},
		{
			name: "compact with range below first",
			ops: []op{
				{store: [2]uint64{10, 20}},
				{deleteFrom: 0, deleteTo: 12},
			},
			first:   13,
			last:    20,
			present: []uint64{13},
			absent:  []uint64{10, 12},
		},
		{
			name: "truncate suffix and rewrite",
			ops: []op{
				{store: [2]uint64{1, 20}},
				{deleteFrom: 15, deleteTo: 20},
				{store: [2]uint64{15, 17}},
			},
			first:   1,
			last:    17,
			present: []uint64{1, 14, 15, 17},
			absent:  []uint64{18, 20},
		},
		{
			name: "delete everything",
			ops: []op{
				{store: [2]uint64{5, 9}},
				{deleteFrom: 5, deleteTo: 9},
			},
			first:  0,
			last:   0,
			absent: []uint64{5, 9},
		},
		{
			name: "store after deleting everything",
			ops: []op{
				{store: [2]uint64{5, 9}},
				{deleteFrom: 1, deleteTo: 100},
				{store: [2]uint64{200, 201}},
			},
			first:   200,
			last:    201,
			present: []uint64{200, 201},
			absent:  []uint64{5, 9},
		},
		{
			name: "delete range outside the log",
			ops: []op{
				{store: [2]uint64{10, 12}},
				{deleteFrom: 20, deleteTo: 30},
				{deleteFrom: 1, deleteTo: 5},
			},
			first:   10,
			last:    12,
			present: []uint64{10, 12},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestLogStore(t, dir)
			for _, o := range tt.ops {
				if o.store[0] != 0 {
					storeRange(t, s, o.store[0], o.store[1])
				}
				if o.deleteTo != 0 {
					if err := s.DeleteRange(o.deleteFrom, o.deleteTo); err != nil {
						t.Fatalf("DeleteRange(%d, %d): %v", o.deleteFrom, o.deleteTo, err)
					}
				}
			}
			assertBounds(t, s, tt.first, tt.last)
			assertHas(t, s, tt.present, tt.absent)

			// Everything survives a reopen, and the bounds are found again
			// from disk rather than from the cache.
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s = openTestLogStore(t, dir)
			defer s.Close()
			assertBounds(t, s, tt.first, tt.last)
			assertHas(t, s, tt.present, tt.absent)
		})
	}
}

func TestLogStoreSingleAndOverwrite(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	defer s.Close()
	if err := s.StoreLog(testLog(1)); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	l := testLog(1)
	l.Term, l.Data, l.Extensions, l.AppendedAt = 7, []byte("new"), []byte("ext"), time.Time{}
	if err := s.StoreLog(l); err != nil {
		t.Fatalf("StoreLog overwrite: %v", err)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); err != nil {
		t.Fatalf("GetLog: %v", err)
	}
	if got.Term != 7 || string(got.Data) != "new" || string(got.Extensions) != "ext" || !got.AppendedAt.IsZero() {
		t.Fatalf("GetLog after overwrite = %+v", got)
	}
	assertBounds(t, s, 1, 1)
}

func TestLogStoreLargeBatch(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	defer s.Close()
	// Bigger than one Badger transaction allows (~15% of a 16 MiB
	// memtable), so StoreLogs must split it.
	payload := bytes.Repeat([]byte("p"), 64<<10)
	var logs []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: payload})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
	assertBounds(t, s, 1, 100)
	var got raft.Log
	if err := s.GetLog(100, &got); err != nil || len(got.Data) != len(payload) {
		t.Fatalf("GetLog(100) = %d bytes, %v", len(got.Data), err)
	}
	if err := s.DeleteRange(1, 99); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	assertBounds(t, s, 100, 100)
}

func TestStableStore(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"missing key is empty", func(t *testing.T) {
			v, err := s.Get([]byte("nope"))
			if err != nil || len(v) != 0 {
				t.Fatalf("Get = %q, %v; want empty, nil", v, err)
			}
		}},
		{"missing uint64 is zero", func(t *testing.T) {
			v, err := s.GetUint64([]byte("nope"))
			if err != nil || v != 0 {
				t.Fatalf("GetUint64 = %d, %v; want 0, nil", v, err)
			}
		}},
		{"set get", func(t *testing.T) {
			if err := s.Set([]byte("LastVoteCand"), []byte("m2")); err != nil {
				t.Fatal(err)
			}
			v, err := s.Get([]byte("LastVoteCand"))
			if err != nil || string(v) != "m2" {
				t.Fatalf("Get = %q, %v", v, err)
			}
		}},
		{"set get uint64", func(t *testing.T) {
			if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
				t.Fatal(err)
			}
			v, err := s.GetUint64([]byte("CurrentTerm"))
			if err != nil || v != 42 {
				t.Fatalf("GetUint64 = %d, %v", v, err)
			}
		}},
		{"stable keys do not show up as log entries", func(t *testing.T) {
			assertBounds(t, s, 0, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestLogStore(t, dir)
	defer s.Close()
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("after reopen GetUint64 = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "m2" {
		t.Fatalf("after reopen Get = %q, %v", v, err)
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(encodeLog(testLog(3)))
	f.Add(encodeLog(&raft.Log{}))
	f.Add([]byte{logEncodingV1, 1, 1, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		// What decodes must re-encode to the same entry.
		var again raft.Log
		if err := decodeLog(encodeLog(&l), &again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Index != l.Index || again.Term != l.Term || again.Type != l.Type ||
			!bytes.Equal(again.Data, l.Data) || !bytes.Equal(again.Extensions, l.Extensions) ||
			!again.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("round trip changed %+v to %+v", l, again)
		}
	})
}
