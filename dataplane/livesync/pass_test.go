package livesync

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// passingOutcomes is a queue that lets entries pass by the key field "id".
func passingOutcomes(src OutcomeSource) *outcomes {
	o := newOutcomes(src)
	w := &applyWorker{pk: &schemapb.FieldSchema{Name: "id"}}
	o.spanOf = (&Applier{}).spanOf(context.Background(), w)
	return o
}

func pendingDelete(t *testing.T, token, expr string) capture.Entry {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: expr})
	if err != nil {
		t.Fatal(err)
	}
	return capture.Entry{Op: capture.OpDelete, Method: "Delete", Database: "d", Collection: "c", Request: req, Intent: token, Pending: true}
}

// pendingFreshInsert is an insert without its key column: the source
// gives the keys.
func pendingFreshInsert(t *testing.T, token string) capture.Entry {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.InsertRequest{DbName: "d", CollectionName: "c", NumRows: 1, FieldsData: []*schemapb.FieldData{
		{FieldName: "v", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2,
			Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: []float32{1, 2}}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return capture.Entry{Op: capture.OpInsert, Method: "Insert", Database: "d", Collection: "c", Request: req, Intent: token, Pending: true}
}

func given(token string, keys ...int64) capture.Entry {
	e := outcome(token, capture.OutcomeApplied, 9<<18)
	e.IDs = &milvus.Keys{Ints: keys}
	return e
}

type step struct {
	seq  uint64
	e    capture.Entry
	want []string
}

func readSteps(t *testing.T, o *outcomes, steps []step) {
	t.Helper()
	for _, s := range steps {
		got := o.read(s.seq, s.e, s.e.Marshal(), 0)
		if !reflect.DeepEqual(seqs(got), s.want) {
			t.Fatalf("after entry %d: ready %v, want %v", s.seq, seqs(got), s.want)
		}
	}
}

// A write whose outcome is known is applied before one still waiting for
// its outcome when their keys cannot meet; one of the same key waits, and
// so does whatever may touch any row. The position recorded (the number
// after @) never passes the first write waiting.
func TestAWriteOfOtherKeysPassesOneWaitingForItsOutcome(t *testing.T) {
	o := passingOutcomes(liveCapture{prefix: "a#"})
	readSteps(t, o, []step{
		{1, pendingUpsert(t, "a#1", 1), nil},
		{2, pendingUpsert(t, "a#2", 2), nil},
		{3, outcome("a#2", capture.OutcomeApplied, 9<<18), []string{"upsert@0"}}, // key 2 passes key 1
		{4, pendingUpsert(t, "a#3", 1), nil},
		{5, outcome("a#3", capture.OutcomeApplied, 9<<18), nil}, // key 1 again: waits for a#1
		{6, pendingDelete(t, "a#4", "id in [3, 4]"), nil},
		{7, outcome("a#4", capture.OutcomeApplied, 9<<18), []string{"delete@0"}},
		{8, pendingDelete(t, "a#5", "v > 1"), nil},
		{9, outcome("a#5", capture.OutcomeApplied, 9<<18), nil}, // by a filter: any row
		{10, pendingUpsert(t, "a#6", 7), nil},
		{11, outcome("a#6", capture.OutcomeApplied, 9<<18), nil}, // behind the filter
		{12, pendingUpsert(t, "a#7", 8), nil},
		{13, outcome("a#7", capture.OutcomeRefused, 0), []string{"skip@0"}}, // refused: nothing to order
		{14, outcome("a#1", capture.OutcomeApplied, 9<<18), []string{"upsert@1", "upsert@4", "delete@8", "upsert@14"}},
	})
}

// An insert whose keys the source is still to give may be any row a later
// write by key names (its client may have had its answer): only other
// inserts of new rows pass it.
func TestOnlyNewRowsPassAnInsertWhoseKeysAreNotGivenYet(t *testing.T) {
	o := passingOutcomes(liveCapture{prefix: "a#"})
	readSteps(t, o, []step{
		{1, pendingFreshInsert(t, "a#1"), nil},
		{2, pendingFreshInsert(t, "a#2"), nil},
		{3, given("a#2", 20), []string{"insert@0"}},
		{4, pendingDelete(t, "a#3", "id in [10]"), nil},
		{5, given("a#3"), nil},
		{6, given("a#1", 10), []string{"insert@1", "delete@6"}},
	})
}

// The lag counts what the source committed and the target lacks: a write
// waiting for its outcome is not counted, one that waits behind it is.
func TestTheLagCountsWritesTheSourceCommitted(t *testing.T) {
	o := passingOutcomes(liveCapture{prefix: "a#"})
	readSteps(t, o, []step{
		{1, pendingUpsert(t, "a#1", 1), nil},
		{2, pendingUpsert(t, "a#2", 1), nil},
	})
	if got := o.oldest(); !got.IsZero() {
		t.Fatalf("oldest %v while no write's outcome is known", got)
	}
	readSteps(t, o, []step{{3, outcome("a#2", capture.OutcomeApplied, 9<<18), nil}})
	if got, want := o.oldest(), time.UnixMilli(9); !got.Equal(want) {
		t.Fatalf("oldest %v, want the waiting write's commit time %v", got, want)
	}
}
