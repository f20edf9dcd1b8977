package rowcopy

import (
	"context"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// describingServer answers DescribeDatabase as a server of a given age
// does: not at all (one older than the method), with an error, or with
// properties (none for each database, as the test bed's 2.3.5 answers).
type describingServer struct {
	milvuspb.MilvusServiceClient
	props map[string][]*commonpb.KeyValuePair
	old   bool
}

func (s describingServer) DescribeDatabase(_ context.Context, r *milvuspb.DescribeDatabaseRequest, _ ...grpc.CallOption) (*milvuspb.DescribeDatabaseResponse, error) {
	if s.old {
		return nil, status.Error(codes.Unimplemented, "unknown method DescribeDatabase")
	}
	props, ok := s.props[r.GetDbName()]
	if !ok {
		return &milvuspb.DescribeDatabaseResponse{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Code: 65535, Reason: "privilege denied"}}, nil
	}
	return &milvuspb.DescribeDatabaseResponse{Status: &commonpb.Status{}, DbName: r.GetDbName(), Properties: props}, nil
}

// The preflight names each source database that has properties, which
// the copy does not give the target, with the properties and what to do;
// one whose properties cannot be read is named too. A database without
// properties, and a server too old to have them, give no note.
func TestThePreflightNamesTheDatabasePropertiesItDoesNotCopy(t *testing.T) {
	dbs := []milvus.Database{{Name: "default"}, {Name: "tenant_a"}, {Name: "tenant_b"}}
	src := &milvus.Conn{Svc: describingServer{props: map[string][]*commonpb.KeyValuePair{
		"default":  nil,
		"tenant_a": {{Key: "database.resource_groups", Value: "rg1"}, {Key: "database.replica.number", Value: "2"}},
	}}}
	notes := databaseNotes(context.Background(), src, dbs)
	if len(notes) != 2 {
		t.Fatalf("%d notes, want 2: %q", len(notes), notes)
	}
	if !strings.Contains(notes[0], "database tenant_a has properties zdm does not copy (database.replica.number=2, database.resource_groups=rg1)") ||
		!strings.Contains(notes[0], "AlterDatabase") {
		t.Errorf("the note on tenant_a: %q", notes[0])
	}
	if !strings.Contains(notes[1], "database tenant_b could not be read") || !strings.Contains(notes[1], "privilege denied") {
		t.Errorf("the note on tenant_b: %q", notes[1])
	}
	if notes := databaseNotes(context.Background(), &milvus.Conn{Svc: describingServer{old: true}}, dbs); len(notes) > 0 {
		t.Errorf("a server that cannot describe databases gave notes: %q", notes)
	}
}
