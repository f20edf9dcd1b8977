package livesync

import (
	"context"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// An insert without keys whose outcome is unknown, and that nothing can
// repair, is noted in the migration's status: its rows may be on the
// source only, which the operator must hear of before the switch's check
// refuses it. (One whose keys the target keeps is repaired by copying;
// see the integration tests.)
func TestAnUnrepairableKeylessInsertIsNoted(t *testing.T) {
	journal, positions := journalStore(t)
	var notes []string
	a := NewApplier("m-1", journal, nil, nil, positions, false, func(string, string) bool { return true }, nil, nil).
		NoteTo(func(_ context.Context, note string) { notes = append(notes, note) })
	ctx := context.Background()
	collection := func(name string, pk schemapb.DataType, autoID bool) *milvus.Collection {
		return &milvus.Collection{Database: "d", Name: name, Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
			{Name: "id", DataType: pk, IsPrimaryKey: true, AutoID: autoID}}}}
	}
	for _, c := range []struct {
		col *milvus.Collection
		e   capture.Entry
	}{
		// The target assigns keys of its own: the rows cannot be found by
		// the source's.
		{collection("auto", schemapb.DataType_Int64, true), capture.Entry{Method: "Insert", Database: "d", Collection: "auto", AfterKey: 7}},
		// String keys cannot be ranged after a known one.
		{collection("strs", schemapb.DataType_VarChar, false), capture.Entry{Method: "Insert", Database: "d", Collection: "strs", AfterKey: 7}},
		// A delete that matched nothing on the target needs nothing.
		{collection("strs", schemapb.DataType_VarChar, false), capture.Entry{Method: "Delete", Database: "d", Collection: "strs"}},
	} {
		if err := a.repairWithoutKeys(ctx, c.e, c.col, "", false); err != nil {
			t.Fatal(err)
		}
	}
	// Repaired again at the switch, an insert whose collection was copied
	// whole is left to the check: nothing is copied while writes are held.
	kept := collection("kept", schemapb.DataType_Int64, false)
	if err := a.repairWithoutKeys(ctx, capture.Entry{Method: "Insert", Database: "d", Collection: "kept"}, kept, "", true); err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "d/auto") || !strings.Contains(notes[1], "d/strs") {
		t.Fatalf("notes: %q", notes)
	}
	for _, n := range notes {
		if !strings.Contains(n, "may be on the source only") {
			t.Errorf("note %q does not say what it means", n)
		}
	}
}
