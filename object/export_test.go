package object

// MD5LanesKernelBlocks is how many blocks the process's MD5 lanes have
// hashed in the kernel so far: the Store tests check that their bodies
// went through it.
func MD5LanesKernelBlocks() int64 { return md5Lanes().Stats().KernelBlocks.Load() }
