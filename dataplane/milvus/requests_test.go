package milvus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An intent keeps what a repair needs, the keys, and not the vectors.
func TestKeyColumnsKeepOnlyWhatCanBeAKey(t *testing.T) {
	schema := &schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", IsPrimaryKey: true, DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}},
		{FieldID: 101, Name: "n", DataType: schemapb.DataType_Int64},
		{FieldID: 102, Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "128"}}},
	}}
	gen := RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(1, 2))}
	keys := Keys{Strs: []string{"a", "b", "c"}}
	full, err := proto.Marshal(&milvuspb.UpsertRequest{DbName: "d", CollectionName: "c", PartitionName: "p",
		FieldsData: gen.Columns(3, keys, func(int) int64 { return 1 }), NumRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	msg, small := DecodeRequest("Upsert", full)
	if cols := msg.(*milvuspb.UpsertRequest).GetFieldsData(); len(cols) == 0 || len(cols) >= len(gen.Columns(1, Keys{Strs: []string{"x"}}, func(int) int64 { return 1 })) {
		t.Fatalf("decoded with %d columns; want the key columns only", len(cols))
	}
	if len(small)*4 > len(full) {
		t.Fatalf("intent of %d bytes for a request of %d", len(small), len(full))
	}
	var r milvuspb.UpsertRequest
	if err := proto.Unmarshal(small, &r); err != nil {
		t.Fatal(err)
	}
	if r.GetDbName() != "d" || r.GetCollectionName() != "c" || r.GetPartitionName() != "p" || r.GetNumRows() != 3 {
		t.Fatalf("names lost: %v", &r)
	}
	for _, c := range r.GetFieldsData() {
		if typ := c.GetType(); typ != schemapb.DataType_Int64 && typ != schemapb.DataType_VarChar {
			t.Fatalf("a column that cannot be a key was kept: %s", c.GetFieldName())
		}
	}
	if got := KeysOf(Column(r.GetFieldsData(), "id")).Strings(); len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("keys: %v", got)
	}
	del, _ := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: `id in ["a"]`})
	if _, k := DecodeRequest("Delete", del); string(k) != string(del) {
		t.Fatal("a delete's intent must keep its expression as it was")
	}
}

// A request the proxy cannot read is forwarded and its intent keeps it
// whole, so a repair can still try it.
func TestARequestThatCannotBeReadIsKeptWhole(t *testing.T) {
	bad := []byte{0x2a, 0xff} // field 5, length beyond the end
	msg, keys := DecodeRequest("Insert", bad)
	if msg != nil || string(keys) != string(bad) {
		t.Fatalf("decoded %v, intent %x", msg, keys)
	}
}

func TestOnlyACallWithNoConnectionCountsAsNeverSent(t *testing.T) {
	for err, want := range map[error]bool{
		status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:19530: connect: connection refused"`): true,
		status.Error(codes.Unavailable, "error reading from server: EOF"):                                                                                   false,
		status.Error(codes.Unavailable, "transport is closing"):                                                                                             false,
		status.Error(codes.DeadlineExceeded, "context deadline exceeded"):                                                                                   false,
		errors.New("connection error"): false,
		fmt.Errorf("milvus upsert into c: %w", status.Error(codes.Unavailable, "connection error: desc = refused")): true,
	} {
		if got := NeverSent(err); got != want {
			t.Errorf("%v: never sent %v, want %v", err, got, want)
		}
	}
}

// A Milvus proxy that stops waiting for a write says so in its reason;
// every other failure is a refusal, and success is neither.
func TestOnlyAnAnswerThatStoppedWaitingIsUnsettled(t *testing.T) {
	for reason, want := range map[string]bool{
		"proxy TaskCondition context Done":          true,
		"context deadline exceeded":                 true,
		"rpc error: context canceled":               true,
		"collection not found[collection=c]":        false,
		"invalid parameter[expected=int64 pk]":      false,
		"rate limit exceeded[rate=0.1]":             false,
		"the number of rows does not match the key": false,
	} {
		s := &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: 65535, Reason: reason}
		if got := StoppedWaiting(s); got != want {
			t.Errorf("%q: stopped waiting %v, want %v", reason, got, want)
		}
	}
	if StoppedWaiting(&commonpb.Status{Reason: "context Done"}) {
		t.Error("a success answer was taken as unsettled")
	}
}
