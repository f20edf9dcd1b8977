package capture

import (
	"fmt"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb" // also registers MilvusService's descriptors
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/zdm-io/zdm/dataplane/milvus"
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

// methodLabel names a refused method in counts: a method of MilvusService
// as this proto knows it, "other" for any other name a client sent, so
// that a client cannot make the counts grow without end.
func methodLabel(method string) string {
	if knownMethod(method) {
		return method
	}
	return "other"
}

// knownMethod says whether method is one of MilvusService's that this
// proxy knows what to do with: one its proto describes, or a newer one
// it forbids or lets pass by name. Refusals only: calls look the method
// up in the Capture's set.
func knownMethod(method string) bool { return knownMethods()[method] }

// knownMethods lists the methods knownMethod knows.
func knownMethods() map[string]bool {
	out := map[string]bool{}
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(milvusService); err == nil {
		ms := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range ms.Len() {
			out[string(ms.Get(i).Name())] = true
		}
	}
	for m := range newerAnswers {
		out[m] = true
	}
	for m := range passingNewer {
		out[m] = true
	}
	return out
}

// milvusService is the full name of Milvus's gRPC service.
const milvusService = "milvus.proto.milvus.MilvusService"

// milvusMethod describes a method of MilvusService by its name (nil for
// one this proto does not know).
func milvusMethod(name string) (protoreflect.MethodDescriptor, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(milvusService)
	if err != nil {
		return nil, err
	}
	return d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name)), nil
}

// refusalResponse encodes r as the answer of method (its name in
// MilvusService), or fails when the method's answer carries no status.
func refusalResponse(method string, r *Refusal) ([]byte, error) {
	st, err := proto.Marshal(&commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: refusalCode, Reason: r.Reason})
	if err != nil {
		return nil, err
	}
	m, err := milvusMethod(method)
	if err != nil {
		return nil, fmt.Errorf("refuse %s: %w", method, err)
	}
	if m == nil {
		wrapped, ok := newerAnswers[method]
		switch {
		case !ok:
			return nil, fmt.Errorf("refuse %s: this proto does not know its answer", method)
		case wrapped:
			return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), st), nil
		}
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

// entryHeader bounds an entry's header without keys or outcomes.
const entryHeader = 1024

// entryOverhead bounds what a journal entry adds to its request: its
// header, and the keys the source gives an insert (up to 21 bytes each).
func entryOverhead(msg proto.Message) int64 {
	n := int64(entryHeader)
	if r, ok := msg.(*milvuspb.InsertRequest); ok {
		n += 21 * int64(r.GetNumRows())
	}
	return n
}

// maxEntry is the largest entry the journal takes, if it says.
func (c *Capture) maxEntry() (int64, bool) {
	limited, ok := c.journal.(interface{ MaxEntry() int64 })
	if !ok {
		return 0, false
	}
	return limited.MaxEntry(), true
}

// fits refuses, before it reaches the source, a write whose journal entry
// would be larger than the journal takes: its answer could only be a
// failure after the source applied it.
func (c *Capture) fits(k *call, msg proto.Message, req []byte) error {
	limit, ok := c.maxEntry()
	if !ok || k.kind == "forbidden" {
		return nil
	}
	if int64(len(req))+entryOverhead(msg) <= limit {
		return nil
	}
	return &Refusal{Reason: fmt.Sprintf("zdm: this %s is %d bytes, more than a migration's journal takes (%d bytes); nothing was written: send it in smaller batches",
		k.method, len(req), limit)}
}

// refuseCreate refuses, while a migration runs, a collection the replay
// could not carry to the target: one whose schema zdm does not copy (a
// field type, or what a newer Milvus says of its fields; the preflight
// refuses a source that holds one), or one whose keys the server assigns
// while the migration does not keep such keys (the preflight refuses one
// that exists at the start, and one made later could only fail the
// migration once its rows reached the target with the source's keys).
func refuseCreate(a *armed, msg proto.Message) error {
	r, ok := msg.(*milvuspb.CreateCollectionRequest)
	if !ok {
		return nil
	}
	schema := &schemapb.CollectionSchema{}
	if proto.Unmarshal(r.GetSchema(), schema) != nil {
		return nil // the source refuses it as it would without zdm
	}
	if why := milvus.UncopiableSchema(r.GetCollectionName(), schema); len(why) > 0 {
		return &Refusal{Reason: fmt.Sprintf("zdm: collection %s cannot be carried to the target of migration %s of this cluster (%s); "+
			"nothing was created: make it after the migration, or without what zdm does not copy",
			r.GetCollectionName(), a.migrationID, strings.Join(why, "; "))}
	}
	if !a.keepAutoID && (&milvus.Collection{Schema: schema}).PrimaryField().GetAutoID() {
		return &Refusal{Reason: fmt.Sprintf("zdm: collection %s has keys the server assigns (autoID), which migration %s of this cluster does not keep "+
			"(options.auto_id is refuse); nothing was created: make it with keys of your own, or after the migration, "+
			"or start the migration with options.auto_id = preserve_keys", r.GetCollectionName(), a.migrationID)}
	}
	return nil
}
