package integration_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// A client that repeats an insert leaves a key twice on the source, which
// Milvus counts twice: the checks report the extra row and do not call the
// clusters different for it. A key the target holds twice, or a key the
// source holds that the target lacks, is a difference.
func TestAKeyTheSourceHoldsTwiceIsReportedNotADifference(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "dup_"}
	milvustest.Seed(t, src, shape)
	milvustest.Seed(t, dst, shape)
	db, coll := "dup_db0", "dup_c0"
	batch := func(c *milvus.Conn, from, n int) {
		t.Helper()
		keys := milvus.Keys{}
		for i := range n {
			keys.Ints = append(keys.Ints, int64(from+i))
		}
		// A fresh generator on each side: the same values for the same keys.
		gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}
		if _, err := c.Insert(ctx, db, coll, "", gen.Columns(n, keys, func(int) int64 { return 1 }), n); err != nil {
			t.Fatal(err)
		}
	}
	again := func(c *milvus.Conn, key string) { t.Helper(); insertAgain(t, c, db, coll, key) }
	batch(src, 0, 600)
	batch(dst, 0, 600)
	again(src, "7")
	type want struct {
		equal          bool
		srcDup, dstDup int64
	}
	check := func(quickWant, fullWant want) verify.CollectionReport {
		t.Helper()
		quick, err := verify.QuickCheck(ctx, src, dst)
		if err != nil {
			t.Fatal(err)
		}
		full, err := verify.Verify(ctx, src, dst, verify.Options{PageRows: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			rep  *verify.Report
			want want
		}{{"quick check", quick, quickWant}, {"verification", full, fullWant}} {
			if len(c.rep.Collections) != 1 {
				t.Fatalf("%s: %d collections compared", c.name, len(c.rep.Collections))
			}
			cr := c.rep.Collections[0]
			if got := (want{c.rep.Equal, cr.SourceDuplicates, cr.TargetDuplicates}); got != c.want {
				t.Fatalf("%s: got %+v, want %+v: %s", c.name, got, c.want, c.rep.Summary())
			}
			if c.want.equal && !strings.Contains(c.rep.Summary(), "the source holds 1 rows under keys it already holds, in dup_db0/dup_c0 (1)") {
				t.Fatalf("%s: the summary does not name the repeated insert: %s", c.name, c.rep.Summary())
			}
		}
		return quick.Collections[0]
	}
	check(want{true, 1, 0}, want{true, 1, 0})

	// The target holds a key twice and lacks one the source holds: the
	// counts differ by the same one row as before, and the clusters
	// differ. The verification finds the missing key by its range and
	// needs no count of keys; the quick check, whose sample holds the 500
	// smallest keys, names it from its walk of both sides' keys.
	again(dst, "9")
	batch(src, 600, 1)
	cr := check(want{false, 1, 1}, want{false, 0, 0})
	if cr.Missing != 1 || cr.Extra != 0 || !slices.Equal(cr.Mismatches, []string{"600 missing on the target"}) {
		t.Fatalf("quick check: %d missing, %d extra, named %v; want key 600 named missing", cr.Missing, cr.Extra, cr.Mismatches)
	}
}

