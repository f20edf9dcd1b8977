package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// The writes a dead zdmd left without an outcome, once old enough, are
// repaired again before the switch holds writes, not while it does: the
// hold then repairs nothing. One the source applies later still than
// that makes its collection differ at the next switch, which repairs it
// again while writes are held and ends equal.
func TestWritesWithoutAnOutcomeAreSettledBeforeTheHold(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "settle_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "settle_db0", "settle_c0"
	resolve, reader := copied(t, bed)
	m := reader.m

	// Two inserts (keys 888888 and 888889) and a delete (key 3), forwarded
	// by a zdmd that died ten seconds ago.
	store := estest.NewStore(t)
	journal := estest.Journal(t, store)
	late := deadInsertsAndDelete(t, journal, m.ID, db, shape.Schema(coll), 888888, time.Now().Add(-10*time.Second))
	syncer, _ := armedSyncer(t, resolve, reader, store, journal, livesync.Config{}, &failures{})

	sw, check, route, err := syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the first switch: %v, equal %v %s", err, check.Equal, strings.TrimSpace(string(check.Report)))
	}
	route(false)
	if sw.RepairMS != 0 {
		t.Fatalf("the first switch repaired while writes were held for %.0f ms; the repairs were old enough to be made before", sw.RepairMS)
	}
	if n, err := dst.CountWhere(ctx, db, coll, "id in [888888, 888889, 3]"); err != nil || n != 1 {
		t.Fatalf("after the first switch the target holds %d of the repaired keys, want key 3 alone (%v)", n, err)
	}

	// The source applies them now, later than zdm allows.
	landLate(t, src, db, coll, late)
	sw, check, route, err = syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the switch after the late writes: %v, equal %v %s", err, check.Equal, strings.TrimSpace(string(check.Report)))
	}
	route(false)
	if sw.RepairMS == 0 {
		t.Fatal("the switch after the late writes repaired nothing while writes were held")
	}
	if n, err := dst.CountWhere(ctx, db, coll, "id in [888888, 888889]"); err != nil || n != 2 {
		t.Fatalf("the late inserts on the target: %d rows of 2 (%v)", n, err)
	}
	if n, err := dst.CountWhere(ctx, db, coll, "id == 3"); err != nil || n != 0 {
		t.Fatalf("the late delete on the target: key 3 still in %d rows (%v)", n, err)
	}
	if err := syncer.Disarm(ctx, m); err != nil {
		t.Fatal(err)
	}
}
