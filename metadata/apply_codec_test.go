package metadata

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/cairnstore/cairn/metadata/metadatapb"
)

// TestStoredValuesAreProtoDeterministic: members that apply the same
// entries store the same bytes, those proto.MarshalOptions{Deterministic:
// true} gives, though the generated encoder writes map entries in Go's
// map order; and a field this version does not know survives the trip
// through the log and the state (an object written by a newer metad).
func TestStoredValuesAreProtoDeterministic(t *testing.T) {
	o := smObj("bk", "k", "e", smSeg(1))
	o.Headers = map[string]string{}
	for i := range 30 {
		o.Headers[fmt.Sprintf("h-%02d", 29-i)] = fmt.Sprint(i)
		o.UserMetadata[fmt.Sprintf("m%d", i)] = "é"
	}
	unknown := protowire.AppendTag(nil, 999, protowire.BytesType)
	unknown = protowire.AppendString(unknown, "from a newer version")
	o.ProtoReflect().SetUnknown(unknown)

	var dumps []map[string]string
	for range 3 {
		f := newTestFSM(t)
		var logs []*raft.Log
		for i, c := range []*pb.Command{smCreateBucket("bk"), smCommit(o, nil)} {
			b, err := proto.Marshal(c) // Go's map order, as a leader encodes
			if err != nil {
				t.Fatal(err)
			}
			logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: b})
		}
		for i, r := range f.ApplyBatch(logs) {
			if err := r.(Result).Err; err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
		dumps = append(dumps, smDump(t, f.state))
	}
	for i := 1; i < len(dumps); i++ {
		if !maps.Equal(dumps[0], dumps[i]) {
			t.Fatalf("member %d stored other bytes than member 0", i)
		}
	}
	v, ok := dumps[0][string(objectKey("bk", "k"))]
	if !ok {
		t.Fatal("no object stored")
	}
	stored := &pb.Object{}
	if err := proto.Unmarshal([]byte(v), stored); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.ProtoReflect().GetUnknown(), unknown) {
		t.Errorf("unknown field stored as %x, want %x", stored.ProtoReflect().GetUnknown(), unknown)
	}
	if !maps.Equal(stored.Headers, o.Headers) || !maps.Equal(stored.UserMetadata, o.UserMetadata) {
		t.Errorf("maps stored as %v %v", stored.Headers, stored.UserMetadata)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(v), want) {
		t.Errorf("stored object is not proto's deterministic encoding:\n got %x\nwant %x", v, want)
	}
}
