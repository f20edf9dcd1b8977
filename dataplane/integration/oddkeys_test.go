package integration_test

import (
	"context"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// Text keys with quotes, backslashes, brackets, control characters and
// letters beyond ASCII are copied in key order, written through the
// proxy, replayed, deleted by key and compared, as plain ones are: every
// expression zdm builds of them must read back the very keys.
func TestTextKeysOfEveryKindAreCopiedReplayedAndCompared(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 50, Dim: 8, PKType: "varchar", Index: "FLAT", Load: true, Shards: 1, Prefix: "odd_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "odd_db0", "odd_c0"
	gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}
	odd := []string{`a"b`, `c\d`, `\"`, `'quoted'`, "tab\there", "new\nline", "é", "日本", "😀", " spaced ", "[x]", "a,b", `%_`, "` tick", `\u0041`, "\x01"}
	copiedKeys, writtenKeys := odd[:8], odd[8:]
	if _, err := src.Insert(ctx, db, coll, "", gen.Columns(len(copiedKeys), milvus.Keys{Strs: copiedKeys}, func(int) int64 { return 1 }), len(copiedKeys)); err != nil {
		t.Fatal(err)
	}
	// Pages of three rows, so that pages and ranges start at odd keys.
	resolve, reader := copiedWith(t, bed, rowcopy.Config{PageRows: 3, RangeRows: 6})
	m := reader.m
	store := estest.NewStore(t)
	syncer, c := armedSyncer(t, resolve, reader, store, estest.Journal(t, store), livesync.Config{}, &failures{})
	via := milvustest.Dial(t, serveProxy(t, capture.NewProxy("src", func() string { return bed.Source }, c, nil)))

	if _, err := via.Insert(ctx, db, coll, "", gen.Columns(len(writtenKeys), milvus.Keys{Strs: writtenKeys}, func(int) int64 { return 1 }), len(writtenKeys)); err != nil {
		t.Fatal(err)
	}
	// Half of each kind upserted, a quarter deleted.
	changed := []string{`a"b`, `\"`, "tab\there", "é", "😀", "[x]", `%_`, `\u0041`}
	if _, err := via.Upsert(ctx, db, coll, "", gen.Columns(len(changed), milvus.Keys{Strs: changed}, func(int) int64 { return 2 }), len(changed)); err != nil {
		t.Fatal(err)
	}
	gone := milvus.Keys{Strs: []string{`c\d`, "new\nline", " spaced ", "\x01"}}
	if _, err := via.Delete(ctx, db, coll, "", gone.InExpr("id")); err != nil {
		t.Fatal(err)
	}
	sw, check, route, err := syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the switch: %v, equal %v %s", err, check.Equal, check.Report)
	}
	route(false)
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("verification: %v %+v", err, rep)
	}
	for name, side := range map[string]*milvus.Conn{"source": src, "target": dst} {
		all := milvus.Keys{Strs: odd}
		n, err := side.CountWhere(ctx, db, coll, all.InExpr("id"))
		if err != nil || n != int64(len(odd)-len(gone.Strs)) {
			t.Fatalf("the %s holds %d of the odd keys, want %d (%v)", name, n, len(odd)-len(gone.Strs), err)
		}
		upserted := milvus.Keys{Strs: changed}
		rows, err := side.Query(ctx, db, coll, "n == 2 && "+upserted.InExpr("id"), []string{"id"}, nil, 100)
		if err != nil || milvus.Rows(rows) != len(changed) {
			t.Fatalf("the %s holds %d upserted rows, want %d (%v)", name, milvus.Rows(rows), len(changed), err)
		}
	}
	t.Logf("%d odd keys copied, written, upserted and deleted; the switch held writes %.0f ms and found the clusters equal", len(odd), sw.WritePauseMS)
	if err := syncer.Disarm(ctx, m); err != nil {
		t.Fatal(err)
	}
}
