package gateway

import (
	"strconv"
	"strings"
)

// byteRange is a satisfiable range [start, start+length) of an object.
type byteRange struct {
	start, length int64
}

// rangeResult is what a Range header asks of an object of a given size.
type rangeResult int

const (
	// rangeNone: no usable Range header; answer the whole object with 200
	// (S3 ignores a syntactically invalid or multi-range header).
	rangeNone rangeResult = iota
	// rangeOK: answer 206 with the range.
	rangeOK
	// rangeUnsatisfiable: 416 InvalidRange.
	rangeUnsatisfiable
)

// parseRange interprets a Range header (RFC 9110 section 14.1.2, as S3
// applies it: one range only) against an object of size bytes.
func parseRange(h string, size int64) (byteRange, rangeResult) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return byteRange{}, rangeNone
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, rangeNone
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		// Suffix range: the last n bytes.
		n, err := parseDigits(last)
		if err != nil {
			return byteRange{}, rangeNone
		}
		if n == 0 {
			return byteRange{}, rangeUnsatisfiable
		}
		if size == 0 {
			// Nothing to satisfy; S3 answers the empty object with 200.
			return byteRange{}, rangeNone
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, rangeOK
	}
	start, err := parseDigits(first)
	if err != nil {
		return byteRange{}, rangeNone
	}
	end := size - 1
	if last != "" {
		e, err := parseDigits(last)
		if err != nil || e < start {
			return byteRange{}, rangeNone
		}
		end = min(e, size-1)
	}
	if start >= size {
		return byteRange{}, rangeUnsatisfiable
	}
	return byteRange{start: start, length: end - start + 1}, rangeOK
}

// parseDigits parses a non-empty run of ASCII digits (no sign, no spaces).
func parseDigits(s string) (int64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}
