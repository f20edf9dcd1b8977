package segcopy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// settlingSource is a Milvus 2.3 source as a flush leaves it: the flush's
// wait reports the sealed segment flushed once its binlogs are saved, and
// the server lists it as flushing for a few more reads.
type settlingSource struct {
	milvuspb.MilvusServiceClient
	flushingReads int
	reads         int
}

func (s *settlingSource) Flush(context.Context, *milvuspb.FlushRequest, ...grpc.CallOption) (*milvuspb.FlushResponse, error) {
	return &milvuspb.FlushResponse{Status: &commonpb.Status{}, CollSegIDs: map[string]*schemapb.LongArray{"c": {Data: []int64{11}}}, CollFlushTs: map[string]uint64{"c": 7}}, nil
}

func (s *settlingSource) GetFlushState(context.Context, *milvuspb.GetFlushStateRequest, ...grpc.CallOption) (*milvuspb.GetFlushStateResponse, error) {
	return &milvuspb.GetFlushStateResponse{Status: &commonpb.Status{}, Flushed: true}, nil
}

func (s *settlingSource) DescribeCollection(context.Context, *milvuspb.DescribeCollectionRequest, ...grpc.CallOption) (*milvuspb.DescribeCollectionResponse, error) {
	return &milvuspb.DescribeCollectionResponse{Status: &commonpb.Status{}, CollectionID: 1}, nil
}

func (s *settlingSource) ShowPartitions(context.Context, *milvuspb.ShowPartitionsRequest, ...grpc.CallOption) (*milvuspb.ShowPartitionsResponse, error) {
	return &milvuspb.ShowPartitionsResponse{Status: &commonpb.Status{}, PartitionNames: []string{"_default", "p0"}, PartitionIDs: []int64{2, 3}}, nil
}

func (s *settlingSource) GetPersistentSegmentInfo(context.Context, *milvuspb.GetPersistentSegmentInfoRequest, ...grpc.CallOption) (*milvuspb.GetPersistentSegmentInfoResponse, error) {
	s.reads++
	p0 := commonpb.SegmentState_Flushed
	if s.reads <= s.flushingReads {
		p0 = commonpb.SegmentState_Flushing
	}
	return &milvuspb.GetPersistentSegmentInfoResponse{Status: &commonpb.Status{}, Infos: []*milvuspb.PersistentSegmentInfo{
		{SegmentID: 10, PartitionID: 2, NumRows: 10024, State: commonpb.SegmentState_Flushed},
		{SegmentID: 11, PartitionID: 3, NumRows: 10000, State: p0},
	}}, nil
}

// TestAListingWaitsForEverySegmentToBeFlushed: a segment the flush saved
// but the server still lists as flushing is in the listing, not left
// out. Taken at once, the listing lacked partition p0's segment, and the
// copy left its 10,000 rows off the target without a trace.
func TestAListingWaitsForEverySegmentToBeFlushed(t *testing.T) {
	src := &settlingSource{flushingReads: 3}
	l, err := List(context.Background(), &milvus.Conn{Svc: src}, "db", "c")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, p := range l.Partitions {
		for _, s := range p.Segments {
			rows[p.Name] += s.Rows
		}
	}
	if rows["_default"] != 10024 || rows["p0"] != 10000 {
		t.Fatalf("the listing holds %v rows by partition, want _default 10024 and p0 10000", rows)
	}
	if src.reads != 4 {
		t.Fatalf("the segments were listed %d times, want 4 (three while p0's was flushing)", src.reads)
	}
}

// TestASegmentThatStaysFlushingFailsTheListingNamingIt: the wait is
// bounded, and its error says which segment and what to do.
func TestASegmentThatStaysFlushingFailsTheListingNamingIt(t *testing.T) {
	src := &settlingSource{flushingReads: 1 << 30}
	_, err := settledSegments(context.Background(), &milvus.Conn{Svc: src}, "db", "c", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "segment 11 is still Flushing") || !strings.Contains(err.Error(), "copy_mode rows") {
		t.Fatalf("got %v, want an error naming segment 11 as flushing and the row copy", err)
	}
}
