package grpcbuf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// fill sets every field of m (recursing to depth) to random values: maps
// of up to 6 entries (empty keys and values included), repeated fields,
// oneofs, and unknown fields, but not where the generated code is known
// to differ (see divergent).
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic() {
			continue
		}
		if rng.IntN(4) == 0 {
			continue
		}
		setField(rng, m, fd, depth)
	}
	oneofs := m.Descriptor().Oneofs()
	for i := range oneofs.Len() {
		od := oneofs.Get(i)
		if od.IsSynthetic() || rng.IntN(5) == 0 {
			continue
		}
		setField(rng, m, od.Fields().Get(rng.IntN(od.Fields().Len())), depth)
	}
	if rng.IntN(3) == 0 && m.Descriptor().FullName() != anyName {
		var u []byte
		for range 1 + rng.IntN(3) {
			num := protowire.Number(1000 + rng.IntN(100))
			switch rng.IntN(3) {
			case 0:
				u = protowire.AppendTag(u, num, protowire.VarintType)
				u = protowire.AppendVarint(u, rng.Uint64())
			case 1:
				u = protowire.AppendTag(u, num, protowire.BytesType)
				u = protowire.AppendBytes(u, []byte(randString(rng)))
			case 2:
				u = protowire.AppendTag(u, num, protowire.Fixed64Type)
				u = protowire.AppendFixed64(u, rng.Uint64())
			}
		}
		m.SetUnknown(u)
	}
}

func setField(rng *rand.Rand, m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) {
	switch {
	case fd.IsMap():
		if depth <= 0 {
			return
		}
		mp := m.Mutable(fd).Map()
		for range rng.IntN(7) {
			k := scalar(rng, fd.MapKey())
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v := mp.NewValue()
				fill(rng, v.Message(), depth-1)
				mp.Set(k.MapKey(), v)
			} else {
				mp.Set(k.MapKey(), scalar(rng, fd.MapValue()))
			}
		}
	case fd.IsList():
		l := m.Mutable(fd).List()
		for range rng.IntN(4) {
			if fd.Kind() == protoreflect.MessageKind {
				if depth <= 0 {
					return
				}
				v := l.NewElement()
				fill(rng, v.Message(), depth-1)
				l.Append(v)
			} else {
				l.Append(scalar(rng, fd))
			}
		}
	case fd.Kind() == protoreflect.MessageKind:
		if depth <= 0 {
			return
		}
		fill(rng, m.Mutable(fd).Message(), depth-1)
	default:
		m.Set(fd, scalar(rng, fd))
	}
}

func randString(rng *rand.Rand) string {
	alphabet := []string{"", "a", "b", "Content-Type", "é", "\x00", "x-amz-meta-", "ÿz", "日本"}
	var sb strings.Builder
	for range rng.IntN(4) {
		sb.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

func scalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rng.IntN(5) - 1))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(rng.Uint32()) >> rng.IntN(32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(rng.Uint64()) >> rng.IntN(64))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rng.Uint32() >> rng.IntN(32))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rng.Uint64() >> rng.IntN(64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32([]float32{0, 1.5, -2, float32(math.Inf(1)), float32(math.NaN())}[rng.IntN(5)])
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64([]float64{0, 1.5, -2, math.Inf(-1), math.NaN(), rng.Float64()}[rng.IntN(6)])
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(randString(rng))
	case protoreflect.BytesKind:
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic("kind " + fd.Kind().String())
}

// allMessages is one empty message of every type metadatapb declares.
func allMessages(t testing.TB) []proto.Message {
	var out []proto.Message
	msgs := pb.File_metadata_proto.Messages()
	for i := range msgs.Len() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(msgs.Get(i).FullName())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mt.New().Interface())
	}
	return out
}

