package integration_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// migrationOf reads one migration, as the syncer's eligibility does.
type migrationOf struct {
	mu sync.Mutex
	m  *domain.Migration
}

func (r *migrationOf) Migration(context.Context, string) (*domain.Migration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Clone(), nil
}

// copied copies the bed's source to its target, as a migration whose
// reader the syncer reads.
func copied(t *testing.T, bed milvustest.Bed) (endpoints, *migrationOf) {
	t.Helper()
	return copiedWith(t, bed, rowcopy.Config{})
}

// copiedWith is copied by a copier of cfg.
func copiedWith(t *testing.T, bed milvustest.Bed, cfg rowcopy.Config) (endpoints, *migrationOf) {
	t.Helper()
	resolve := endpoints{"src": bed.Source, "dst": bed.Target}
	copier := rowcopy.NewCopier(resolve, cfg, nil)
	m := planned(t, copier)
	reader := &migrationOf{m: m}
	if err := copier.Copy(context.Background(), m.Clone(), recordInto(&reader.mu, reader.m)); err != nil {
		t.Fatal(err)
	}
	return resolve, reader
}

// armedSyncer is a zdmd's sync of reader's migration with cfg, failing it
// through f, its capture journaling into journal and keeping given keys
// in store, armed; its runs end with the test, before the store they read
// closes.
func armedSyncer(t *testing.T, resolve endpoints, reader *migrationOf, store *eventstore.Store, journal *eventstore.Journal, cfg livesync.Config, f capture.Failer) (*livesync.Syncer, *capture.Capture) {
	t.Helper()
	c := capture.NewCapture(journal, nil, nil)
	c.KeepGivenKeys(estest.KV(t, store, "TEST_INTENTS"))
	syncer := livesync.NewSyncer(t.Context(), resolve, c, journal, estest.KV(t, store, "TEST_APPLY"), reader, f, cfg, nil)
	t.Cleanup(syncer.Wait)
	if err := syncer.Arm(context.Background(), reader.m); err != nil {
		t.Fatal(err)
	}
	return syncer, c
}

// A write a killed zdmd had sent can sit in the source's queue and be
// applied after the next zdmd repaired it from the source: the repair
// found nothing to copy. The switch repairs every such write again (before
// the hold once the write is old enough, settle.go), so the target ends
// with it and the check passes, even when the zdmd that repaired it is
// gone and another one runs the switch.
func TestAWriteTheSourceAppliesAfterItsRepairReachesTheTargetAtTheSwitch(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "late_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "late_db0", "late_c0"
	resolve, reader := copied(t, bed)
	m := reader.m

	// A dead zdmd's writes without outcomes: two inserts (keys 777777 and
	// 777778) and a delete (key 3) it had forwarded. At the switch the three are
	// repaired again together, by one read of the source per kind.
	store := estest.NewStore(t)
	journal, intents := estest.Journal(t, store), estest.KV(t, store, "TEST_INTENTS")
	late := deadInsertsAndDelete(t, journal, m.ID, db, shape.Schema(coll), 777777, time.Now())
	positions := estest.KV(t, store, "TEST_APPLY")
	zdmd := func() (*livesync.Syncer, context.CancelFunc) {
		c := capture.NewCapture(journal, nil, nil)
		c.KeepGivenKeys(intents)
		sctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		syncer := livesync.NewSyncer(sctx, resolve, c, journal, positions, reader, &failures{}, livesync.Config{}, nil)
		if err := syncer.Arm(ctx, m); err != nil {
			t.Fatal(err)
		}
		return syncer, stop
	}
	syncer, stop := zdmd()
	// The first switch drains the journal: the repairs found neither
	// insert on the source, and key 3 still there. Writes go back to the
	// source.
	_, check, route, err := syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the first switch: %v, equal %v", err, check.Equal)
	}
	route(false)
	if n, err := milvustest.Dial(t, bed.Target).CountWhere(ctx, db, coll, "id == 3"); err != nil || n != 1 {
		t.Fatalf("after the first switch the target holds key 3 in %d rows, not 1 (%v)", n, err)
	}
	// Then the source applies the three writes, and the zdmd that
	// repaired them stops driving; the next one runs the switch.
	landLate(t, src, db, coll, late)
	stop()
	syncer.Wait()
	syncer, _ = zdmd()
	_, check, route, err = syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the switch after the late write: %v, equal %v %s", err, check.Equal, strings.TrimSpace(string(check.Report)))
	}
	route(false)
	if n, err := milvustest.Dial(t, bed.Target).CountWhere(ctx, db, coll, "id in [777777, 777778]"); err != nil || n != 2 {
		t.Fatalf("the late inserts on the target: %d rows of 2 (%v)", n, err)
	}
	if n, err := milvustest.Dial(t, bed.Target).CountWhere(ctx, db, coll, "id == 3"); err != nil || n != 0 {
		t.Fatalf("the late delete on the target: key 3 still in %d rows (%v)", n, err)
	}
	// The ended migration leaves no apply position or kept repair behind.
	if err := syncer.Disarm(ctx, m); err != nil {
		t.Fatal(err)
	}
	if left, err := positions.Matching(ctx, capture.JournalPrefix(m.ID)+">"); err != nil || len(left) != 0 {
		t.Fatalf("after the migration ended: %d keys of it kept (%v)", len(left), err)
	}
}

// deadInsertsAndDelete journals, as a zdmd that died at `at` had, two
// inserts without outcomes (keys first and first+1) and a delete of key 3
// into schema's collection of database db, and returns the inserts' rows, for the source
// to apply late.
func deadInsertsAndDelete(t *testing.T, journal capture.JournalLog, migrationID, db string, schema *schemapb.CollectionSchema, first int64, at time.Time) [][]*schemapb.FieldData {
	t.Helper()
	coll := schema.GetName()
	gen := milvus.RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(uint64(first), 7))}
	var late [][]*schemapb.FieldData
	for i, msg := range []proto.Message{
		&milvuspb.InsertRequest{DbName: db, CollectionName: coll, NumRows: 1},
		&milvuspb.InsertRequest{DbName: db, CollectionName: coll, NumRows: 1},
		&milvuspb.DeleteRequest{DbName: db, CollectionName: coll, Expr: "id in [3]"},
	} {
		method := "Delete"
		if ins, ok := msg.(*milvuspb.InsertRequest); ok {
			method = "Insert"
			ins.FieldsData = gen.Columns(1, milvus.Keys{Ints: []int64{first + int64(i)}}, func(int) int64 { return 1 })
			late = append(late, ins.FieldsData)
		}
		deadWriteAt(t, journal, migrationID, i, method, msg, 0, at)
	}
	return late
}

// landLate has the source apply the writes deadInsertsAndDelete
// journaled, as a source applies writes it held in its queue.
func landLate(t *testing.T, src *milvus.Conn, db, coll string, late [][]*schemapb.FieldData) {
	t.Helper()
	ctx := context.Background()
	for _, cols := range late {
		if _, err := src.Insert(ctx, db, coll, "", cols, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Delete(ctx, db, coll, "", "id in [3]"); err != nil {
		t.Fatal(err)
	}
}
