package restgate

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// readBody is a query's or a search's.
type readBody struct {
	DbName         string          `json:"dbName"`
	CollectionName string          `json:"collectionName"`
	Filter         string          `json:"filter"`
	OutputFields   []string        `json:"outputFields"`
	Limit          int64           `json:"limit"`
	Offset         int64           `json:"offset"`
	Vector         json.RawMessage `json:"vector"`
	Params         map[string]any  `json:"params"`
}

// outputs are the fields asked for: all of them when none is named.
func outputs(named []string) []string {
	if len(named) == 0 {
		return []string{"*"}
	}
	return named
}

func (g *gate) query(ctx context.Context, r *http.Request) (any, error) {
	var b readBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if err := required("collectionName, filter", b.CollectionName == "" || b.Filter == ""); err != nil {
		return nil, err
	}
	if b.Limit <= 0 {
		b.Limit = defaultLimit
	}
	return g.rows(ctx, b.DbName, b.CollectionName, b.Filter, b.OutputFields, b.Limit, b.Offset)
}

// defaultLimit is how many rows a query or a search without a limit
// gives, as Milvus's v1 API does.
const defaultLimit = 100

func (g *gate) get(ctx context.Context, r *http.Request) (any, error) {
	var b keyBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	b.Filter = "" // a get names its keys
	expr, err := g.keyExpr(ctx, b)
	if err != nil {
		return nil, err
	}
	return g.rows(ctx, b.DbName, b.CollectionName, expr, b.OutputFields, 0, 0)
}

// rows queries a collection and gives its rows as Milvus's REST API does.
func (g *gate) rows(ctx context.Context, db, coll, expr string, fields []string, limit, offset int64) (any, error) {
	req := &milvuspb.QueryRequest{DbName: db, CollectionName: coll, Expr: expr, OutputFields: outputs(fields)}
	if limit > 0 {
		req.QueryParams = append(req.QueryParams, &commonpb.KeyValuePair{Key: "limit", Value: strconv.FormatInt(limit, 10)})
	}
	if offset > 0 {
		req.QueryParams = append(req.QueryParams, &commonpb.KeyValuePair{Key: "offset", Value: strconv.FormatInt(offset, 10)})
	}
	res, err := g.milvus.Query(ctx, req)
	if err := check(res.GetStatus(), err); err != nil {
		return nil, err
	}
	return rowsOf(res.GetFieldsData(), milvus.Rows(res.GetFieldsData()), fields), nil
}

