package placement

import "math"

// The hash below is part of placement's contract: changing it changes
// where new segments go (recorded placements are unaffected, since they are
// stored, not recomputed). It is a chain of MurmurHash3's 64-bit finalizer,
// which has full avalanche, over 8-byte little-endian words.

const golden = 0x9e3779b97f4a7c15

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// hashBytes hashes a segment id or a node id to 64 bits.
func hashBytes[T string | []byte](b T) uint64 {
	h := fmix64(uint64(len(b)) * golden)
	for i := 0; i < len(b); i += 8 {
		var w uint64
		for j := 0; j < 8 && i+j < len(b); j++ {
			w |= uint64(b[i+j]) << (8 * j)
		}
		h = fmix64(h ^ w)
	}
	return h
}

// draw returns ln(u) for the (segment, node) pair, u uniform in
// (0, 1). Dividing by a node's weight gives its straw2 score: the node with
// the highest score wins, and a node wins with probability proportional to
// its weight (−ln(u)/w is exponentially distributed with rate w, and the
// smallest of independent exponentials is index i with probability
// w_i/Σw).
func draw(seg, node uint64) float64 {
	h := fmix64(seg ^ fmix64(node+golden))
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return math.Log(u)
}
