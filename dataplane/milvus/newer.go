package milvus

import (
	"fmt"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protowire"
)

// A schema from Milvus 2.5 or later can say what this zdm's protocol has
// no name for: a nullable field, a field a function computes, functions,
// struct arrays, external sources, namespaces. zdm reads such attributes
// as unknown fields and keeps them when it makes the collection on the
// target, but the rows it copies and replays are columns it rebuilds,
// without the validity of each value or the rules of a computed field:
// a null would reach the target as a zero or an empty text, and the
// verification, reading both sides the same way, would not see it. So
// the preflight refuses such a source, and the proxy such a collection,
// rather than copy it wrong. The numbers are those of milvus-proto's
// schema.proto.
var (
	newerFieldAttributes = map[protowire.Number]string{
		15: "is nullable (Milvus 2.5 and later), which zdm does not copy: its nulls would reach the target as values",
		16: "is the output of a function (Milvus 2.5 and later), which zdm does not copy: the server computes it and takes no values for it",
		17: "maps a field of an external source (Milvus 2.6 and later), which zdm does not copy",
	}
	newerCollectionAttributes = map[protowire.Number]string{
		7:  "has functions (Milvus 2.5 and later), which zdm does not copy",
		9:  "has struct array fields (Milvus 2.6 and later), which zdm does not copy",
		11: "reads an external source (Milvus 2.6 and later), which zdm does not copy",
		12: "reads an external source (Milvus 2.6 and later), which zdm does not copy",
		15: "has namespaces (Milvus 2.6 and later), which zdm does not copy",
	}
)

// newerAttributes names the attributes of m, among known, that m carries
// although this zdm's protocol does not name them. Each is named once.
func newerAttributes(m proto.Message, known map[protowire.Number]string) []string {
	var out []string
	seen := map[string]bool{}
	_ = eachField(proto.MessageReflect(m).GetUnknown(), func(num protowire.Number, _ protowire.Type, _, _ []byte) {
		if why, ok := known[num]; ok && !seen[why] {
			seen[why] = true
			out = append(out, why)
		}
	})
	return out
}

// UncopiableSchema names what of a collection's schema zdm cannot carry
// to a target, and why: field types it does not copy, and what a newer
// Milvus says of the collection or its fields that zdm does not know.
// key names the collection in each reason.
func UncopiableSchema(key string, schema *schemapb.CollectionSchema) []string {
	var out []string
	for _, why := range newerAttributes(schema, newerCollectionAttributes) {
		out = append(out, key+" "+why)
	}
	for _, f := range schema.GetFields() {
		switch t := f.GetDataType(); {
		case !copied[t]:
			out = append(out, fmt.Sprintf("%s field %s has type %s, which zdm does not copy", key, f.GetName(), t))
		case t == schemapb.DataType_Array && !arrayElements[f.GetElementType()]:
			out = append(out, fmt.Sprintf("%s field %s is an ARRAY of %s, which zdm does not copy", key, f.GetName(), f.GetElementType()))
		}
		for _, why := range newerAttributes(f, newerFieldAttributes) {
			out = append(out, fmt.Sprintf("%s field %s %s", key, f.GetName(), why))
		}
	}
	return out
}
