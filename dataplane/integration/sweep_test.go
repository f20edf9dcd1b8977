package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// A collection whose rows expire, 100,100 of them copied to the target
// and then removed by the source's compaction. Left to the switch, more
// than 100,000 such rows in one collection refused it. The sync deletes
// them from the target as it goes, in walks of up to 100,000 keys, while
// the collection's applier is between two entries; a row written through
// the proxy since stays, and the switch that follows finds the clusters
// plainly equal.
func TestTheSyncDeletesFromTheTargetTheRowsTheSourceRemovedAfterTheirTimeToLive(t *testing.T) {
	ctx := context.Background()
	notes := &noteBook{}
	b := newSwitchBedOf(t, "sweep_", 100_100, livesync.Config{ExpirySweepEvery: time.Second, Notes: notes})
	setTTL(t, b.src, b.db, b.coll, "2")
	expireAll(t, b.src, b.db, b.coll, time.Now().Add(3*time.Second))
	// From here on no row of the source expires during the test.
	setTTL(t, b.src, b.db, b.coll, "3600")
	gen := milvus.RowGen{Schema: b.shape.Schema(b.coll), Rand: milvustest.NewRand()}
	key := milvus.Keys{Ints: []int64{5_000_000}}
	if _, err := b.via.Insert(ctx, b.db, b.coll, "", gen.Columns(1, key, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	syncing, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.syncer.Sync(syncing, b.m, func(context.Context, float64) error { return nil }) }()
	waitFor(t, "the target holds only the row written through the proxy, as the source does", func() bool {
		n, err := b.dst.CountWhere(ctx, b.db, b.coll, "")
		if err != nil || n != 1 {
			return false
		}
		n, err = b.dst.CountWhere(ctx, b.db, b.coll, key.InExpr("id"))
		return err == nil && n == 1
	})
	t.Logf("the sync swept the target's 100,100 rows the source removed within %.1f s of its start (its first sweep after 1 s)", time.Since(began).Seconds())
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := notes.all(); !strings.Contains(got, "the sync deletes them from the target as it goes") {
		t.Fatalf("the migration's notes do not say the sync deletes the rows the source removed: %q", got)
	}

	_, check := b.switchedEqual(t)
	held := heldReport(t, check.Report)
	if held.ExpiredOnSource != 0 || held.ExpiredRemovedEarly != 0 || held.SourceRows != 1 || held.TargetRows != 1 {
		t.Fatalf("the switch's check: %s, want the clusters plainly equal, one row each", check.Report)
	}
	if err := b.syncer.Disarm(ctx, b.m); err != nil {
		t.Fatal(err)
	}
}
