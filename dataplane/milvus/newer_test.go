package milvus

import (
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protowire"
)

// newerSchema is a schema as a Milvus 2.5 or later server sends it:
// with attributes this zdm's protocol has no name for, appended as the
// server's encoder writes them, and decoded as a gRPC answer is.
func newerSchema(t *testing.T, fieldAttrs map[string][]byte, collAttrs []byte) *schemapb.CollectionSchema {
	t.Helper()
	var wire []byte
	wire = protowire.AppendTag(wire, 1, protowire.BytesType)
	wire = protowire.AppendString(wire, "c")
	for _, f := range []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "s", DataType: schemapb.DataType_VarChar},
		{Name: "v", DataType: schemapb.DataType_FloatVector},
	} {
		b, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, fieldAttrs[f.GetName()]...)
		wire = protowire.AppendTag(wire, 4, protowire.BytesType)
		wire = protowire.AppendBytes(wire, b)
	}
	wire = append(wire, collAttrs...)
	s := &schemapb.CollectionSchema{}
	if err := proto.Unmarshal(wire, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func flag(num protowire.Number) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), 1)
}

func text(num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
}

// A schema from a newer Milvus that holds what zdm would copy wrong (a
// nullable field, a field a function computes, functions, namespaces) is
// named, each once, with the collection and the field; what a newer
// server adds that changes no row (the schema's database name, its
// version) is not.
func TestWhatANewerMilvusSaysOfASchemaThatZdmDoesNotCopyIsNamed(t *testing.T) {
	plain := newerSchema(t, nil, append(text(8, "db"), flag(10)...))
	if got := Uncopiable(&Collection{Database: "db", Name: "c", Schema: plain, Loaded: true}); len(got) > 0 {
		t.Fatalf("a schema with only harmless newer attributes is refused: %v", got)
	}
	functions := append(text(7, "bm25"), text(7, "other")...)
	newer := newerSchema(t, map[string][]byte{"s": flag(15), "v": append(flag(16), flag(16)...)}, append(functions, flag(15)...))
	got := Uncopiable(&Collection{Database: "db", Name: "c", Schema: newer, Loaded: true})
	want := []string{
		"db/c has functions (Milvus 2.5 and later)",
		"db/c has namespaces",
		"db/c field s is nullable (Milvus 2.5 and later), which zdm does not copy: its nulls would reach the target as values",
		"db/c field v is the output of a function",
	}
	if len(got) != len(want) {
		t.Fatalf("named %d things, want %d: %q", len(got), len(want), got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("reason %d is %q, want one starting %q", i, got[i], w)
		}
	}
	// Made again on the target, the schema keeps what it said: the
	// refusal, not the copy, is what keeps such a collection from a
	// target that would hold its nulls as values.
	b, err := proto.Marshal(newer)
	if err != nil {
		t.Fatal(err)
	}
	again := &schemapb.CollectionSchema{}
	if err := proto.Unmarshal(b, again); err != nil {
		t.Fatal(err)
	}
	if n := len(UncopiableSchema("db/c", again)); n != len(want) {
		t.Errorf("the schema marshalled again names %d things, want %d", n, len(want))
	}
}
