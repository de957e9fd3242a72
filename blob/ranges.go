package blob

import (
	"fmt"
	"strconv"
	"strings"
)

// parseByteRange parses a Range header of one byte range ("bytes=a-b",
// "bytes=a-", "bytes=-n") against a chunk of the given size and returns the
// range as offset and length. A malformed header (or several ranges, which
// no Cairn client sends) is errBadRequest; a range that selects no byte of
// the chunk is ErrBadRange.
func parseByteRange(h string, size int64) (off, n int64, err error) {
	unit, spec, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, fmt.Errorf("range %q: want bytes=FIRST-LAST: %w", h, errBadRequest)
	}
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, ",") {
		return 0, 0, fmt.Errorf("range %q: only one range is supported: %w", h, errBadRequest)
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, fmt.Errorf("range %q: want bytes=FIRST-LAST: %w", h, errBadRequest)
	}
	if first == "" { // suffix: the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, fmt.Errorf("range %q: bad suffix length: %w", h, errBadRequest)
		}
		if n == 0 || size == 0 {
			return 0, 0, fmt.Errorf("range %q of a %d-byte chunk: %w", h, size, ErrBadRange)
		}
		n = min(n, size)
		return size - n, n, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, fmt.Errorf("range %q: bad first byte: %w", h, errBadRequest)
	}
	b := size - 1
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, 0, fmt.Errorf("range %q: bad last byte: %w", h, errBadRequest)
		}
	}
	if a >= size {
		return 0, 0, fmt.Errorf("range %q of a %d-byte chunk: %w", h, size, ErrBadRange)
	}
	b = min(b, size-1)
	return a, b - a + 1, nil
}

// formatByteRange is the Range header for n bytes at off (n > 0).
func formatByteRange(off, n int64) string {
	return "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)
}

// maxStripe bounds stripe numbers in a query (a chunk has fewer than 2^31
// stripes; see chunk.NewLayout).
const maxStripe = 1<<31 - 1

// parseStripes parses the stripes query, "FROM-TO", the half-open range of
// stripes [FROM, TO). Malformed is errBadRequest.
func parseStripes(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "-")
	x, ok1 := parseDigits(a)
	y, ok2 := parseDigits(b)
	if !ok || !ok1 || !ok2 || x > maxStripe || y > maxStripe || x > y {
		return 0, 0, fmt.Errorf("stripes %q: want FROM-TO with 0 ≤ FROM ≤ TO: %w", s, errBadRequest)
	}
	return int(x), int(y), nil
}

// formatStripes is the stripes query for [from, to).
func formatStripes(from, to int) string {
	return strconv.Itoa(from) + "-" + strconv.Itoa(to)
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces)
// that fits an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		// 18 digits always fit an int64; longer numbers are no offset in
		// any chunk.
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
