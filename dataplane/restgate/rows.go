package restgate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// unmarshal decodes JSON with numbers kept as written.
func unmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// oneOrMany reads a JSON value that is one T or a list of them, as the
// v1 API takes rows and keys.
func oneOrMany[T any](data []byte) ([]T, error) {
	var many []T
	err := unmarshal(data, &many)
	if err == nil {
		return many, nil
	}
	var one T
	if unmarshal(data, &one) != nil {
		return nil, err
	}
	return []T{one}, nil
}

// toColumns turns rows into the collection's columns: every field of the
// schema from each row (an auto-generated key left out of an insert), and
// the keys the schema does not name in the dynamic field when it has one.
func toColumns(schema *schemapb.CollectionSchema, rows []map[string]any, upsert bool) ([]*schemapb.FieldData, error) {
	named := map[string]bool{}
	var cols []*schemapb.FieldData
	for _, f := range schema.GetFields() {
		named[f.GetName()] = true
		if f.GetIsDynamic() || f.GetIsPrimaryKey() && f.GetAutoID() && !upsert {
			continue
		}
		values := make([]any, len(rows))
		for i, row := range rows {
			v, ok := row[f.GetName()]
			if !ok || v == nil {
				return nil, badData("row %d has no value for field %s", i, f.GetName())
			}
			values[i] = v
		}
		col, err := column(f, values)
		if err != nil {
			return nil, badData("field %s: %v", f.GetName(), err)
		}
		cols = append(cols, col)
	}
	if !schema.GetEnableDynamicField() {
		return cols, nil
	}
	dyn := make([][]byte, len(rows))
	for i, row := range rows {
		extra := map[string]any{}
		for k, v := range row {
			if !named[k] && k != milvus.DynamicFieldName {
				extra[k] = v
			}
		}
		b, err := json.Marshal(extra)
		if err != nil {
			return nil, badData("row %d: %v", i, err)
		}
		dyn[i] = b
	}
	return append(cols, &schemapb.FieldData{Type: schemapb.DataType_JSON, FieldName: milvus.DynamicFieldName, IsDynamic: true,
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: dyn}}}}}), nil
}

// column builds one field's column from its rows' values.
func column(f *schemapb.FieldSchema, values []any) (*schemapb.FieldData, error) {
	fd := &schemapb.FieldData{Type: f.GetDataType(), FieldName: f.GetName(), FieldId: f.GetFieldID()}
	switch f.GetDataType() {
	case schemapb.DataType_FloatVector:
		dim := milvus.TypeParamInt(f, "dim")
		data := make([]float32, 0, len(values)*dim)
		for i, v := range values {
			vec, ok := v.([]any)
			if !ok || len(vec) != dim {
				return nil, fmt.Errorf("row %d: want a list of %d numbers", i, dim)
			}
			for _, x := range vec {
				n, err := toFloat(x, 32)
				if err != nil {
					return nil, fmt.Errorf("row %d: %w", i, err)
				}
				data = append(data, float32(n))
			}
		}
		fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: data}}}}
	case schemapb.DataType_BinaryVector:
		dim := milvus.TypeParamInt(f, "dim")
		data := make([]byte, 0, len(values)*dim/8)
		for i, v := range values {
			b, err := toBytes(v, dim/8)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", i, err)
			}
			data = append(data, b...)
		}
		fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_BinaryVector{BinaryVector: data}}}
	default:
		s, err := scalars(f.GetDataType(), f.GetElementType(), values)
		if err != nil {
			return nil, err
		}
		fd.Field = &schemapb.FieldData_Scalars{Scalars: s}
	}
	return fd, nil
}

