package milvustest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

const dim = 8

func vectors(n, seed int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = float32((i+seed)*dim+j) / 100
		}
	}
	return out
}

func schema(name string, pk *entity.Field) *entity.Schema {
	return entity.NewSchema().WithName(name).WithDynamicFieldEnabled(true).
		WithField(pk).
		WithField(entity.NewField().WithName("n").WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName("s").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64)).
		WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(dim))
}

// TestTestBedThroughGoSDK proves each server of the test bed does what a
// migration needs, through milvus-sdk-go/v2.
func TestTestBedThroughGoSDK(t *testing.T) {
	bed := milvustest.Require(t)
	for _, addr := range []string{bed.Source, bed.Target} {
		t.Run(addr, func(t *testing.T) {
			milvustest.Reset(t, addr)
			exerciseServer(t, addr)
		})
	}
}

func exerciseServer(t *testing.T, addr string) {
	ctx := context.Background()
	c, err := client.NewClient(ctx, client.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("create database", c.CreateDatabase(ctx, "zdm_tb"))
	must("use database", c.UsingDatabase(ctx, "zdm_tb"))

	pks := map[string]*entity.Field{
		"auto_ids":     entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true).WithIsAutoID(true),
		"explicit_ids": entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true),
		"str_ids":      entity.NewField().WithName("id").WithDataType(entity.FieldTypeVarChar).WithMaxLength(64).WithIsPrimaryKey(true),
	}
	for name, pk := range pks {
		must("create "+name, c.CreateCollection(ctx, schema(name, pk), 2))
		idx, _ := entity.NewIndexIvfFlat(entity.L2, 16)
		must("index "+name, c.CreateIndex(ctx, name, "v", idx, false, client.WithIndexName("vec_idx")))
	}
	must("partition", c.CreatePartition(ctx, "explicit_ids", "p1"))
	must("alias", c.CreateAlias(ctx, "explicit_ids", "explicit_alias"))

	// Writes: inserts (with a dynamic field), upserts, deletes.
	ids, err := c.Insert(ctx, "auto_ids", "", entity.NewColumnInt64("n", []int64{1, 2, 3}),
		entity.NewColumnVarChar("s", []string{"a", "b", "c"}), entity.NewColumnFloatVector("v", dim, vectors(3, 0)),
		entity.NewColumnVarChar("colour", []string{"red", "green", "blue"}))
	must("insert autoID", err)
	if ids.Len() != 3 {
		t.Fatalf("autoID insert returned %d keys", ids.Len())
	}
	_, err = c.Insert(ctx, "explicit_ids", "p1", entity.NewColumnInt64("id", []int64{10, 11, 12, 13}), entity.NewColumnInt64("n", []int64{1, 2, 3, 4}),
		entity.NewColumnVarChar("s", []string{"a", "b", "c", "d"}), entity.NewColumnFloatVector("v", dim, vectors(4, 1)))
	must("insert explicit", err)
	_, err = c.Upsert(ctx, "explicit_ids", "p1", entity.NewColumnInt64("id", []int64{11}), entity.NewColumnInt64("n", []int64{99}),
		entity.NewColumnVarChar("s", []string{"up"}), entity.NewColumnFloatVector("v", dim, vectors(1, 7)))
	must("upsert", err)
	must("delete", c.Delete(ctx, "explicit_ids", "", "id in [13]"))
	_, err = c.Insert(ctx, "str_ids", "", entity.NewColumnVarChar("id", []string{"k1", "k2"}), entity.NewColumnInt64("n", []int64{5, 6}),
		entity.NewColumnVarChar("s", []string{"x", "y"}), entity.NewColumnFloatVector("v", dim, vectors(2, 2)))
	must("insert varchar", err)

	// Queries and counts.
	for name := range pks {
		must("load "+name, c.LoadCollection(ctx, name, false))
	}
	count := func(name string) int64 {
		rs, err := c.Query(ctx, name, nil, "", []string{"count(*)"}, client.WithSearchQueryConsistencyLevel(entity.ClStrong))
		must("count "+name, err)
		return rs.GetColumn("count(*)").(*entity.ColumnInt64).Data()[0]
	}
	if n := count("explicit_ids"); n != 3 {
		t.Fatalf("explicit_ids holds %d rows, want 3 (4 inserted, 1 deleted)", n)
	}
	if n := count("auto_ids"); n != 3 {
		t.Fatalf("auto_ids holds %d rows", n)
	}
	rs, err := c.Query(ctx, "explicit_ids", nil, "id == 11", []string{"n", "s"}, client.WithSearchQueryConsistencyLevel(entity.ClStrong))
	must("query upserted", err)
	if n := rs.GetColumn("n").(*entity.ColumnInt64).Data(); len(n) != 1 || n[0] != 99 {
		t.Fatalf("upsert not visible: %v", n)
	}
	rs, err = c.Query(ctx, "auto_ids", nil, `colour == "green"`, []string{"n", "colour"}, client.WithSearchQueryConsistencyLevel(entity.ClStrong))
	must("query dynamic field", err)
	if n := rs.GetColumn("n").(*entity.ColumnInt64).Data(); len(n) != 1 || n[0] != 2 {
		t.Fatalf("dynamic field query: %v", n)
	}

	// Read everything back: databases, collections, schema, partitions,
	// indexes with names and params, aliases.
	dbs, err := c.ListDatabases(ctx)
	must("list databases", err)
	if !slices.ContainsFunc(dbs, func(d entity.Database) bool { return d.Name == "zdm_tb" }) {
		t.Fatalf("databases: %v", dbs)
	}
	coll, err := c.DescribeCollection(ctx, "str_ids")
	must("describe", err)
	if !coll.Schema.EnableDynamicField || coll.ShardNum != 2 || len(coll.Schema.Fields) != 4 || coll.Schema.PKFieldName() != "id" {
		t.Fatalf("schema: %+v", coll.Schema)
	}
	parts, err := c.ShowPartitions(ctx, "explicit_ids")
	must("partitions", err)
	if len(parts) != 2 {
		t.Fatalf("partitions: %v", parts)
	}
	idx, err := c.DescribeIndex(ctx, "auto_ids", "v")
	must("describe index", err)
	if len(idx) != 1 || idx[0].Name() != "vec_idx" || idx[0].Params()["index_type"] != "IVF_FLAT" || !strings.Contains(idx[0].Params()["params"], "16") {
		t.Fatalf("index: %v %v", idx[0].Name(), idx[0].Params())
	}

	// The raw inventory sees the same.
	conn := milvustest.Dial(t, addr)
	inv, err := conn.Inventory(ctx)
	must("inventory", err)
	var names []string
	for _, d := range inv.Databases {
		for _, col := range d.Collections {
			names = append(names, col.Key())
			if col.Name == "explicit_ids" {
				if !slices.Equal(col.Aliases, []string{"explicit_alias"}) || !slices.Equal(col.Partitions, []string{"_default", "p1"}) ||
					col.Indexes[0].Name != "vec_idx" || col.Rows != 3 || !col.Loaded || col.ShardsNum != 2 {
					t.Fatalf("inventory of explicit_ids: %+v", col)
				}
			}
			if col.Name == "auto_ids" && (!col.Fields[0].AutoID || !col.DynamicField) {
				t.Fatalf("auto_ids fields: %+v", col.Fields)
			}
		}
	}
	if fmt.Sprint(names) != "[zdm_tb/auto_ids zdm_tb/explicit_ids zdm_tb/str_ids]" {
		t.Fatalf("inventory collections: %v", names)
	}
}

// TestTestBedThroughPymilvus checks both servers with a client no one here
// wrote.
func TestTestBedThroughPymilvus(t *testing.T) {
	bed := milvustest.Require(t)
	for _, addr := range []string{bed.Source, bed.Target} {
		milvustest.Reset(t, addr)
		out := bed.RunPython(t, filepath.Join("testdata", "pymilvus_check.py"), addr)
		if !strings.Contains(out, "pymilvus check passed") {
			t.Fatalf("%s: %s", addr, out)
		}
	}
}
