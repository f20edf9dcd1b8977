package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// insertAgain inserts once more a row a side holds, as a client repeating
// its insert does: Milvus then holds the key twice.
func insertAgain(t *testing.T, c *milvus.Conn, db, coll, key string) {
	t.Helper()
	ctx := context.Background()
	col, err := c.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	row, err := c.Query(ctx, db, coll, "id in ["+key+"]", milvus.OutputFields(col), nil, 0)
	if err != nil || milvus.Rows(row) != 1 {
		t.Fatalf("row %s: %d rows, %v", key, milvus.Rows(row), err)
	}
	if _, err := c.Insert(ctx, db, coll, "", row, 1); err != nil {
		t.Fatal(err)
	}
}

// heldReport reads the one collection of a check's report.
func heldReport(t *testing.T, raw []byte) verify.CollectionReport {
	t.Helper()
	var rep verify.Report
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Collections) != 1 {
		t.Fatalf("the check's report: %v, %s", err, raw)
	}
	return rep.Collections[0]
}

// A source that holds keys twice has row counts the target's cannot
// match. The switch's check while writes are held explains them by the
// keys the check before the hold found twice and the keys written since,
// not by walking every key of the collection while the application
// waits; a write sent around the proxy still makes the switch fail.
func TestTheSwitchExplainsKeysHeldTwiceWithoutWalkingEveryKey(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	// More keys than one query window, so that the walk before the hold
	// locates keys held twice in more than one window.
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "held_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "held_db0", "held_c0"
	for _, key := range []string{"5", "9000", "19000"} {
		insertAgain(t, src, db, coll, key)
	}
	resolve, reader := copied(t, bed)
	m := reader.m
	store := estest.NewStore(t)
	syncer, c := armedSyncer(t, resolve, reader, store, estest.Journal(t, store), livesync.Config{}, &failures{})
	via := milvustest.Dial(t, serveProxy(t, capture.NewProxy("src", func() string { return bed.Source }, c, nil)))
	// A client repeats one more insert through the proxy, then writes new
	// keys through it for the whole switch.
	insertAgain(t, via, db, coll, "12000")
	sw, check, wrote, err := switchWhileWriting(t, syncer, m, via, shape, db, coll, 1, 20*time.Millisecond)
	if err != nil || !check.Equal {
		t.Fatalf("the switch: %v, equal %v %s", err, check.Equal, check.Report)
	}
	cr := heldReport(t, check.Report)
	if cr.SourceDuplicates != 4 || cr.HeldKeysRead == 0 || cr.HeldKeysRead > 2000 {
		t.Fatalf("the check while held: %d rows under keys held twice (want 4), %d keys read one by one (want the four and those written since the check before the hold, not the %d rows)",
			cr.SourceDuplicates, cr.HeldKeysRead, cr.SourceRows)
	}
	t.Logf("writes held %.0f ms, the check %.0f ms: %d keys read while held, %d rows written through the proxy", sw.WritePauseMS, sw.CheckMS, cr.HeldKeysRead, wrote)

	// A row written to the source around the proxy is a difference the
	// walk names, keys held twice or not.
	if _, err := src.Insert(ctx, db, coll, "", milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}.Columns(1, milvus.Keys{Ints: []int64{7_000_000}}, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	_, check, _, err = syncer.Switch(ctx, m)
	var step *domain.StepError
	if !errors.As(err, &step) || step.Reason != "switch_check_failed" || check.Equal || !strings.Contains(string(check.Report), "7000000 missing on the target") {
		t.Fatalf("a write around the proxy: %v, equal %v %s", err, check.Equal, check.Report)
	}
}

// seededAlike empties the bed and seeds both servers with the same
// collection of 3,000 rows, prefix_db0/prefix_c0.
func seededAlike(t *testing.T, prefix string, seed uint64) (src, dst *milvus.Conn, shape datatools.Shape) {
	t.Helper()
	bed := milvustest.Empty(t)
	src, dst = milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape = datatools.Shape{Databases: 1, Collections: 1, Rows: 3000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: prefix, Seed: seed}
	milvustest.Seed(t, src, shape)
	milvustest.Seed(t, dst, shape)
	return src, dst, shape
}

// The check while writes are held trusts no key the check before the
// hold did not read in its present state: a row the source got around
// the proxy after that check, under a key no write through the proxy
// touched, leaves the counts unexplained by the keys it reads, and the
// keys are walked.
func TestTheHeldCheckWalksTheKeysWhenTheKeysItReadsDoNotAccountForTheCounts(t *testing.T) {
	ctx := context.Background()
	src, dst, shape := seededAlike(t, "held_", 3)
	const db, coll = "held_db0", "held_c0"
	insertAgain(t, src, db, coll, "17")
	pre, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true})
	if err != nil || !pre.Equal || pre.Collections[0].SourceDuplicates != 1 {
		t.Fatalf("the check before the hold: %v %s", err, pre.Summary())
	}
	held := func(written ...string) func(string, string) (*verify.CollectionReport, []string, bool) {
		return func(string, string) (*verify.CollectionReport, []string, bool) {
			return &pre.Collections[0], written, true
		}
	}
	insertAgain(t, src, db, coll, "18")
	insertAgain(t, dst, db, coll, "18") // the key twice on the target is a difference too
	rep, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Held: held("18")})
	if err != nil || rep.Equal || rep.Collections[0].HeldKeysRead != 0 || rep.Collections[0].TargetDuplicates != 1 {
		t.Fatalf("a key twice on the target: %v, equal %v, %d keys read, %d twice on the target", err, rep.Equal, rep.Collections[0].HeldKeysRead, rep.Collections[0].TargetDuplicates)
	}

	milvustest.Empty(t)
	milvustest.Seed(t, src, shape)
	milvustest.Seed(t, dst, shape)
	insertAgain(t, src, db, coll, "17")
	if pre, err = verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true}); err != nil || !pre.Equal {
		t.Fatalf("the check before the hold: %v %s", err, pre.Summary())
	}
	// Key 40 written through the proxy to both; key 41 repeated on the
	// source around it.
	insertAgain(t, src, db, coll, "41")
	rep, err = verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Held: held("40")})
	if err != nil || rep.Collections[0].HeldKeysRead != 0 || rep.Collections[0].SourceDuplicates != 2 {
		t.Fatalf("a key repeated around the proxy: %v, %d keys read, %d rows twice: %s", err, rep.Collections[0].HeldKeysRead, rep.Collections[0].SourceDuplicates, rep.Summary())
	}
	rep, err = verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Held: held("40", "41")})
	if err != nil || !rep.Equal || rep.Collections[0].HeldKeysRead != 3 || rep.Collections[0].SourceDuplicates != 2 {
		t.Fatalf("the keys written since read one by one: %v, %d keys read, %d rows twice: %s", err, rep.Collections[0].HeldKeysRead, rep.Collections[0].SourceDuplicates, rep.Summary())
	}
}