func (g *gate) search(ctx context.Context, r *http.Request) (any, error) {
	var b readBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if err := required("collectionName, vector", b.CollectionName == "" || len(b.Vector) == 0); err != nil {
		return nil, err
	}
	desc, err := g.schemaOf(ctx, b.DbName, b.CollectionName)
	if err != nil {
		return nil, err
	}
	var vf *schemapb.FieldSchema
	for _, f := range desc.GetSchema().GetFields() {
		if f.GetDataType() == schemapb.DataType_FloatVector || f.GetDataType() == schemapb.DataType_BinaryVector {
			vf = f
			break
		}
	}
	if vf == nil {
		return nil, &apiError{code: codeServer, msg: "collection " + b.CollectionName + " has no float or binary vector field to search"}
	}
	placeholder, err := placeholderOf(vf, b.Vector)
	if err != nil {
		return nil, err
	}
	params, err := json.Marshal(orEmpty(b.Params))
	if err != nil {
		return nil, &apiError{code: codeNotJSON, msg: "params: " + err.Error()}
	}
	limit := b.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	res, err := g.milvus.Search(ctx, &milvuspb.SearchRequest{DbName: b.DbName, CollectionName: b.CollectionName,
		Dsl: b.Filter, DslType: commonpb.DslType_BoolExprV1, PlaceholderGroup: placeholder, OutputFields: b.OutputFields,
		Nq: 1, SearchParams: []*commonpb.KeyValuePair{
			{Key: "anns_field", Value: vf.GetName()}, {Key: "topk", Value: strconv.FormatInt(limit, 10)},
			{Key: "offset", Value: strconv.FormatInt(b.Offset, 10)}, {Key: "params", Value: string(params)},
			{Key: "round_decimal", Value: "-1"}}})
	if err := check(res.GetStatus(), err); err != nil {
		return nil, err
	}
	hits := res.GetResults()
	out := rowsOf(hits.GetFieldsData(), len(hits.GetScores()), b.OutputFields)
	ids := milvus.KeysOfIDs(hits.GetIds())
	for i, row := range out {
		row["distance"] = hits.GetScores()[i]
		if i < len(ids.Ints) {
			row["id"] = strconv.FormatInt(ids.Ints[i], 10)
		} else if i < len(ids.Strs) {
			row["id"] = ids.Strs[i]
		}
	}
	return out, nil
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// placeholderOf is a search's one query vector, of the field's type.
func placeholderOf(f *schemapb.FieldSchema, raw json.RawMessage) ([]byte, error) {
	var v any
	if err := unmarshal(raw, &v); err != nil {
		return nil, &apiError{code: codeNotJSON, msg: "vector: " + err.Error()}
	}
	col, err := column(f, []any{v})
	if err != nil {
		return nil, &apiError{code: codeMissingParam, msg: "vector: " + err.Error()}
	}
	pv := &commonpb.PlaceholderValue{Tag: "$0", Type: commonpb.PlaceholderType_BinaryVector,
		Values: [][]byte{col.GetVectors().GetBinaryVector()}}
	if fv := col.GetVectors().GetFloatVector(); fv != nil {
		b := make([]byte, 0, 4*len(fv.GetData()))
		for _, x := range fv.GetData() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		pv.Type, pv.Values = commonpb.PlaceholderType_FloatVector, [][]byte{b}
	}
	return proto.Marshal(&commonpb.PlaceholderGroup{Placeholders: []*commonpb.PlaceholderValue{pv}})
}

// rowsOf turns n rows of columns into rows keyed by field, 64-bit
// integers as text, with the dynamic field's keys that were asked for
// (Milvus gives them all for any one).
func rowsOf(cols []*schemapb.FieldData, n int, asked []string) []map[string]any {
	wanted := map[string]bool{}
	for _, f := range outputs(asked) {
		wanted[f] = true
	}
	all := wanted["*"] || wanted[milvus.DynamicFieldName]
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{}
	}
	for _, c := range cols {
		name, dynamic := c.GetFieldName(), c.GetIsDynamic() || c.GetFieldName() == milvus.DynamicFieldName
		if v := c.GetVectors(); v != nil {
			dim := int(v.GetDim())
			for i := range out {
				if f := v.GetFloatVector().GetData(); len(f) >= (i+1)*dim {
					out[i][name] = f[i*dim : (i+1)*dim]
				} else if b := v.GetBinaryVector(); len(b) >= (i+1)*dim/8 {
					out[i][name] = b[i*dim/8 : (i+1)*dim/8]
				}
			}
			continue
		}
		values := scalarValues(c.GetScalars())
		for i := range min(n, len(values)) {
			if raw, ok := values[i].(json.RawMessage); ok && dynamic {
				var keys map[string]json.RawMessage
				if json.Unmarshal(raw, &keys) == nil {
					for k, v := range keys {
						if all || wanted[k] {
							out[i][k] = v
						}
					}
				}
				continue
			}
			out[i][name] = values[i]
		}
	}
	return out
}

// scalarValues gives a scalar column's values as JSON shows them (an
// empty list, not null, for none).
func scalarValues(s *schemapb.ScalarField) []any {
	switch {
	case s.GetBoolData() != nil:
		return anys(s.GetBoolData().GetData(), func(v bool) any { return v })
	case s.GetIntData() != nil:
		return anys(s.GetIntData().GetData(), func(v int32) any { return v })
	case s.GetLongData() != nil:
		return anys(s.GetLongData().GetData(), func(v int64) any { return strconv.FormatInt(v, 10) })
	case s.GetFloatData() != nil:
		return anys(s.GetFloatData().GetData(), func(v float32) any { return v })
	case s.GetDoubleData() != nil:
		return anys(s.GetDoubleData().GetData(), func(v float64) any { return v })
	case s.GetStringData() != nil:
		return anys(s.GetStringData().GetData(), func(v string) any { return v })
	case s.GetJsonData() != nil:
		return anys(s.GetJsonData().GetData(), func(v []byte) any {
			if len(v) == 0 {
				return nil
			}
			return json.RawMessage(v)
		})
	case s.GetArrayData() != nil:
		return anys(s.GetArrayData().GetData(), func(v *schemapb.ScalarField) any { return scalarValues(v) })
	}
	return []any{}
}

func anys[T any](xs []T, f func(T) any) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
