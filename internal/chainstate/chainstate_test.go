package chainstate

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"hash"
	"slices"
	"testing"
)

// A state read out of a hash mid-stream and loaded into a fresh one, with
// the partial block and the length, finishes to the same sum, for both
// hashes the lanes packages use.
func TestReadLoadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		magic string
		words int
		new   func() hash.Hash
	}{
		{"md5", "md5\x01", 4, md5.New},
		{"sha256", "sha\x03", 8, sha256.New},
	} {
		for _, n := range []int{0, 64, 64 * 5, 64*7 + 13, 1000} {
			data := bytes.Repeat([]byte("cairn-chain-state"), 80)[:n+70]
			whole := n &^ 63
			h := tc.new()
			h.Write(data[:whole])
			cv := make([]uint32, tc.words)
			scratch := make([]byte, 0, Size(tc.words))
			if err := Read(h, cv, scratch); err != nil {
				t.Fatal(err)
			}
			g := tc.new()
			if err := Load(g, tc.magic, cv, data[whole:n], uint64(n), scratch); err != nil {
				t.Fatal(err)
			}
			g.Write(data[n:])
			want := tc.new()
			want.Write(data)
			if !bytes.Equal(g.Sum(nil), want.Sum(nil)) {
				t.Fatalf("%s, %d bytes before the move: sum differs", tc.name, n)
			}
		}
	}
	if err := Load(md5.New(), "sha\x03", make([]uint32, 8), nil, 0, nil); err == nil {
		t.Error("loaded a SHA-256 state into MD5")
	}
}

// Blocks hands on exactly the whole blocks of what is written, in order,
// whatever the write sizes, and keeps the rest as the partial block.
func TestBlocks(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, sizes := range [][]int{{1000}, {1, 63, 64, 65, 127, 200}, {30, 30, 30, 30, 30}, {0, 64, 0, 3}} {
		var b Blocks
		var pushed []byte
		written := 0
		for _, n := range sizes {
			n = min(n, len(data)-written)
			b.Write(data[written:written+n], func(p []byte) {
				if len(p)%64 != 0 || len(p) == 0 {
					t.Fatalf("%v: pushed %d bytes", sizes, len(p))
				}
				pushed = append(pushed, p...)
			})
			written += n
		}
		whole := written &^ 63
		if !bytes.Equal(pushed, data[:whole]) || !bytes.Equal(b.Partial(), data[whole:written]) || b.Len() != uint64(written) {
			t.Fatalf("%v: pushed %d bytes, partial %d, length %d; want %d, %d, %d", sizes, len(pushed), len(b.Partial()), b.Len(), whole, written-whole, written)
		}
		b.Reset()
		if b.Len() != 0 || len(b.Partial()) != 0 {
			t.Fatalf("%v: Reset left %d bytes, partial %d", sizes, b.Len(), len(b.Partial()))
		}
	}
}

func TestKernelArgs(t *testing.T) {
	var in [Lanes][]byte
	masks := make([]uint16, 8)
	if _, used := KernelArgs(&in, masks); used != nil {
		t.Fatalf("no blocks: masks %v, want none", used)
	}
	in[0] = make([]byte, 3*64)
	in[5] = make([]byte, 64+10) // one whole block; the rest is not the kernel's
	in[15] = make([]byte, 63)   // no whole block: sits out
	ptrs, used := KernelArgs(&in, masks)
	if want := []uint16{1<<0 | 1<<5, 1 << 0, 1 << 0}; !slices.Equal(used, want) {
		t.Fatalf("masks %016b, want %016b", used, want)
	}
	for i, p := range ptrs {
		if want := len(in[i]) >= 64; (p != 0) != want {
			t.Errorf("lane %d: address %#x, want one: %v", i, p, want)
		}
	}
}

func TestToLanesFromLanes(t *testing.T) {
	var cv [Lanes][]uint32
	var in [Lanes][]byte
	state := make([]uint32, 4*Lanes)
	for i := range state {
		state[i] = 0xdead
	}
	cv[2], in[2] = []uint32{1, 2, 3, 4}, make([]byte, 3*64+5)
	cv[9], in[9] = []uint32{5, 6, 7, 8}, make([]byte, 64)
	in[11] = make([]byte, 10*64) // no chaining value: not part of the call
	rounds, blocks := ToLanes(state, &cv, &in)
	if rounds != 3 || blocks != 4 {
		t.Fatalf("rounds %d, blocks %d; want 3, 4", rounds, blocks)
	}
	for j := range 4 {
		if state[j*Lanes+2] != cv[2][j] || state[j*Lanes+9] != cv[9][j] || state[j*Lanes+11] != 0xdead {
			t.Fatalf("word %d of lanes 2, 9, 11: %d %d %#x", j, state[j*Lanes+2], state[j*Lanes+9], state[j*Lanes+11])
		}
		state[j*Lanes+2] += 100
		state[j*Lanes+9] += 200
	}
	FromLanes(state, &cv)
	if !slices.Equal(cv[2], []uint32{101, 102, 103, 104}) || !slices.Equal(cv[9], []uint32{205, 206, 207, 208}) {
		t.Fatalf("chaining values back %v %v", cv[2], cv[9])
	}
}
