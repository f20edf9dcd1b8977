package milvus

import (
	"context"
	"strconv"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protowire"
)

// RequestMessage returns an empty request of a MilvusService method.
func RequestMessage(method string) proto.Message {
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
	case "LoadPartitions":
		return &milvuspb.LoadPartitionsRequest{}
	case "ReleasePartitions":
		return &milvuspb.ReleasePartitionsRequest{}
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
	case "CreateCredential":
		return &milvuspb.CreateCredentialRequest{}
	case "UpdateCredential":
		return &milvuspb.UpdateCredentialRequest{}
	case "DeleteCredential":
		return &milvuspb.DeleteCredentialRequest{}
	case "CreateRole":
		return &milvuspb.CreateRoleRequest{}
	case "DropRole":
		return &milvuspb.DropRoleRequest{}
	case "OperateUserRole":
		return &milvuspb.OperateUserRoleRequest{}
	case "OperatePrivilege":
		return &milvuspb.OperatePrivilegeRequest{}
	}
	return nil
}

// RequestNames resolves a request's database (from the request, else the
// dbname header, else "default") and collection.
func RequestNames(method string, msg proto.Message, dbHeader string) (db, coll string) {
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

// Succeeded decodes an answer: whether the source acknowledged the call,
// and the mutation result of a write.
func Succeeded(method string, resp []byte) (bool, *milvuspb.MutationResult) {
	if isWrite(method) {
		r := &milvuspb.MutationResult{}
		if proto.Unmarshal(resp, r) != nil {
			return false, nil
		}
		return StatusOK(r.GetStatus()), r
	}
	if method == "Import" {
		r := &milvuspb.ImportResponse{}
		return proto.Unmarshal(resp, r) == nil && StatusOK(r.GetStatus()), nil
	}
	s := &commonpb.Status{}
	return proto.Unmarshal(resp, s) == nil && StatusOK(s), nil
}

// StoppedWaiting reports whether a failed answer says the server stopped
// waiting for the call, its context ended, rather than refused it: a Milvus
// proxy answers so while the write it queued still runs, and may land.
func StoppedWaiting(s *commonpb.Status) bool {
	if StatusOK(s) {
		return false
	}
	reason := s.GetReason()
	return strings.Contains(reason, "context Done") || strings.Contains(reason, context.DeadlineExceeded.Error()) ||
		strings.Contains(reason, context.Canceled.Error())
}

// StatusOK says whether a Milvus status is a success, in the old codes
// (ErrorCode) and the new (Code) alike.
func StatusOK(s *commonpb.Status) bool {
	return s.GetErrorCode() == commonpb.ErrorCode_Success && s.GetCode() == 0
}

// DecodeRequest decodes a request of method once, for every use the proxy
// makes of it, and returns with it what the write's intent keeps (keys).
// An insert or upsert is decoded without the columns that cannot be its
// primary key: the proxy reads only names and keys from it, so its vectors
// are neither copied nor encoded again on every write; keys is then the
// request's bytes without those columns. Other requests are decoded whole,
// and keys is the request as it came. msg is nil for a method the proxy does
// not know or a request it cannot decode.
func DecodeRequest(method string, req []byte) (msg proto.Message, keys []byte) {
	msg, keys = RequestMessage(method), req
	if method == "Insert" || method == "Upsert" {
		k, err := keyColumns(req)
		if err != nil {
			return nil, req
		}
		keys = k
	}
	if msg == nil || proto.Unmarshal(keys, msg) != nil {
		return nil, req
	}
	return msg, keys
}

// fieldsDataNumber is the field number of fields_data in InsertRequest and
// UpsertRequest.
const fieldsDataNumber = 5

// keyColumns returns an encoded insert or upsert request without the
// columns whose type cannot be a primary key (int64 or varchar); every
// other field is kept byte for byte.
func keyColumns(req []byte) ([]byte, error) {
	out := make([]byte, 0, 1024)
	err := eachField(req, func(num protowire.Number, typ protowire.Type, field, value []byte) {
		if num == fieldsDataNumber && typ == protowire.BytesType {
			col, _ := protowire.ConsumeBytes(value)
			if t := columnType(col); t != schemapb.DataType_Int64 && t != schemapb.DataType_VarChar {
				return
			}
		}
		out = append(out, field...)
	})
	return out, err
}

// columnType reads the type of an encoded FieldData, skipping its values.
func columnType(col []byte) schemapb.DataType {
	t := schemapb.DataType_None
	err := eachField(col, func(num protowire.Number, typ protowire.Type, _, value []byte) {
		if num == 1 && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(value)
			t = schemapb.DataType(v) // the last one wins, as in proto decoding
		}
	})
	if err != nil {
		return schemapb.DataType_None
	}
	return t
}

// eachField calls fn with every field of an encoded message: its number
// and wire type, the field's bytes (tag included) and its value's.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, field, value []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		fn(num, typ, b[:n+m], b[n:n+m])
		b = b[n+m:]
	}
	return nil
}

// isWrite reports whether a method writes rows.
func isWrite(method string) bool {
	return method == "Insert" || method == "Upsert" || method == "Delete"
}

// WrittenKeys is what a write names by its key field pk: the keys of an
// insert or an upsert (none when it carries no key column: the source
// gives them), or of a delete by key. ok is false for any other request,
// which may touch any row.
func WrittenKeys(msg proto.Message, pk string) (keys Keys, ok bool) {
	switch r := msg.(type) {
	case interface{ GetFieldsData() []*schemapb.FieldData }:
		return KeysOf(Column(r.GetFieldsData(), pk)), true
	case *milvuspb.DeleteRequest:
		return DeleteKeys(r.GetExpr(), pk)
	}
	return keys, false
}

// DeleteKeys reads the keys of a delete by key ("pk in [1, 2]",
// `pk in ["a", 'b']`, "pk == 3"), the form clients send; ok is false for
// any other expression, which may touch any row.
func DeleteKeys(expr, pk string) (keys Keys, ok bool) {
	field, rest, found := strings.Cut(strings.TrimSpace(expr), " ")
	if !found || field != pk {
		return keys, false
	}
	rest = strings.TrimSpace(rest)
	var values []string
	switch {
	case strings.HasPrefix(rest, "=="):
		values = []string{strings.TrimSpace(rest[2:])}
	case strings.HasPrefix(rest, "in ") || strings.HasPrefix(rest, "in["):
		list := strings.TrimSpace(rest[2:])
		if !strings.HasPrefix(list, "[") || !strings.HasSuffix(list, "]") {
			return keys, false
		}
		list = strings.TrimSpace(list[1 : len(list)-1])
		if list == "" {
			return keys, true
		}
		values = strings.Split(list, ",")
	default:
		return keys, false
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			keys.Ints = append(keys.Ints, n)
			continue
		}
		if len(v) < 2 || (v[0] != '"' && v[0] != '\'') || v[len(v)-1] != v[0] || strings.ContainsAny(v[1:len(v)-1], "\\\"'") {
			return Keys{}, false
		}
		keys.Strs = append(keys.Strs, v[1:len(v)-1])
	}
	if len(keys.Ints) > 0 && len(keys.Strs) > 0 {
		return Keys{}, false
	}
	return keys, true
}
