package datatools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/nettest"
)

func TestSeedGivesExactlyTheRequestedShape(t *testing.T) {
	bed := milvustest.Require(t)
	milvustest.Reset(t, bed.Source)
	c := milvustest.Dial(t, bed.Source)
	ctx := context.Background()
	shape := datatools.Shape{Databases: 2, Collections: 2, Partitions: 2, Rows: 3000, Dim: 16, PKType: "varchar", Dynamic: true,
		Index: "HNSW", Aliases: true, Load: true, Shards: 2, Seed: 7, Prefix: "shape_"}
	milvustest.Seed(t, c, shape)
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range inv.Databases {
		for _, col := range d.Collections {
			pk := col.Fields[0]
			got = append(got, fmt.Sprintf("%s/%s parts=%v aliases=%v index=%s:%s rows=%d pk=%s/%v dynamic=%v dim=%d shards=%d loaded=%v",
				d.Name, col.Name, col.Partitions, col.Aliases, col.Indexes[0].Name, col.Indexes[0].Params["index_type"], col.Rows,
				pk.Type, pk.AutoID, col.DynamicField, col.Fields[3].Dim, col.ShardsNum, col.Loaded))
		}
	}
	var want []string
	for _, db := range []string{"shape_db0", "shape_db1"} {
		for _, coll := range []string{"shape_c0", "shape_c1"} {
			want = append(want, fmt.Sprintf("%s/%s parts=[_default p0 p1] aliases=[%s_alias] index=v_idx:HNSW rows=3000 pk=VarChar/false dynamic=true dim=16 shards=2 loaded=true", db, coll, coll))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("inventory after seed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same seed gives the same data.
	row := func() string {
		cols, err := c.Query(ctx, "shape_db1", "shape_c1", `id == "k0000000042"`, []string{"v", "s"}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(milvus.Column(cols, "v").GetVectors().GetFloatVector().GetData(), milvus.Column(cols, "s").GetScalars().GetStringData().GetData())
	}
	first := row()
	milvustest.Reset(t, bed.Source)
	milvustest.Seed(t, c, shape)
	if row() != first || len(first) < 20 {
		t.Fatal("seeding twice with the same --seed gave different data")
	}
}

func TestLoadThenCheckFindsEveryWriteAndCatchesFaults(t *testing.T) {
	bed := milvustest.Require(t)
	milvustest.Reset(t, bed.Source)
	c := milvustest.Dial(t, bed.Source)
	ctx := context.Background()
	for _, pk := range []string{"int64", "varchar"} {
		s := datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: pk, Dynamic: true, Index: "FLAT", Load: true, Shards: 1, Prefix: pk + "_"}
		milvustest.Seed(t, c, s)
	}
	auto := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", AutoID: true, Index: "FLAT", Load: true, Shards: 1, Prefix: "auto_"}
	milvustest.Seed(t, c, auto)
	targets := []datatools.CollectionName{{"int64_db0", "int64_c0"}, {"varchar_db0", "varchar_c0"}, {"auto_db0", "auto_c0"}}
	var journal bytes.Buffer
	st, err := datatools.Load(ctx, c, datatools.LoadConfig{Targets: targets, Rate: 60, Mix: datatools.Mix{Insert: 60, Upsert: 25, Delete: 15},
		Batch: 5, Workers: 3, Seed: 3, Duration: 10 * time.Second}, &journal)
	if err != nil {
		t.Fatal(err)
	}
	if st.Acknowledged < 300 || st.Failed != 0 {
		t.Fatalf("load: %+v", st)
	}
	ops := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(journal.String()), "\n") {
		var a datatools.Ack
		_ = json.Unmarshal([]byte(line), &a)
		ops[a.Op]++
		// Milvus 2.3.5 answers a delete with timestamp 0 (docs/testbed.md).
		if (a.Timestamp == 0 && a.Op != "delete") || len(a.Keys) == 0 {
			t.Fatalf("journal entry without timestamp or keys: %s", line)
		}
	}
	if ops["insert"] == 0 || ops["upsert"] == 0 || ops["delete"] == 0 {
		t.Fatalf("mix not exercised: %v", ops)
	}
	rep, err := datatools.Check(ctx, c, bytes.NewReader(journal.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Present == 0 {
		t.Fatalf("check of the same cluster: %s %v", rep, rep.Examples)
	}

	// Plant faults behind the journal's back: the check must name them.
	var lastInsert, lastUpsert datatools.Ack
	for _, line := range strings.Split(strings.TrimSpace(journal.String()), "\n") {
		var a datatools.Ack
		_ = json.Unmarshal([]byte(line), &a)
		if a.Collection == "int64_c0" && a.Op == "insert" {
			lastInsert = a
		}
		if a.Collection == "varchar_c0" && a.Op == "upsert" {
			lastUpsert = a
		}
	}
	if _, err := c.Delete(ctx, "int64_db0", "int64_c0", "", "id in ["+lastInsert.Keys[len(lastInsert.Keys)-1]+"]"); err != nil {
		t.Fatal(err)
	}
	// A second row with an existing key: Milvus keeps both on insert.
	schemaCol, _ := c.DescribeCollection(ctx, "varchar_db0", "varchar_c0")
	gen := milvus.RowGen{Schema: schemaCol.Schema, Rand: milvustest.NewRand()}
	if _, err := c.Insert(ctx, "varchar_db0", "varchar_c0", "", gen.Columns(1, milvus.Keys{Strs: lastUpsert.Keys[:1]}, func(int) int64 { return lastUpsert.Version }), 1); err != nil {
		t.Fatal(err)
	}
	// A key whose last acknowledged write is an upsert, set back to an
	// older version, and a key whose last is a delete, written again.
	last := map[string]datatools.Ack{}
	for _, line := range strings.Split(strings.TrimSpace(journal.String()), "\n") {
		var a datatools.Ack
		_ = json.Unmarshal([]byte(line), &a)
		if a.Collection == "int64_c0" && !a.Unsure {
			for _, k := range a.Keys {
				last[k] = a
			}
		}
	}
	var staleKey, deletedKey string
	for k, a := range last {
		switch {
		case a.Op == "upsert" && a.Version > 1 && staleKey == "" && k != lastInsert.Keys[len(lastInsert.Keys)-1]:
			staleKey = k
		case a.Op == "delete" && deletedKey == "":
			deletedKey = k
		}
	}
	if staleKey == "" || deletedKey == "" {
		t.Fatalf("the load left no upserted or deleted key of int64_c0 to plant faults on")
	}
	intCol, _ := c.DescribeCollection(ctx, "int64_db0", "int64_c0")
	intGen := milvus.RowGen{Schema: intCol.Schema, Rand: milvustest.NewRand()}
	for key, version := range map[string]int64{staleKey: last[staleKey].Version - 1, deletedKey: 1} {
		k, _ := strconv.ParseInt(key, 10, 64)
		if _, err := c.Upsert(ctx, "int64_db0", "int64_c0", "", intGen.Columns(1, milvus.Keys{Ints: []int64{k}}, func(int) int64 { return version }), 1); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = datatools.Check(ctx, c, bytes.NewReader(journal.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 1 || rep.Duplicated != 1 || rep.Stale != 1 || rep.Resurrected != 1 || rep.OK() {
		t.Fatalf("planted one missing, one duplicated, one stale and one deleted-but-present key, check says: %s %v", rep, rep.Examples)
	}
}

// A load started while its endpoint restarts (a zdmd killed behind a load
// balancer) used to end at once on its first read of a schema; it waits
// for the endpoint as it does for its writes.
func TestALoadWaitsForAnEndpointThatIsRestarting(t *testing.T) {
	bed := milvustest.Require(t)
	milvustest.Reset(t, bed.Source)
	milvustest.Seed(t, milvustest.Dial(t, bed.Source), datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64",
		Index: "FLAT", Load: true, Shards: 1, Prefix: "restart_"})
	relay := nettest.NewRelay(t, bed.Source)
	c := milvustest.Dial(t, relay.Addr())
	relay.Down()
	time.AfterFunc(time.Second, relay.Up)
	var journal bytes.Buffer
	st, err := datatools.Load(context.Background(), c, datatools.LoadConfig{Targets: []datatools.CollectionName{{"restart_db0", "restart_c0"}},
		Rate: 20, Mix: datatools.Mix{Insert: 1}, Batch: 2, Workers: 1, Seed: 1, Duration: 3 * time.Second}, &journal)
	if err != nil {
		t.Fatalf("a load through an endpoint down for a second: %v", err)
	}
	if st.Acknowledged == 0 {
		t.Fatalf("no write acknowledged once the endpoint was back: %+v", st)
	}
}
