//go:build !amd64 || !gc || purego

package sha256lanes

const hasKernel = false

func block16(digests *[512]byte, scratch *[512]byte, mask []uint64, inputs *[16][]byte) {
	panic("sha256lanes: no 16-lane kernel on this platform")
}
