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

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
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

// A write a killed zdmd had sent can sit in the source's queue and be
// applied after the next zdmd repaired it from the source: the repair
// found nothing to copy. The switch, with writes held, repairs every such
// write again, so the target ends with it and the check passes, even when
// the zdmd that repaired it is gone and another one runs the switch.
func TestAWriteTheSourceAppliesAfterItsRepairReachesTheTargetAtTheSwitch(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "late_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "late_db0", "late_c0"
	resolve := endpoints{"src": bed.Source, "dst": bed.Target}
	copier := rowcopy.NewCopier(resolve, rowcopy.Config{}, nil)
	m := planned(t, copier)
	reader := &migrationOf{m: m}
	if err := copier.Copy(ctx, m.Clone(), recordInto(&reader.mu, reader.m)); err != nil {
		t.Fatal(err)
	}

	// A dead zdmd's intent: an insert of key 777777 it had forwarded.
	store := estest.NewStore(t)
	journal, intents := estest.Journal(t, store), estest.KV(t, store, "TEST_INTENTS")
	gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: rand.New(rand.NewPCG(7, 7))}
	late := gen.Columns(1, milvus.Keys{Ints: []int64{777777}}, func(int) int64 { return 1 })
	req, err := proto.Marshal(&milvuspb.InsertRequest{DbName: db, CollectionName: coll, FieldsData: late, NumRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := capture.Entry{Op: "write", Method: "Insert", Database: db, Collection: coll, Request: req, At: time.Now()}
	if err := intents.Put(ctx, m.ID+".deadbeef.0", e.Marshal()); err != nil {
		t.Fatal(err)
	}
	positions := estest.KV(t, store, "TEST_APPLY")
	zdmd := func() (*livesync.Syncer, context.CancelFunc) {
		c := capture.NewCapture(journal, nil, nil)
		c.KeepIntents(intents)
		sctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		syncer := livesync.NewSyncer(sctx, resolve, c, journal, positions, reader, &failures{}, livesync.Config{}, nil)
		if err := syncer.Arm(ctx, m); err != nil {
			t.Fatal(err)
		}
		return syncer, stop
	}
	syncer, stop := zdmd()
	// The first switch drains the journal: the repair found no key
	// 777777 on the source. Writes go back to the source.
	_, check, route, err := syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the first switch: %v, equal %v", err, check.Equal)
	}
	route(false)
	// Then the source applies the insert, and the zdmd that repaired it
	// stops driving; the next one runs the switch.
	if _, err := src.Insert(ctx, db, coll, "", late, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	syncer.Wait()
	syncer, _ = zdmd()
	_, check, route, err = syncer.Switch(ctx, m)
	if err != nil || !check.Equal {
		t.Fatalf("the switch after the late write: %v, equal %v %s", err, check.Equal, strings.TrimSpace(string(check.Report)))
	}
	route(false)
	if n, err := milvustest.Dial(t, bed.Target).CountWhere(ctx, db, coll, "id == 777777"); err != nil || n != 1 {
		t.Fatalf("the late write on the target: %d rows (%v)", n, err)
	}
	// The ended migration leaves no apply position or kept repair behind.
	if err := syncer.Disarm(ctx, m); err != nil {
		t.Fatal(err)
	}
	if left, err := positions.Matching(ctx, capture.JournalPrefix(m.ID)+">"); err != nil || len(left) != 0 {
		t.Fatalf("after the migration ended: %d keys of it kept (%v)", len(left), err)
	}
}
