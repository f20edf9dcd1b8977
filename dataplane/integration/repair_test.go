package integration_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// A zdmd killed between forwarding writes and journaling their outcomes
// leaves them without one; the next zdmd's applier takes them as
// uncertain, and makes the target hold what the source holds for the keys
// they touched.
func TestUncertainWritesAreRepairedFromTheSource(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 3, Prefix: "rep_"}
	const db, coll, id = "rep_db0", "rep_c0", "m-repair"
	b := newSyncBed(t, id, shape, nil)
	src, dst := b.src, b.dst
	col, err := src.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	intent := func(n int, method string, msg proto.Message) {
		deadWrite(t, b.journal, id, n, method, msg, 0)
	}
	gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(9, 9))}
	// The source applied an upsert of key 5 and a delete of key 7 ...
	upsert := gen.Columns(1, milvus.Keys{Ints: []int64{5}}, func(int) int64 { return 1 })
	if _, err := src.Upsert(ctx, db, coll, "", upsert, 1); err != nil {
		t.Fatal(err)
	}
	intent(1, "Upsert", &milvuspb.UpsertRequest{DbName: db, CollectionName: coll, FieldsData: upsert, NumRows: 1})
	if _, err := src.Delete(ctx, db, coll, "", "id in [7]"); err != nil {
		t.Fatal(err)
	}
	intent(2, "Delete", &milvuspb.DeleteRequest{DbName: db, CollectionName: coll, Expr: "id in [7]"})
	// ... and never got an insert of key 1000 nor an upsert of key 9.
	intent(3, "Insert", &milvuspb.InsertRequest{DbName: db, CollectionName: coll, NumRows: 1,
		FieldsData: gen.Columns(1, milvus.Keys{Ints: []int64{1000}}, func(int) int64 { return 1 })})
	intent(4, "Upsert", &milvuspb.UpsertRequest{DbName: db, CollectionName: coll, NumRows: 1,
		FieldsData: gen.Columns(1, milvus.Keys{Ints: []int64{9}}, func(int) int64 { return 1 })})

	before, err := verify.Verify(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if before.Equal || before.Collections[0].Different != 1 || before.Collections[0].Extra != 1 {
		t.Fatalf("the planted differences do not show: %+v", before.Collections)
	}

	// The next zdmd applies the journal; no capture of the dead one runs.
	b.applier.AwaitOutcomes(noCaptureRuns)
	b.apply(t)
	b.drain(t)
	after, err := verify.Verify(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !after.Equal {
		t.Fatalf("source and target differ after the repair: %+v %v", after.Collections, after.Structure)
	}
}

// An insert without keys (the source assigns them) that a zdmd forwarded
// and never saw answered is repaired by the keys above the last one the
// proxy saw the source give: the target gets its rows, with the source's
// keys.
func TestAnUncertainInsertWithoutKeysIsRepairedFromTheSource(t *testing.T) {
	ctx := context.Background()
	src := datatools.Shape{Databases: 1, Collections: 1, Rows: 0, Dim: 8, PKType: "int64", AutoID: true, Index: "FLAT", Load: true, Shards: 1, Seed: 4, Prefix: "auto_"}
	dst := src
	dst.AutoID = false // the keys kept, as options.auto_id preserve_keys makes the target
	const db, coll, id = "auto_db0", "auto_c0", "m-keyless"
	b := newSyncBed(t, id, src, &dst)
	col, err := b.src.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(4, 4))}
	// An insert answered and applied: both clusters hold its rows.
	known := gen.Columns(2, milvus.Keys{}, func(int) int64 { return 1 })
	res, err := b.src.Insert(ctx, db, coll, "", known, 2)
	if err != nil {
		t.Fatal(err)
	}
	first := milvus.KeysOfIDs(res.GetIDs())
	target, err := b.dst.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	withKeys := milvus.RowGen{Schema: target.Schema, Rand: rand.New(rand.NewPCG(4, 4))}.Columns(2, first, func(int) int64 { return 1 })
	if _, err := b.dst.Insert(ctx, db, coll, "", withKeys, 2); err != nil {
		t.Fatal(err)
	}
	// An insert the source applied and the proxy never saw answered.
	rows := gen.Columns(3, milvus.Keys{}, func(int) int64 { return 2 })
	if _, err := b.src.Insert(ctx, db, coll, "", rows, 3); err != nil {
		t.Fatal(err)
	}
	deadWrite(t, b.journal, id, 1, "Insert", &milvuspb.InsertRequest{DbName: db, CollectionName: coll, FieldsData: rows, NumRows: 3}, slices.Max(first.Ints))
	b.applier.AwaitOutcomes(noCaptureRuns)
	b.apply(t)
	b.drain(t)
	keys := func(conn *milvus.Conn) []string {
		got, err := conn.Query(ctx, db, coll, "id >= 0", []string{"id"}, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		return milvus.KeysOf(milvus.Column(got, "id")).Strings()
	}
	if have, want := keys(b.dst), keys(b.src); len(want) != 5 || !sameKeys(have, want) {
		t.Fatalf("target keys %v after the repair, want the source's %v", have, want)
	}

	// Another such insert, the first a zdmd sent after it started: no key
	// the source gave before it is known. The collection is copied again,
	// and the status says so.
	notes := &noteBook{}
	b.applier.NoteTo(notes.note)
	// More rows on both than one query returns, as the journal would have
	// brought them: the repair compares keys a range at a time, and reads
	// whole rows only of the three the target lacks.
	const many = milvus.QueryWindow + 1000
	bulk := gen.Columns(many, milvus.Keys{}, func(int) int64 { return 3 })
	res, err = b.src.Insert(ctx, db, coll, "", bulk, many)
	if err != nil {
		t.Fatal(err)
	}
	withKeys = milvus.RowGen{Schema: target.Schema, Rand: rand.New(rand.NewPCG(5, 5))}.Columns(many, milvus.KeysOfIDs(res.GetIDs()), func(int) int64 { return 3 })
	if _, err := b.dst.Insert(ctx, db, coll, "", withKeys, many); err != nil {
		t.Fatal(err)
	}
	rows = gen.Columns(3, milvus.Keys{}, func(int) int64 { return 4 })
	res, err = b.src.Insert(ctx, db, coll, "", rows, 3)
	if err != nil {
		t.Fatal(err)
	}
	lost := milvus.KeysOfIDs(res.GetIDs())
	deadWrite(t, b.journal, id, 2, "Insert", &milvuspb.InsertRequest{DbName: db, CollectionName: coll, FieldsData: rows, NumRows: 3}, 0)
	b.drain(t)
	count := func(conn *milvus.Conn, expr string) int64 {
		n, err := conn.CountWhere(ctx, db, coll, expr)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if have, want := count(b.dst, ""), count(b.src, ""); want != 5+many+3 || have != want {
		t.Fatalf("the target has %d rows after the repair without a known key, the source %d", have, want)
	}
	if n := count(b.dst, lost.InExpr("id")); n != 3 {
		t.Fatalf("the target has %d of the 3 rows only the source had", n)
	}
	if n := notes.all(); !strings.Contains(n, db+"/"+coll) || !strings.Contains(n, "copied again") {
		t.Errorf("notes: %q", n)
	}
}

// deadWrite journals a write as a zdmd that died before journaling its
// outcome left it: pending, token n of a capture that no longer runs.
func deadWrite(t *testing.T, j capture.JournalLog, migrationID string, n int, method string, msg proto.Message, afterKey int64) {
	t.Helper()
	deadWriteAt(t, j, migrationID, n, method, msg, afterKey, time.Now())
}

// deadWriteAt is deadWrite of a write journaled at.
func deadWriteAt(t *testing.T, j capture.JournalLog, migrationID string, n int, method string, msg proto.Message, afterKey int64, at time.Time) {
	t.Helper()
	data, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	db, coll := milvus.RequestNames(method, msg, "")
	token := fmt.Sprintf("deadbeef#%d", n)
	e := capture.Entry{Op: strings.ToLower(method), Method: method, Database: db, Collection: coll, Request: data, At: at,
		AfterKey: afterKey, Intent: token, Pending: true}
	if _, err := j.Append(context.Background(), capture.CollectionSubject(migrationID, db, coll), e.Marshal(), token); err != nil {
		t.Fatal(err)
	}
}

// noCaptureRuns says no write journaled first is of a capture that runs.
var noCaptureRuns = deadCapture{}

type deadCapture struct{}

func (deadCapture) Mine(string) bool                        { return false }
func (deadCapture) Outcome(string) (capture.Resolved, bool) { return capture.Resolved{}, false }

func sameKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, k := range a {
		seen[k]++
	}
	for _, k := range b {
		if seen[k]--; seen[k] < 0 {
			return false
		}
	}
	return true
}

// A delete by a filter that a zdmd forwarded and never saw answered is
// repaired by every key the filter selects on the target, however many
// query windows they fill: here the source applied it to 19,000 rows.
func TestAnUncertainDeleteByAFilterIsRepairedForEveryRowItSelects(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 3, Prefix: "repf_"}
	const db, coll, id = "repf_db0", "repf_c0", "m-repair-filter"
	b := newSyncBed(t, id, shape, nil)
	if _, err := b.src.Delete(ctx, db, coll, "", "id >= 1000"); err != nil {
		t.Fatal(err)
	}
	deadWrite(t, b.journal, id, 1, "Delete", &milvuspb.DeleteRequest{DbName: db, CollectionName: coll, Expr: "id >= 1000"}, 0)
	b.applier.AwaitOutcomes(noCaptureRuns)
	b.apply(t)
	b.drain(t)
	if n, err := b.dst.CountWhere(ctx, db, coll, ""); err != nil || n != 1000 {
		t.Fatalf("after the repair the target holds %d rows, not the source's 1000 (%v)", n, err)
	}
}
