package restgate

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// writeBody is an insert's or an upsert's: one row or a list of rows.
type writeBody struct {
	DbName         string          `json:"dbName"`
	CollectionName string          `json:"collectionName"`
	Data           json.RawMessage `json:"data"`
}

// rows reads the body's rows, numbers kept exact.
func (b writeBody) rows() ([]map[string]any, error) {
	rows, err := oneOrMany[map[string]any](b.Data)
	if err != nil {
		return nil, badData("data is neither a row nor a list of rows: %v", err)
	}
	if len(rows) == 0 {
		return nil, required("collectionName, data", true)
	}
	return rows, nil
}

// columns reads the body of an insert (upsert: or an upsert) into the
// collection's columns.
func (g *gate) columns(ctx context.Context, r *http.Request, upsert bool) (writeBody, []*schemapb.FieldData, int, error) {
	var b writeBody
	if err := decode(r, &b); err != nil {
		return b, nil, 0, err
	}
	if err := required("collectionName, data", b.CollectionName == "" || len(b.Data) == 0); err != nil {
		return b, nil, 0, err
	}
	rows, err := b.rows()
	if err != nil {
		return b, nil, 0, err
	}
	desc, err := g.schemaOf(ctx, b.DbName, b.CollectionName)
	if err != nil {
		return b, nil, 0, err
	}
	cols, err := toColumns(desc.GetSchema(), rows, upsert)
	return b, cols, len(rows), err
}

func (g *gate) insert(ctx context.Context, r *http.Request) (any, error) {
	b, cols, n, err := g.columns(ctx, r, false)
	if err != nil {
		return nil, err
	}
	res, err := g.milvus.Insert(ctx, &milvuspb.InsertRequest{DbName: b.DbName, CollectionName: b.CollectionName,
		FieldsData: cols, NumRows: uint32(n)})
	if err := check(res.GetStatus(), err); err != nil {
		return nil, err
	}
	return map[string]any{"insertCount": res.GetInsertCnt(), "insertIds": idsOf(res.GetIDs())}, nil
}

func (g *gate) upsert(ctx context.Context, r *http.Request) (any, error) {
	b, cols, n, err := g.columns(ctx, r, true)
	if err != nil {
		return nil, err
	}
	res, err := g.milvus.Upsert(ctx, &milvuspb.UpsertRequest{DbName: b.DbName, CollectionName: b.CollectionName,
		FieldsData: cols, NumRows: uint32(n)})
	if err := check(res.GetStatus(), err); err != nil {
		return nil, err
	}
	return map[string]any{"upsertCount": res.GetUpsertCnt(), "upsertIds": idsOf(res.GetIDs())}, nil
}

// idsOf gives keys as text, as Milvus's REST API does for 64-bit ones.
func idsOf(ids *schemapb.IDs) []string { return milvus.KeysOfIDs(ids).Strings() }

// keyBody names rows by key: "id" is one key or a list of keys.
type keyBody struct {
	DbName         string          `json:"dbName"`
	CollectionName string          `json:"collectionName"`
	ID             json.RawMessage `json:"id"`
	Filter         string          `json:"filter"`
	OutputFields   []string        `json:"outputFields"`
}

// keyExpr is the expression selecting the body's keys (or its filter).
func (g *gate) keyExpr(ctx context.Context, b keyBody) (string, error) {
	if err := required("collectionName, id", b.CollectionName == "" || len(b.ID) == 0 && b.Filter == ""); err != nil {
		return "", err
	}
	if len(b.ID) == 0 {
		return b.Filter, nil
	}
	desc, err := g.schemaOf(ctx, b.DbName, b.CollectionName)
	if err != nil {
		return "", err
	}
	pk := (&milvus.Collection{Schema: desc.GetSchema()}).PrimaryField()
	if pk == nil {
		return "", &apiError{code: codeServer, msg: "collection " + b.CollectionName + " has no primary key"}
	}
	ids, err := oneOrMany[any](b.ID)
	if err != nil {
		return "", &apiError{code: codeNotJSON, msg: "id: " + err.Error()}
	}
	keys, err := keysOf(pk, ids)
	if err != nil {
		return "", err
	}
	return keys.InExpr(pk.GetName()), nil
}

func (g *gate) delete(ctx context.Context, r *http.Request) (any, error) {
	var b keyBody
	if err := decode(r, &b); err != nil {
		return nil, err
	}
	expr, err := g.keyExpr(ctx, b)
	if err != nil {
		return nil, err
	}
	res, err := g.milvus.Delete(ctx, &milvuspb.DeleteRequest{DbName: b.DbName, CollectionName: b.CollectionName, Expr: expr})
	return struct{}{}, check(res.GetStatus(), err)
}
