// Package grpcbuf is how metad's gRPC server and its clients get buffers
// for messages.
//
// gRPC's default pool has tiers of 256 B, 4, 16 and 32 KiB and 1 MiB, and
// zeroes the whole buffer it hands out, and its protobuf codec always takes
// buffers from that default pool: a message of 33 KiB to 1 MiB (a
// CommitObjects call of a dozen small inline objects, and its answer) got a
// 1 MiB buffer cleared for it, 7% of the metad leader's CPU in a 4 KiB PUT
// run (docs/perf/metad.md §12). Pool has a tier at every power of two, so
// a buffer is at most twice its message and clearing it costs about what
// filling it does; Codec is the protobuf codec with Pool, and with the
// code vtprotobuf generated for the messages that have it (generated.go).
package grpcbuf

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Pool has a tier at every power of two from 256 B to 4 MiB (gRPC's
// default largest message); bigger buffers are not pooled.
var Pool = func() mem.BufferPool {
	var exps []uint8
	for e := uint8(8); e <= 22; e++ {
		exps = append(exps, e)
	}
	p, err := mem.NewBinaryTieredBufferPool(exps...)
	if err != nil {
		panic("grpcbuf: " + err.Error())
	}
	return p
}()

// Codec marshals protobuf messages as gRPC's own codec does, with buffers
// from Pool. Its name is "proto", so the wire does not change.
var Codec encoding.CodecV2 = codec{}

type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("grpcbuf: cannot marshal %T, not a proto.Message", v)
	}
	size := Size(m)
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := AppendSized(make([]byte, 0, size), m, size, false)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := Pool.Get(size)
	if _, err := AppendSized((*buf)[:0], m, size, false); err != nil {
		Pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, Pool)}, nil
}

// Unmarshal decodes into v, which keeps nothing of data (see Unmarshal),
// so data's buffers go back to the pool at once.
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpcbuf: cannot unmarshal into %T, not a proto.Message", v)
	}
	buf := data.MaterializeToBuffer(Pool)
	defer buf.Free()
	return Unmarshal(buf.ReadOnlyData(), m)
}

// ServerOptions make a gRPC server use Pool and Codec.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{experimental.BufferPool(Pool), grpc.ForceServerCodecV2(Codec)}
}

// DialOptions make a gRPC client use Pool and Codec.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{experimental.WithBufferPool(Pool), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(Codec))}
}
