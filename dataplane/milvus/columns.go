package milvus

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// DynamicFieldName is where Milvus keeps the fields a schema does not list.
const DynamicFieldName = "$meta"

// Int64Column builds an INT64 column.
func Int64Column(name string, v []int64) *schemapb.FieldData {
	return &schemapb.FieldData{Type: schemapb.DataType_Int64, FieldName: name, Field: &schemapb.FieldData_Scalars{
		Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
}

// VarCharColumn builds a VARCHAR column.
func VarCharColumn(name string, v []string) *schemapb.FieldData {
	return &schemapb.FieldData{Type: schemapb.DataType_VarChar, FieldName: name, Field: &schemapb.FieldData_Scalars{
		Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}}}
}

// Rows returns the number of rows in columns.
func Rows(cols []*schemapb.FieldData) int {
	for _, c := range cols {
		if n := ColumnLen(c); n >= 0 {
			return n
		}
	}
	return 0
}

func ColumnLen(c *schemapb.FieldData) int {
	if s := c.GetScalars(); s != nil {
		switch {
		case s.GetLongData() != nil:
			return len(s.GetLongData().GetData())
		case s.GetIntData() != nil:
			return len(s.GetIntData().GetData())
		case s.GetStringData() != nil:
			return len(s.GetStringData().GetData())
		case s.GetBoolData() != nil:
			return len(s.GetBoolData().GetData())
		case s.GetFloatData() != nil:
			return len(s.GetFloatData().GetData())
		case s.GetDoubleData() != nil:
			return len(s.GetDoubleData().GetData())
		case s.GetJsonData() != nil:
			return len(s.GetJsonData().GetData())
		case s.GetArrayData() != nil:
			return len(s.GetArrayData().GetData())
		}
		return 0
	}
	if v := c.GetVectors(); v != nil && v.GetDim() > 0 {
		if f := v.GetFloatVector(); f != nil {
			return len(f.GetData()) / int(v.GetDim())
		}
		return len(v.GetBinaryVector()) * 8 / int(v.GetDim())
	}
	return -1
}

// Keys are primary keys of one type.
type Keys struct {
	Ints []int64
	Strs []string
}

// Len is the number of keys.
func (k Keys) Len() int { return len(k.Ints) + len(k.Strs) }

// KeysOf reads the primary key column (or a MutationResult's IDs column).
func KeysOf(c *schemapb.FieldData) Keys {
	return Keys{Ints: c.GetScalars().GetLongData().GetData(), Strs: c.GetScalars().GetStringData().GetData()}
}

// KeysOfIDs reads a MutationResult's IDs.
func KeysOfIDs(ids *schemapb.IDs) Keys {
	return Keys{Ints: ids.GetIntId().GetData(), Strs: ids.GetStrId().GetData()}
}

// Strings returns the keys as text ("12", "abc").
func (k Keys) Strings() []string {
	out := append([]string{}, k.Strs...)
	for _, i := range k.Ints {
		out = append(out, strconv.FormatInt(i, 10))
	}
	return out
}

// InExpr is a boolean expression selecting the keys of field.
func (k Keys) InExpr(field string) string {
	parts := make([]string, 0, k.Len())
	for _, i := range k.Ints {
		parts = append(parts, strconv.FormatInt(i, 10))
	}
	for _, s := range k.Strs {
		parts = append(parts, strconv.Quote(s))
	}
	return field + " in [" + strings.Join(parts, ",") + "]"
}

// Column returns the column named name.
func Column(cols []*schemapb.FieldData, name string) *schemapb.FieldData {
	for _, c := range cols {
		if c.GetFieldName() == name {
			return c
		}
	}
	return nil
}

// RowGen generates rows for any schema the seed and load tools create or
// find: every field gets a value derived from the row's sequence number, so
// data is reproducible from a seed.
type RowGen struct {
	Schema *schemapb.CollectionSchema
	Rand   *rand.Rand
}

// Columns returns n rows. keys gives explicit primary keys (nil for
// autoID); version is written to the first non-key INT64 field.
func (g RowGen) Columns(n int, keys Keys, version func(i int) int64) []*schemapb.FieldData {
	var cols []*schemapb.FieldData
	versioned := false
	for _, f := range g.Schema.GetFields() {
		if f.GetIsDynamic() || (f.GetIsPrimaryKey() && f.GetAutoID()) {
			continue
		}
		if f.GetIsPrimaryKey() {
			if keys.Strs != nil {
				cols = append(cols, VarCharColumn(f.GetName(), keys.Strs))
			} else {
				cols = append(cols, Int64Column(f.GetName(), keys.Ints))
			}
			continue
		}
		if f.GetDataType() == schemapb.DataType_Int64 && !versioned {
			versioned = true
			v := make([]int64, n)
			for i := range v {
				v[i] = version(i)
			}
			cols = append(cols, Int64Column(f.GetName(), v))
			continue
		}
		cols = append(cols, g.column(f, n))
	}
	if g.Schema.GetEnableDynamicField() {
		data := make([][]byte, n)
		colours := []string{"red", "green", "blue", "amber"}
		for i := range data {
			data[i], _ = json.Marshal(map[string]any{"colour": colours[g.Rand.IntN(len(colours))], "weight": g.Rand.Float64()})
		}
		cols = append(cols, &schemapb.FieldData{Type: schemapb.DataType_JSON, FieldName: DynamicFieldName, IsDynamic: true,
			Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: data}}}}})
	}
	return cols
}

