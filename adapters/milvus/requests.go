package milvus

import (
	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// requestMessage returns an empty request of a MilvusService method.
func requestMessage(method string) proto.Message {
	switch method {
	case "Insert":
		return &milvuspb.InsertRequest{}
	case "Upsert":
		return &milvuspb.UpsertRequest{}
	case "Delete":
		return &milvuspb.DeleteRequest{}
	case "CreateDatabase":
		return &milvuspb.CreateDatabaseRequest{}
	case "DropDatabase":
		return &milvuspb.DropDatabaseRequest{}
	case "CreateCollection":
		return &milvuspb.CreateCollectionRequest{}
	case "DropCollection":
		return &milvuspb.DropCollectionRequest{}
	case "CreatePartition":
		return &milvuspb.CreatePartitionRequest{}
	case "DropPartition":
		return &milvuspb.DropPartitionRequest{}
	case "CreateIndex":
		return &milvuspb.CreateIndexRequest{}
	case "DropIndex":
		return &milvuspb.DropIndexRequest{}
	case "LoadCollection":
		return &milvuspb.LoadCollectionRequest{}
	case "ReleaseCollection":
		return &milvuspb.ReleaseCollectionRequest{}
	case "AlterCollection":
		return &milvuspb.AlterCollectionRequest{}
	case "CreateAlias":
		return &milvuspb.CreateAliasRequest{}
	case "DropAlias":
		return &milvuspb.DropAliasRequest{}
	case "AlterAlias":
		return &milvuspb.AlterAliasRequest{}
	case "RenameCollection":
		return &milvuspb.RenameCollectionRequest{}
	case "AlterDatabase":
		return &milvuspb.AlterDatabaseRequest{}
	case "Import":
		return &milvuspb.ImportRequest{}
	}
	return nil
}

// requestNames resolves a request's database (from the request, else the
// dbname header, else "default") and collection.
func requestNames(method string, msg proto.Message, dbHeader string) (db, coll string) {
	if msg != nil {
		if d, ok := msg.(interface{ GetDbName() string }); ok {
			db = d.GetDbName()
		}
		if c, ok := msg.(interface{ GetCollectionName() string }); ok {
			coll = c.GetCollectionName()
		}
		if method == "CreateDatabase" || method == "DropDatabase" || method == "AlterDatabase" {
			coll = ""
		}
	}
	if db == "" {
		db = dbHeader
	}
	if db == "" {
		db = "default"
	}
	return db, coll
}

// succeeded decodes an answer: whether the source acknowledged the call,
// and the mutation result of a write.
func succeeded(method string, resp []byte) (bool, *milvuspb.MutationResult) {
	if writeMethods[method] != "" {
		r := &milvuspb.MutationResult{}
		if proto.Unmarshal(resp, r) != nil {
			return false, nil
		}
		return statusOK(r.GetStatus()), r
	}
	if method == "Import" {
		r := &milvuspb.ImportResponse{}
		return proto.Unmarshal(resp, r) == nil && statusOK(r.GetStatus()), nil
	}
	s := &commonpb.Status{}
	return proto.Unmarshal(resp, s) == nil && statusOK(s), nil
}

func statusOK(s *commonpb.Status) bool {
	return s.GetErrorCode() == commonpb.ErrorCode_Success && s.GetCode() == 0
}

// decodeRequest decodes a request of method, once for every use the
// proxy makes of it; nil for a method it does not know.
func decodeRequest(method string, req []byte) proto.Message {
	msg := requestMessage(method)
	if msg == nil || proto.Unmarshal(req, msg) != nil {
		return nil
	}
	return msg
}

// keyColumns returns an insert or upsert request (msg, decoded from req)
// with only the columns that can be its primary key (int64 and varchar):
// what a repair needs to know which rows the write touched, without its
// vectors. Other requests come back as they are. msg is changed.
func keyColumns(msg proto.Message, req []byte) []byte {
	keep := func(cols []*schemapb.FieldData) []*schemapb.FieldData {
		var out []*schemapb.FieldData
		for _, c := range cols {
			if t := c.GetType(); t == schemapb.DataType_Int64 || t == schemapb.DataType_VarChar {
				out = append(out, c)
			}
		}
		return out
	}
	switch r := msg.(type) {
	case *milvuspb.InsertRequest:
		r.FieldsData = keep(r.FieldsData)
	case *milvuspb.UpsertRequest:
		r.FieldsData = keep(r.FieldsData)
	default:
		return req
	}
	out, err := proto.Marshal(msg)
	if err != nil {
		return req
	}
	return out
}
