package capture

import (
	"context"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

const insertMethod = "/milvus.proto.milvus.MilvusService/Insert"

// An insert's entry names the largest key the source gave an insert of
// its collection before it: the repair of an insert without keys whose
// outcome is unknown copies the rows above it.
func TestAnInsertsEntryNamesTheLastKeyTheSourceGave(t *testing.T) {
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
	k = insert() // in flight when its zdmd dies: only its entry is journaled
	var e Entry
	for _, j := range journaledRaw(t, c.journal.(*eventstore.Journal)) {
		if j.Intent == k.token && j.Pending {
			e = j
		}
	}
	if e.AfterKey != 42 {
		t.Fatalf("the entry of the second insert names key %d, want 42 (the last the source gave)", e.AfterKey)
	}

	// A zdmd that restarts, or another that takes over, knows that key
	// before it sees an insert answered: the first kept it.
	c.Heartbeat(ctx)
	next := NewCapture(c.journal, nil, nil)
	next.KeepGivenKeys(intents)
	next.Arm("src", "m-1", domain.Options{})
	k, err = next.before(ctx, "src", insertMethod, keyless, "", keyField)
	if err != nil {
		t.Fatal(err)
	}
	if k.afterKey != 42 {
		t.Fatalf("after a restart, an insert's after key is %d, want 42 (kept by the zdmd before)", k.afterKey)
	}
	// The migration's end takes its kept keys with its intents.
	if err := next.DropKept(ctx, "m-1"); err != nil {
		t.Fatal(err)
	}
	if kept, err := intents.Matching(ctx, givenPrefix+">"); err != nil || len(kept) != 0 {
		t.Fatalf("kept keys after the migration ended: %v %v", kept, err)
	}
}