// TestGeneratedMatchesProto: for random messages of every metadatapb type,
// the generated path and protobuf-go give the same sizes, the same
// deterministic bytes, and decode each other's encodings to equal
// messages that keep nothing of the input and keep unknown fields.
func TestGeneratedMatchesProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, proto0 := range allMessages(t) {
		if _, ok := proto0.(vtMessage); !ok {
			t.Fatalf("%T has no generated code", proto0)
		}
		for range 200 {
			m := proto0.ProtoReflect().New().Interface()
			fill(rng, m.ProtoReflect(), 3)
			name := string(m.ProtoReflect().Descriptor().Name())
			if got, want := Size(m), proto.Size(m); got != want {
				t.Fatalf("%s: Size %d, proto.Size %d", name, got, want)
			}
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatalf("%s: proto: %v", name, err)
			}
			prefix := []byte("prefix")
			got, err := Append(bytes.Clone(prefix), m, true)
			if err != nil {
				t.Fatalf("%s: Append: %v", name, err)
			}
			if !bytes.Equal(got, append(prefix, want...)) {
				t.Fatalf("%s: deterministic bytes differ\n got %x\nwant %x", name, got[len(prefix):], want)
			}
			got, err = AppendSized(nil, m, Size(m), false)
			if err != nil {
				t.Fatalf("%s: AppendSized: %v", name, err)
			}
			back := m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(got, back); err != nil || !proto.Equal(back, m) {
				t.Fatalf("%s: proto.Unmarshal of the generated encoding: %v, equal %v", name, err, proto.Equal(back, m))
			}
			unchecked := m.ProtoReflect().New().Interface()
			fill(rng, unchecked.ProtoReflect(), 1)
			if err := UnmarshalUnchecked(got, unchecked); err != nil || !proto.Equal(unchecked, m) {
				t.Fatalf("%s: UnmarshalUnchecked of the generated encoding: %v, equal %v", name, err, proto.Equal(unchecked, m))
			}
			// Decoding into a message that holds something: reset first.
			dec := m.ProtoReflect().New().Interface()
			fill(rng, dec.ProtoReflect(), 1)
			if err := Unmarshal(want, dec); err != nil {
				t.Fatalf("%s: Unmarshal: %v", name, err)
			}
			for i := range want {
				want[i] = 0xAA // a recycled buffer
			}
			if !proto.Equal(dec, m) {
				t.Fatalf("%s: Unmarshal of proto's encoding (input overwritten after) differs:\n got %v\nwant %v", name, dec, m)
			}
		}
	}
}

// TestGeneratedRefusesWhatProtoRefuses: strings that are not UTF-8 are
// refused by both ways, encoding and decoding, at any depth.
func TestGeneratedRefusesWhatProtoRefuses(t *testing.T) {
	cases := []proto.Message{
		&pb.Bucket{Name: "\xff"},
		&pb.Object{Key: "k", Headers: map[string]string{"a": "1", "b\xff": "2"}},
		&pb.Object{Key: "k", UserMetadata: map[string]string{"a": "\xc3"}},
		&pb.Command{Op: &pb.Command_CommitObject{CommitObject: &pb.CommitObjectRequest{Object: &pb.Object{Segments: []*pb.Segment{{Nodes: []string{"n", "\xfe"}}}}}}},
		&pb.SetRebalance{Outcome: "\xff"},
	}
	for _, m := range cases {
		if _, err := proto.Marshal(m); err == nil {
			t.Fatalf("proto.Marshal took %v", m)
		}
		if _, err := Append(nil, m, true); err == nil {
			t.Errorf("Append (deterministic) took %v", m)
		}
		if _, err := Append(nil, m, false); err == nil {
			t.Errorf("Append took %v", m)
		}
		// What the generated code writes unchecked, proto and Unmarshal refuse.
		b, err := m.(interface{ MarshalVT() ([]byte, error) }).MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(b, m.ProtoReflect().New().Interface()); err == nil {
			t.Fatalf("proto.Unmarshal took %x", b)
		}
		if err := Unmarshal(b, m.ProtoReflect().New().Interface()); err == nil {
			t.Errorf("Unmarshal took %v", m)
		}
	}
}

