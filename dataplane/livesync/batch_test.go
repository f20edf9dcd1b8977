package livesync

import (
	"strconv"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func TestArraysOfSeveralWritesMergeWhole(t *testing.T) {
	arr := func(vals ...[]int64) *schemapb.FieldData {
		var rows []*schemapb.ScalarField
		for _, v := range vals {
			rows = append(rows, &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}})
		}
		return &schemapb.FieldData{FieldName: "arr", Type: schemapb.DataType_Array, Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
			Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{ElementType: schemapb.DataType_Int64, Data: rows}}}}}
	}
	b := newRowBatch(&rowSet{cols: []*schemapb.FieldData{milvus.Int64Column("id", []int64{1}), arr([]int64{1, 2})}, rows: 1, keys: []string{"1"}})
	next := &rowSet{cols: []*schemapb.FieldData{milvus.Int64Column("id", []int64{2, 3}), arr(nil, []int64{7})}, rows: 2, keys: []string{"2", "3"}}
	if !b.fits(next) {
		t.Fatal("rows of the same fields do not fit the batch")
	}
	b.add(next)
	if n := milvus.Rows(b.cols); n != 3 || len(milvus.Column(b.cols, "arr").GetScalars().GetArrayData().GetData()) != 3 {
		t.Fatalf("merged %d rows, arrays %v", n, milvus.Column(b.cols, "arr"))
	}
	// A column of another kind is never merged short of its values.
	other := &rowSet{cols: []*schemapb.FieldData{milvus.Int64Column("id", []int64{4}), milvus.VarCharColumn("arr", []string{"x"})}, rows: 1, keys: []string{"4"}}
	if b.fits(other) {
		t.Fatal("a text column fits an array column")
	}
}

// Merged writes stay the size of the writes an application sends: a batch
// takes no more rows than fit a bound in bytes, unless a write is larger
// alone, and then it goes alone.
func TestAMergedUpsertStaysWithinItsSizeBound(t *testing.T) {
	rows := func(k int64, size int) *rowSet {
		return &rowSet{cols: []*schemapb.FieldData{milvus.Int64Column("id", []int64{k})}, rows: 1, keys: []string{strconv.FormatInt(k, 10)}, bytes: size}
	}
	b := newRowBatch(rows(1, 3<<20))
	if next := rows(2, 3<<20); !b.fits(next) {
		t.Fatal("two writes of 3 MB do not fit one batch")
	} else {
		b.add(next)
	}
	if b.fits(rows(3, 3<<20)) {
		t.Fatalf("a third write of 3 MB joins a batch of %d bytes; the bound is %d", b.bytes, maxBatchBytes)
	}
	if big := newRowBatch(rows(4, 20<<20)); big.fits(rows(5, 1)) {
		t.Fatal("a write joins one larger than the bound alone")
	}
}
