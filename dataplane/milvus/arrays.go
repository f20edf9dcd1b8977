package milvus

import (
	"fmt"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// FitArrays puts every ARRAY column of cols in the form the server's own
// insert validation takes: the column names its element type, and every
// row, an empty one included, carries the element type's data.
//
// Milvus 2.3 answers a query with an empty array as a row that carries no
// data at all, and the same server's insert validation dereferences that
// row's type without a check: written back as read, such a page crashes
// the target server. The element type comes from the column, or from
// schema when the column does not name it (schema may be nil).
func FitArrays(cols []*schemapb.FieldData, schema *schemapb.CollectionSchema) {
	for _, c := range cols {
		a := c.GetScalars().GetArrayData()
		if a == nil {
			continue
		}
		if a.ElementType == schemapb.DataType_None {
			for _, f := range schema.GetFields() {
				if f.GetName() == c.GetFieldName() {
					a.ElementType = f.GetElementType()
				}
			}
		}
		for i, row := range a.Data {
			if row == nil {
				row = &schemapb.ScalarField{}
				a.Data[i] = row
			}
			if row.Data == nil {
				setEmpty(row, a.ElementType)
			}
		}
	}
}

// setEmpty makes row an empty array of element type t, encoded as the
// Milvus SDKs encode one.
func setEmpty(row *schemapb.ScalarField, t schemapb.DataType) {
	switch t {
	case schemapb.DataType_Bool:
		row.Data = &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{}}
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		row.Data = &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{}}
	case schemapb.DataType_Int64:
		row.Data = &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{}}
	case schemapb.DataType_Float:
		row.Data = &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{}}
	case schemapb.DataType_Double:
		row.Data = &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{}}
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		row.Data = &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{}}
	}
}

// copied are the field types zdm reads, merges, writes and verifies.
var copied = map[schemapb.DataType]bool{
	schemapb.DataType_Bool: true, schemapb.DataType_Int8: true, schemapb.DataType_Int16: true, schemapb.DataType_Int32: true,
	schemapb.DataType_Int64: true, schemapb.DataType_Float: true, schemapb.DataType_Double: true, schemapb.DataType_VarChar: true,
	schemapb.DataType_JSON: true, schemapb.DataType_Array: true, schemapb.DataType_FloatVector: true, schemapb.DataType_BinaryVector: true,
}

// arrayElements are the element types an ARRAY field may have.
var arrayElements = map[schemapb.DataType]bool{
	schemapb.DataType_Bool: true, schemapb.DataType_Int8: true, schemapb.DataType_Int16: true, schemapb.DataType_Int32: true,
	schemapb.DataType_Int64: true, schemapb.DataType_Float: true, schemapb.DataType_Double: true, schemapb.DataType_VarChar: true,
}

// Uncopiable names each field of col that zdm cannot carry to a target,
// and why: the preflight refuses such a source rather than send requests
// a server rejects, or worse, crashes on, or fail once the copy reaches
// the collection.
func Uncopiable(col *Collection) []string {
	out := UncopiableSchema(col.Key(), col.Schema)
	for _, f := range col.Schema.GetFields() {
		if col.keepsUnloaded(f) {
			// Its rows could be neither copied by rows nor checked.
			out = append(out, fmt.Sprintf("%s field %s has no index, so Milvus cannot load the collection and zdm can neither read nor check its rows: "+
				"create an index on it (it may be dropped after the migration), or drop the collection", col.Key(), f.GetName()))
		}
	}
	return out
}

func isVector(t schemapb.DataType) bool {
	switch t {
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_SparseFloatVector:
		return true
	}
	return false
}

// Loadable says whether Milvus can load the collection for reads: it is
// loaded, or each of its vector fields has an index.
func (c *Collection) Loadable() bool {
	return !slices.ContainsFunc(c.Schema.GetFields(), c.keepsUnloaded)
}

// keepsUnloaded says whether f keeps the collection from being loaded:
// Milvus loads a collection only once each vector field has an index,
// and reads only loaded ones.
func (c *Collection) keepsUnloaded(f *schemapb.FieldSchema) bool {
	return !c.Loaded && isVector(f.GetDataType()) &&
		!slices.ContainsFunc(c.Indexes, func(i Index) bool { return i.Field == f.GetName() })
}
