package verify

import (
	"context"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// clockServer is a Milvus holding one collection of three rows, that
// gives out clock and records how each query asked to be consistent.
type clockServer struct {
	milvuspb.MilvusServiceClient // any other call panics
	clock                        uint64

	mu    sync.Mutex
	reads []string
}

var okStatus = &commonpb.Status{}

func (s *clockServer) ListDatabases(context.Context, *milvuspb.ListDatabasesRequest, ...grpc.CallOption) (*milvuspb.ListDatabasesResponse, error) {
	return &milvuspb.ListDatabasesResponse{Status: okStatus, DbNames: []string{"default"}}, nil
}

func (s *clockServer) ShowCollections(context.Context, *milvuspb.ShowCollectionsRequest, ...grpc.CallOption) (*milvuspb.ShowCollectionsResponse, error) {
	return &milvuspb.ShowCollectionsResponse{Status: okStatus, CollectionNames: []string{"c"}}, nil
}

func (s *clockServer) GetLoadState(context.Context, *milvuspb.GetLoadStateRequest, ...grpc.CallOption) (*milvuspb.GetLoadStateResponse, error) {
	return &milvuspb.GetLoadStateResponse{Status: okStatus, State: commonpb.LoadState_LoadStateLoaded}, nil
}

func (s *clockServer) DescribeCollection(context.Context, *milvuspb.DescribeCollectionRequest, ...grpc.CallOption) (*milvuspb.DescribeCollectionResponse, error) {
	return &milvuspb.DescribeCollectionResponse{Status: okStatus, Schema: &schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}, {Name: "n", DataType: schemapb.DataType_Int64}}}}, nil
}

func (s *clockServer) AllocTimestamp(context.Context, *milvuspb.AllocTimestampRequest, ...grpc.CallOption) (*milvuspb.AllocTimestampResponse, error) {
	return &milvuspb.AllocTimestampResponse{Status: okStatus, Timestamp: s.clock}, nil
}

func (s *clockServer) Query(_ context.Context, r *milvuspb.QueryRequest, _ ...grpc.CallOption) (*milvuspb.QueryResults, error) {
	s.mu.Lock()
	read := r.GetConsistencyLevel().String()
	if r.GetConsistencyLevel() == commonpb.ConsistencyLevel_Customized && r.GetGuaranteeTimestamp() != s.clock {
		read = "at another timestamp"
	}
	s.reads = append(s.reads, read)
	s.mu.Unlock()
	long := func(name string, v ...int64) *schemapb.FieldData {
		return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{
			Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
	}
	if len(r.GetOutputFields()) == 1 && r.GetOutputFields()[0] == "count(*)" {
		return &milvuspb.QueryResults{Status: okStatus, FieldsData: []*schemapb.FieldData{long("count(*)", 3)}}, nil
	}
	return &milvuspb.QueryResults{Status: okStatus, FieldsData: []*schemapb.FieldData{long("id", 1, 2, 3), long("n", 7, 8, 9)}}, nil
}

// While writes are held, each side is read at a clock taken once, so
// that rounds of reads after the first do not each wait for the server's
// next time tick; with writes flowing the check reads strongly.
func TestTheCheckWhileWritesAreHeldReadsEachSideAtOneClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    QuickOptions
		want string
	}{
		{"writes held", QuickOptions{OneClock: true}, "Customized"},
		{"writes flowing", QuickOptions{}, "Strong"},
	} {
		src, dst := &clockServer{clock: 100}, &clockServer{clock: 200}
		rep, err := QuickCheckWith(context.Background(), &milvus.Conn{Svc: src}, &milvus.Conn{Svc: dst}, tc.o)
		if err != nil || !rep.Equal || len(rep.Collections) != 1 {
			t.Fatalf("%s: %v, %+v", tc.name, err, rep)
		}
		for side, s := range map[string]*clockServer{"source": src, "target": dst} {
			if len(s.reads) != 2 {
				t.Fatalf("%s: the %s was read %d times, want a count and a sample", tc.name, side, len(s.reads))
			}
			for _, got := range s.reads {
				if got != tc.want {
					t.Fatalf("%s: the %s was read %s, want %s", tc.name, side, got, tc.want)
				}
			}
		}
	}
}
