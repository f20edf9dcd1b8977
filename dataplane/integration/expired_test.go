package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

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
	ttl := func(c *milvus.Conn, seconds string) {
		t.Helper()
		r, err := c.Svc.AlterCollection(c.In(ctx, db), &milvuspb.AlterCollectionRequest{DbName: db, CollectionName: coll,
			Properties: []*commonpb.KeyValuePair{{Key: milvus.TTLProperty, Value: seconds}}})
		if err := milvus.Check("alter "+coll, r, err); err != nil {
			t.Fatal(err)
		}
	}
	// The target got its rows later than the source did: its time to live
	// ends later. Here it does not end during the test.
	ttl(src, "4")
	ttl(dst, "3600")
	if err := src.FlushAndWait(ctx, db, coll); err != nil { // compactions take sealed segments
		t.Fatal(err)
	}
	time.Sleep(time.Until(seeded.Add(6 * time.Second)))
	milvustest.Compact(t, src, db, coll)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		n, err := src.CountWhere(ctx, db, coll, "")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source still holds %d rows a minute after its compaction, want none", n)
		}
	}

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
}