func (g RowGen) column(f *schemapb.FieldSchema, n int) *schemapb.FieldData {
	fd := &schemapb.FieldData{Type: f.GetDataType(), FieldName: f.GetName()}
	scalar := func(s *schemapb.ScalarField) { fd.Field = &schemapb.FieldData_Scalars{Scalars: s} }
	r := g.Rand
	switch f.GetDataType() {
	case schemapb.DataType_Bool:
		v := make([]bool, n)
		for i := range v {
			v[i] = r.IntN(2) == 1
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: v}}})
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(r.IntN(100))
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: v}}})
	case schemapb.DataType_Int64:
		v := make([]int64, n)
		for i := range v {
			v[i] = r.Int64N(1 << 40)
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}})
	case schemapb.DataType_Float:
		v := make([]float32, n)
		for i := range v {
			v[i] = r.Float32()
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: v}}})
	case schemapb.DataType_Double:
		v := make([]float64, n)
		for i := range v {
			v[i] = r.Float64()
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: v}}})
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		v := make([]string, n)
		ml := TypeParamInt(f, "max_length")
		for i := range v {
			v[i] = fmt.Sprintf("text-%08x", r.Uint32())
			if ml > 0 && len(v[i]) > ml {
				v[i] = v[i][:ml]
			}
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}})
	case schemapb.DataType_JSON:
		v := make([][]byte, n)
		for i := range v {
			v[i] = []byte(fmt.Sprintf(`{"k":%d}`, r.IntN(1000)))
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: v}}})
	case schemapb.DataType_Array:
		// Arrays of up to max_capacity elements, an empty one among them.
		elem := &schemapb.FieldSchema{Name: f.GetName(), DataType: f.GetElementType(), TypeParams: f.GetTypeParams()}
		capacity := max(1, TypeParamInt(f, "max_capacity"))
		rows := make([]*schemapb.ScalarField, n)
		for i := range rows {
			rows[i] = g.column(elem, r.IntN(capacity+1)).GetScalars()
		}
		scalar(&schemapb.ScalarField{Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{ElementType: f.GetElementType(), Data: rows}}})
	case schemapb.DataType_FloatVector:
		dim := TypeParamInt(f, "dim")
		v := make([]float32, n*dim)
		for i := range v {
			v[i] = r.Float32()
		}
		fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: v}}}}
	case schemapb.DataType_BinaryVector:
		dim := TypeParamInt(f, "dim")
		v := make([]byte, n*dim/8)
		for i := range v {
			v[i] = byte(r.IntN(256))
		}
		fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_BinaryVector{BinaryVector: v}}}
	}
	return fd
}

// TypeParamInt reads a field's numeric type parameter (dim, max_length), 0 if absent.
func TypeParamInt(f *schemapb.FieldSchema, key string) int {
	for _, kv := range f.GetTypeParams() {
		if kv.GetKey() == key {
			n, _ := strconv.Atoi(kv.GetValue())
			return n
		}
	}
	return 0
}

// OutputFields asks for every field, the dynamic one included.
func OutputFields(col *Collection) []string {
	var out []string
	for _, f := range col.Schema.GetFields() {
		out = append(out, f.GetName())
	}
	if col.DynamicField {
		out = append(out, DynamicFieldName)
	}
	return out
}

// MarkDynamic flags the dynamic column of a query page so that an upsert
// treats it as the dynamic field again.
func MarkDynamic(cols []*schemapb.FieldData) {
	for _, c := range cols {
		if c.GetFieldName() == DynamicFieldName {
			c.IsDynamic = true
		}
	}
}

// QueryWindow is the most rows Milvus returns for one query (16384 by default).
const QueryWindow = 16384

// KeysFromStrings reads keys written as text ("varchar" or int64).
func KeysFromStrings(keyType string, keys []string) Keys {
	if keyType == "varchar" {
		return Keys{Strs: keys}
	}
	k := Keys{Ints: make([]int64, 0, len(keys))}
	for _, s := range keys {
		n, _ := strconv.ParseInt(s, 10, 64)
		k.Ints = append(k.Ints, n)
	}
	return k
}
