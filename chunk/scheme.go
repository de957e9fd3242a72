package chunk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits of a Scheme. K+M never exceeds MaxShards.
const (
	MaxK = 16
	MaxM = 8
)

// StripeData is how many bytes of segment data a full stripe holds with
// DefaultParams (before rounding the block size up to a multiple of 64).
const StripeData = 1 << 20

// MaxBlockSize bounds Params.BlockSize, so one stripe of a valid chunk never
// asks a reader for an absurd buffer.
const MaxBlockSize = 16 << 20

// ErrBadParams is returned for a Scheme or Params outside the limits.
var ErrBadParams = errors.New("invalid erasure-coding parameters")

// Scheme is an erasure-coding scheme: K data shards and M parity shards.
// Any K of the K+M chunks of a segment rebuild it.
type Scheme struct {
	K int
	M int
}

// DefaultScheme is 4+2: 1.5× storage, survives any two lost chunks.
func DefaultScheme() Scheme { return Scheme{K: 4, M: 2} }

// Shards is K+M, the number of chunks of a segment.
func (s Scheme) Shards() int { return s.K + s.M }

// Validate checks 1 ≤ K ≤ 16 and 0 ≤ M ≤ 8.
func (s Scheme) Validate() error {
	if s.K < 1 || s.K > MaxK || s.M < 0 || s.M > MaxM {
		return fmt.Errorf("scheme %d+%d: want 1 ≤ k ≤ %d and 0 ≤ m ≤ %d: %w", s.K, s.M, MaxK, MaxM, ErrBadParams)
	}
	return nil
}

// String gives the text form, "4+2".
func (s Scheme) String() string { return strconv.Itoa(s.K) + "+" + strconv.Itoa(s.M) }

// ParseScheme parses the text form "k+m" (as String writes it) and validates it.
func ParseScheme(str string) (Scheme, error) {
	ks, ms, ok := strings.Cut(str, "+")
	if !ok {
		return Scheme{}, fmt.Errorf("scheme %q: want k+m: %w", str, ErrBadParams)
	}
	k, err1 := parseSmallUint(ks)
	m, err2 := parseSmallUint(ms)
	if err1 != nil || err2 != nil {
		return Scheme{}, fmt.Errorf("scheme %q: want k+m: %w", str, ErrBadParams)
	}
	s := Scheme{K: k, M: m}
	return s, s.Validate()
}

// parseSmallUint accepts only plain decimal digits (no sign, no spaces), at
// most 3 of them.
func parseSmallUint(s string) (int, error) {
	if s == "" || len(s) > 3 {
		return 0, ErrBadParams
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, ErrBadParams
		}
	}
	return strconv.Atoi(s)
}

// Params is everything that fixes the layout of a segment's chunks besides
// the segment's size: the scheme and the block size. Both are recorded in
// the segment's metadata and in every chunk header.
type Params struct {
	Scheme Scheme
	// BlockSize is the length of every block of every full stripe; the
	// stripe holds K*BlockSize bytes of data. The last stripe's blocks may
	// be shorter (see Layout).
	BlockSize int
}

// DefaultParams gives the scheme blocks holding 1 MiB of data per stripe:
// BlockSize = ceil(1 MiB / K) rounded up to a multiple of 64 (the SIMD
// width the Reed-Solomon kernels like best).
func DefaultParams(s Scheme) Params {
	k := max(s.K, 1)
	bs := (StripeData + k - 1) / k
	bs = (bs + 63) &^ 63
	return Params{Scheme: s, BlockSize: bs}
}

// Validate checks the scheme and 1 ≤ BlockSize ≤ MaxBlockSize.
func (p Params) Validate() error {
	if err := p.Scheme.Validate(); err != nil {
		return err
	}
	if p.BlockSize < 1 || p.BlockSize > MaxBlockSize {
		return fmt.Errorf("block size %d: want 1..%d: %w", p.BlockSize, MaxBlockSize, ErrBadParams)
	}
	return nil
}

// StripeDataSize is K*BlockSize, the data held by one full stripe.
func (p Params) StripeDataSize() int64 { return int64(p.Scheme.K) * int64(p.BlockSize) }

func (p Params) String() string {
	return p.Scheme.String() + "/" + strconv.Itoa(p.BlockSize)
}
