package integration_test

import (
	"context"
	"maps"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// Milvus 2.3 applies an upsert naming a partition as a delete in that
// partition and an insert: upserting a key the collection holds in
// another partition leaves it in both, each with its own row. zdm replays
// the upsert, so the target holds the same two rows; but a query by key
// returns one of them, not the same one on each side. The switch's check
// and the verification compare such keys partition by partition, and
// find the clusters equal.
func TestAKeyUpsertedIntoAnotherPartitionIsComparedPartitionByPartition(t *testing.T) {
	ctx := context.Background()
	b := newSwitchBed(t, "twoparts_", livesync.Config{})
	src, dst, db, coll, part := b.src, b.dst, b.db, b.coll, "late"
	b.partitionMade(t, part)
	first, err := src.QueryAt(ctx, db, coll, "", []string{"id"}, nil, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := milvus.KeysOf(milvus.Column(first, "id"))
	gen := milvus.RowGen{Schema: b.shape.Schema(coll), Rand: milvustest.NewRand()}
	if _, err := b.via.Upsert(ctx, db, coll, part, gen.Columns(len(keys.Ints), keys, func(int) int64 { return 2 }), len(keys.Ints)); err != nil {
		t.Fatal(err)
	}
	// The case this test is about: the source keeps both rows of each key.
	if n, err := src.CountWhere(ctx, db, coll, ""); err != nil || n != 105 {
		t.Fatalf("the source holds %d rows (%v), want 105: the upsert did not leave the keys in both partitions", n, err)
	}
	// And a client repeats an insert of a new key, as one whose answer was
	// lost does: the source holds it twice, the target once, so the counts
	// differ too, and their difference must not be taken for the rows of
	// the keys held in two partitions, nor hide them.
	again := gen.Columns(1, milvus.Keys{Ints: []int64{1_000_000}}, func(int) int64 { return 3 })
	for range 2 {
		if _, err := b.via.Insert(ctx, db, coll, "", again, 1); err != nil {
			t.Fatal(err)
		}
	}

	sw, check := b.switchedEqual(t)
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 106 {
		t.Fatalf("the target holds %d rows (%v), want the source's 105 and the repeated key once", n, err)
	}
	t.Logf("the switch held writes %.0f ms: %s", sw.WritePauseMS, check.Report)

	// Which row of such a key a query returns changes from one query to
	// the next, so the checks are run until each met the case; every run
	// must find the clusters equal.
	checks := map[string]func() (*verify.Report, error){
		"the quick check": func() (*verify.Report, error) { return verify.QuickCheck(ctx, src, dst) },
		"the verification": func() (*verify.Report, error) {
			return verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
		},
	}
	for name, run := range checks {
		for runs := 1; ; runs++ {
			rep, err := run()
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Equal {
				t.Fatalf("%s, run %d: %s", name, runs, rep.Summary())
			}
			if rep.Collections[0].SplitKeys > 0 {
				t.Logf("%s, run %d: %s", name, runs, rep.Summary())
				break
			}
			if runs == 100 {
				t.Fatalf("%s: 100 runs, and none read a key's rows differently on the two sides", name)
			}
		}
	}
	if err := b.syncer.Disarm(ctx, b.m); err != nil {
		t.Fatal(err)
	}
}

// A write whose outcome is unknown is repaired in the partition it named:
// read from the whole collection, a key held in several partitions gives
// any one of its rows, and a key the partition lacks is found in another.
func TestAnUncertainWriteIntoAnotherPartitionIsRepairedInIt(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 5, Prefix: "splitrep_"}
	const db, coll, id, part = "splitrep_db0", "splitrep_c0", "m-splitrep", "late"
	b := newSyncBed(t, id, shape, nil)
	for _, c := range []*milvus.Conn{b.src, b.dst} {
		if err := c.CreatePartition(ctx, db, coll, part); err != nil {
			t.Fatal(err)
		}
	}
	col, err := b.src.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	gen := milvus.RowGen{Schema: col.Schema, Rand: milvustest.NewRand()}
	// The source applied an upsert of key 5 into the partition, which
	// keeps its row in _default too ...
	upsert := gen.Columns(1, milvus.Keys{Ints: []int64{5}}, func(int) int64 { return 77 })
	if _, err := b.src.Upsert(ctx, db, coll, part, upsert, 1); err != nil {
		t.Fatal(err)
	}
	deadWrite(t, b.journal, id, 1, "Upsert", &milvuspb.UpsertRequest{DbName: db, CollectionName: coll, PartitionName: part, FieldsData: upsert, NumRows: 1}, 0)
	// ... and never got an insert into it of key 6, which it holds in
	// _default.
	deadWrite(t, b.journal, id, 2, "Insert", &milvuspb.InsertRequest{DbName: db, CollectionName: coll, PartitionName: part, NumRows: 1,
		FieldsData: gen.Columns(1, milvus.Keys{Ints: []int64{6}}, func(int) int64 { return 78 })}, 0)

	// Key 7, upserted into the partition on both sides, the source then
	// deleted from the partition only.
	both := gen.Columns(1, milvus.Keys{Ints: []int64{7}}, func(int) int64 { return 79 })
	for _, c := range []*milvus.Conn{b.src, b.dst} {
		if _, err := c.Upsert(ctx, db, coll, part, both, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.src.Delete(ctx, db, coll, part, "id in [7]"); err != nil {
		t.Fatal(err)
	}
	deadWrite(t, b.journal, id, 3, "Delete", &milvuspb.DeleteRequest{DbName: db, CollectionName: coll, PartitionName: part, Expr: "id in [7]"}, 0)

	b.applier.AwaitOutcomes(noCaptureRuns)
	b.apply(t)
	b.drain(t)
	keys := milvus.Keys{Ints: []int64{5, 6, 7}}
	for _, p := range []string{"_default", part} {
		s, d := valuesIn(t, b.src, db, coll, p, keys), valuesIn(t, b.dst, db, coll, p, keys)
		if !maps.Equal(s, d) {
			t.Fatalf("partition %s after the repair: the source holds %v, the target %v", p, s, d)
		}
	}
	for side, c := range map[string]*milvus.Conn{"source": b.src, "target": b.dst} {
		if n, err := c.CountWhere(ctx, db, coll, ""); err != nil || n != 101 {
			t.Fatalf("the %s holds %d rows (%v), want 101", side, n, err)
		}
	}
	sameThroughZdm(t, b.src, b.dst, "after the repair")
}
