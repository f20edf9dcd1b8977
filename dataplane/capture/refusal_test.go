package capture

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/domain"
)

func TestARefusalIsTheMethodsOwnAnswerWithAnErrorStatus(t *testing.T) {
	answers := map[string]proto.Message{"Insert": &milvuspb.MutationResult{}, "Import": &milvuspb.ImportResponse{}}
	for m := range forbiddenMethods {
		if answers[m] == nil {
			answers[m] = &commonpb.Status{}
		}
	}
	for method, msg := range answers {
		data, err := refusalResponse(method, &Refusal{Reason: "zdm: no"})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if err := proto.Unmarshal(data, msg); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		st, ok := msg.(*commonpb.Status)
		if !ok {
			st = msg.(interface{ GetStatus() *commonpb.Status }).GetStatus()
		}
		if st.GetErrorCode() == commonpb.ErrorCode_Success || st.GetCode() == 0 || st.GetReason() != "zdm: no" ||
			st.GetErrorCode() == commonpb.ErrorCode_RateLimit {
			t.Errorf("%s: status %v", method, st)
		}
	}
	if _, err := refusalResponse("Dummy", &Refusal{}); err == nil {
		t.Error("an answer without a status was made one")
	}
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