// TestDeterministicMapOrder: objects with many headers come out in key
// order whatever Go's map order was, so members store the same bytes.
func TestDeterministicMapOrder(t *testing.T) {
	o := &pb.Object{Bucket: "b", Key: "k", Headers: map[string]string{}, UserMetadata: map[string]string{}}
	for i := range 40 {
		o.Headers[string(rune('a'+i%26))+strings.Repeat("z", i/26)] = "v"
		o.UserMetadata[strings.Repeat("m", i)] = strings.Repeat("é", i)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		got, err := Append(nil, o, true)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Append: %v, bytes equal %v", err, bytes.Equal(got, want))
		}
	}
	c := &pb.Command{Op: &pb.Command_CommitObject{CommitObject: &pb.CommitObjectRequest{Object: o}}}
	want, _ = proto.MarshalOptions{Deterministic: true}.Marshal(c)
	for range 50 {
		if got, err := Append(nil, c, true); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Append of a nested object: %v, bytes equal %v", err, bytes.Equal(got, want))
		}
	}
}

// FuzzGeneratedAgreesWithProto decodes arbitrary bytes both ways: what the
// generated path accepts, proto accepts too, as the same message; what
// proto accepts, the generated path accepts; and both re-encode it to the
// same deterministic bytes. Except where divergent.
func FuzzGeneratedAgreesWithProto(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	types := []proto.Message{&pb.Command{}, &pb.Object{}, &pb.MultipartUpload{}, &pb.CommitObjectsRequest{}, &pb.CommitObjectsResponse{}, &pb.Segment{}, &pb.GCEntry{}, &pb.Part{}}
	for i := range 40 {
		m := types[i%len(types)].ProtoReflect().New().Interface()
		fill(rng, m.ProtoReflect(), 3)
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i%len(types)), b)
	}
	f.Add(uint8(1), []byte{0x3a, 0x04, 0x0a, 0x01, 0xff, 0x12}) // truncated map entry
	f.Add(uint8(1), []byte{0x10, 0x01})                         // a string field as a varint
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := types[int(which)%len(types)]
		p := typ.ProtoReflect().New().Interface()
		v := typ.ProtoReflect().New().Interface()
		errP := proto.Unmarshal(data, p)
		errV := Unmarshal(data, v)
		switch {
		case errV == nil && errP != nil:
			t.Fatalf("generated took what proto refuses (%v): %x", errP, data)
		case errV == nil && !proto.Equal(p, v) && !divergent(data, p.ProtoReflect().Descriptor()):
			t.Fatalf("decoded differently:\nproto     %v\ngenerated %v", p, v)
		case errV != nil && errP == nil:
			if !divergent(data, p.ProtoReflect().Descriptor()) {
				t.Fatalf("generated refused (%v) what proto took: %x", errV, data)
			}
			return
		case errV != nil, divergent(data, p.ProtoReflect().Descriptor()):
			return
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Append(nil, v, true)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("re-encoded: %v\n got %x\nwant %x", err, got, want)
		}
	})
}

const anyName = "google.protobuf.Any"

// divergent is whether encoding b of a message md is decoded differently
// by the generated code, by design: a known field with the wrong wire type
// (proto keeps it as an unknown field, or skips it in a map entry; the
// generated code refuses it), a google.protobuf.Any with unknown fields
// (vtprotobuf's Any, a type of another package, cannot reach them and
// drops them), or a tag written in more bytes than it needs (proto
// rewrites it when it keeps it as an unknown field, the generated code
// keeps it as it came). No protobuf encoder writes any of these.
func divergent(b []byte, md protoreflect.MessageDescriptor) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if n != protowire.SizeTag(num) {
			return true
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false
		}
		v := b[:n]
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		switch {
		case fd == nil:
			if md.FullName() == anyName {
				return true
			}
		case typ != wireType(fd) && !(typ == protowire.BytesType && fd.IsList() && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind && fd.Kind() != protoreflect.MessageKind):
			return true
		case fd.Kind() == protoreflect.MessageKind:
			inner, _ := protowire.ConsumeBytes(v)
			if divergent(inner, fd.Message()) {
				return true
			}
		}
	}
	return false
}

func wireType(fd protoreflect.FieldDescriptor) protowire.Type {
	switch fd.Kind() {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.VarintType
}
