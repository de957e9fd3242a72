package grpcbuf

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A buffer is at most twice the size asked for, up to the largest tier,
// so that zeroing it costs about as much as filling it.
func TestPoolBuffersFitTheirMessages(t *testing.T) {
	for _, size := range []int{1, 255, 256, 257, 4 << 10, 33 << 10, 40 << 10, 300 << 10, 1<<20 + 1, 4 << 20} {
		b := Pool.Get(size)
		if len(*b) != size {
			t.Errorf("Get(%d) has length %d", size, len(*b))
		}
		if c := cap(*b); c > 2*size && c > 256 {
			t.Errorf("Get(%d) handed out a buffer of %d bytes", size, c)
		}
		Pool.Put(b)
	}
}

// Codec round-trips messages below and above gRPC's pooling threshold,
// and refuses what is not a protobuf message.
func TestCodecRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 1 << 10, 40 << 10, 3 << 20} {
		in := wrapperspb.Bytes(bytes.Repeat([]byte{byte(size), 7}, size/2))
		data, err := Codec.Marshal(in)
		if err != nil {
			t.Fatalf("marshal %d bytes: %v", size, err)
		}
		out := &wrapperspb.BytesValue{}
		if err := Codec.Unmarshal(data, out); err != nil {
			t.Fatalf("unmarshal %d bytes: %v", size, err)
		}
		data.Free()
		if !proto.Equal(in, out) {
			t.Fatalf("%d bytes: round trip changed the message", size)
		}
	}
	if _, err := Codec.Marshal("not a message"); err == nil {
		t.Error("marshalled a string")
	}
	if err := Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{1})}, new(int)); err == nil {
		t.Error("unmarshalled into an int")
	}
}
