package restgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func (g *gate) list(ctx context.Context, r *http.Request) (any, error) {
	resp, err := g.milvus.ShowCollections(ctx, &milvuspb.ShowCollectionsRequest{DbName: r.URL.Query().Get("dbName")})
	if err := check(resp.GetStatus(), err); err != nil {
		return nil, err
	}
	return append([]string{}, resp.GetCollectionNames()...), nil
}

// createBody is the quick set-up Milvus's v1 API offers: a key, a vector
// and the dynamic field, indexed and loaded.
type createBody struct {
	DbName         string      `json:"dbName"`
	CollectionName string      `json:"collectionName"`
	Dimension      json.Number `json:"dimension"`
	Description    string      `json:"description"`
	MetricType     string      `json:"metricType"`
	PrimaryField   string      `json:"primaryField"`
	VectorField    string      `json:"vectorField"`
}

func (g *gate) create(ctx context.Context, r *http.Request) (any, error) {
	var b createBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	dim, derr := b.Dimension.Int64()
	if err := required("collectionName, dimension", b.CollectionName == "" || derr != nil || dim <= 0); err != nil {
		return nil, err
	}
	b.MetricType = or(b.MetricType, "L2")
	b.PrimaryField, b.VectorField = or(b.PrimaryField, "id"), or(b.VectorField, "vector")
	schema, err := proto.Marshal(&schemapb.CollectionSchema{
		Name: b.CollectionName, Description: b.Description, EnableDynamicField: true,
		Fields: []*schemapb.FieldSchema{
			{FieldID: 100, Name: b.PrimaryField, IsPrimaryKey: true, AutoID: true, DataType: schemapb.DataType_Int64},
			{FieldID: 101, Name: b.VectorField, DataType: schemapb.DataType_FloatVector,
				TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.FormatInt(dim, 10)}}},
		},
	})
	if err != nil {
		return nil, err
	}
	s, err := g.milvus.CreateCollection(ctx, &milvuspb.CreateCollectionRequest{DbName: b.DbName, CollectionName: b.CollectionName,
		Schema: schema, ShardsNum: 1, ConsistencyLevel: commonpb.ConsistencyLevel_Bounded})
	if err := check(s, err); err != nil {
		return nil, err
	}
	s, err = g.milvus.CreateIndex(ctx, &milvuspb.CreateIndexRequest{DbName: b.DbName, CollectionName: b.CollectionName,
		FieldName: b.VectorField, IndexName: "vector_idx", ExtraParams: []*commonpb.KeyValuePair{
			{Key: "index_type", Value: "AUTOINDEX"}, {Key: "metric_type", Value: b.MetricType}}})
	if err := check(s, err); err != nil {
		return nil, fmt.Errorf("create index of %s: %w", b.CollectionName, err)
	}
	s, err = g.milvus.LoadCollection(ctx, &milvuspb.LoadCollectionRequest{DbName: b.DbName, CollectionName: b.CollectionName})
	if err := check(s, err); err != nil {
		return nil, fmt.Errorf("load %s: %w", b.CollectionName, err)
	}
	return struct{}{}, nil
}

func or(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

func (g *gate) describe(ctx context.Context, r *http.Request) (any, error) {
	db, coll := r.URL.Query().Get("dbName"), r.URL.Query().Get("collectionName")
	if err := required("collectionName", coll == ""); err != nil {
		return nil, err
	}
	desc, err := g.schemaOf(ctx, db, coll)
	if err != nil {
		return nil, err
	}
	var fields []any
	for _, f := range desc.GetSchema().GetFields() {
		if f.GetIsDynamic() {
			continue
		}
		fields = append(fields, map[string]any{"name": f.GetName(), "type": typeName(f), "primaryKey": f.GetIsPrimaryKey(),
			"autoId": f.GetAutoID(), "description": f.GetDescription()})
	}
	out := map[string]any{"collectionName": coll, "description": desc.GetSchema().GetDescription(),
		"enableDynamicField": desc.GetSchema().GetEnableDynamicField(), "fields": fields, "shardsNum": desc.GetShardsNum()}
	// Indexes (none when it has none) and load state as Milvus gives
	// them; left out when it cannot.
	idx, err := g.milvus.DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{DbName: db, CollectionName: coll})
	if err == nil {
		indexes := []any{}
		for _, i := range idx.GetIndexDescriptions() {
			indexes = append(indexes, map[string]any{"fieldName": i.GetFieldName(), "indexName": i.GetIndexName(),
				"metricType": milvus.KVMap(i.GetParams())["metric_type"]})
		}
		if check(idx.GetStatus(), nil) == nil || milvus.IsIndexMissing(idx.GetStatus()) {
			out["indexes"] = indexes
		}
	}
	load, err := g.milvus.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: coll})
	if err == nil && check(load.GetStatus(), nil) == nil {
		out["load"] = load.GetState().String()
	}
	return out, nil
}

// typeName names a field's type as Milvus's v1 API does: "VarChar(64)",
// "FloatVector(128)".
func typeName(f *schemapb.FieldSchema) string {
	name := f.GetDataType().String()
	switch f.GetDataType() {
	case schemapb.DataType_VarChar:
		return fmt.Sprintf("%s(%d)", name, milvus.TypeParamInt(f, "max_length"))
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
		return fmt.Sprintf("%s(%d)", name, milvus.TypeParamInt(f, "dim"))
	}
	return name
}

// collBody names a collection, as most calls' bodies do.
type collBody struct {
	DbName         string `json:"dbName"`
	CollectionName string `json:"collectionName"`
}

func (g *gate) drop(ctx context.Context, r *http.Request) (any, error) {
	var b collBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	if err := required("collectionName", b.CollectionName == ""); err != nil {
		return nil, err
	}
	s, err := g.milvus.DropCollection(ctx, &milvuspb.DropCollectionRequest{DbName: b.DbName, CollectionName: b.CollectionName})
	return struct{}{}, check(s, err)
}