// Milvus counts every row of a key held twice against a query's limit
// and returns the key once, so a page of a source holding keys twice
// comes back short of its limit with rows after it. The copy read such a
// page as the last one and stopped there; every paging read now goes on
// to an empty page.
func TestASourceHoldingKeysTwiceIsCopiedWhole(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "twice_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "twice_db0", "twice_c0"
	for _, key := range []string{"5", "9000", "16500"} {
		insertAgain(t, src, db, coll, key)
	}
	copied(t, bed)
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 20000 {
		t.Fatalf("the target holds %d rows of the source's 20000 keys (%v)", n, err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{PageRows: 5000})
	if err != nil || !rep.Equal || rep.Collections[0].SourceDuplicates != 3 || rep.Collections[0].RowsCompared != 20000 {
		t.Fatalf("the verification: %v, %s (%d rows compared)", err, rep.Summary(), rep.Collections[0].RowsCompared)
	}
}

// A client whose insert went through a zdmd killed before the answer
// sends it again: the source holds its keys twice, and the dead zdmd's
// journal entry has no outcome. Its repair read the five keys with a
// limit of five rows, got three of them (the limit counts the rows held
// twice, the answer merges them) and deleted the other two from the
// target, which the switch's check then found missing. Here the client
// sent it three times, so that even a limit of twice the keys cuts the
// rows short.
func TestARepairOfKeysTheSourceHoldsTwiceKeepsThemAll(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 3, Prefix: "rtw_"}
	const db, coll, id = "rtw_db0", "rtw_c0", "m-repair-twice"
	b := newSyncBed(t, id, shape, nil)
	col, err := b.src.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	keys := milvus.Keys{Ints: []int64{1000, 1001, 1002, 1003, 1004}}
	gen := milvus.RowGen{Schema: col.Schema, Rand: milvustest.NewRand()}
	rows := gen.Columns(keys.Len(), keys, func(int) int64 { return 1 })
	// Two sends whose answers were lost, and the client's third.
	for range 3 {
		if _, err := b.src.Insert(ctx, db, coll, "", rows, keys.Len()); err != nil {
			t.Fatal(err)
		}
	}
	// The third was journaled with its outcome and applied.
	if _, err := b.dst.Insert(ctx, db, coll, "", rows, keys.Len()); err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		deadWrite(t, b.journal, id, n+1, "Insert", &milvuspb.InsertRequest{DbName: db, CollectionName: coll, FieldsData: rows, NumRows: uint32(keys.Len())}, 0)
	}

	b.applier.AwaitOutcomes(noCaptureRuns)
	b.apply(t)
	b.drain(t)
	if n, err := b.dst.CountWhere(ctx, db, coll, keys.InExpr("id")); err != nil || n != 5 {
		t.Fatalf("the target holds %d rows of the 5 keys the source holds three times (%v)", n, err)
	}
	rep, err := verify.Verify(ctx, b.src, b.dst, verify.Options{})
	if err != nil || !rep.Equal || rep.Collections[0].SourceDuplicates != 10 {
		t.Fatalf("after the repair: %v, %s", err, rep.Summary())
	}
}

// The sweep of rows the source removed after their time to live asks the
// source which of the target's keys it still holds. Where the source held
// keys twice, that read came back short of keys it holds, and the sweep
// deleted them from the target.
func TestTheSweepKeepsTheKeysTheSourceHoldsTwice(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "swtw_"}
	milvustest.Seed(t, src, shape)
	milvustest.Seed(t, dst, shape)
	const db, coll = "swtw_db0", "swtw_c0"
	for _, key := range []string{"0", "1", "2", "3", "4"} {
		insertAgain(t, src, db, coll, key)
	}
	gone := milvus.Keys{Ints: []int64{100, 101}}
	gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}
	if _, err := dst.Insert(ctx, db, coll, "", gen.Columns(2, gone, func(int) int64 { return 1 }), 2); err != nil {
		t.Fatal(err)
	}
	col, err := dst.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "100", "101"}
	n, err := verify.RemoveGone(ctx, src, dst, col, keys)
	if err != nil || n != 2 {
		t.Fatalf("the sweep removed %d keys (%v), want the 2 the source lacks", n, err)
	}
	if held, err := dst.CountWhere(ctx, db, coll, ""); err != nil || held != 10 {
		t.Fatalf("the target holds %d rows after the sweep (%v), want the source's 10 keys", held, err)
	}
}

// A client repeats each batch of inserts through the proxy while the
// switch runs. The check while writes are held reads the rows written
// since the check before the hold key by key: that read of the source
// came back without some of the keys held twice, and the check found
// them "only on the target".
func TestTheSwitchReadsEveryKeyOfBatchesTheSourceHoldsTwice(t *testing.T) {
	b := newSwitchBedOf(t, "swb_", 100, livesync.Config{})
	_, check, _, err := switchWhileWriting(t, b.syncer, b.m, b.via, b.shape, b.db, b.coll, 2, 10*time.Millisecond)
	if err != nil || !check.Equal {
		t.Fatalf("the switch: %v, equal %v %s", err, check.Equal, check.Report)
	}
	if cr := heldReport(t, check.Report); cr.SourceDuplicates == 0 || cr.WrittenRowsRead == 0 {
		t.Fatalf("the switch's check: %d rows under keys the source holds twice, %d written rows read: %s", cr.SourceDuplicates, cr.WrittenRowsRead, check.Report)
	}
}
