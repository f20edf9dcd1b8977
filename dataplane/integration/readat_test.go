package integration_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// The copy reads at a timestamp taken after the capture was armed: a read
// at it must hold every write the source acknowledged before it was taken,
// the last one included. Taking it leaves the source's segments as they
// were: sealed while the applications write, Milvus 2.3 can lose the
// deletes that come meanwhile.
func TestAReadAtTheSourcesTimestampHoldsEveryAcknowledgedWrite(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	shape := datatools.Shape{Databases: 1, Collections: 1, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "readat_"}
	milvustest.Seed(t, src, shape)
	db, coll := "readat_db0", "readat_c0"
	gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}
	var last uint64
	for round := 0; round < 5; round++ {
		keys := milvus.Keys{}
		for i := 0; i < 100; i++ {
			keys.Ints = append(keys.Ints, int64(round*100+i))
		}
		if _, err := src.Insert(ctx, db, coll, "", gen.Columns(100, keys, func(int) int64 { return 1 }), 100); err != nil {
			t.Fatal(err)
		}
		if round > 0 {
			// The last write of the round before goes, acknowledged.
			if _, err := src.Delete(ctx, db, coll, "", fmt.Sprintf("id in [%d]", round*100-1)); err != nil {
				t.Fatal(err)
			}
		}
		ts, err := src.ReadTimestamp(ctx, db, coll)
		if err != nil {
			t.Fatal(err)
		}
		if ts <= last {
			t.Fatalf("round %d: timestamp %d after %d", round, ts, last)
		}
		last = ts
		cols, err := src.QueryAt(ctx, db, coll, "id >= 0", []string{"id"}, nil, 0, ts)
		if err != nil {
			t.Fatal(err)
		}
		got := milvus.KeysOf(milvus.Column(cols, "id"))
		if want := (round+1)*100 - round; got.Len() != want {
			t.Fatalf("round %d: %d rows read at the timestamp, want %d", round, got.Len(), want)
		}
		for _, k := range got.Ints {
			if k%100 == 99 && k/100 < int64(round) {
				t.Fatalf("round %d: deleted key %d read at the timestamp", round, k)
			}
		}
	}
	sealed := func() int {
		t.Helper()
		segs, err := src.Svc.GetPersistentSegmentInfo(src.In(ctx, db), &milvuspb.GetPersistentSegmentInfoRequest{DbName: db, CollectionName: coll})
		if err := milvus.Check("segments", segs.GetStatus(), err); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, sg := range segs.GetInfos() {
			if sg.GetState() != commonpb.SegmentState_Growing {
				n++
			}
		}
		return n
	}
	if n := sealed(); n != 0 {
		t.Fatalf("%d segments sealed after the timestamps were taken", n)
	}
	// The listing does show segments once they are sealed.
	if err := src.FlushAndWait(ctx, db, coll); err != nil {
		t.Fatal(err)
	}
	if sealed() == 0 {
		t.Fatal("no sealed segment listed after a flush: the check above saw nothing")
	}
}
