package integration_test

import (
	"context"
	"testing"

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

	sw, check, route, err := b.syncer.Switch(ctx, b.m)
	if err != nil {
		t.Fatal(err)
	}
	route(false)
	if !check.Equal {
		t.Fatalf("the switch's check: %s", check.Report)
	}
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 105 {
		t.Fatalf("the target holds %d rows (%v), want the source's 105", n, err)
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
