package milvus

import (
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// Whatever bytes a client sends the proxy, reading them neither panics
// nor loses the request: a request it cannot read comes back whole, to be
// forwarded and journaled as it came; one it reads gives names and keys
// without failing. The corpus starts from real writes.
func FuzzTheProxyReadsAnyRequest(f *testing.F) {
	upsert, _ := proto.Marshal(&milvuspb.UpsertRequest{DbName: "d", CollectionName: "c", NumRows: 2, FieldsData: []*schemapb.FieldData{
		Int64Column("id", []int64{1, 2}),
		{FieldName: "v", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 1,
			Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: []float32{1, 2}}}}}},
	}})
	del, _ := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: `id in [1]`})
	f.Add(uint8(0), upsert)
	f.Add(uint8(1), upsert)
	f.Add(uint8(2), del)
	f.Add(uint8(3), []byte{0x2a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	methods := []string{"Insert", "Upsert", "Delete", "CreateCollection", "CreateIndex", "Search", "Query", "Nope"}
	f.Fuzz(func(t *testing.T, m uint8, req []byte) {
		method := methods[int(m)%len(methods)]
		msg, keys := DecodeRequest(method, req)
		if msg == nil {
			if string(keys) != string(req) {
				t.Fatalf("an unread %s request came back as %d bytes, not the %d sent", method, len(keys), len(req))
			}
			return
		}
		RequestNames(method, msg, "hdr")
		WrittenKeys(msg, "id")
	})
}
