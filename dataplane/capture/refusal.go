package capture

import (
	"fmt"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	_ "github.com/milvus-io/milvus-proto/go-api/v2/milvuspb" // registers MilvusService's descriptors
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Refusal is a call the proxy answers itself, without forwarding it, the
// way a Milvus server refuses a request: a response of the method's own
// type whose status holds the error. SDKs raise such an answer at once
// and do not retry it, where a gRPC status such as FAILED_PRECONDITION is
// retried by pymilvus for as long as its timeout allows (and, without
// one, for minutes, during which a migration may end and the refused
// operation then reach the source).
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// refusalCode is Milvus's code for an error it gives no code of its own:
// not a rate limit, the only status the SDKs retry.
const refusalCode = 65535

// refusalResponse encodes r as the answer of method (its name in
// MilvusService), or fails when the method's answer carries no status.
func refusalResponse(method string, r *Refusal) ([]byte, error) {
	st, err := proto.Marshal(&commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: refusalCode, Reason: r.Reason})
	if err != nil {
		return nil, err
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName("milvus.proto.milvus.MilvusService")
	if err != nil {
		return nil, fmt.Errorf("refuse %s: %w", method, err)
	}
	m := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	if m == nil {
		// Newer than this proto (AlterCollectionField): DDL answers with
		// a bare status, as every method the lock forbids does.
		return st, nil
	}
	const statusType = "milvus.proto.common.Status"
	out := m.Output()
	if out.FullName() == statusType {
		return st, nil
	}
	f := out.Fields().ByName("status")
	if f == nil || f.Message() == nil || f.Message().FullName() != statusType {
		return nil, fmt.Errorf("refuse %s: its answer %s has no status", method, out.FullName())
	}
	b := protowire.AppendTag(nil, f.Number(), protowire.BytesType)
	return protowire.AppendBytes(b, st), nil
}
