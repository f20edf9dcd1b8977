package milvus

import (
	"fmt"

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
// a server rejects, or worse, crashes on.
func Uncopiable(col *Collection) []string {
	var out []string
	for _, f := range col.Schema.GetFields() {
		switch t := f.GetDataType(); {
		case !copied[t]:
			out = append(out, fmt.Sprintf("%s field %s has type %s, which zdm does not copy", col.Key(), f.GetName(), t))
		case t == schemapb.DataType_Array && !arrayElements[f.GetElementType()]:
			out = append(out, fmt.Sprintf("%s field %s is an ARRAY of %s, which zdm does not copy", col.Key(), f.GetName(), f.GetElementType()))
		}
	}
	return out
}
