package capture

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zdm-io/zdm/domain"
)

func TestARefusalIsTheMethodsOwnAnswerWithAnErrorStatus(t *testing.T) {
	answers := map[string]proto.Message{"Insert": &milvuspb.MutationResult{}, "Import": &milvuspb.ImportResponse{}, "ReplicateMessage": &milvuspb.ReplicateMessageResponse{}}
	for m := range forbiddenMethods {
		switch {
		case answers[m] != nil || m == "CreateReplicateStream": // a stream: see below
		case newerAnswers[m]:
			answers[m] = &milvuspb.BoolResponse{} // any answer with its status as field 1
		default:
			answers[m] = &commonpb.Status{}
		}
	}
	for method, msg := range answers {
		data, err := refusalResponse(method, &Refusal{Reason: "zdm: no"})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		st := decodedStatus(t, method, data, msg)
		if st.GetErrorCode() == commonpb.ErrorCode_Success || st.GetCode() == 0 || st.GetReason() != "zdm: no" ||
			st.GetErrorCode() == commonpb.ErrorCode_RateLimit {
			t.Errorf("%s: status %v", method, st)
		}
	}
	for _, m := range []string{"Dummy", "CreateReplicateStream", "SomethingNewer"} {
		if _, err := refusalResponse(m, &Refusal{}); err == nil {
			t.Errorf("%s: an answer without a known status was made one", m)
		}
	}
}

// decodedStatus decodes data as answer, a method's answer, and returns its
// status: the answer itself, or its field status.
func decodedStatus(t *testing.T, method string, data []byte, answer proto.Message) *commonpb.Status {
	t.Helper()
	if err := proto.Unmarshal(data, answer); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if st, ok := answer.(*commonpb.Status); ok {
		return st
	}
	return answer.(interface{ GetStatus() *commonpb.Status }).GetStatus()
}

// TestARefusalIsCountedUnderAMethodMilvusKnows: a name a client made up
// is counted as "other", so the refusals' counts stay bounded.
func TestARefusalIsCountedUnderAMethodMilvusKnows(t *testing.T) {
	for method, want := range map[string]string{"CreateAlias": "CreateAlias", "Import": "Import", "NoSuchMethod": "other", "": "other", `Bad"Label`: "other"} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}

