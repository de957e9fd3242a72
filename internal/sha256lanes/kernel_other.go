//go:build !amd64 || !gc || purego

package sha256lanes

const hasKernel = false

func block16(state *[8 * lanes]uint32, masks []uint16, in *[lanes][]byte) {
	panic("sha256lanes: no 16-lane kernel on this platform")
}
