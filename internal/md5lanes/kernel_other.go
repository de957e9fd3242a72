//go:build !amd64 || !gc || purego

package md5lanes

const hasKernel = false

func block16(state *[64]uint32, masks []uint16, in *[lanes][]byte) {
	panic("md5lanes: no 16-lane kernel on this platform")
}
