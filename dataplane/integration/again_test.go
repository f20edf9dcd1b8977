package integration_test

import (
	"context"
	"testing"

	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// An application that inserts a key again with other values leaves the
// source holding it in two rows, which Milvus answers with either (here
// with the first, while both are in one segment); zdm applies inserts by
// key, so the target holds the last write. The switch's check and the
// verification find the clusters equal and say which row the target
// kept, instead of failing the switch for a difference no target could
// avoid.
func TestAKeyInsertedAgainWithOtherValuesDoesNotFailTheSwitch(t *testing.T) {
	ctx := context.Background()
	b := newSwitchBed(t, "again_", livesync.Config{})
	gen := milvus.RowGen{Schema: b.shape.Schema(b.coll), Rand: milvustest.NewRand()}
	key := milvus.Keys{Ints: []int64{2_000_000}}
	for version := range int64(2) {
		if _, err := b.via.Insert(ctx, b.db, b.coll, "", gen.Columns(1, key, func(int) int64 { return version + 1 }), 1); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := b.src.CountWhere(ctx, b.db, b.coll, key.InExpr("id")); err != nil || n != 2 {
		t.Fatalf("the source holds %d rows of the key (%v), want 2", n, err)
	}
	sw, check := b.switchedEqual(t)
	if got := valuesOf(t, b.dst, b.db, b.coll, key); got["2000000"] != 2 {
		t.Fatalf("the target holds %v of the key, want the last write (2)", got)
	}
	t.Logf("the switch held writes %.0f ms: %s", sw.WritePauseMS, check.Report)
	rep, err := verify.Verify(ctx, b.src, b.dst, verify.Options{SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal {
		t.Fatalf("the verification: %s", rep.Summary())
	}
	t.Logf("the verification: %s", rep.Summary())
	if err := b.syncer.Disarm(ctx, b.m); err != nil {
		t.Fatal(err)
	}
}
