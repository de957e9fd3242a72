package blob

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseByteRange(t *testing.T) {
	for _, tc := range []struct {
		h       string
		size    int64
		off, n  int64
		wantErr error
	}{
		{"bytes=0-0", 10, 0, 1, nil},
		{"bytes=0-9", 10, 0, 10, nil},
		{"bytes=0-99", 10, 0, 10, nil},
		{"bytes=3-", 10, 3, 7, nil},
		{"bytes=-3", 10, 7, 3, nil},
		{"bytes=-30", 10, 0, 10, nil},
		{"Bytes = 2-4", 10, 2, 3, nil},
		{"bytes=9-9", 10, 9, 1, nil},
		{"bytes=10-", 10, 0, 0, ErrBadRange},
		{"bytes=10-20", 10, 0, 0, ErrBadRange},
		{"bytes=-0", 10, 0, 0, ErrBadRange},
		{"bytes=0-", 0, 0, 0, ErrBadRange},
		{"bytes=-5", 0, 0, 0, ErrBadRange},
		{"bytes=5-4", 10, 0, 0, errBadRequest},
		{"bytes=-", 10, 0, 0, errBadRequest},
		{"bytes=", 10, 0, 0, errBadRequest},
		{"bytes=1", 10, 0, 0, errBadRequest},
		{"bytes=1-2,3-4", 10, 0, 0, errBadRequest},
		{"bytes=+1-2", 10, 0, 0, errBadRequest},
		{"bytes=1-+2", 10, 0, 0, errBadRequest},
		{"bytes=--1", 10, 0, 0, errBadRequest},
		{"bytes=0x1-2", 10, 0, 0, errBadRequest},
		{"bytes=1 -2", 10, 0, 0, errBadRequest},
		{"bytes=9999999999999999999-", 10, 0, 0, errBadRequest},
		{"items=0-1", 10, 0, 0, errBadRequest},
		{"0-1", 10, 0, 0, errBadRequest},
		{"", 10, 0, 0, errBadRequest},
	} {
		off, n, err := parseByteRange(tc.h, tc.size)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("parseByteRange(%q, %d): err = %v, want %v", tc.h, tc.size, err, tc.wantErr)
			}
			continue
		}
		if err != nil || off != tc.off || n != tc.n {
			t.Errorf("parseByteRange(%q, %d) = %d, %d, %v; want %d, %d", tc.h, tc.size, off, n, err, tc.off, tc.n)
		}
	}
}

func TestParseStripes(t *testing.T) {
	for _, tc := range []struct {
		s        string
		from, to int
		ok       bool
	}{
		{"0-0", 0, 0, true},
		{"0-1", 0, 1, true},
		{"3-17", 3, 17, true},
		{"2147483647-2147483647", maxStripe, maxStripe, true},
		{"0-2147483648", 0, 0, false},
		{"2-1", 0, 0, false},
		{"1", 0, 0, false},
		{"-1-2", 0, 0, false},
		{"1--2", 0, 0, false},
		{"a-b", 0, 0, false},
		{" 1-2", 0, 0, false},
		{"1-2-3", 0, 0, false},
		{"", 0, 0, false},
		{"-", 0, 0, false},
	} {
		from, to, err := parseStripes(tc.s)
		if !tc.ok {
			if !errors.Is(err, errBadRequest) {
				t.Errorf("parseStripes(%q): err = %v, want errBadRequest", tc.s, err)
			}
			continue
		}
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("parseStripes(%q) = %d, %d, %v; want %d, %d", tc.s, from, to, err, tc.from, tc.to)
		}
	}
}

// FuzzParseByteRange: any header either fails with one of the two errors
// or yields a non-empty range inside the chunk; what formatByteRange writes
// parses back to itself.
func FuzzParseByteRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=5-", "bytes=-5", "bytes=1-2,3-4", "bytes=99999999999999999999-", "bytes= 7 - 9 "} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = 0
			}
		}
		off, n, err := parseByteRange(h, size)
		if err != nil {
			if !errors.Is(err, ErrBadRange) && !errors.Is(err, errBadRequest) {
				t.Fatalf("parseByteRange(%q, %d): unexpected error kind %v", h, size, err)
			}
			return
		}
		if off < 0 || n < 1 || off >= size || n > size-off {
			t.Fatalf("parseByteRange(%q, %d) = [%d, +%d): outside the chunk", h, size, off, n)
		}
		off2, n2, err := parseByteRange(formatByteRange(off, n), size)
		if err != nil || off2 != off || n2 != n {
			t.Fatalf("round trip of [%d, +%d) via %q: [%d, +%d), %v", off, n, formatByteRange(off, n), off2, n2, err)
		}
	})
}

// FuzzParseStripes: any query either fails with errBadRequest or yields
// 0 ≤ from ≤ to ≤ maxStripe equal to the decimal numbers written, and
// formatStripes of the result parses back to it.
func FuzzParseStripes(f *testing.F) {
	for _, s := range []string{"0-1", "3-17", "2-1", "a-b", "-1-2", "01-2", "4294967296-4294967297"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := parseStripes(s)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("parseStripes(%q): unexpected error kind %v", s, err)
			}
			return
		}
		if from < 0 || to < from || to > maxStripe {
			t.Fatalf("parseStripes(%q) = %d, %d", s, from, to)
		}
		a, b, _ := strings.Cut(s, "-")
		if x, _ := strconv.Atoi(a); x != from {
			t.Fatalf("parseStripes(%q): from %d", s, from)
		}
		if y, _ := strconv.Atoi(b); y != to {
			t.Fatalf("parseStripes(%q): to %d", s, to)
		}
		if f2, t2, err := parseStripes(formatStripes(from, to)); err != nil || f2 != from || t2 != to {
			t.Fatalf("round trip of %d-%d: %d-%d, %v", from, to, f2, t2, err)
		}
	})
}
