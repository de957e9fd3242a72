package gateway

// PayloadHashStreams is the number of large payloads being hashed now.
func PayloadHashStreams() int64 { return shaStreams.Load() }

// PayloadLaneBlocks is the number of 64-byte blocks the shared sha256lanes
// server has hashed so far, in its lanes and with crypto/sha256.
func PayloadLaneBlocks() (kernel, solo int64) {
	st := shaLanes().Stats()
	return st.KernelBlocks.Load(), st.SoloBlocks.Load()
}

// PayloadLanesMinStreams is how many large payloads must be in flight for
// the lanes to be used.
const PayloadLanesMinStreams = shaLanesMinStreams

// SetPayloadLanesMinSize sets the smallest body whose hash may go through
// the lanes, and returns a function restoring it.
func SetPayloadLanesMinSize(n int64) func() {
	old := shaLanesMinSize
	shaLanesMinSize = n
	return func() { shaLanesMinSize = old }
}
