package milvus

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func TestFitArraysGivesEveryRowItsElementType(t *testing.T) {
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "a", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar},
	}}
	// As Milvus 2.3 answers a query: no element type on the column, and
	// an empty array as a row without data.
	col := &schemapb.FieldData{FieldName: "a", Type: schemapb.DataType_Array, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
		Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{Data: []*schemapb.ScalarField{
			{}, {Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: []string{"x"}}}}, nil,
		}}}}}}
	FitArrays([]*schemapb.FieldData{col}, schema)
	a := col.GetScalars().GetArrayData()
	if a.GetElementType() != schemapb.DataType_VarChar {
		t.Fatalf("element type %v", a.GetElementType())
	}
	for i, row := range a.GetData() {
		if row.GetStringData() == nil {
			t.Fatalf("row %d carries %T, not text", i, row.GetData())
		}
	}
	if got := a.GetData()[1].GetStringData().GetData(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("row 1 changed: %v", got)
	}
	if Rows([]*schemapb.FieldData{col}) != 3 {
		t.Fatalf("rows: %d", Rows([]*schemapb.FieldData{col}))
	}
}

func TestPreflightNamesFieldsZdmCannotCopy(t *testing.T) {
	col := &Collection{Database: "db", Name: "c", Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "half", DataType: schemapb.DataType_Float16Vector},
		{Name: "docs", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_JSON},
		{Name: "tags", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar},
	}}}
	got := strings.Join(Uncopiable(col), "; ")
	if !strings.Contains(got, "db/c field half has type Float16Vector") || !strings.Contains(got, "db/c field docs is an ARRAY of JSON") || strings.Contains(got, "tags") {
		t.Fatalf("refusals: %s", got)
	}
}

func TestRowGenWritesArraysOfEveryElementType(t *testing.T) {
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}}}
	for e := range arrayElements {
		schema.Fields = append(schema.Fields, &schemapb.FieldSchema{Name: "a" + e.String(), DataType: schemapb.DataType_Array, ElementType: e,
			TypeParams: []*commonpb.KeyValuePair{{Key: "max_capacity", Value: "3"}, {Key: "max_length", Value: "4"}}})
	}
	cols := RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(1, 2))}.Columns(20, Keys{Ints: make([]int64, 20)}, func(int) int64 { return 0 })
	for _, c := range cols[1:] {
		a := c.GetScalars().GetArrayData()
		if len(a.GetData()) != 20 || a.GetElementType() == schemapb.DataType_None {
			t.Fatalf("%s: %d rows, element type %v", c.GetFieldName(), len(a.GetData()), a.GetElementType())
		}
		for _, row := range a.GetData() {
			n := ColumnLen(&schemapb.FieldData{Field: &schemapb.FieldData_Scalars{Scalars: row}})
			if row.GetData() == nil || n > 3 {
				t.Fatalf("%s: a row of %d elements: %v", c.GetFieldName(), n, row)
			}
			for _, s := range row.GetStringData().GetData() {
				if len(s) > 4 {
					t.Fatalf("%s: %q is longer than max_length", c.GetFieldName(), s)
				}
			}
		}
	}
}

// A collection Milvus cannot load, for want of an index on a vector
// field, is named with what to do; one with its indexes, or loaded, is not.
func TestPreflightNamesCollectionsWithoutAnIndexMilvusNeedsToLoadThem(t *testing.T) {
	col := func(loaded bool, indexes ...Index) *Collection {
		return &Collection{Database: "db", Name: "c", Loaded: loaded, Indexes: indexes, Schema: &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
			{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
			{Name: "v", DataType: schemapb.DataType_FloatVector},
			{Name: "b", DataType: schemapb.DataType_BinaryVector},
		}}}
	}
	got := strings.Join(Uncopiable(col(false, Index{Name: "v", Field: "v"})), "; ")
	if !strings.Contains(got, "db/c field b has no index") || !strings.Contains(got, "create an index") || strings.Contains(got, "field v") {
		t.Errorf("refusals of a collection with one vector field indexed: %s", got)
	}
	for _, c := range []*Collection{col(false, Index{Field: "v"}, Index{Field: "b"}), col(true)} {
		if got := Uncopiable(c); len(got) > 0 {
			t.Errorf("refusals of a collection Milvus loads: %v", got)
		}
	}
}
