package capture

import (
	"slices"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A migration's target takes writes from zdm alone until the switch (R6):
// its own proxy refuses every call that would change it (writes, DDL,
// access control, what the proxy forbids or does not know) with the
// method's own answer naming the migration, and passes reads. Once the
// cluster is no migration's target, everything passes again.
func TestATargetsProxyRefusesWhatWouldChangeItUntilTheSwitch(t *testing.T) {
	up := newRecordingUpstream(t)
	c, _ := journaledCapture(t)
	p := NewProxy("dst", up.addr, c, nil)
	claimedBy := "m-7"
	p.GuardTarget(func() string { return claimedBy })
	call := callsThrough(t, serveProxy(t, p))

	changing := map[string]proto.Message{
		"Insert": &milvuspb.MutationResult{}, "Upsert": &milvuspb.MutationResult{}, "Delete": &milvuspb.MutationResult{},
		"CreateCollection": &commonpb.Status{}, "DropCollection": &commonpb.Status{}, "CreateIndex": &commonpb.Status{},
		"CreateCredential": &commonpb.Status{}, "CreateAlias": &commonpb.Status{}, "Import": &milvuspb.ImportResponse{},
	}
	for method, answer := range changing {
		resp, err := call(method)
		if err != nil {
			t.Fatalf("%s: %v, want the method's own answer", method, err)
		}
		st := decodedStatus(t, method, resp, answer)
		if st.GetErrorCode() == commonpb.ErrorCode_Success || !strings.Contains(st.GetReason(), "target of migration m-7") {
			t.Errorf("%s on the target: answered %v, want a refusal naming the migration", method, st)
		}
	}
	if _, err := call("SomethingNewer"); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "target of migration m-7") {
		t.Errorf("a method the proxy does not know, on the target: %v, want PERMISSION_DENIED naming the migration", err)
	}
	reads := []string{"Search", "Query", "DescribeCollection", "ShowCollections", "Flush", "/grpc.health.v1.Health/Check"}
	for _, m := range reads {
		if _, err := call(m); err != nil {
			t.Errorf("%s on the target: %v, want it passed on", m, err)
		}
	}
	want := append(slices.Clone(reads[:len(reads)-1]), "Check")
	if got := up.take(); !slices.Equal(got, want) {
		t.Errorf("the target was reached by %v, want %v alone", got, want)
	}

	claimedBy = "" // switched over: the target is the live cluster
	for _, m := range []string{"Insert", "CreateCollection"} {
		if resp, err := call(m); err != nil || len(resp) != 0 {
			t.Errorf("%s after the switch: %v %x, want it passed on", m, err, resp)
		}
	}
	if got := up.take(); !slices.Equal(got, []string{"Insert", "CreateCollection"}) {
		t.Errorf("after the switch the target was reached by %v", got)
	}
}