// scalars builds a scalar column (elem: the type of an array's elements).
func scalars(t, elem schemapb.DataType, values []any) (*schemapb.ScalarField, error) {
	each := func(conv func(i int, v any) error) error {
		for i, v := range values {
			if err := conv(i, v); err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	}
	switch t {
	case schemapb.DataType_Bool:
		out := make([]bool, len(values))
		err := each(func(i int, v any) (err error) {
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("%v is not true or false", v)
			}
			out[i] = b
			return nil
		})
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: out}}}, err
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		bits := map[schemapb.DataType]int{schemapb.DataType_Int8: 8, schemapb.DataType_Int16: 16, schemapb.DataType_Int32: 32}[t]
		out := make([]int32, len(values))
		err := each(func(i int, v any) error {
			n, err := toInt(v, bits)
			out[i] = int32(n)
			return err
		})
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: out}}}, err
	case schemapb.DataType_Int64:
		out := make([]int64, len(values))
		err := each(func(i int, v any) (err error) { out[i], err = toInt(v, 64); return err })
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: out}}}, err
	case schemapb.DataType_Float:
		out := make([]float32, len(values))
		err := each(func(i int, v any) error { n, err := toFloat(v, 32); out[i] = float32(n); return err })
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: out}}}, err
	case schemapb.DataType_Double:
		out := make([]float64, len(values))
		err := each(func(i int, v any) (err error) { out[i], err = toFloat(v, 64); return err })
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: out}}}, err
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		out := make([]string, len(values))
		err := each(func(i int, v any) error {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("%v is not a string", v)
			}
			out[i] = s
			return nil
		})
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: out}}}, err
	case schemapb.DataType_JSON:
		out := make([][]byte, len(values))
		err := each(func(i int, v any) (err error) { out[i], err = json.Marshal(v); return err })
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: out}}}, err
	case schemapb.DataType_Array:
		out := make([]*schemapb.ScalarField, len(values))
		err := each(func(i int, v any) (err error) {
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%v is not a list", v)
			}
			out[i], err = scalars(elem, schemapb.DataType_None, list)
			return err
		})
		return &schemapb.ScalarField{Data: &schemapb.ScalarField_ArrayData{ArrayData: &schemapb.ArrayArray{ElementType: elem, Data: out}}}, err
	}
	return nil, fmt.Errorf("type %s is not taken by the RESTful API v1", t)
}

// toInt reads an integer of bits bits: a JSON number without a fraction,
// or its text.
func toInt(v any, bits int) (int64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("%v is not an integer", v)
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer of %d bits", s, bits)
	}
	return n, nil
}

// toFloat reads a number of bits bits.
func toFloat(v any, bits int) (float64, error) {
	x, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	n, err := strconv.ParseFloat(x.String(), bits)
	if err != nil || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%s is not a number of %d bits", x, bits)
	}
	return n, nil
}

// toBytes reads a binary vector's n bytes: a list of byte values, or
// their base64 text as Milvus's REST API gives them back.
func toBytes(v any, n int) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case string:
		var err error
		if b, err = base64.StdEncoding.DecodeString(x); err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
	case []any:
		for _, e := range x {
			i, err := toInt(e, 16)
			if err != nil || i < 0 || i > 255 {
				return nil, fmt.Errorf("%v is not a byte", e)
			}
			b = append(b, byte(i))
		}
	default:
		return nil, fmt.Errorf("want a list of %d bytes or their base64", n)
	}
	if len(b) != n {
		return nil, fmt.Errorf("want %d bytes, got %d", n, len(b))
	}
	return b, nil
}

// keysOf reads keys of the primary key's type.
func keysOf(pk *schemapb.FieldSchema, ids []any) (milvus.Keys, error) {
	var keys milvus.Keys
	for _, id := range ids {
		if pk.GetDataType() == schemapb.DataType_Int64 {
			n, err := toInt(id, 64)
			if err != nil {
				return keys, &apiError{code: codeMissingParam, msg: "id: " + err.Error()}
			}
			keys.Ints = append(keys.Ints, n)
			continue
		}
		s, ok := id.(string)
		if !ok {
			return keys, &apiError{code: codeMissingParam, msg: fmt.Sprintf("id: %v is not a string key", id)}
		}
		keys.Strs = append(keys.Strs, s)
	}
	return keys, nil
}