// The check while writes are held compares the counts and a sample of
// the smallest keys, both of which a write replayed wrong under a larger
// key leaves equal: it reads whole the rows written since the check
// before the hold too.
func TestTheHeldCheckReadsTheRowsWrittenSinceTheCheckBefore(t *testing.T) {
	ctx := context.Background()
	src, dst, shape := seededAlike(t, "wrote_", 5)
	const db, coll = "wrote_db0", "wrote_c0"
	pre, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true})
	if err != nil || !pre.Equal {
		t.Fatalf("the check before the hold: %v %s", err, pre.Summary())
	}
	held := func(string, string) (*verify.CollectionReport, []string, bool) {
		return &pre.Collections[0], []string{"2500", "2501"}, true
	}
	upsert := func(c *milvus.Conn, key int64, value int64) {
		t.Helper()
		gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: rand.New(rand.NewPCG(uint64(value), 1))}
		if _, err := c.Upsert(ctx, db, coll, "", gen.Columns(1, milvus.Keys{Ints: []int64{key}}, func(int) int64 { return value }), 1); err != nil {
			t.Fatal(err)
		}
	}
	// Keys past the sample, written through the proxy: one reached the
	// target as it is on the source, the other with other values.
	upsert(src, 2500, 1)
	upsert(dst, 2500, 1)
	upsert(src, 2501, 1)
	upsert(dst, 2501, 2)
	rep, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Held: held})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Collections[0]
	if rep.Equal || c.Different != 1 || c.WrittenRowsRead != 2 || !strings.Contains(strings.Join(c.Mismatches, " "), "2501") {
		t.Fatalf("a written row that differs: equal %v, %d different, %d written rows read, %v", rep.Equal, c.Different, c.WrittenRowsRead, c.Mismatches)
	}
	if c.RowsCompared < 500 {
		t.Fatalf("%d rows compared: the sample was not read", c.RowsCompared)
	}
	// A collection the check before the hold found equal, written since
	// only under those keys: its counts and written rows stand for it.
	only := func(string, string) bool { return true }
	rep, err = verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Held: held, WrittenOnly: only})
	if err != nil || rep.Equal || rep.Collections[0].Different != 1 || rep.Collections[0].RowsCompared != 2 {
		t.Fatalf("a written row that differs, the sample not read: %v, equal %v: %+v", err, rep.Equal, rep.Collections[0])
	}
	upsert(dst, 2501, 1)
	for _, o := range []verify.QuickOptions{{Held: held}, {Held: held, WrittenOnly: only}} {
		if rep, err = verify.QuickCheckWith(ctx, src, dst, o); err != nil || !rep.Equal || rep.Collections[0].WrittenRowsRead != 2 ||
			!strings.Contains(rep.Summary(), "2 rows written since the check before the hold compared whole") {
			t.Fatalf("the written rows alike: %v, equal %v: %s", err, rep.Equal, rep.Summary())
		}
	}
}
