package capture

import (
	"context"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

const insertMethod = "/milvus.proto.milvus.MilvusService/Insert"

// An insert's intent names the largest key the source gave an insert of
// its collection before it: the repair of an insert without keys whose
// outcome is unknown copies the rows above it.
func TestAnInsertsIntentNamesTheLastKeyTheSourceGave(t *testing.T) {
	ctx := context.Background()
	c, intents := armedCapture(t)
	keyless, err := proto.Marshal(&milvuspb.InsertRequest{DbName: "d", CollectionName: "c", NumRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	insert := func() *call {
		k, err := c.before(ctx, "src", insertMethod, keyless, "", keyField)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k := insert()
	if k.afterKey != 0 {
		t.Fatalf("first insert: after key %d, want none", k.afterKey)
	}
	given, _ := proto.Marshal(&milvuspb.MutationResult{IDs: &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: []int64{41, 42}}}}})
	if err := c.after(ctx, k, keyless, given); err != nil {
		t.Fatal(err)
	}
	k = insert() // in flight when its zdmd dies: its intent stays
	all, err := intents.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := UnmarshalEntry(all[k.intent])
	if err != nil {
		t.Fatal(err)
	}
	if e.AfterKey != 42 {
		t.Fatalf("the intent of the second insert names key %d, want 42 (the last the source gave)", e.AfterKey)
	}
}