// A collection whose keys the server assigns is refused while a migration
// that does not keep such keys runs, before it reaches the source; one
// with keys of its own is not, and a migration that keeps autoID keys
// takes both.
func TestACollectionWithAutoIDKeysIsRefusedUnlessTheMigrationKeepsThem(t *testing.T) {
	create := func(autoID bool) []byte {
		schema, err := proto.Marshal(&schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
			{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, AutoID: autoID}}})
		if err != nil {
			t.Fatal(err)
		}
		req, err := proto.Marshal(&milvuspb.CreateCollectionRequest{CollectionName: "c", Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	for _, keep := range []bool{false, true} {
		journal, _ := intentStore(t)
		c := NewCapture(journal, nil, nil)
		o := domain.Options{AutoID: domain.AutoIDRefuse}
		if keep {
			o.AutoID = domain.AutoIDPreserveKeys
		}
		c.Arm("src", "m-1", o)
		for _, autoID := range []bool{false, true} {
			sent := false
			_, err := c.Forward(context.Background(), Call{ClusterID: "src", Method: "/milvus.proto.milvus.MilvusService/CreateCollection", Request: create(autoID)},
				func(_ context.Context, req []byte) (Sent, error) {
					sent = true
					return Sent{Request: req, Response: nil}, nil
				})
			var refused *Refusal
			wantRefused := autoID && !keep
			if errors.As(err, &refused) != wantRefused || sent == wantRefused {
				t.Errorf("keep %v, autoID %v: err %v, sent %v; want refused %v", keep, autoID, err, sent, wantRefused)
			}
			if wantRefused && !strings.Contains(refused.Reason, "options.auto_id = preserve_keys") {
				t.Errorf("the refusal says %q, not what to do", refused.Reason)
			}
		}
	}
}

// A collection whose schema says what zdm does not copy (here a nullable
// field, as Milvus 2.5 clients send it) is refused while a migration
// runs, before it reaches the source: its replay would give the target
// values where the source holds nulls. With no migration it passes.
func TestACollectionZdmCannotCarryIsRefusedWhileAMigrationRuns(t *testing.T) {
	field, err := proto.Marshal(&schemapb.FieldSchema{Name: "s", DataType: schemapb.DataType_VarChar})
	if err != nil {
		t.Fatal(err)
	}
	field = protowire.AppendVarint(protowire.AppendTag(field, 15, protowire.VarintType), 1) // nullable
	schema, err := proto.Marshal(&schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}}})
	if err != nil {
		t.Fatal(err)
	}
	schema = protowire.AppendBytes(protowire.AppendTag(schema, 4, protowire.BytesType), field)
	req, err := proto.Marshal(&milvuspb.CreateCollectionRequest{CollectionName: "c", Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	for _, armed := range []bool{true, false} {
		journal, _ := intentStore(t)
		c := NewCapture(journal, nil, nil)
		if armed {
			c.Arm("src", "m-1", domain.Options{AutoID: domain.AutoIDRefuse})
		}
		sent := false
		_, err := c.Forward(context.Background(), Call{ClusterID: "src", Method: "/milvus.proto.milvus.MilvusService/CreateCollection", Request: req},
			func(_ context.Context, req []byte) (Sent, error) {
				sent = true
				return Sent{Request: req}, nil
			})
		var refused *Refusal
		if errors.As(err, &refused) != armed || sent == armed {
			t.Fatalf("armed %v: err %v, sent %v", armed, err, sent)
		}
		if armed && !strings.Contains(refused.Reason, "field s is nullable") {
			t.Errorf("the refusal says %q, not what zdm cannot carry", refused.Reason)
		}
	}
}

// While a migration runs, a method that changes the source in a way no
// journal entry carries (one the proxy forbids by name, or one newer than
// it knows) is refused before it reaches the source, as the SDKs raise at
// once; the reads, newer ones too, pass. With no migration, all pass.
func TestMethodsTheJournalCannotCarryAreRefusedWhileAMigrationRuns(t *testing.T) {
	up := newRecordingUpstream(t)
	c, _ := journaledCapture(t)
	call := callsThrough(t, serveProxy(t, NewProxy("src", up.addr, c, nil)))
	reached := up.take
	for method, answer := range map[string]proto.Message{
		"AlterIndex": &commonpb.Status{}, "OperatePrivilegeV2": &commonpb.Status{}, "AddCollectionField": &commonpb.Status{},
		"TruncateCollection": &milvuspb.BoolResponse{}, // its answer carries the status as field 1
	} {
		resp, err := call(method)
		if err != nil {
			t.Fatalf("%s: %v, want the method's own answer", method, err)
		}
		st := decodedStatus(t, method, resp, answer)
		if !strings.Contains(st.GetReason(), "forbidden while migration m-1") {
			t.Errorf("%s: answered %v, want a refusal naming the migration", method, st)
		}
	}
	if _, err := call("SomethingNewer"); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "does not know the method") {
		t.Errorf("a method the proxy does not know: %v, want PERMISSION_DENIED saying so", err)
	}
	passing := []string{"Search", "Flush", "DescribeIndex", "RunAnalyzer", "BatchDescribeCollection", "ListPrivilegeGroups", "/grpc.health.v1.Health/Check"}
	for _, m := range passing {
		if _, err := call(m); err != nil {
			t.Errorf("%s: %v, want it passed on", m, err)
		}
	}
	got := reached()
	want := append(slices.Clone(passing[:len(passing)-1]), "Check") // the health check by its method's name
	if !slices.Equal(got, want) {
		t.Errorf("the source was reached by %v, want %v alone", got, want)
	}
	c.Disarm("m-1")
	for _, m := range []string{"TruncateCollection", "SomethingNewer"} {
		if _, err := call(m); err != nil {
			t.Errorf("%s with no migration: %v, want it passed on", m, err)
		}
	}
	if got := reached(); len(got) != 2 {
		t.Errorf("with no migration the source was reached by %v", got)
	}
}

// recordingUpstream is a stand-in for a Milvus server that answers every
// call with a success and records the methods it was called with.
type recordingUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	reached []string
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &recordingUpstream{ln: ln}
	s := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var req []byte
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		m, _ := grpc.MethodFromServerStream(ss)
		u.mu.Lock()
		u.reached = append(u.reached, m[strings.LastIndexByte(m, '/')+1:])
		u.mu.Unlock()
		empty := []byte{} // a success of any answer type
		return ss.SendMsg(&empty)
	}))
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return u
}

func (u *recordingUpstream) addr() string { return u.ln.Addr().String() }

// take returns the methods that reached the upstream since the last take.
func (u *recordingUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	got := slices.Clone(u.reached)
	u.reached = nil
	return got
}

// callsThrough calls methods (of Milvus's service unless given whole) with
// an empty request through the proxy at addr, and returns their answers.
func callsThrough(t *testing.T, addr string) func(method string) ([]byte, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return func(method string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, resp := []byte{}, []byte(nil)
		if !strings.HasPrefix(method, "/") {
			method = "/milvus.proto.milvus.MilvusService/" + method
		}
		err := cc.Invoke(ctx, method, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}))
		return resp, err
	}
}
