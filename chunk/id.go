package chunk

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SegmentID names a segment: 16 random bytes, chosen by the writer.
type SegmentID [16]byte

// NewSegmentID returns a fresh random segment id.
func NewSegmentID() SegmentID {
	var id SegmentID
	if _, err := rand.Read(id[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ panics
		// inside Read instead of returning an error).
		panic(fmt.Sprintf("chunk: read random segment id: %v", err))
	}
	return id
}

// SegmentIDFromBytes converts the 16-byte form stored in metadata.
func SegmentIDFromBytes(b []byte) (SegmentID, error) {
	var id SegmentID
	if len(b) != len(id) {
		return id, fmt.Errorf("segment id is %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

func (s SegmentID) String() string { return hex.EncodeToString(s[:]) }

// MaxShards bounds k+m (k ≤ 16, m ≤ 8).
const MaxShards = 24

// ID names a chunk: one shard of one segment. Its text form,
// "<32 lower-case hex digits>.<shard index>", is also its file name on a
// blob node, so ParseID is the gate every id from the network goes through.
type ID struct {
	Segment SegmentID
	Shard   int
}

// ErrBadID is returned by ParseID for anything that is not a chunk id.
var ErrBadID = errors.New("malformed chunk id")

func (id ID) String() string {
	return id.Segment.String() + "." + strconv.Itoa(id.Shard)
}

// ParseID parses the text form of a chunk id. It accepts exactly the strings
// String produces: no path separators, no dots other than the one, no
// upper-case hex, no leading zeros in the shard index.
func ParseID(s string) (ID, error) {
	var id ID
	hexPart, shardPart, ok := strings.Cut(s, ".")
	if !ok || len(hexPart) != 2*len(id.Segment) || shardPart == "" || len(shardPart) > 2 {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return id, fmt.Errorf("%w: %q", ErrBadID, s)
		}
	}
	for _, c := range shardPart {
		if c < '0' || c > '9' {
			return id, fmt.Errorf("%w: %q", ErrBadID, s)
		}
	}
	if len(shardPart) > 1 && shardPart[0] == '0' {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	shard, _ := strconv.Atoi(shardPart)
	if shard >= MaxShards {
		return id, fmt.Errorf("%w: shard %d out of range in %q", ErrBadID, shard, s)
	}
	if _, err := hex.Decode(id.Segment[:], []byte(hexPart)); err != nil {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	id.Shard = shard
	return id, nil
}
