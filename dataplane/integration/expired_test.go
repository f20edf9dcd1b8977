package integration_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// A collection whose rows expire (collection.ttl.seconds): Milvus 2.3
// removes a row past its time to live when it compacts the row's
// segment, on each cluster at its own time, and the target counts a
// row's time from when it got it, at the copy or the replay. So a source
// compacted during a migration holds fewer rows than the target, and the
// switch's check refused the switch, failing the migration, for rows no
// replay had got wrong. The check now counts such rows apart, on both
// sides of the hold; in a collection without a time to live, and for a
// key written since the check before, they stay differences.
func TestRowsTheSourceRemovedAfterTheirTimeToLiveDoNotRefuseTheSwitch(t *testing.T) {
	ctx := context.Background()
	src, dst, _ := seededAlike(t, "ttl_", 9)
	seeded := time.Now()
	const db, coll = "ttl_db0", "ttl_c0"
	ttl := func(c *milvus.Conn, seconds string) { t.Helper(); setTTL(t, c, db, coll, seconds) }
	// The target got its rows later than the source did: its time to live
	// ends later. Here it does not end during the test.
	ttl(src, "4")
	ttl(dst, "3600")
	expireAll(t, src, db, coll, seeded.Add(6*time.Second))

	pre, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	c := pre.Collections[0]
	if !pre.Equal || c.ExpiredOnSource != 3000 || c.Extra != 0 || !strings.Contains(pre.Summary(), "3000 rows the source removed after their time to live") {
		t.Fatalf("the check before the hold: equal %v, %d expired on the source, %d extra: %s", pre.Equal, c.ExpiredOnSource, c.Extra, pre.Summary())
	}
	held := func(written ...string) verify.QuickOptions {
		return verify.QuickOptions{WrittenOnly: func(string, string) bool { return true },
			Held: func(string, string) (*verify.CollectionReport, []string, bool) {
				return &pre.Collections[0], written, true
			}}
	}
	rep, err := verify.QuickCheckWith(ctx, src, dst, held("5001"))
	if err != nil || !rep.Equal || rep.Collections[0].ExpiredOnSource != 3000 || rep.Collections[0].HeldKeysRead == 0 {
		t.Fatalf("the check while writes are held: %v, equal %v: %+v", err, rep.Equal, rep.Collections[0])
	}
	// A key written since the check before is no expired row.
	rep, err = verify.QuickCheckWith(ctx, src, dst, held("5001", "17"))
	if err != nil || rep.Equal || rep.Collections[0].Extra == 0 {
		t.Fatalf("a key written since the check before, on the target alone: %v, equal %v: %s", err, rep.Equal, rep.Summary())
	}
	// Without a time to live on the source, rows the target alone holds
	// are differences.
	ttl(src, "0")
	rep, err = verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true})
	if err != nil || rep.Equal || rep.Collections[0].ExpiredOnSource != 0 || rep.Collections[0].Extra == 0 {
		t.Fatalf("rows only on the target, no time to live: %v, equal %v: %s", err, rep.Equal, rep.Summary())
	}

	// The switch deletes them from the target once the check made while
	// writes are held found the clusters equal: the application that
	// moves there finds what the source held, not rows it had seen expire.
	ttl(src, "4")
	rep, err = verify.QuickCheckWith(ctx, src, dst, held("5001"))
	if err != nil || !rep.Equal {
		t.Fatalf("the check while writes are held, again: %v, equal %v", err, rep.Equal)
	}
	removed, err := verify.RemoveExpired(ctx, dst, rep)
	if err != nil || removed != 3000 || !strings.Contains(rep.Summary(), "the switch deleted them from the target") {
		t.Fatalf("removing the rows the source removed: %d, %v: %s", removed, err, rep.Summary())
	}
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 0 {
		t.Fatalf("the target holds %d rows after the removal, want none as on the source (%v)", n, err)
	}
	after, err := verify.QuickCheckWith(ctx, src, dst, verify.QuickOptions{Keep: true})
	if err != nil || !after.Equal || after.Collections[0].ExpiredOnSource != 0 {
		t.Fatalf("after the removal: %v, equal %v: %s", err, after.Equal, after.Summary())
	}
}

// setTTL sets a collection's time to live.
func setTTL(t *testing.T, c *milvus.Conn, db, coll, seconds string) {
	t.Helper()
	ctx := context.Background()
	r, err := c.Svc.AlterCollection(c.In(ctx, db), &milvuspb.AlterCollectionRequest{DbName: db, CollectionName: coll,
		Properties: []*commonpb.KeyValuePair{{Key: milvus.TTLProperty, Value: seconds}}})
	if err := milvus.Check("alter "+coll, r, err); err != nil {
		t.Fatal(err)
	}
}

// expireAll waits until after, when every row of the collection is past
// its time to live, compacts it and waits for the compaction to remove
// them all.
func expireAll(t *testing.T, c *milvus.Conn, db, coll string, after time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := c.FlushAndWait(ctx, db, coll); err != nil { // compactions take sealed segments
		t.Fatal(err)
	}
	time.Sleep(time.Until(after))
	milvustest.Compact(t, c, db, coll)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		n, err := c.CountWhere(ctx, db, coll, "")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s still holds %d rows a minute after its compaction, want none", db, coll, n)
		}
	}
}

// A switch leaves on the target none of the rows the source removed after
// their time to live: the application that moves there would otherwise
// find rows it had seen expire, until the target's own compaction (here,
// without a time to live on the target, never). In a collection the
// application writes through the proxy, the switch deletes them before it
// holds writes, between two of the collection's applied writes, so the
// pause does not carry one delete per 2,000 of them. The check made while
// writes are held finds the clusters plainly equal and says what was
// deleted before.
func TestRowsTheSourceRemovedAfterTheirTimeToLiveAreDeletedBeforeTheHold(t *testing.T) {
	ctx := context.Background()
	b := newSwitchBed(t, "early_", livesync.Config{})
	gen := milvus.RowGen{Schema: b.shape.Schema(b.coll), Rand: milvustest.NewRand()}
	key := milvus.Keys{Ints: []int64{2_000_000}}
	if _, err := b.via.Insert(ctx, b.db, b.coll, "", gen.Columns(1, key, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the write through the proxy on the target", func() bool {
		n, err := b.dst.CountWhere(ctx, b.db, b.coll, key.InExpr("id"))
		return err == nil && n == 1
	})
	setTTL(t, b.src, b.db, b.coll, "2")
	expireAll(t, b.src, b.db, b.coll, time.Now().Add(3*time.Second))
	_, check := b.switchedEqual(t)
	held := heldReport(t, check.Report)
	if held.ExpiredRemovedEarly != 101 || held.ExpiredOnSource != 0 || held.ExpiredRemoved || held.SourceRows != 0 || held.TargetRows != 0 {
		t.Fatalf("the switch's check: %s, want 101 rows deleted before the hold and none left for it", check.Report)
	}
	var rep verify.Report
	if err := json.Unmarshal(check.Report, &rep); err != nil || !strings.Contains(rep.Summary(), "the switch deleted them from the target") {
		t.Fatalf("the switch's summary does not say it deleted the rows (%v): %s", err, rep.Summary())
	}
	if n, err := b.dst.CountWhere(ctx, b.db, b.coll, ""); err != nil || n != 0 {
		t.Fatalf("the target holds %d rows after the switch, want none as on the source (%v)", n, err)
	}
	if err := b.syncer.Disarm(ctx, b.m); err != nil {
		t.Fatal(err)
	}
}
