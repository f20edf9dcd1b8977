package capture

import (
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
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
